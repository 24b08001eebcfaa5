/*
 * famcall: what a route reads and asks: path parameters, query arguments,
 * the body's fields, and the one SQL call whose (status, body) row becomes
 * the answer (ngx_famcall_http.h).  A parameter that cannot be built fails
 * the request (NGX_ERROR): it is never sent as an SQL NULL.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


static void ngx_famcall_query_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res);


static const ngx_famcall_field_t  ngx_famcall_user_fields[] = {
    { "user_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


/*
 * Path parameter i as a lowercase UUID in out (37 bytes).  Anything else
 * answers 404, exactly like an id that is not the caller's.
 */
ngx_int_t
ngx_famcall_path_uuid(ngx_famcall_ctx_t *ctx, ngx_uint_t i, char *out)
{
    size_t      len;
    ngx_str_t  *p = &ctx->params[i];

    if (ngx_famcall_check_uuid((char *) p->data, p->len, out, &len) != NULL) {
        return ngx_famcall_send_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such resource", NULL);
    }

    return NGX_OK;
}


/* query argument name, unescaped, NUL-terminated; NGX_DECLINED if absent */
ngx_int_t
ngx_famcall_arg(ngx_famcall_ctx_t *ctx, const char *name, ngx_str_t *out)
{
    u_char              *dst, *src;
    ngx_str_t            raw;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, raw.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    out->data = dst;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    *dst = '\0';
    out->len = dst - out->data;

    return NGX_OK;
}


/*
 * An optional non-negative integer query argument within [min, max]:
 * NGX_OK with *out set, NGX_DECLINED when absent (out untouched), NGX_DONE
 * after answering 422 for anything else, NGX_ERROR when out of memory.
 */
ngx_int_t
ngx_famcall_arg_int(ngx_famcall_ctx_t *ctx, const char *name, int64_t min,
    int64_t max, int64_t *out)
{
    u_char     *p;
    int64_t     n;
    ngx_int_t   rc;
    ngx_str_t   v;

    rc = ngx_famcall_arg(ctx, name, &v);
    if (rc != NGX_OK) {
        return rc;
    }

    n = 0;

    if (v.len == 0 || v.len > 16) {
        goto invalid;
    }

    for (p = v.data; p < v.data + v.len; p++) {
        if (*p < '0' || *p > '9') {
            goto invalid;
        }
        n = n * 10 + (*p - '0');
    }

    if (n < min || n > max) {
        goto invalid;
    }

    *out = n;
    return NGX_OK;

invalid:

    return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                  "invalid_field",
                                  "must be a whole number in range", name);
}


/* the body against a route's field table: NGX_OK, or NGX_DONE (422) */
ngx_int_t
ngx_famcall_check_body(ngx_famcall_ctx_t *ctx,
    const ngx_famcall_field_t *fields)
{
    ngx_famcall_verror_t  err;

    if (ngx_famcall_json_validate(ctx->body, fields, &err) == 0) {
        return NGX_OK;
    }

    return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                  err.code, err.message, err.field);
}


ngx_int_t
ngx_famcall_query(ngx_famcall_ctx_t *ctx, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_famcall_answer_pt answer)
{
    ngx_famcall_pg_query_t  *q;

    q = ngx_famcall_pg_send(ctx->fmcf->pg, stmt, nparams, values,
                            ngx_famcall_query_done, ctx);

    if (q == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "famcall: query %ui not sent: no database", stmt);

        return ngx_famcall_send_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "unavailable",
                                      "the service is temporarily "
                                      "unavailable", NULL);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "famcall: query %ui sent, %ui parameters", stmt, nparams);

    ctx->query = q;
    ctx->answer = answer;

    return NGX_DONE;
}


ngx_uint_t
ngx_famcall_params_null(const char *const *values, ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (values[i] == NULL) {
            return 1;
        }
    }

    return 0;
}


/* a route that is one call with the caller's id: lists, /v1/me */
ngx_int_t
ngx_famcall_query_me(ngx_famcall_ctx_t *ctx, ngx_uint_t stmt)
{
    const char  *params[1];

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx, stmt, 1, params, ngx_famcall_send_answer);
}


/* a route that is one call with the caller's id and the path's {id} */
ngx_int_t
ngx_famcall_query_me_id(ngx_famcall_ctx_t *ctx, ngx_uint_t stmt)
{
    char         id[NGX_FAMCALL_ID_LEN + 1];
    ngx_int_t    rc;
    const char  *params[2];

    rc = ngx_famcall_path_uuid(ctx, 0, id);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = id;
    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx, stmt, 2, params, ngx_famcall_send_answer);
}


/*
 * A route that is one call with the caller's id and another user's, given
 * as {"user_id"} in the body (block someone, open a conversation).
 */
ngx_int_t
ngx_famcall_query_me_user(ngx_famcall_ctx_t *ctx, ngx_uint_t stmt)
{
    ngx_int_t    rc;
    const char  *params[2];

    rc = ngx_famcall_check_body(ctx, ngx_famcall_user_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_json_string(ctx->body, "user_id");

    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_famcall_not_self(ctx, params[1], "user_id");
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_famcall_query(ctx, stmt, 2, params, ngx_famcall_send_answer);
}


/* 422 when id is the caller: nobody adds, blocks or reports themselves */
ngx_int_t
ngx_famcall_not_self(ngx_famcall_ctx_t *ctx, const char *id,
    const char *field)
{
    if (ngx_strlen(id) != ctx->user_id.len
        || ngx_strncmp(id, ctx->user_id.data, ctx->user_id.len) != 0)
    {
        return NGX_OK;
    }

    return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                  "invalid_field", "must be another user",
                                  field);
}


static void
ngx_famcall_query_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_ctx_t   *ctx = data;

    size_t               len;
    u_char              *body;
    ngx_int_t            code;
    ngx_connection_t    *c;

    ctx->query = NULL;
    c = ctx->request->connection;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "famcall: query answered, status %d", (int) status);

    if (status == NGX_FAMCALL_PG_UNAVAILABLE
        || status == NGX_FAMCALL_PG_TIMEOUT)
    {
        (void) ngx_famcall_send_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "unavailable",
                                      "the service is temporarily "
                                      "unavailable", NULL);
        goto done;
    }

    if (status != NGX_FAMCALL_PG_OK || PQntuples(res) != 1) {
        (void) ngx_famcall_send_internal(ctx);
        goto done;
    }

    if (PQnfields(res) == 1) {
        /* a plain statement (the health check) */
        body = NULL;
        len = 0;
        code = NGX_HTTP_OK;

    } else {
        code = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));

        if (PQgetisnull(res, 0, 1)) {
            body = NULL;
            len = 0;

        } else {
            body = (u_char *) PQgetvalue(res, 0, 1);
            len = PQgetlength(res, 0, 1);
        }
    }

    if (ctx->answer(ctx, code, body, len) != NGX_DONE) {
        (void) ngx_famcall_send_internal(ctx);
    }

done:

    ngx_http_run_posted_requests(c);
}


char *
ngx_famcall_cstr(ngx_famcall_ctx_t *ctx, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(ctx->request->pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_cpymem(p, s->data, s->len) = '\0';

    return (char *) p;
}


char *
ngx_famcall_num(ngx_famcall_ctx_t *ctx, ngx_int_t n)
{
    u_char  *p;

    p = ngx_pnalloc(ctx->request->pool, NGX_INT_T_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_sprintf(p, "%i", n) = '\0';

    return (char *) p;
}
