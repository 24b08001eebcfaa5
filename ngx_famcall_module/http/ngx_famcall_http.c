/*
 * famcall: request plumbing for the JSON API.
 *
 * famcall_api's content handler finds the route (the feature modules add
 * theirs at postconfiguration), checks the bearer token when the route
 * needs one, reads and parses the body, and hands a ctx to the route.
 * Routes answer through ngx_famcall_send*(), which finalize the request;
 * who answers is told by return codes (ngx_famcall_http.h), so a request
 * is answered exactly once without a flag to check.  Database answers come
 * back through ngx_famcall_query(); a request that goes away first
 * detaches its query in the pool cleanup, so no callback ever sees a
 * freed request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


#define NGX_FAMCALL_PARAM_MAX  64


static const ngx_famcall_route_t *ngx_famcall_route_find(
    ngx_http_request_t *r, ngx_famcall_ctx_t *ctx, ngx_uint_t *path_found);
static ngx_int_t ngx_famcall_route_match(const char *pattern, ngx_str_t *uri,
    ngx_str_t *params);
static ngx_int_t ngx_famcall_set_allow(ngx_http_request_t *r);
static ngx_int_t ngx_famcall_check_content_type(ngx_http_request_t *r);
static void ngx_famcall_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_famcall_body_collect(ngx_http_request_t *r,
    ngx_str_t *out);
static ngx_int_t ngx_famcall_run(ngx_famcall_ctx_t *ctx);
static void ngx_famcall_query_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res);
static void ngx_famcall_ctx_cleanup(void *data);
static ngx_int_t ngx_famcall_add_header(ngx_http_request_t *r,
    const char *key, const char *value);


static const char *ngx_famcall_method_name(ngx_uint_t method);


ngx_int_t
ngx_famcall_routes_add(ngx_conf_t *cf, const ngx_famcall_route_t *routes)
{
    ngx_uint_t                     i;
    ngx_famcall_route_t           *rt, *all;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);

    for ( /* void */ ; routes->path != NULL; routes++) {
        all = fmcf->routes.elts;

        for (i = 0; i < fmcf->routes.nelts; i++) {
            if (all[i].method == routes->method
                && ngx_strcmp(all[i].path, routes->path) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "famcall: the route %s %s is added twice",
                                   ngx_famcall_method_name(routes->method),
                                   routes->path);
                return NGX_ERROR;
            }
        }

        rt = ngx_array_push(&fmcf->routes);
        if (rt == NULL) {
            return NGX_ERROR;
        }

        *rt = *routes;
    }

    return NGX_OK;
}


ngx_famcall_ctx_t *
ngx_famcall_ctx_get(ngx_http_request_t *r)
{
    ngx_famcall_ctx_t       *ctx;
    ngx_pool_cleanup_t      *cln;

    ctx = ngx_http_get_module_ctx(r, ngx_http_famcall_module);
    if (ctx != NULL) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_famcall_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_famcall_ctx_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->fmcf = ngx_http_get_module_main_conf(r, ngx_http_famcall_module);

    ngx_http_set_ctx(r, ctx, ngx_http_famcall_module);

    return ctx;
}


static void
ngx_famcall_ctx_cleanup(void *data)
{
    ngx_famcall_ctx_t  *ctx = data;

    if (ctx->query != NULL) {
        ngx_famcall_pg_detach(ctx->query);
        ctx->query = NULL;
    }

    if (ctx->batch != NULL) {
        ngx_famcall_batch_detach(ctx->batch);
        ctx->batch = NULL;
    }

    if (ctx->body != NULL) {
        json_decref(ctx->body);
        ctx->body = NULL;
    }
}


