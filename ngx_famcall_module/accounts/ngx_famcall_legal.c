/*
 * famcall: the privacy policy and terms.  The operator names them and
 * their version (famcall_legal_privacy_url, famcall_legal_terms_url,
 * famcall_legal_version); GET /v1/legal answers them from the
 * configuration, with no query, so the app can show them before anyone
 * signs up.  Sign-up records the version (auth passes it to famcall_signup
 * and famcall_otp_verify), GET /v1/me says whether the user must accept a
 * newer one, and POST /v1/me/legal {"version"} records that they did.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_accounts.h"
#include "ngx_famcall_json.h"


static json_t *ngx_famcall_legal_str(ngx_str_t *s);


static const ngx_famcall_field_t  ngx_famcall_legal_fields[] = {
    { "version", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, 64, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_legal_get(ngx_famcall_ctx_t *ctx)
{
    json_t                       *doc;
    ngx_famcall_accounts_conf_t  *acf = ngx_famcall_accounts_conf(ctx);

    doc = json_pack("{s:o, s:o, s:o}",
                    "privacy_url", ngx_famcall_legal_str(&acf->privacy_url),
                    "terms_url", ngx_famcall_legal_str(&acf->terms_url),
                    "version", ngx_famcall_legal_str(&acf->legal_version));
    if (doc == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_send_json(ctx, NGX_HTTP_OK, doc);
}


ngx_int_t
ngx_famcall_legal_accept(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t    rc;
    ngx_uint_t   error;
    const char  *params[3];

    rc = ngx_famcall_check_body(ctx, ngx_famcall_legal_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    error = 0;

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_json_string(ctx->body, "version");
    params[2] = ngx_famcall_legal_version(ctx->request, &error);

    if (params[0] == NULL || error) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_accounts_sql(ctx,
                                        NGX_FAMCALL_ACCOUNTS_SQL_LEGAL_ACCEPT),
               3, params, ngx_famcall_send_answer);
}


/* a directive's string, or null when it is not set ("o" steals it) */
static json_t *
ngx_famcall_legal_str(ngx_str_t *s)
{
    if (s->len == 0) {
        return json_null();
    }

    return json_stringn((const char *) s->data, s->len);
}
