/*
 * famcall: export one's data (POST /v1/me/export, GET /v1/me/export).
 *
 * POST records the request (at most one within famcall_export_interval);
 * the document is ready at once and GET streams it while the request is
 * younger than famcall_export_ttl.  GET writes the document as it reads it:
 * a page at a time from famcall_export_page (sql/033), each page appended
 * to the answer (chunked) and the next one asked for only once the client
 * has taken the last, so a worker holds one page whatever the user's
 * history (famcall_export_page messages or calls; the buffer is reused).
 * A client that goes away detaches the page in flight with the request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_accounts.h"


typedef struct {
    ngx_famcall_ctx_t         *ctx;
    u_char                    *buf;        /* the page being written */
    size_t                     size;
    char                      *cursor;     /* the next page's, or NULL */
    ngx_buf_t                  b;
    ngx_chain_t                out;
    ngx_uint_t                 pages;
    unsigned                   started:1;  /* the header is sent */
} ngx_famcall_export_t;


static ngx_int_t ngx_famcall_export_requested(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);
static ngx_int_t ngx_famcall_export_next(ngx_famcall_export_t *ex);
static void ngx_famcall_export_answered(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static ngx_int_t ngx_famcall_export_page_done(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);
static ngx_int_t ngx_famcall_export_start(ngx_famcall_export_t *ex);
static void ngx_famcall_export_writer(ngx_http_request_t *r);
static void ngx_famcall_export_cleanup(void *data);


ngx_int_t
ngx_famcall_export_request(ngx_famcall_ctx_t *ctx)
{
    const char                   *params[3];
    ngx_famcall_accounts_conf_t  *acf = ngx_famcall_accounts_conf(ctx);

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_num(ctx, acf->export_interval);
    params[2] = ngx_famcall_num(ctx, acf->export_ttl);

    if (ngx_famcall_params_null(params, 3)) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_accounts_sql(ctx,
                   NGX_FAMCALL_ACCOUNTS_SQL_EXPORT_REQUEST),
               3, params, ngx_famcall_export_requested);
}


static ngx_int_t
ngx_famcall_export_requested(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    if (status == NGX_HTTP_TOO_MANY_REQUESTS
        && ngx_famcall_retry_after(ctx, body, len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_send_answer(ctx, status, body, len);
}


ngx_int_t
ngx_famcall_export_get(ngx_famcall_ctx_t *ctx)
{
    ngx_pool_cleanup_t    *cln;
    ngx_famcall_export_t  *ex;

    ex = ngx_pcalloc(ctx->request->pool, sizeof(ngx_famcall_export_t));
    cln = ngx_pool_cleanup_add(ctx->request->pool, 0);

    if (ex == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    ex->ctx = ctx;
    ctx->data = ex;

    cln->handler = ngx_famcall_export_cleanup;
    cln->data = ex;

    return ngx_famcall_export_next(ex);
}


/*
 * Ask for the page at ex->cursor (NULL: the first).  The pool directly,
 * not ngx_famcall_query(): once the header is out, a database that is
 * gone must cut the answer short, not answer a second time.
 */
static ngx_int_t
ngx_famcall_export_next(ngx_famcall_export_t *ex)
{
    const char                   *params[4];
    ngx_famcall_ctx_t            *ctx = ex->ctx;
    ngx_famcall_accounts_conf_t  *acf = ngx_famcall_accounts_conf(ctx);

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[2] = ngx_famcall_num(ctx, acf->export_ttl);
    params[3] = ngx_famcall_num(ctx, acf->export_page);

    if (params[0] == NULL || params[2] == NULL || params[3] == NULL) {
        return NGX_ERROR;
    }

    params[1] = ex->cursor;

    ctx->query = ngx_famcall_pg_send(ctx->fmcf->pg,
                     ngx_famcall_accounts_sql(ctx,
                                         NGX_FAMCALL_ACCOUNTS_SQL_EXPORT_PAGE),
                     4, params, ngx_famcall_export_answered, ctx);

    if (ctx->query != NULL) {
        return NGX_DONE;
    }

    if (ex->started) {
        return NGX_ERROR;
    }

    return ngx_famcall_send_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "unavailable",
                                  "the service is temporarily unavailable",
                                  NULL);
}


static void
ngx_famcall_export_answered(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_ctx_t  *ctx = data;

    ngx_int_t              code;
    ngx_connection_t      *c;
    ngx_famcall_export_t  *ex = ctx->data;

    ctx->query = NULL;
    c = ctx->request->connection;

    if (status != NGX_FAMCALL_PG_OK || PQntuples(res) != 1
        || PQnfields(res) != 2 || PQgetisnull(res, 0, 0)
        || PQgetisnull(res, 0, 1))
    {
        if (ex->started) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "famcall: export cut short after %ui pages: "
                          "no page from the database", ex->pages);
            ngx_http_finalize_request(ctx->request, NGX_ERROR);

        } else if (status == NGX_FAMCALL_PG_UNAVAILABLE
                   || status == NGX_FAMCALL_PG_TIMEOUT)
        {
            (void) ngx_famcall_send_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "unavailable",
                                          "the service is temporarily "
                                          "unavailable", NULL);

        } else {
            (void) ngx_famcall_send_internal(ctx);
        }

        goto done;
    }

    code = ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));

    if (ngx_famcall_export_page_done(ctx, code,
                                     (u_char *) PQgetvalue(res, 0, 1),
                                     PQgetlength(res, 0, 1))
        != NGX_DONE)
    {
        (void) ngx_famcall_send_internal(ctx);
    }

