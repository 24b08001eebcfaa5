/*
 * famcall: finding people and the relations between them: search,
 * contacts, blocks, reports (GET /v1/users/search, /v1/contacts,
 * /v1/blocks, POST /v1/reports).
 *
 * Each route validates its input here and makes one call to an SQL
 * function (sql/003_contacts_chat.sql) that applies the rules (who may
 * see whom, blocks both ways) and answers with its status and body.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_users.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


static const ngx_famcall_field_t  ngx_famcall_contact_fields[] = {
    { "user_id", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "username", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_username,
      0, 0, NULL },
    { "phone", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_phone,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  ngx_famcall_report_fields[] = {
    { "user_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "reason", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_report_reason,
      0, 0, NULL },
    { "text", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_report_text,
      0, 0, NULL },
    { "message_id", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_uuid,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_users_search(ngx_famcall_ctx_t *ctx)
{
    size_t       len;
    char        *q;
    ngx_int_t    rc;
    ngx_str_t    raw;
    const char  *params[2], *msg;

    rc = ngx_famcall_arg(ctx, "q", &raw);

    if (rc == NGX_DECLINED) {
        return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                      "invalid_field",
                                      "search with q: a username prefix or "
                                      "a phone number", "q");
    }

    if (rc != NGX_OK) {
        return rc;
    }

    q = ngx_pnalloc(ctx->request->pool, raw.len + 1);
    if (q == NULL) {
        return NGX_ERROR;
    }

    /* phones only match whole, so a number cannot be found digit by digit */
    msg = (raw.len && raw.data[0] == '+')
          ? ngx_famcall_check_phone((char *) raw.data, raw.len, q, &len)
          : ngx_famcall_check_search_prefix((char *) raw.data, raw.len, q,
                                            &len);
    if (msg != NULL) {
        return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                      "invalid_field", msg, "q");
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = q;

    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_SEARCH),
               2, params, ngx_famcall_send_answer);
}


ngx_int_t
ngx_famcall_contacts_list(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_CONTACTS_LIST));
}


ngx_int_t
ngx_famcall_contacts_add(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t    rc;
    ngx_uint_t   given;
    const char  *params[4];

    rc = ngx_famcall_check_body(ctx, ngx_famcall_contact_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_json_string(ctx->body, "user_id");
    params[2] = ngx_famcall_json_string(ctx->body, "username");
    params[3] = ngx_famcall_json_string(ctx->body, "phone");

    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    given = (params[1] != NULL) + (params[2] != NULL) + (params[3] != NULL);

    if (given != 1) {
        return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                      "invalid_field",
                                      "send exactly one of user_id, "
                                      "username, phone", NULL);
    }

    if (params[1] != NULL) {
        rc = ngx_famcall_not_self(ctx, params[1], "user_id");
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_users_sql(ctx,
                                     NGX_FAMCALL_USERS_SQL_CONTACT_REQUEST),
               4, params, ngx_famcall_send_answer);
}


ngx_int_t
ngx_famcall_contacts_accept(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me_id(ctx,
               ngx_famcall_users_sql(ctx,
                                     NGX_FAMCALL_USERS_SQL_CONTACT_ACCEPT));
}


ngx_int_t
ngx_famcall_contacts_remove(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me_id(ctx,
               ngx_famcall_users_sql(ctx,
                                     NGX_FAMCALL_USERS_SQL_CONTACT_REMOVE));
}


ngx_int_t
ngx_famcall_blocks_list(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_BLOCKS_LIST));
}


ngx_int_t
ngx_famcall_blocks_add(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me_user(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_BLOCK));
}


ngx_int_t
ngx_famcall_blocks_remove(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me_id(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_UNBLOCK));
}


ngx_int_t
ngx_famcall_reports_add(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t    rc;
    const char  *params[5];

    rc = ngx_famcall_check_body(ctx, ngx_famcall_report_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_json_string(ctx->body, "user_id");
    params[2] = ngx_famcall_json_string(ctx->body, "reason");
    params[3] = ngx_famcall_json_string(ctx->body, "text");
    params[4] = ngx_famcall_json_string(ctx->body, "message_id");

    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_famcall_not_self(ctx, params[1], "user_id");
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_users_sql(ctx, NGX_FAMCALL_USERS_SQL_REPORT),
               5, params, ngx_famcall_send_answer);
}
