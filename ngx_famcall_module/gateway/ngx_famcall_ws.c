/*
 * famcall: the WebSocket transport (see ngx_famcall_ws.h).
 *
 * A socket's life: the handshake answers 101 from the router's handler and
 * posts the takeover (nginx's HTTP code still walks the request after the
 * handler returns, so it cannot be freed there); the takeover frees the
 * request and hands the connection to the read/write/timer handlers below;
 * ngx_famcall_ws_finalize() is the one place a socket ends.  Handlers
 * call it last and return, so nothing touches a freed socket.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
#include <ngx_sha1.h>

#include "ngx_famcall_http.h"
#include "ngx_famcall_ws.h"
#include "ngx_famcall_metrics.h"


#define NGX_FAMCALL_WS_GUID           "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define NGX_FAMCALL_WS_PROTOCOL       "famcall.v1"
#define NGX_FAMCALL_WS_TOKEN_PREFIX   "access_token."
#define NGX_FAMCALL_WS_READ_SIZE      16384
#define NGX_FAMCALL_WS_CLOSE_WAIT     2000    /* ms for the peer's close */


struct ngx_famcall_ws_chunk_s {
    ngx_famcall_ws_chunk_t    *next;
    size_t                     len;
    size_t                     sent;
    u_char                     data[1];
};


static ngx_int_t ngx_famcall_ws_check_request(ngx_http_request_t *r,
    ngx_famcall_ws_offer_t *offer, const char **message);
static ngx_uint_t ngx_famcall_ws_next_item(u_char **p, u_char *last,
    ngx_str_t *item);
static ngx_int_t ngx_famcall_ws_has_token(ngx_table_elt_t *h,
    const char *token);
static void ngx_famcall_ws_protocols(ngx_str_t *value,
    ngx_famcall_ws_offer_t *offer);
static ngx_int_t ngx_famcall_ws_queue_response(ngx_famcall_ws_t *ws,
    ngx_str_t *key, ngx_uint_t protocol);
static void ngx_famcall_ws_takeover(ngx_event_t *ev);
static void ngx_famcall_ws_free_request(ngx_connection_t *c,
    ngx_http_request_t *r);
static void ngx_famcall_ws_read_handler(ngx_event_t *ev);
static void ngx_famcall_ws_write_handler(ngx_event_t *ev);
static void ngx_famcall_ws_timer_handler(ngx_event_t *ev);
static void ngx_famcall_ws_feed(ngx_famcall_ws_t *ws, u_char *in, size_t len);
static void ngx_famcall_ws_control(ngx_famcall_ws_t *ws,
    ngx_famcall_ws_frame_t *f);
static void ngx_famcall_ws_keep_partial(ngx_famcall_ws_t *ws);
static ngx_int_t ngx_famcall_ws_queue(ngx_famcall_ws_t *ws, int opcode,
    const u_char *data, size_t len, ngx_uint_t force);
static ngx_int_t ngx_famcall_ws_flush(ngx_famcall_ws_t *ws);
static void ngx_famcall_ws_arm(ngx_famcall_ws_t *ws);
static void ngx_famcall_ws_fail(ngx_famcall_ws_t *ws);
static void ngx_famcall_ws_finalize(ngx_famcall_ws_t *ws);


ngx_int_t
ngx_famcall_ws_handshake(ngx_famcall_ctx_t *ctx, ngx_famcall_ws_offer_t *offer)
{
    ngx_str_t            token;
    ngx_int_t            rc;
    const char          *message;
    ngx_http_request_t  *r = ctx->request;

    rc = ngx_famcall_ws_check_request(r, offer, &message);

    if (rc != NGX_OK) {
        return ngx_famcall_send_error(ctx, rc, "bad_handshake", message,
                                      NULL);
    }

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return ngx_famcall_send_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "unavailable",
                                      "the server is restarting", NULL);
    }

    if (offer->token.len == 0
        && ngx_famcall_bearer_token(r, &token) == NGX_OK)
    {
        offer->token = token;
    }

    return NGX_OK;
}


