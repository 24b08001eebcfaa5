/*
 * famcall: the WebSocket transport (RFC 6455) inside nginx.
 *
 * The handshake is an ordinary request on the API's router (GET /v1/ws).
 * Once it is accepted, the connection is taken over from nginx's HTTP code:
 * the request and its pool are freed, header buffers given back, and what
 * is left per socket is the connection, its small pool and one
 * ngx_famcall_ws_t.  A message being received borrows a per-worker buffer
 * and only gets one of its own when it spans several reads.
 *
 * The transport knows frames, pings, the close handshake and the output
 * queue; what a message means is the gateway's business
 * (ngx_famcall_gateway.c), reached through on_message and on_close.
 * Sending never closes a socket under its caller: a failed write closes it
 * from a posted event.
 */

#ifndef _NGX_FAMCALL_WS_H_INCLUDED_
#define _NGX_FAMCALL_WS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_gateway.h"
#include "ngx_famcall_ws_frame.h"


#define NGX_FAMCALL_WS_CLOSE_IDLE     4000
#define NGX_FAMCALL_WS_CLOSE_EXPIRED  4001


typedef struct ngx_famcall_ws_chunk_s  ngx_famcall_ws_chunk_t;
typedef struct ngx_famcall_gw_user_s   ngx_famcall_gw_user_t;


struct ngx_famcall_ws_s {
    ngx_connection_t          *connection;
    void                      *fmcf;        /* the core's main conf */
    void                      *gwcf;        /* the gateway module's */

    ngx_famcall_ws_parser_t    parser;
    u_char                    *msgbuf;      /* own buffer of a long message */

    ngx_famcall_ws_chunk_t    *out;         /* frames waiting to be written */
    ngx_famcall_ws_chunk_t   **out_last;
    size_t                     queued;      /* bytes in out */

    ngx_event_t                timer;       /* takeover, then ping/expiry */
    ngx_msec_t                 last_in;     /* when a frame last arrived */
    time_t                     expires;     /* the access token's exp */

    /* the gateway's */
    uint64_t                   id;          /* unique in this worker */
    u_char                     user[16];    /* the user id, binary */
    ngx_famcall_gw_user_t     *gw_user;     /* in the worker's registry */
    ngx_queue_t                gw_link;     /* in gw_user's sockets */
    ngx_queue_t                ops;         /* database calls in flight */
    ngx_uint_t                 nops;
    ngx_msec_t                 typing_at;   /* token bucket: time of empty */

    unsigned                   taken_over:1;
    unsigned                   close_sent:1;
    unsigned                   close_received:1;
    unsigned                   closing:1;   /* drop after the output drains */
    unsigned                   failed:1;    /* drop now (posted) */
    unsigned                   finalized:1;
};


/* the route handler of GET /v1/ws: ngx_famcall_ws_open() (gateway.h) */

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
