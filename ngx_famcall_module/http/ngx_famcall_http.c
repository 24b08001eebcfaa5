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
static void ngx_famcall_ctx_cleanup(void *data);


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