ngx_famcall_ws_t *
ngx_famcall_ws_accept(ngx_famcall_ctx_t *ctx, ngx_famcall_ws_offer_t *offer,
    const ngx_famcall_ws_handler_t *handler, void *data, time_t expires)
{
    ngx_famcall_ws_t    *ws;
    ngx_http_request_t  *r = ctx->request;

    ws = ngx_calloc(sizeof(ngx_famcall_ws_t), r->connection->log);
    if (ws == NULL) {
        return NULL;
    }

    ws->connection = r->connection;
    ws->handler = handler;
    ws->data = data;
    ws->expires = expires;
    ws->out_last = &ws->out;

    if (ngx_famcall_ws_queue_response(ws, &offer->key, offer->famcall)
        != NGX_OK)
    {
        ngx_free(ws->out);
        ngx_free(ws);
        return NULL;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "famcall ws: handshake accepted, expires %T", expires);

    /* the request keeps the router's reference until the takeover */
    ws->timer.handler = ngx_famcall_ws_takeover;
    ws->timer.data = ws;
    ws->timer.log = r->connection->log;
    ngx_post_event(&ws->timer, &ngx_posted_events);

    return ws;
}


static ngx_int_t
ngx_famcall_ws_check_request(ngx_http_request_t *r,
    ngx_famcall_ws_offer_t *offer, const char **message)
{
    u_char           decoded[20];
    ngx_str_t        src, dst;
    ngx_uint_t       i, version, upgrade, connection;
    ngx_list_part_t *part;
    ngx_table_elt_t *h;

    ngx_memzero(offer, sizeof(ngx_famcall_ws_offer_t));
    version = 0;
    upgrade = 0;
    connection = 0;

    if (r->http_version != NGX_HTTP_VERSION_11) {
        *message = "a WebSocket needs HTTP/1.1";
        return NGX_HTTP_BAD_REQUEST;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        /* nginx 1.22 does not keep Connection in headers_in */
        if (h[i].key.len == sizeof("Connection") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Connection",
                               h[i].key.len) == 0)
        {
            connection |= ngx_famcall_ws_has_token(&h[i], "upgrade")
                          == NGX_OK;

        } else if (h[i].key.len == sizeof("Upgrade") - 1
                   && ngx_strncasecmp(h[i].key.data, (u_char *) "Upgrade",
                                      h[i].key.len) == 0)
        {
            upgrade |= ngx_famcall_ws_has_token(&h[i], "websocket") == NGX_OK;

        } else if (h[i].key.len == sizeof("Sec-WebSocket-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-WebSocket-Key",
                               h[i].key.len) == 0)
        {
            if (offer->key.len) {
                *message = "more than one Sec-WebSocket-Key";
                return NGX_HTTP_BAD_REQUEST;
            }

            offer->key = h[i].value;

        } else if (h[i].key.len == sizeof("Sec-WebSocket-Version") - 1
                   && ngx_strncasecmp(h[i].key.data,
                                      (u_char *) "Sec-WebSocket-Version",
                                      h[i].key.len) == 0)
        {
            version = (h[i].value.len == 2
                       && ngx_strncmp(h[i].value.data, "13", 2) == 0)
                      ? 13 : 1;

        } else if (h[i].key.len == sizeof("Sec-WebSocket-Protocol") - 1
                   && ngx_strncasecmp(h[i].key.data,
                                      (u_char *) "Sec-WebSocket-Protocol",
                                      h[i].key.len) == 0)
        {
            ngx_famcall_ws_protocols(&h[i].value, offer);
        }
    }

    if (!upgrade) {
        *message = "\"Upgrade: websocket\" is required";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (!connection) {
        *message = "\"Connection: Upgrade\" is required";
        return NGX_HTTP_BAD_REQUEST;
    }

    /* the key: 16 bytes, base64 (24 characters) */
    src = offer->key;
    dst.data = decoded;

    if (src.len != 24 || ngx_decode_base64(&dst, &src) != NGX_OK
        || dst.len != 16)
    {
        *message = "Sec-WebSocket-Key must be 16 bytes in base64";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (version != 13) {
        *message = "Sec-WebSocket-Version must be 13";

        h = ngx_list_push(&r->headers_out.headers);
        if (h != NULL) {
            h->hash = 1;
            ngx_str_set(&h->key, "Sec-WebSocket-Version");
            ngx_str_set(&h->value, "13");
        }

        return 426;
    }

    if (offer->offered && !offer->famcall) {
        *message = "the famcall.v1 subprotocol must be offered";
        return NGX_HTTP_BAD_REQUEST;
    }

    return NGX_OK;
}


/*
 * The next item of a comma-separated header value from *p (spaces and
 * tabs around items skipped) into item; 0 when there is none left.
 */
static ngx_uint_t
ngx_famcall_ws_next_item(u_char **p, u_char *last, ngx_str_t *item)
{
    u_char  *q = *p;

    while (q < last && (*q == ' ' || *q == '\t' || *q == ',')) {
        q++;
    }

    item->data = q;

    while (q < last && *q != ',' && *q != ' ' && *q != '\t') {
        q++;
    }

    item->len = q - item->data;
    *p = q;

    return item->len != 0;
}


/* a comma-separated header value holds token (case-insensitive) */
static ngx_int_t
ngx_famcall_ws_has_token(ngx_table_elt_t *h, const char *token)
{
    u_char     *p = h->value.data;
    size_t      len = ngx_strlen(token);
    ngx_str_t   item;

    while (ngx_famcall_ws_next_item(&p, h->value.data + h->value.len, &item)) {
        if (item.len == len
            && ngx_strncasecmp(item.data, (u_char *) token, len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static void
ngx_famcall_ws_protocols(ngx_str_t *value, ngx_famcall_ws_offer_t *offer)
{
    u_char     *p = value->data, *start;
    size_t      len, plen = sizeof(NGX_FAMCALL_WS_TOKEN_PREFIX) - 1;
    ngx_str_t   item;

    while (ngx_famcall_ws_next_item(&p, value->data + value->len, &item)) {
        start = item.data;
        len = item.len;

        offer->offered = 1;

        if (len == sizeof(NGX_FAMCALL_WS_PROTOCOL) - 1
            && ngx_strncmp(start, NGX_FAMCALL_WS_PROTOCOL, len) == 0)
        {
            offer->famcall = 1;

        } else if (len > plen
                   && ngx_strncmp(start, NGX_FAMCALL_WS_TOKEN_PREFIX, plen)
                      == 0)
        {
            offer->token.data = start + plen;
            offer->token.len = len - plen;
        }
    }
}


/* the 101 response goes out as the first chunk of the output queue */
static ngx_int_t
ngx_famcall_ws_queue_response(ngx_famcall_ws_t *ws, ngx_str_t *key,
    ngx_uint_t protocol)
{
    u_char                   hash[20], accept[28];
    size_t                   len;
    ngx_str_t                src, dst;
    ngx_sha1_t               sha1;
    ngx_famcall_ws_chunk_t  *ch;

    static const char  head[] = "HTTP/1.1 101 Switching Protocols" CRLF
                                "Upgrade: websocket" CRLF
                                "Connection: Upgrade" CRLF
                                "Sec-WebSocket-Accept: ";
    static const char  proto[] = CRLF "Sec-WebSocket-Protocol: "
                                 NGX_FAMCALL_WS_PROTOCOL;

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_update(&sha1, NGX_FAMCALL_WS_GUID,
                    sizeof(NGX_FAMCALL_WS_GUID) - 1);
    ngx_sha1_final(hash, &sha1);

    src.data = hash;
    src.len = sizeof(hash);
    dst.data = accept;
    ngx_encode_base64(&dst, &src);

    len = sizeof(head) - 1 + dst.len + sizeof(proto) - 1 + 4;

    ch = ngx_alloc(sizeof(ngx_famcall_ws_chunk_t) + len, ws->connection->log);
    if (ch == NULL) {
        return NGX_ERROR;
    }

    ch->next = NULL;
    ch->sent = 0;
    ch->len = ngx_cpymem(ngx_cpymem(ch->data, head, sizeof(head) - 1),
                         dst.data, dst.len) - ch->data;

    if (protocol) {
        ch->len = ngx_cpymem(ch->data + ch->len, proto, sizeof(proto) - 1)
                  - ch->data;
    }

    ch->len = ngx_cpymem(ch->data + ch->len, CRLF CRLF, 4) - ch->data;

    ws->out = ch;
    ws->out_last = &ch->next;
    ws->queued = ch->len;

    return NGX_OK;
}


static void
ngx_famcall_ws_takeover(ngx_event_t *ev)
{
    ngx_famcall_ws_t  *ws = ev->data;

    u_char                        *left;
    size_t                         nleft;
    ngx_connection_t              *c = ws->connection;
    ngx_http_request_t            *r = c->data;
    ngx_http_core_loc_conf_t      *clcf;
    const ngx_famcall_ws_conf_t   *wscf = ws->handler->conf;

    /* bytes the client sent right after the handshake: frames already */
    left = NULL;
    nleft = r->header_in->last - r->header_in->pos;

    if (nleft) {
        left = ngx_alloc(nleft, c->log);
        if (left == NULL) {
            nleft = 0;
            ws->failed = 1;

        } else {
            ngx_memcpy(left, r->header_in->pos, nleft);
        }
    }

    /*
     * Events are small frames that must leave at once: without TCP_NODELAY,
     * a frame queued while the previous one is unacknowledged waits for the
     * client's delayed ACK (up to 40 ms on Linux).  nginx sets it only on
     * the connections it keeps itself (keepalive, proxied upgrades).
     */
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        ws->failed = 1;
    }

    ngx_famcall_ws_free_request(c, r);

    c->data = ws;
    c->log->action = "serving a WebSocket";
    c->read->handler = ngx_famcall_ws_read_handler;
    c->write->handler = ngx_famcall_ws_write_handler;
    c->idle = 1;        /* a graceful shutdown closes it (1001) */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "famcall ws: taken over, %uz bytes early%s", nleft,
                   ws->failed ? ", failed" : "");

    ws->taken_over = 1;
    ws->counted = 1;
    ngx_famcall_metrics_ws_opened();
    ws->last_in = ngx_current_msec;
    ws->timer.handler = ngx_famcall_ws_timer_handler;
    ws->timer.cancelable = 1;
    ngx_famcall_ws_parser_init(&ws->parser, NULL, wscf->max_message);

    if (ws->failed || ws->handler->open(ws) != NGX_OK) {
        ngx_free(left);
        ngx_famcall_ws_finalize(ws);
        return;
    }

    ngx_famcall_ws_arm(ws);

    if (nleft) {
        ngx_famcall_ws_feed(ws, left, nleft);
        ngx_free(left);
        ngx_famcall_ws_keep_partial(ws);

        if (ws->failed) {
            ngx_famcall_ws_finalize(ws);
            return;
        }
    }

    if (ngx_famcall_ws_flush(ws) == NGX_ERROR) {
        ngx_famcall_ws_finalize(ws);
        return;
    }

    /* whatever arrived since the request was read */
    if (!c->read->posted) {
        ngx_post_event(c->read, &ngx_posted_events);
    }
}


/*
 * The one place that leans on nginx's internals (issue 18): the request is
 * freed under a connection that stays open, and the header buffers nginx
 * would free at keepalive are given back, so an idle socket costs its
 * connection, its small pool and an ngx_famcall_ws_t.  Keeping the request
 * alive instead, as nginx's upgraded upstream path does, would keep its
 * pool and header buffer per socket too: several times an idle socket's
 * cost.  The takeover relies on what nginx 1.22 does, each point checked
 * here; a check that fails logs an alert naming it ("takeover contract"),
 * which t/25 looks for, and the socket goes on (what was not freed is held
 * until it closes):
 *
 *   - ngx_http_free_request() marks the connection destroyed (it expects
 *     ngx_http_close_connection() next): the mark is taken back;
 *   - c->buffer, and the large header buffers in hc->busy and hc->free, are
 *     large allocations of c->pool (ngx_pfree() gives them back);
 *   - nothing else of the request outlives it (everything else was in
 *     r->pool).
 *
 * The socket is closed with ngx_http_close_connection() (finalize).
 */
static void
ngx_famcall_ws_free_request(ngx_connection_t *c, ngx_http_request_t *r)
{
    ngx_buf_t              *b;
    ngx_uint_t              nbufs;
    ngx_chain_t            *cl;
    ngx_http_connection_t  *hc = r->http_connection;

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_http_free_request(r, 0);

    if (!c->destroyed) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "famcall ws: takeover contract: freeing the request "
                      "no longer marks the connection destroyed");
    }

    c->destroyed = 0;

    nbufs = 0;

    b = c->buffer;
    if (b != NULL && b->start != NULL) {
        if (ngx_pfree(c->pool, b->start) == NGX_OK) {
            b->start = NULL;
            b->pos = b->last = b->end = NULL;
            nbufs++;

        } else {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "famcall ws: takeover contract: the header buffer "
                          "is not a large allocation of the connection's "
                          "pool");
        }
    }

    for (cl = hc->busy; cl; cl = cl->next) {
        if (ngx_pfree(c->pool, cl->buf->start) == NGX_OK) {
            nbufs++;
            continue;
        }

        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "famcall ws: takeover contract: a large header buffer "
                      "is not a large allocation of the connection's pool");
    }

    for (cl = hc->free; cl; cl = cl->next) {
        if (ngx_pfree(c->pool, cl->buf->start) == NGX_OK) {
            nbufs++;
            continue;
        }

        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "famcall ws: takeover contract: a large header buffer "
                      "is not a large allocation of the connection's pool");
    }

    hc->busy = NULL;
    hc->free = NULL;
    hc->nbusy = 0;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "famcall ws: request freed, %ui header buffers given back",
                   nbufs);
}