ngx_int_t
ngx_famcall_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_uint_t                  path_found;
    ngx_famcall_ctx_t          *ctx;
    const ngx_famcall_route_t  *route;

    ctx = ngx_famcall_ctx_get(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    route = ngx_famcall_route_find(r, ctx, &path_found);

    /* from here every answer goes through ngx_famcall_send*() */
    r->main->count++;

    if (route == NULL) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "famcall: no route for \"%V\", path %s",
                       &r->uri, path_found ? "found" : "unknown");

        (void) ngx_http_discard_request_body(r);

        if (path_found && ngx_famcall_set_allow(r) == NGX_OK) {
            return ngx_famcall_send_error(ctx, NGX_HTTP_NOT_ALLOWED,
                                          "method_not_allowed",
                                          "this method is not allowed here",
                                          NULL);
        }

        return ngx_famcall_send_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such route", NULL);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "famcall: route %s %s for \"%V\"",
                   ngx_famcall_method_name(route->method), route->path,
                   &r->uri);

    ctx->route = route;

    rc = route->auth ? ngx_famcall_authenticate(ctx) : NGX_OK;

    if (rc == NGX_ERROR) {
        (void) ngx_http_discard_request_body(r);
        return ngx_famcall_send_internal(ctx);
    }

    if (rc != NGX_OK) {
        (void) ngx_http_discard_request_body(r);
        return ngx_famcall_send_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                      "unauthorized",
                                      "a valid access token is required",
                                      NULL);
    }

    if (!route->body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            r->main->count--;
            return rc;
        }

        return ngx_famcall_run(ctx);
    }

    if (r->headers_in.content_length_n > (off_t) ctx->fmcf->max_body_size) {
        r->keepalive = 0;
        return ngx_famcall_send_error(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "the request body is too large", NULL);
    }

    if ((r->headers_in.content_length_n > 0 || r->headers_in.chunked)
        && ngx_famcall_check_content_type(r) != NGX_OK)
    {
        r->keepalive = 0;
        return ngx_famcall_send_error(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                      "unsupported_media_type",
                                      "the request body must be "
                                      "application/json", NULL);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_famcall_body_handler);

    /* reading the body holds a reference of its own */
    r->main->count--;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static const ngx_famcall_route_t *
ngx_famcall_route_find(ngx_http_request_t *r, ngx_famcall_ctx_t *ctx,
    ngx_uint_t *path_found)
{
    ngx_uint_t                     i;
    ngx_str_t                      params[2];
    ngx_famcall_route_t           *rt;

    *path_found = 0;
    rt = ctx->fmcf->routes.elts;

    for (i = 0; i < ctx->fmcf->routes.nelts; i++, rt++) {
        if (ngx_famcall_route_match(rt->path, &r->uri, params) != NGX_OK) {
            continue;
        }

        *path_found = 1;

        if (rt->method == r->method
            || (rt->method == NGX_HTTP_GET && r->method == NGX_HTTP_HEAD))
        {
            ctx->params[0] = params[0];
            ctx->params[1] = params[1];
            return rt;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_famcall_route_match(const char *pattern, ngx_str_t *uri,
    ngx_str_t *params)
{
    u_char      *p, *end, *seg;
    ngx_uint_t   n;

    p = uri->data;
    end = uri->data + uri->len;
    n = 0;

    while (*pattern) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            seg = p;
            while (p < end && *p != '/') {
                p++;
            }

            if (p == seg || p - seg > NGX_FAMCALL_PARAM_MAX || n == 2) {
                return NGX_DECLINED;
            }

            params[n].data = seg;
            params[n].len = p - seg;
            n++;
            pattern += 2;
            continue;
        }

        if (p == end || *p != (u_char) *pattern) {
            return NGX_DECLINED;
        }

        p++;
        pattern++;
    }

    return p == end ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_famcall_set_allow(ngx_http_request_t *r)
{
    u_char                        *p, *last;
    ngx_uint_t                     i;
    ngx_str_t                      params[2];
    ngx_table_elt_t               *h;
    ngx_famcall_route_t           *rt;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_famcall_module);

    p = ngx_pnalloc(r->pool, 64);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = p;
    rt = fmcf->routes.elts;

    for (i = 0; i < fmcf->routes.nelts; i++, rt++) {
        if (ngx_famcall_route_match(rt->path, &r->uri, params) != NGX_OK) {
            continue;
        }

        /* "GET, HEAD, POST, PATCH, PUT, DELETE" is 35 bytes: room left */
        last = ngx_slprintf(last, p + 64, "%s%s", last == p ? "" : ", ",
                            rt->method == NGX_HTTP_GET ? "GET, HEAD"
                            : ngx_famcall_method_name(rt->method));
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = p;
    h->value.len = last - p;

    return NGX_OK;
}


static const char *
ngx_famcall_method_name(ngx_uint_t method)
{
    switch (method) {
    case NGX_HTTP_GET:
        return "GET";
    case NGX_HTTP_POST:
        return "POST";
    case NGX_HTTP_PATCH:
        return "PATCH";
    case NGX_HTTP_DELETE:
        return "DELETE";
    default:
        return "PUT";
    }
}


static ngx_int_t
ngx_famcall_check_content_type(ngx_http_request_t *r)
{
    u_char     *p, *end;
    ngx_str_t  *ct;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    ct = &r->headers_in.content_type->value;
    end = ct->data + ct->len;

    for (p = ct->data; p < end && *p != ';' && *p != ' '; p++) {
        /* the media type ends at parameters */
    }

    if ((size_t) (p - ct->data) != sizeof("application/json") - 1
        || ngx_strncasecmp(ct->data, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_famcall_body_handler(ngx_http_request_t *r)
{
    ngx_str_t              raw;
    ngx_famcall_ctx_t     *ctx;
    ngx_famcall_verror_t   err;

    ctx = ngx_http_get_module_ctx(r, ngx_http_famcall_module);

    switch (ngx_famcall_body_collect(r, &raw)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        r->keepalive = 0;
        (void) ngx_famcall_send_error(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "the request body is too large", NULL);
        return;

    default:
        (void) ngx_famcall_send_internal(ctx);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "famcall: body read, %uz bytes", raw.len);

    if (raw.len == 0) {
        (void) ngx_famcall_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_json",
                                      "a JSON object body is required", NULL);
        return;
    }

    ctx->body = ngx_famcall_json_parse((char *) raw.data, raw.len, &err);

    if (ctx->body == NULL) {
        (void) ngx_famcall_send_error(ctx, NGX_HTTP_BAD_REQUEST, err.code,
                                      err.message, NULL);
        return;
    }

    (void) ngx_famcall_run(ctx);
}


/* the whole body in one buffer; NGX_DECLINED when over the limit */
static ngx_int_t
ngx_famcall_body_collect(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char             *p;
    size_t              len, max;
    ssize_t             n;
    ngx_buf_t          *b;
    ngx_chain_t        *cl;
    ngx_famcall_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_famcall_module);
    max = ctx->fmcf->max_body_size;

    out->len = 0;
    out->data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len > max) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* bodies past client_body_buffer_size: a short local read */
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }
            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    *p = '\0';
    out->len = len;

    return NGX_OK;
}


/* NGX_DONE: the route answered or will; anything else failed unanswered */
static ngx_int_t
ngx_famcall_run(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ctx->route->handler(ctx);

    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "famcall: route failed: %i", rc);

    return ngx_famcall_send_internal(ctx);
}


