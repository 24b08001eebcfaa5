/*
 * famcall: the WebSocket transport (RFC 6455) inside nginx.
 *
 * The handshake is an ordinary request on the API's router (GET /v1/ws):
 * its owner (the gateway) checks it with ngx_famcall_ws_handshake(),
 * authenticates, and accepts it with ngx_famcall_ws_accept().  Then the connection is taken over from nginx's HTTP code:
 * the request and its pool are freed, header buffers given back, and what
 * is left per socket is the connection, its small pool and one
 * ngx_famcall_ws_t.  A message being received borrows a per-worker buffer
 * and only gets one of its own when it spans several reads.
 *
 * The transport knows frames, pings, the close handshake and the output
 * queue; what a message means is its owner's business, reached only
 * through the handler struct it was given (open, message, close) with the
 * socket's data: the transport names no gateway function or field.
 * Sending never closes a socket under its caller: a failed write closes it
 * from a posted event.
 */

#ifndef _NGX_FAMCALL_WS_H_INCLUDED_
#define _NGX_FAMCALL_WS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"
#include "ngx_famcall_ws_frame.h"


#define NGX_FAMCALL_WS_CLOSE_IDLE     4000
#define NGX_FAMCALL_WS_CLOSE_EXPIRED  4001
/* the user's sessions ended (the account was deleted): do not reconnect */
#define NGX_FAMCALL_WS_CLOSE_REVOKED  4003


typedef struct ngx_famcall_ws_s        ngx_famcall_ws_t;
typedef struct ngx_famcall_ws_chunk_s  ngx_famcall_ws_chunk_t;


/* the transport's settings (the famcall_ws_* directives) */
typedef struct {
    size_t                     max_message;
    size_t                     max_queue;
    ngx_msec_t                 ping_interval;
    ngx_msec_t                 idle_timeout;
} ngx_famcall_ws_conf_t;


/* what its owner does with a socket; ws->data is the owner's per socket */
typedef struct {
    /* taken over: the socket may send; NGX_OK, or it is closed */
    ngx_int_t                (*open)(ngx_famcall_ws_t *ws);
    /* one complete text message (valid until the handler returns) */
    void                     (*message)(ngx_famcall_ws_t *ws,
                                        const u_char *data, size_t len);
    /* the last call, open or not: the socket is being freed */
    void                     (*close)(ngx_famcall_ws_t *ws);
    /* the worker's buffer for messages within one read (max_message) */
    u_char                    *buffer;
    const ngx_famcall_ws_conf_t  *conf;
} ngx_famcall_ws_handler_t;


/* a handshake the transport found well-formed */
typedef struct {
    ngx_str_t                  key;
    ngx_str_t                  token;        /* from the subprotocol or the
                                                Authorization header */
    unsigned                   offered:1;    /* any subprotocol offered */
    unsigned                   famcall:1;    /* famcall.v1 among them */
} ngx_famcall_ws_offer_t;


struct ngx_famcall_ws_s {
    ngx_connection_t          *connection;
    const ngx_famcall_ws_handler_t  *handler;
    void                      *data;        /* the handler's, per socket */

    ngx_famcall_ws_parser_t    parser;
    u_char                    *msgbuf;      /* own buffer of a long message */

    ngx_famcall_ws_chunk_t    *out;         /* frames waiting to be written */
    ngx_famcall_ws_chunk_t   **out_last;
    size_t                     queued;      /* bytes in out */

    ngx_event_t                timer;       /* takeover, then ping/expiry */
    ngx_msec_t                 last_in;     /* when a frame last arrived */
    time_t                     expires;     /* the access token's exp */

    unsigned                   taken_over:1;
    unsigned                   close_sent:1;
    unsigned                   close_received:1;
    unsigned                   closing:1;   /* drop after the output drains */
    unsigned                   failed:1;    /* drop now (posted) */
    unsigned                   finalized:1;
    unsigned                   counted:1;   /* in the metrics' open ones */
    unsigned                   close_code:16;  /* the first sent or
                                                  received, for metrics */
};


/*
 * GET /v1/ws, first step: NGX_OK when the request is a WebSocket handshake
 * the transport can take (offer filled in); otherwise what the route
 * returns: NGX_DONE when it answered (400, 426, 503), or NGX_ERROR.
 */
ngx_int_t ngx_famcall_ws_handshake(ngx_famcall_ctx_t *ctx,
    ngx_famcall_ws_offer_t *offer);

/*
 * Second step, once the owner authenticated it: answers 101 and takes the
 * connection over from nginx's HTTP code (posted).  The socket is the
 * handler's from then on: handler->close() is called once, last.  NULL:
 * nothing was answered (the route fails the request).
 */
ngx_famcall_ws_t *ngx_famcall_ws_accept(ngx_famcall_ctx_t *ctx,
    ngx_famcall_ws_offer_t *offer, const ngx_famcall_ws_handler_t *handler,
    void *data, time_t expires);

/* the token's expiry changed: the timer follows */
void ngx_famcall_ws_rearm(ngx_famcall_ws_t *ws);

/* close at once, without the close handshake (the worker is exiting) */
void ngx_famcall_ws_abort(ngx_famcall_ws_t *ws);

/* queue one text message (copied); NGX_ERROR: the socket is going away */
ngx_int_t ngx_famcall_ws_send_text(ngx_famcall_ws_t *ws, const u_char *data,
    size_t len);

/* start the close handshake with code (reason: ASCII, short) */
void ngx_famcall_ws_close(ngx_famcall_ws_t *ws, int code, const char *reason);

/* whether events should still be sent to ws */
#define ngx_famcall_ws_alive(ws)                                              \
    (!(ws)->close_sent && !(ws)->closing && !(ws)->failed)


#endif /* _NGX_FAMCALL_WS_H_INCLUDED_ */