static void
ngx_famcall_ws_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;
    ngx_famcall_ws_t  *ws = c->data;

    ssize_t  n;
    u_char   buf[NGX_FAMCALL_WS_READ_SIZE];

    if (c->close) {
        /* the worker is shutting down (reload, quit) */
        ngx_famcall_ws_close(ws, NGX_FAMCALL_WS_CLOSE_GOING_AWAY,
                             "server going away");
        (void) ngx_famcall_ws_flush(ws);
        ngx_famcall_ws_finalize(ws);
        return;
    }

    while (!ws->failed && !ws->closing && !ws->close_received) {

        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                           "famcall ws: the client is gone (%z)", n);
            ngx_famcall_ws_finalize(ws);
            return;
        }

        ws->last_in = ngx_current_msec;

        ngx_famcall_ws_feed(ws, buf, n);
    }

    ngx_famcall_ws_keep_partial(ws);

    if (ws->failed) {
        ngx_famcall_ws_finalize(ws);
        return;
    }

    if (ws->closing && ws->out == NULL) {
        ngx_famcall_ws_finalize(ws);
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_famcall_ws_finalize(ws);
    }
}


static void
ngx_famcall_ws_feed(ngx_famcall_ws_t *ws, u_char *in, size_t len)
{
    int                            rc;
    size_t                         n;
    ngx_famcall_ws_frame_t         f;
    ngx_famcall_ws_parser_t       *p = &ws->parser;

    /* a message that started in an earlier read continues in its own
     * buffer; otherwise the worker's buffer serves */
    p->msg = ws->msgbuf ? ws->msgbuf : ws->handler->buffer;

    while (len && !ws->failed && !ws->close_received) {

        rc = ngx_famcall_ws_parse(p, in, len, &n, &f);
        in += n;
        len -= n;

        if (rc == NGX_FAMCALL_WS_AGAIN) {
            break;
        }

        if (rc == NGX_FAMCALL_WS_ERROR) {
            /* failing the connection: close frame, then TCP (RFC 6455 7.1.7) */
            ngx_famcall_ws_close(ws, f.close_code,
                                 f.close_code == NGX_FAMCALL_WS_CLOSE_TOO_BIG
                                 ? "message too big" : "protocol error");
            ws->close_received = 1;     /* read nothing more */
            ws->closing = 1;
            break;
        }

        if (NGX_FAMCALL_WS_IS_CONTROL(f.opcode)) {
            ngx_famcall_ws_control(ws, &f);
            continue;
        }

        if (!f.message || ws->close_sent) {
            continue;
        }

        if (f.message_opcode != NGX_FAMCALL_WS_OP_TEXT) {
            ngx_famcall_ws_close(ws, NGX_FAMCALL_WS_CLOSE_DATA,
                                 "binary messages are not accepted");
            ws->close_received = 1;
            ws->closing = 1;
            break;
        }

        ws->handler->message(ws, f.data, f.size);
    }
}