/* the token of "Authorization: Bearer <token>", not empty */
ngx_int_t
ngx_famcall_bearer_token(ngx_http_request_t *r, ngx_str_t *token)
{
    ngx_table_elt_t  *h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= sizeof("Bearer ") - 1
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    token->data = h->value.data + sizeof("Bearer ") - 1;
    token->len = h->value.len - (sizeof("Bearer ") - 1);

    while (token->len && *token->data == ' ') {
        token->data++;
        token->len--;
    }

    return token->len ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_famcall_authenticate(ngx_famcall_ctx_t *ctx)
{
    u_char                    *p;
    ngx_str_t                  token;
    ngx_http_request_t        *r = ctx->request;
    ngx_famcall_jwt_claims_t   claims;

    if (ctx->auth_checked) {
        return ctx->user_id.len ? NGX_OK : NGX_DECLINED;
    }

    ctx->auth_checked = 1;

    if (ngx_famcall_bearer_token(r, &token) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_famcall_jwt_verify(ctx->fmcf->jwt_secret.data,
                               ctx->fmcf->jwt_secret.len,
                               (char *) token.data, token.len, ngx_time(),
                               &claims)
        != 0)
    {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, 2 * (NGX_FAMCALL_ID_LEN + 1));
    if (p == NULL) {
        ctx->auth_checked = 0;
        return NGX_ERROR;
    }

    ctx->user_id.data = p;
    ctx->user_id.len = ngx_cpystrn(p, (u_char *) claims.sub,
                                   NGX_FAMCALL_ID_LEN + 1) - p;

    p += NGX_FAMCALL_ID_LEN + 1;
    ctx->session_id.data = p;
    ctx->session_id.len = ngx_cpystrn(p, (u_char *) claims.sid,
                                      NGX_FAMCALL_ID_LEN + 1) - p;

    return NGX_OK;
}


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


static const ngx_famcall_field_t  ngx_famcall_user_fields[] = {
    { "user_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


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


/* an sql/ function's answer as it stands: its status and its body */
ngx_int_t
ngx_famcall_send_answer(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    if (status < 200 || status > 599) {
        return ngx_famcall_send_internal(ctx);
    }

    return ngx_famcall_send(ctx, (ngx_uint_t) status, body, len);
}


ngx_int_t
ngx_famcall_send_internal(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_send_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "internal error", NULL);
}


/* the request is finalized whatever happens: NGX_DONE */
ngx_int_t
ngx_famcall_send(ngx_famcall_ctx_t *ctx, ngx_uint_t status, u_char *body,
    size_t len)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t          out;
    ngx_http_request_t  *r = ctx->request;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "famcall: answered %ui, %uz bytes", status, len);

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    if (status == NGX_HTTP_UNAUTHORIZED) {
        (void) ngx_famcall_add_header(r, "WWW-Authenticate", "Bearer");
    }

    if (ngx_famcall_add_header(r, "Cache-Control", "no-store") != NGX_OK) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return NGX_DONE;
    }

    if (len == 0) {
        r->header_only = 1;

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    /* body may live in a PGresult or a jansson buffer: copy it */
    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return NGX_DONE;
    }

    b->last = ngx_cpymem(b->last, body, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


/* takes body's reference */
ngx_int_t
ngx_famcall_send_json(ngx_famcall_ctx_t *ctx, ngx_uint_t status, json_t *body)
{
    char  *s;

    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (s == NULL) {
        return ngx_famcall_send_internal(ctx);
    }

    (void) ngx_famcall_send(ctx, status, (u_char *) s, ngx_strlen(s));
    free(s);

    return NGX_DONE;
}


ngx_int_t
ngx_famcall_send_error(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *message, const char *field)
{
    char    *s;
    json_t  *err, *doc;

    err = json_pack("{s:s, s:s}", "code", code, "message", message);

    if (err != NULL && field != NULL) {
        json_object_set_new(err, "field", json_string(field));
    }

    /* "o" steals err, also when packing fails */
    doc = err ? json_pack("{s:o}", "error", err) : NULL;
    s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);

    if (s == NULL) {
        /* out of memory: still the envelope */
        return ngx_famcall_send(ctx, status, (u_char *)
                                "{\"error\":{\"code\":\"internal\","
                                "\"message\":\"internal error\"}}",
                                sizeof("{\"error\":{\"code\":\"internal\","
                                       "\"message\":\"internal error\"}}")
                                - 1);
    }

    (void) ngx_famcall_send(ctx, status, (u_char *) s, ngx_strlen(s));
    free(s);

    return NGX_DONE;
}


