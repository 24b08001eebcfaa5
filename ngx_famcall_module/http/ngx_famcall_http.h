/*
 * famcall: the JSON API's request plumbing (ngx_famcall_http.c), what
 * every feature's routes are written with.
 *
 * The return-code contract, nginx's own: a route handler, and every helper
 * here that may answer, returns
 *   NGX_DONE   the request is answered, or will be (a query, a batch, a
 *              thread is on it): the caller stops and touches nothing;
 *   NGX_ERROR  it failed and did not answer: the router answers 500;
 *   NGX_OK     (helpers only) nothing was answered, carry on.
 * An answer callback returns the same two codes as a handler.
 */

#ifndef _NGX_FAMCALL_HTTP_H_INCLUDED_
#define _NGX_FAMCALL_HTTP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_famcall_core.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_batch.h"


#define NGX_FAMCALL_HTTP_UNPROCESSABLE  422


typedef struct ngx_famcall_ctx_s  ngx_famcall_ctx_t;

typedef ngx_int_t (*ngx_famcall_route_pt)(ngx_famcall_ctx_t *ctx);

/* a query answer: rows of (status int, body jsonb) from sql/ functions */
typedef ngx_int_t (*ngx_famcall_answer_pt)(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);


typedef struct {
    ngx_uint_t                     method;
    const char                    *path;       /* "{}" matches a segment */
    ngx_famcall_route_pt           handler;
    unsigned                       auth:1;     /* needs a bearer token */
    unsigned                       body:1;     /* takes a JSON object */
} ngx_famcall_route_t;


struct ngx_famcall_ctx_s {
    ngx_http_request_t            *request;
    ngx_http_famcall_main_conf_t  *fmcf;

    json_t                        *body;        /* request body, an object */
    ngx_str_t                      params[2];   /* {id}s from the path */

    /* the bearer token, checked once and lazily */
    ngx_str_t                      user_id;
    ngx_str_t                      session_id;
    unsigned                       auth_checked:1;

    const ngx_famcall_route_t     *route;
    ngx_famcall_pg_query_t        *query;       /* in flight, or NULL */
    ngx_famcall_batch_entry_t     *batch;       /* queued, or NULL */
    ngx_famcall_answer_pt          answer;

    void                          *data;        /* the route's own state */
};


/*
 * Add a feature's routes (ended by a NULL path) to the router, from its
 * postconfiguration.  The same method and path twice is an error.
 */
ngx_int_t ngx_famcall_routes_add(ngx_conf_t *cf,
    const ngx_famcall_route_t *routes);

/* ngx_famcall_healthz.c: the core's route, from its postconfiguration */
ngx_int_t ngx_famcall_healthz_init(ngx_conf_t *cf);

ngx_int_t ngx_famcall_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_famcall_error_page_handler(ngx_http_request_t *r);

ngx_famcall_ctx_t *ngx_famcall_ctx_get(ngx_http_request_t *r);
ngx_int_t ngx_famcall_authenticate(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_bearer_token(ngx_http_request_t *r, ngx_str_t *token);

/* input: NGX_OK, or NGX_DONE after answering 404/422 */
ngx_int_t ngx_famcall_check_body(ngx_famcall_ctx_t *ctx,
    const ngx_famcall_field_t *fields);
ngx_int_t ngx_famcall_path_uuid(ngx_famcall_ctx_t *ctx, ngx_uint_t i,
    char *out);
ngx_int_t ngx_famcall_not_self(ngx_famcall_ctx_t *ctx, const char *id,
    const char *field);
/* also NGX_DECLINED: absent; NGX_ERROR: out of memory */
ngx_int_t ngx_famcall_arg(ngx_famcall_ctx_t *ctx, const char *name,
    ngx_str_t *out);
ngx_int_t ngx_famcall_arg_int(ngx_famcall_ctx_t *ctx, const char *name,
    int64_t min, int64_t max, int64_t *out);

/*
 * Statement stmt (a feature's base + its enum) with text parameters; a
 * NULL parameter is an SQL NULL, so a value that failed to allocate must
 * never get here.  NGX_DONE: the answer goes to answer (or 503 was sent).
 */
ngx_int_t ngx_famcall_query(ngx_famcall_ctx_t *ctx, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_famcall_answer_pt answer);
/* the caller's id; and the path's {id}; and the body's {"user_id"} */
ngx_int_t ngx_famcall_query_me(ngx_famcall_ctx_t *ctx, ngx_uint_t stmt);
ngx_int_t ngx_famcall_query_me_id(ngx_famcall_ctx_t *ctx, ngx_uint_t stmt);
ngx_int_t ngx_famcall_query_me_user(ngx_famcall_ctx_t *ctx,
    ngx_uint_t stmt);

/* answers: each finalizes the request and returns NGX_DONE */
ngx_int_t ngx_famcall_send(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    u_char *body, size_t len);
ngx_int_t ngx_famcall_send_json(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_famcall_send_error(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *message, const char *field);
ngx_int_t ngx_famcall_send_answer(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len);
ngx_int_t ngx_famcall_send_internal(ngx_famcall_ctx_t *ctx);

/* request pool copies: NULL when out of memory (never pass that on) */
char *ngx_famcall_cstr(ngx_famcall_ctx_t *ctx, ngx_str_t *s);
char *ngx_famcall_num(ngx_famcall_ctx_t *ctx, ngx_int_t n);

/* whether any of n parameters is NULL: one of them failed to allocate */
ngx_uint_t ngx_famcall_params_null(const char *const *values, ngx_uint_t n);


#endif /* _NGX_FAMCALL_HTTP_H_INCLUDED_ */