static void
ngx_famcall_ws_control(ngx_famcall_ws_t *ws, ngx_famcall_ws_frame_t *f)
{
    int            code;
    size_t         len;
    unsigned char  payload[NGX_FAMCALL_WS_CONTROL_MAX];

    switch (f->opcode) {

    case NGX_FAMCALL_WS_OP_PING:
        /* counted like data: a client that pings and never reads is
         * dropped like any other that stops reading */
        if (!ws->close_sent) {
            (void) ngx_famcall_ws_queue(ws, NGX_FAMCALL_WS_OP_PONG,
                                        f->payload, f->len, 0);
        }
        return;

    case NGX_FAMCALL_WS_OP_PONG:
        return;

    default: /* close */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                       "famcall ws: close received, code %d%s",
                       f->close_code,
                       ws->close_sent ? ", answering ours" : "");

        ws->close_received = 1;

        if (ws->close_code == 0) {
            ws->close_code = f->close_code;
        }

        if (ws->close_sent) {
            ws->closing = 1;    /* our close answered: done */
            return;
        }

        code = ngx_famcall_ws_close_check(f->payload, f->len);

        if (code == 0) {
            code = (f->close_code == NGX_FAMCALL_WS_CLOSE_NO_STATUS)
                   ? NGX_FAMCALL_WS_CLOSE_NORMAL : f->close_code;
        }

        len = ngx_famcall_ws_close_payload(payload, code, "", 0);
        (void) ngx_famcall_ws_queue(ws, NGX_FAMCALL_WS_OP_CLOSE, payload, len,
                                    1);
        ws->close_sent = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                       "famcall ws: close sent, code %d (echo)", code);
        ws->closing = 1;
        return;
    }
}


