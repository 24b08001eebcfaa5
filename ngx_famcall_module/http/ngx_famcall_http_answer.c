/*
 * famcall: answers.  Every JSON answer and every error envelope
 * ({"error": {"code", "message", ["field"]}}) leaves through here, and so
 * does what nginx raises itself when famcall_error_page serves it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


static ngx_int_t ngx_famcall_add_header(ngx_http_request_t *r,
    const char *key, const char *value);


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
