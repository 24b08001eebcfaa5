/*
 * famcall: conversations and messages over HTTP (/v1/conversations...).
 *
 * Membership, blocks and contact checks, idempotent sends (client_id) and
 * the per-conversation seq live in sql/003_contacts_chat.sql; this file
 * checks the input and makes the one call.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_chat.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


#define NGX_FAMCALL_PAGE_MAX     200
#define NGX_FAMCALL_PAGE_DEFAULT 50


static char *ngx_famcall_seq_str(ngx_famcall_ctx_t *ctx, int64_t n);
static void ngx_famcall_messages_sent(void *owner, ngx_int_t status,
    u_char *body, size_t len);


static const ngx_famcall_field_t  ngx_famcall_send_fields[] = {
    { "client_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "body", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_message_body,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  ngx_famcall_read_fields[] = {
    { "up_to_seq", NGX_FAMCALL_F_INTEGER, 1, 0, NULL, 0,
      NGX_FAMCALL_SEQ_MAX, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_conversations_list(ngx_famcall_ctx_t *ctx)
{
    ngx_famcall_chat_conf_t  *ccf = ngx_famcall_chat_conf(ctx);

    return ngx_famcall_query_me(ctx, ccf->sql
                                     + NGX_FAMCALL_CHAT_SQL_CONVERSATIONS_LIST);
}


ngx_int_t
ngx_famcall_conversations_open(ngx_famcall_ctx_t *ctx)
{
    ngx_famcall_chat_conf_t  *ccf = ngx_famcall_chat_conf(ctx);

    return ngx_famcall_query_me_user(ctx, ccf->sql
                                     + NGX_FAMCALL_CHAT_SQL_CONVERSATION_OPEN);
}


ngx_int_t
ngx_famcall_messages_list(ngx_famcall_ctx_t *ctx)
{
    char                      conv[NGX_FAMCALL_ID_LEN + 1];
    int64_t                   before, after, limit;
    ngx_int_t                 rc;
    const char               *params[5];
    ngx_famcall_chat_conf_t  *ccf = ngx_famcall_chat_conf(ctx);

    rc = ngx_famcall_path_uuid(ctx, 0, conv);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = conv;

    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    /* absent bounds are SQL NULLs; a bound that failed to allocate is not */

    params[2] = NULL;

    rc = ngx_famcall_arg_int(ctx, "before_seq", 0, NGX_FAMCALL_SEQ_MAX,
                             &before);
    if (rc == NGX_OK) {
        params[2] = ngx_famcall_seq_str(ctx, before);
        rc = params[2] ? NGX_OK : NGX_ERROR;
    }

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    params[3] = NULL;

    rc = ngx_famcall_arg_int(ctx, "after_seq", 0, NGX_FAMCALL_SEQ_MAX,
                             &after);
    if (rc == NGX_OK) {
        params[3] = ngx_famcall_seq_str(ctx, after);
        rc = params[3] ? NGX_OK : NGX_ERROR;
    }

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    limit = NGX_FAMCALL_PAGE_DEFAULT;

    rc = ngx_famcall_arg_int(ctx, "limit", 1, NGX_FAMCALL_PAGE_MAX, &limit);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    params[4] = ngx_famcall_seq_str(ctx, limit);
    if (params[4] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
                             ccf->sql + NGX_FAMCALL_CHAT_SQL_MESSAGES_LIST,
                             5, params, ngx_famcall_send_answer);
}


/*
 * Sends go through the worker's batcher: sends that arrive while earlier
 * ones are being committed share the next transaction (group commit).
 */
ngx_int_t
ngx_famcall_messages_send(ngx_famcall_ctx_t *ctx)
{
    char                      conv[NGX_FAMCALL_ID_LEN + 1];
    ngx_int_t                 rc;
    ngx_str_t                 c, item[NGX_FAMCALL_SEND_FIELDS];
    ngx_famcall_chat_conf_t  *ccf = ngx_famcall_chat_conf(ctx);

    rc = ngx_famcall_path_uuid(ctx, 0, conv);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_famcall_check_body(ctx, ngx_famcall_send_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    c.data = (u_char *) conv;
    c.len = NGX_FAMCALL_ID_LEN;

    ngx_famcall_send_item(item, &ctx->user_id, &c,
                          json_object_get(ctx->body, "client_id"),
                          json_object_get(ctx->body, "body"), NULL);

    if (ngx_famcall_batch_add(ccf->batcher, item, ngx_famcall_messages_sent,
                              ctx, &ctx->batch)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "famcall: send queued in the batcher");

    return NGX_DONE;
}


void
ngx_famcall_send_item(ngx_str_t *item, ngx_str_t *me, ngx_str_t *conv,
    json_t *client_id, json_t *body, const char *src)
{
    json_t      *v[2];
    ngx_uint_t   i;

    item[0] = *me;
    item[1] = *conv;

    v[0] = client_id;
    v[1] = body;

    for (i = 0; i < 2; i++) {
        if (json_is_string(v[i])) {
            item[2 + i].data = (u_char *) json_string_value(v[i]);
            item[2 + i].len = json_string_length(v[i]);

        } else {
            ngx_str_null(&item[2 + i]);     /* SQL NULL: the batch's 422 */
        }
    }

    if (src != NULL) {
        item[4].data = (u_char *) src;
        item[4].len = ngx_strlen(src);

    } else {
        ngx_str_null(&item[4]);
    }
}


static void
ngx_famcall_messages_sent(void *owner, ngx_int_t status, u_char *body,
    size_t len)
{
    ngx_famcall_ctx_t  *ctx = owner;
    ngx_connection_t   *c = ctx->request->connection;

    if (body == NULL && status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
            (void) ngx_famcall_send_error(ctx, status, "unavailable",
                                          "the service is temporarily "
                                          "unavailable", NULL);
        } else {
            (void) ngx_famcall_send_internal(ctx);
        }

    } else {
        (void) ngx_famcall_send_answer(ctx, status, body, len);
    }

    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_famcall_conversations_read(ngx_famcall_ctx_t *ctx)
{
    char                      conv[NGX_FAMCALL_ID_LEN + 1];
    ngx_int_t                 rc;
    const char               *params[3];
    ngx_famcall_chat_conf_t  *ccf = ngx_famcall_chat_conf(ctx);

    rc = ngx_famcall_path_uuid(ctx, 0, conv);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_famcall_check_body(ctx, ngx_famcall_read_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = conv;
    params[2] = ngx_famcall_seq_str(ctx,
                    json_integer_value(json_object_get(ctx->body,
                                                       "up_to_seq")));

    if (params[0] == NULL || params[2] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
                             ccf->sql + NGX_FAMCALL_CHAT_SQL_CONVERSATION_READ,
                             3, params, ngx_famcall_send_answer);
}


static char *
ngx_famcall_seq_str(ngx_famcall_ctx_t *ctx, int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(ctx->request->pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_sprintf(p, "%L", n) = '\0';

    return (char *) p;
}