/* a message still incomplete must not stay in the worker's buffer */
static void
ngx_famcall_ws_keep_partial(ngx_famcall_ws_t *ws)
{
    ngx_famcall_ws_parser_t       *p = &ws->parser;
    const ngx_famcall_ws_conf_t   *wscf = ws->handler->conf;

    if (p->msg_opcode == 0 || ws->failed) {
        if (ws->msgbuf != NULL) {
            ngx_free(ws->msgbuf);
            ws->msgbuf = NULL;
        }

        p->msg = NULL;
        return;
    }

    if (ws->msgbuf == NULL) {
        ws->msgbuf = ngx_alloc(wscf->max_message, ws->connection->log);
        if (ws->msgbuf == NULL) {
            ws->failed = 1;
            return;
        }

        ngx_memcpy(ws->msgbuf, p->msg, p->msg_len);
    }

    p->msg = ws->msgbuf;
}


ngx_int_t
ngx_famcall_ws_send_text(ngx_famcall_ws_t *ws, const u_char *data,
    size_t len)
{
    if (!ngx_famcall_ws_alive(ws)) {
        return NGX_ERROR;
    }

    return ngx_famcall_ws_queue(ws, NGX_FAMCALL_WS_OP_TEXT, data, len, 0);
}


void
ngx_famcall_ws_close(ngx_famcall_ws_t *ws, int code, const char *reason)
{
    size_t         len;
    unsigned char  payload[NGX_FAMCALL_WS_CONTROL_MAX];

    if (ws->close_sent || ws->failed) {
        return;
    }

    len = ngx_famcall_ws_close_payload(payload, code, reason,
                                       ngx_strlen(reason));

    (void) ngx_famcall_ws_queue(ws, NGX_FAMCALL_WS_OP_CLOSE, payload, len, 1);
    ws->close_sent = 1;

    if (ws->close_code == 0) {
        ws->close_code = code;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                   "famcall ws: close sent, code %d \"%s\"", code, reason);

    /* the peer has NGX_FAMCALL_WS_CLOSE_WAIT to answer */
    ngx_famcall_ws_arm(ws);
}


