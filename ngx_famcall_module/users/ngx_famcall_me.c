/*
 * famcall: the signed-in user's own profile (GET/PATCH /v1/me).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_users.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_accounts.h"


static const ngx_famcall_field_t  ngx_famcall_me_fields[] = {
    { "display_name", NGX_FAMCALL_F_STRING, 0, 0,
      ngx_famcall_check_display_name, 0, 0, NULL },
    { "username", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_username,
      0, 0, NULL },
    { "avatar_url", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_url,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


/* "legal" in the answer says whether the user must accept a newer version */
ngx_int_t
ngx_famcall_me_get(ngx_famcall_ctx_t *ctx)
{
    ngx_uint_t   error;
    const char  *params[2];

    error = 0;
    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_legal_version(ctx->request, &error);

    if (params[0] == NULL || error) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_ME),
               2, params, ngx_famcall_send_answer);
}


ngx_int_t
ngx_famcall_me_patch(ngx_famcall_ctx_t *ctx)
{
    char                       *s;
    json_t                     *patch, *v;
    ngx_int_t                   rc;
    ngx_str_t                   dumped;
    const char                 *params[2];
    const ngx_famcall_field_t  *f;

    rc = ngx_famcall_check_body(ctx, ngx_famcall_me_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    patch = json_object();
    if (patch == NULL) {
        return NGX_ERROR;
    }

    for (f = ngx_famcall_me_fields; f->name; f++) {
        v = json_object_get(ctx->body, f->name);
        if (v != NULL && json_object_set(patch, f->name, v) != 0) {
            json_decref(patch);
            return NGX_ERROR;
        }
    }

    if (json_object_size(patch) == 0) {
        json_decref(patch);
        return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                      "missing_field",
                                      "send at least one of display_name, "
                                      "username, avatar_url", NULL);
    }

    s = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);

    if (s == NULL) {
        return NGX_ERROR;
    }

    dumped.data = (u_char *) s;
    dumped.len = ngx_strlen(s);

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_cstr(ctx, &dumped);
    free(s);

    if (params[0] == NULL || params[1] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_ME_UPDATE),
               2, params, ngx_famcall_send_answer);
}
