/*
 * famcall: calls over HTTP (docs/api.md, "Calls"): GET /v1/calls, the
 * caller's history, and POST /v1/calls/{id}/stats, a participant's quality
 * report, once, after the call.  The rules live in sql/021_call_history.sql;
 * this file checks the input and makes the one call.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_calls.h"
#include "ngx_famcall_call_fields.h"


#define NGX_FAMCALL_CALLS_PAGE_MAX      100
#define NGX_FAMCALL_CALLS_PAGE_DEFAULT  50
#define NGX_FAMCALL_CALL_TIME_MAX       40

#define ngx_famcall_calls_http_conf(ctx)                                     \
    ((ngx_famcall_calls_conf_t *) ngx_http_get_module_main_conf(             \
                                      (ctx)->request,                        \
                                      ngx_http_famcall_calls_module))


ngx_int_t
ngx_famcall_calls_list(ngx_famcall_ctx_t *ctx)
{
    int64_t                    limit;
    ngx_int_t                  rc;
    ngx_str_t                  before;
    ngx_uint_t                 i;
    const char                *params[3];
    ngx_famcall_calls_conf_t  *ccf = ngx_famcall_calls_http_conf(ctx);

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    params[1] = NULL;

    rc = ngx_famcall_arg(ctx, "before", &before);

    if (rc == NGX_OK) {
        /*
         * an RFC 3339 time: a year first, and none of PostgreSQL's words
         * ("now", "epoch", "infinity") that it would take as times too
         */
        if (before.len < 10 || before.len > NGX_FAMCALL_CALL_TIME_MAX
            || before.data[4] != '-')
        {
            return ngx_famcall_send_error(ctx, 422, "invalid_field",
                                          "must be an RFC 3339 time",
                                          "before");
        }

        for (i = 0; i < before.len; i++) {
            if (ngx_strchr("0123456789-:.+TZtz", before.data[i]) == NULL) {
                return ngx_famcall_send_error(ctx, 422, "invalid_field",
                                              "must be an RFC 3339 time",
                                              "before");
            }
        }

        params[1] = ngx_famcall_cstr(ctx, &before);
        if (params[1] == NULL) {
            return NGX_ERROR;
        }

    } else if (rc != NGX_DECLINED) {
        return rc;
    }

    limit = NGX_FAMCALL_CALLS_PAGE_DEFAULT;

    rc = ngx_famcall_arg_int(ctx, "limit", 1, NGX_FAMCALL_CALLS_PAGE_MAX,
                             &limit);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }

    params[2] = ngx_famcall_num(ctx, (ngx_int_t) limit);
    if (params[2] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx, ccf->sql + NGX_FAMCALL_CALL_SQL_LIST, 3,
                             params, ngx_famcall_send_answer);
}


ngx_int_t
ngx_famcall_call_stats(ngx_famcall_ctx_t *ctx)
{
    char                       call[NGX_FAMCALL_ID_LEN + 1];
    char                      *json;
    ngx_int_t                  rc;
    const char                *params[3];
    ngx_famcall_calls_conf_t  *ccf = ngx_famcall_calls_http_conf(ctx);

    rc = ngx_famcall_path_uuid(ctx, 0, call);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_famcall_check_body(ctx, ngx_famcall_call_stats_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    params[1] = call;

    json = json_dumps(ctx->body, JSON_COMPACT);
    if (json == NULL) {
        return NGX_ERROR;
    }

    params[2] = json;

    /* the parameters are copied into the query's buffer when sent */
    rc = ngx_famcall_query(ctx, ccf->sql + NGX_FAMCALL_CALL_SQL_STATS, 3,
                           params, ngx_famcall_send_answer);
    free(json);

    return rc;
}