/*
 * A frame into the output queue.  Control frames are forced past the
 * queue's limit; a data frame over it means the client stopped reading:
 * the socket is dropped (it catches up with sync when it is back).
 */
static ngx_int_t
ngx_famcall_ws_queue(ngx_famcall_ws_t *ws, int opcode, const u_char *data,
    size_t len, ngx_uint_t force)
{
    ngx_connection_t              *c = ws->connection;
    ngx_famcall_ws_chunk_t        *ch;
    const ngx_famcall_ws_conf_t   *wscf = ws->handler->conf;

    if (!force && ws->queued + len > wscf->max_queue) {

        /* frames queued this turn may not have met the socket yet */
        if (ws->taken_over && c->write->ready
            && ngx_famcall_ws_flush(ws) == NGX_ERROR)
        {
            ngx_famcall_ws_fail(ws);
            return NGX_ERROR;
        }

        /* one frame alone is always taken (a big sync page) */
        if (ws->out != NULL && ws->queued + len > wscf->max_queue) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "famcall: client stopped reading, %uz bytes "
                          "queued: dropping the WebSocket", ws->queued);
            ngx_famcall_ws_fail(ws);
            return NGX_ERROR;
        }
    }

    ch = ngx_alloc(sizeof(ngx_famcall_ws_chunk_t) + NGX_FAMCALL_WS_HEADER_MAX
                   + len, c->log);
    if (ch == NULL) {
        ngx_famcall_ws_fail(ws);
        return NGX_ERROR;
    }

    ch->next = NULL;
    ch->sent = 0;
    ch->len = ngx_famcall_ws_frame_header(ch->data, opcode, 1, len);
    if (len) {
        ngx_memcpy(ch->data + ch->len, data, len);
        ch->len += len;
    }

    *ws->out_last = ch;
    ws->out_last = &ch->next;
    ws->queued += ch->len;

    /* written once this loop iteration is done, with what else comes */
    if (ws->taken_over && !c->write->posted && !c->write->active) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_famcall_ws_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;
    ngx_famcall_ws_t  *ws = c->data;

    if (ws->failed || ngx_famcall_ws_flush(ws) == NGX_ERROR) {
        ngx_famcall_ws_finalize(ws);
        return;
    }

    if (ws->out == NULL && ws->closing) {
        ngx_famcall_ws_finalize(ws);
    }
}