/* famcall_error_page: nginx's own errors in the API's envelope */
ngx_int_t
ngx_famcall_error_page_handler(ngx_http_request_t *r)
{
    ngx_uint_t          status;
    const char         *code, *message;
    ngx_famcall_ctx_t  *ctx;

    status = r->err_status ? r->err_status : NGX_HTTP_NOT_FOUND;

    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
        code = "bad_request"; message = "the request is malformed"; break;
    case NGX_HTTP_UNAUTHORIZED:
        code = "unauthorized"; message = "authentication is required"; break;
    case NGX_HTTP_FORBIDDEN:
        code = "forbidden"; message = "access is denied"; break;
    case NGX_HTTP_NOT_FOUND:
        code = "not_found"; message = "no such route"; break;
    case NGX_HTTP_NOT_ALLOWED:
        code = "method_not_allowed";
        message = "this method is not allowed here"; break;
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        code = "body_too_large"; message = "the request body is too large";
        break;
    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        code = "uri_too_long"; message = "the request URI is too long"; break;
    case NGX_HTTP_TOO_MANY_REQUESTS:
        code = "rate_limited"; message = "too many requests, slow down";
        break;
    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
    case NGX_HTTP_GATEWAY_TIME_OUT:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        code = "unavailable";
        message = "the service is temporarily unavailable"; break;
    default:
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        code = "internal"; message = "internal error"; break;
    }

    (void) ngx_http_discard_request_body(r);

    ctx = ngx_famcall_ctx_get(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return ngx_famcall_send_error(ctx, status, code, message, NULL);
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


static ngx_int_t
ngx_famcall_add_header(ngx_http_request_t *r, const char *key,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}