done:

    ngx_http_run_posted_requests(c);
}


/*
 * A page: "<next cursor>\n<text>".  Before the header is out, an error is
 * answered as any other; after it, the answer can only be cut short, which
 * a client sees as a document that does not parse.
 */
static ngx_int_t
ngx_famcall_export_page_done(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    u_char                *nl, *p;
    size_t                 clen;
    ngx_int_t              rc;
    ngx_http_request_t    *r = ctx->request;
    ngx_famcall_export_t  *ex = ctx->data;

    nl = (status == NGX_HTTP_OK && body != NULL)
         ? memchr(body, '\n', len) : NULL;

    if (nl == NULL) {
        if (ex->started) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "famcall: export cut short after %ui pages, "
                          "status %i", ex->pages, status);
            ngx_http_finalize_request(r, NGX_ERROR);
            return NGX_DONE;
        }

        return ngx_famcall_send_answer(ctx, status, body, len);
    }

    clen = nl - body;
    len -= clen + 1;

    /* the cursor and the text outlive the result: into our own memory */
    if (len + clen + 1 > ex->size) {
        ngx_free(ex->buf);
        ex->size = ngx_max(len + clen + 1, 64 * 1024);
        ex->buf = ngx_alloc(ex->size, r->connection->log);

        if (ex->buf == NULL) {
            ex->size = 0;
            goto failed;
        }
    }

    p = ngx_cpymem(ex->buf, nl + 1, len);

    if (clen) {
        ex->cursor = (char *) p;
        p = ngx_cpymem(p, body, clen);
        *p = '\0';

    } else {
        ex->cursor = NULL;
    }

    ex->pages++;

    if (!ex->started) {
        if (ngx_famcall_export_start(ex) != NGX_OK) {
            goto failed;
        }
    }

    ngx_memzero(&ex->b, sizeof(ngx_buf_t));
    ex->b.pos = ex->buf;
    ex->b.last = ex->buf + len;
    ex->b.memory = 1;
    ex->b.flush = 1;

    if (ex->cursor == NULL) {
        ex->b.last_buf = (r == r->main) ? 1 : 0;
        ex->b.last_in_chain = 1;
    }

    ex->out.buf = &ex->b;
    ex->out.next = NULL;

    rc = ngx_http_output_filter(r, &ex->out);

    if (ex->cursor == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "famcall: export written, %ui pages", ex->pages);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        goto failed;
    }

    /* the next page once this one is on its way: the writer decides */
    r->write_event_handler = ngx_famcall_export_writer;
    ngx_famcall_export_writer(r);

    return NGX_DONE;

failed:

    if (!ex->started) {
        return NGX_ERROR;
    }

    ngx_http_finalize_request(r, NGX_ERROR);
    return NGX_DONE;
}


static ngx_int_t
ngx_famcall_export_start(ngx_famcall_export_t *ex)
{
    ngx_int_t            rc;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r = ex->ctx->request;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Disposition");
    ngx_str_set(&h->value, "attachment; filename=\"famcall-export.json\"");

    rc = ngx_http_send_header(r);
    ex->started = 1;

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * As ngx_http_writer(): flush what the filters hold; once the client has
 * taken it all, ask for the next page.
 */
static void
ngx_famcall_export_writer(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_famcall_ctx_t         *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    c = r->connection;
    wev = c->write;
    ctx = ngx_famcall_ctx_get(r);

    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (ctx->query != NULL) {
        /* a page is on its way already */
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r->main, ngx_http_core_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "famcall: export: client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    rc = ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (r->buffered || r->postponed || (r == r->main && c->buffered)) {
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    if (ngx_famcall_export_next(ctx->data) != NGX_DONE) {
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}


static void
ngx_famcall_export_cleanup(void *data)
{
    ngx_famcall_export_t  *ex = data;

    ngx_free(ex->buf);
    ex->buf = NULL;
}