/* NGX_OK: all written; NGX_AGAIN: the rest waits for the socket */
static ngx_int_t
ngx_famcall_ws_flush(ngx_famcall_ws_t *ws)
{
    ssize_t                  n;
    ngx_connection_t        *c = ws->connection;
    ngx_famcall_ws_chunk_t  *ch;

    while ((ch = ws->out) != NULL) {

        n = c->send(c, ch->data + ch->sent, ch->len - ch->sent);

        if (n == NGX_ERROR) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                           "famcall ws: failed, a write error");
            ws->failed = 1;
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN || n == 0) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ws->failed = 1;
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        ch->sent += n;

        if (ch->sent < ch->len) {
            continue;
        }

        ws->out = ch->next;
        ws->queued -= ch->len;
        ngx_free(ch);
    }

    ws->out_last = &ws->out;

    return NGX_OK;
}


/*
 * One timer per socket: the next ping, or the token's expiry if sooner;
 * after our close frame, the wait for the peer's.
 */
static void
ngx_famcall_ws_arm(ngx_famcall_ws_t *ws)
{
    time_t                         left;
    ngx_msec_t                     t;
    const ngx_famcall_ws_conf_t   *wscf = ws->handler->conf;

    if (ws->close_sent) {
        t = NGX_FAMCALL_WS_CLOSE_WAIT;

    } else {
        t = wscf->ping_interval;
        left = ws->expires - ngx_time();

        if (left <= 0) {
            t = 1;

        } else if ((ngx_msec_t) left * 1000 < t) {
            t = (ngx_msec_t) left * 1000;
        }
    }

    ngx_add_timer(&ws->timer, t);
}


static void
ngx_famcall_ws_timer_handler(ngx_event_t *ev)
{
    ngx_famcall_ws_t  *ws = ev->data;

    const ngx_famcall_ws_conf_t   *wscf = ws->handler->conf;

    if (ws->close_sent) {
        /* the peer did not answer our close in time */
        ngx_famcall_ws_finalize(ws);
        return;
    }

    if (ngx_time() >= ws->expires) {
        ngx_famcall_ws_close(ws, NGX_FAMCALL_WS_CLOSE_EXPIRED,
                             "access token expired");
        return;
    }

    if (ngx_current_msec - ws->last_in >= wscf->idle_timeout) {
        ngx_famcall_ws_close(ws, NGX_FAMCALL_WS_CLOSE_IDLE, "idle timeout");
        return;
    }

    (void) ngx_famcall_ws_queue(ws, NGX_FAMCALL_WS_OP_PING, NULL, 0, 1);
    ngx_famcall_ws_arm(ws);
}


/* drop the socket from a posted event, not under the caller */
static void
ngx_famcall_ws_fail(ngx_famcall_ws_t *ws)
{
    ngx_connection_t  *c = ws->connection;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "famcall ws: failed");

    ws->failed = 1;

    if (ws->taken_over && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


void
ngx_famcall_ws_rearm(ngx_famcall_ws_t *ws)
{
    if (ws->close_sent) {
        return;
    }

    if (ws->timer.timer_set) {
        ngx_del_timer(&ws->timer);
    }

    ngx_famcall_ws_arm(ws);
}


void
ngx_famcall_ws_abort(ngx_famcall_ws_t *ws)
{
    ngx_famcall_ws_finalize(ws);
}


static void
ngx_famcall_ws_finalize(ngx_famcall_ws_t *ws)
{
    ngx_connection_t        *c = ws->connection;
    ngx_famcall_ws_chunk_t  *ch;

    if (ws->finalized) {
        return;
    }

    ws->finalized = 1;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "famcall ws: finalize, close sent %d received %d, "
                   "failed %d, %uz bytes unsent, taken over %d",
                   ws->close_sent, ws->close_received, ws->failed, ws->queued,
                   ws->taken_over);

    ws->handler->close(ws);

    if (ws->counted) {
        ngx_famcall_metrics_ws_closed(ws->close_code);
    }

    while ((ch = ws->out) != NULL) {
        ws->out = ch->next;
        ngx_free(ch);
    }

    if (ws->msgbuf != NULL) {
        ngx_free(ws->msgbuf);
    }

    if (ws->timer.timer_set) {
        ngx_del_timer(&ws->timer);
    }

    if (ws->timer.posted) {
        ngx_delete_posted_event(&ws->timer);
    }

    ngx_free(ws);

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        /* the close handshake, if any, is done: no TLS close_notify wait */
        c->ssl->no_wait_shutdown = 1;
    }
#endif

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "famcall ws: finalized");

    ngx_http_close_connection(c);
}
