/*
 * famcall: WebRTC signaling relayed between a call's two bound devices
 * (docs/websocket.md, "Relay"): webrtc:offer, webrtc:answer, webrtc:ice.
 * Nothing is stored.
 *
 * Three ways, the first that applies:
 *
 *   direct     the node has the call bound (ngx_famcall_call_bind.h) with
 *              this socket on one side: the event goes to the other side's
 *              socket, on whichever worker of the node holds it
 *              (ngx_famcall_gw_deliver.h), without the database;
 *   statement  otherwise one statement (sql/025) authorises the relay from
 *              the calls row (a participant, from its bound device, of an
 *              accepted call) and either hands the event back to this node,
 *              when the peer's socket is on one of its workers (and the
 *              binding with it, which the node keeps unless something of
 *              the call was dropped meanwhile), or notifies it, in parts if
 *              it is long, in a transaction that does not wait for the WAL
 *              flush.
 *
 * Order.  A socket's relays reach the peer in the order it sent them,
 * whichever way each goes: while one of its relays waits for its
 * statement, the socket's next ones wait behind it, here, and go (direct,
 * or by statement) once it is answered.  So at most one statement per
 * socket is in flight: its NOTIFY commits before the next one starts, and
 * a node delivers a socket's lines in the order they committed; direct
 * events and the statements' own go through the same box to a worker.
 *
 * The event's data is written here, once, as JSON in ASCII (so that the
 * statement may cut it in parts anywhere); the sizes are checked by the
 * event's fields, before anything is copied: an SDP up to 64 KB, a
 * candidate up to 1 KB (ngx_famcall_call_fields.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_calls.h"
#include "ngx_famcall_call_bind.h"
#include "ngx_famcall_gateway.h"
#include "ngx_famcall_gw_deliver.h"
#include "ngx_famcall_call_fields.h"


/* a relay waiting behind its socket's statement */
typedef struct {
    ngx_queue_t                    link;
    ngx_famcall_gw_op_t           *op;
    const char                    *type;
    u_char                         call[16];
    size_t                         len;
    u_char                         data[1];     /* the event's data, JSON */
} ngx_famcall_call_relay_t;

/* a socket of this worker with a relay at the database */
typedef struct {
    ngx_rbtree_node_t              node;        /* key: the socket's id */
    ngx_famcall_calls_conf_t      *ccf;
    ngx_queue_t                    waiting;     /* its next relays */
    ngx_uint_t                     epoch;       /* of the call in flight */
    unsigned                       busy:1;      /* a statement in flight */
} ngx_famcall_call_sock_t;


static void ngx_famcall_call_offer(void *owner, json_t *data);
static void ngx_famcall_call_answer(void *owner, json_t *data);
static void ngx_famcall_call_ice(void *owner, json_t *data);
static void ngx_famcall_call_relay(ngx_famcall_gw_op_t *op, json_t *data,
    const char *type);
static char *ngx_famcall_call_relay_data(json_t *data, const char *type);
static void ngx_famcall_call_relay_go(ngx_famcall_calls_conf_t *ccf,
    ngx_famcall_gw_op_t *op, const char *type, const u_char *call,
    u_char *data, size_t len);
static ngx_int_t ngx_famcall_call_direct(ngx_famcall_calls_conf_t *ccf,
    ngx_famcall_gw_t *gw, ngx_famcall_gw_op_t *op, const char *type,
    const u_char *call, u_char *data, size_t len);
static void ngx_famcall_call_relay_done(void *data, PGresult *res);
static uint64_t ngx_famcall_call_sock_id(ngx_famcall_gw_t *gw,
    const u_char *src, size_t len);
static ngx_famcall_call_sock_t *ngx_famcall_call_sock(
    ngx_famcall_calls_conf_t *ccf, uint64_t id);
static void ngx_famcall_call_sock_free(ngx_famcall_call_sock_t *sock);
static void ngx_famcall_call_relay_closed(ngx_famcall_gw_t *gw,
    const u_char *user, ngx_str_t *src);


static const ngx_famcall_gw_event_t  ngx_famcall_call_relay_events[] = {
    { "webrtc:offer", ngx_famcall_call_sdp_fields, ngx_famcall_call_offer },
    { "webrtc:answer", ngx_famcall_call_sdp_fields,
      ngx_famcall_call_answer },
    { "webrtc:ice", ngx_famcall_call_ice_fields, ngx_famcall_call_ice },
    { NULL, NULL, NULL }
};


static const ngx_famcall_gw_hooks_t  ngx_famcall_call_relay_hooks = {
    NULL, NULL, ngx_famcall_call_relay_closed, NULL
};


ngx_int_t
ngx_famcall_call_relay_init(ngx_conf_t *cf)
{
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_famcall_calls_module);

    ngx_rbtree_init(&ccf->relays, &ccf->relays_sentinel,
                    ngx_rbtree_insert_value);

    if (ngx_famcall_call_bind_init(cf, ccf) != NGX_OK
        || ngx_famcall_gw_hooks_add(cf, &ngx_famcall_call_relay_hooks)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_gw_events_add(cf, ngx_famcall_call_relay_events);
}


static void
ngx_famcall_call_offer(void *owner, json_t *data)
{
    ngx_famcall_call_relay(owner, data, "webrtc:offer");
}


static void
ngx_famcall_call_answer(void *owner, json_t *data)
{
    ngx_famcall_call_relay(owner, data, "webrtc:answer");
}


static void
ngx_famcall_call_ice(void *owner, json_t *data)
{
    ngx_famcall_call_relay(owner, data, "webrtc:ice");
}


static void
ngx_famcall_call_relay(ngx_famcall_gw_op_t *op, json_t *data,
    const char *type)
{
    char                      *text;
    u_char                     call[16];
    size_t                     len;
    uint64_t                   sid;
    const char                *id;
    ngx_famcall_gw_conf_t     *gwcf;
    ngx_famcall_call_sock_t   *sock;
    ngx_famcall_call_relay_t  *r;
    ngx_famcall_calls_conf_t  *ccf;
    char                       src[NGX_FAMCALL_CALL_SRC_LEN + 1];

    ccf = ngx_famcall_calls_conf();
    gwcf = ngx_http_cycle_get_module_main_conf((ngx_cycle_t *) ngx_cycle,
                                               ngx_http_famcall_gateway_module);

    /* the decoder checked it is a UUID */
    id = ngx_famcall_json_string(data, "call_id");

    text = ngx_famcall_call_relay_data(data, type);

    if (text == NULL
        || ngx_famcall_uuid_parse(id, ngx_strlen(id), call) != 0)
    {
        free(text);
        ngx_famcall_gw_fail(op, "internal", "internal error", NULL);
        return;
    }

    len = ngx_strlen(text);

    ngx_famcall_gw_op_src(op, src);
    sid = ngx_famcall_call_sock_id(gwcf->gw, (u_char *) src, ngx_strlen(src));
    sock = ngx_famcall_call_sock(ccf, sid);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "famcall call: %s on %s from %s%s", type, id, src,
                   sock ? ", waits" : "");

    if (sock == NULL) {
        ngx_famcall_call_relay_go(ccf, op, type, call, (u_char *) text, len);
        free(text);

        /* its statement could not even be sent */
        sock = ngx_famcall_call_sock(ccf, sid);

        if (sock != NULL && !sock->busy && ngx_queue_empty(&sock->waiting)) {
            ngx_famcall_call_sock_free(sock);
        }

        return;
    }

    /* behind the relay at the database: in order */
    r = ngx_alloc(sizeof(ngx_famcall_call_relay_t) + len, ngx_cycle->log);
    if (r == NULL) {
        free(text);
        ngx_famcall_gw_fail(op, "internal", "internal error", NULL);
        return;
    }

    r->op = op;
    r->type = type;
    ngx_memcpy(r->call, call, 16);
    r->len = len;
    ngx_memcpy(r->data, text, len);
    free(text);

    ngx_queue_insert_tail(&sock->waiting, &r->link);
}


/* {"call_id", "sdp"} or {"call_id", "candidate", "sdp_mid",
 * "sdp_mline_index"}: ASCII, to be freed with free() */
static char *
ngx_famcall_call_relay_data(json_t *data, const char *type)
{
    char    *text;
    json_t  *j, *mid, *mline;

    if (ngx_strcmp(type, "webrtc:ice") == 0) {
        mid = json_object_get(data, "sdp_mid");
        mline = json_object_get(data, "sdp_mline_index");

        j = json_pack("{s:O, s:O, s:O, s:O}",
                      "call_id", json_object_get(data, "call_id"),
                      "candidate", json_object_get(data, "candidate"),
                      "sdp_mid", json_is_string(mid) ? mid : json_null(),
                      "sdp_mline_index",
                      json_is_integer(mline) ? mline : json_null());

    } else {
        j = json_pack("{s:O, s:O}",
                      "call_id", json_object_get(data, "call_id"),
                      "sdp", json_object_get(data, "sdp"));
    }

    if (j == NULL) {
        return NULL;
    }

    /* no newline: the event travels as one line */
    text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(j);

    return text;
}


/* the relay goes now: direct, or by its statement */
static void
ngx_famcall_call_relay_go(ngx_famcall_calls_conf_t *ccf,
    ngx_famcall_gw_op_t *op, const char *type, const u_char *call,
    u_char *data, size_t len)
{
    char                      *text;
    char                       user[NGX_FAMCALL_ID_LEN + 1];
    char                       id[NGX_FAMCALL_ID_LEN + 1];
    char                       src[NGX_FAMCALL_CALL_SRC_LEN + 1];
    char                       here[NGX_FAMCALL_GW_HERE_LEN];
    uint64_t                   sid;
    const char                *params[6];
    ngx_famcall_gw_t          *gw;
    ngx_famcall_gw_conf_t     *gwcf;
    ngx_famcall_call_sock_t   *sock;

    gwcf = ngx_http_cycle_get_module_main_conf((ngx_cycle_t *) ngx_cycle,
                                               ngx_http_famcall_gateway_module);
    gw = gwcf->gw;

    if (ngx_famcall_call_direct(ccf, gw, op, type, call, data, len)
        == NGX_OK)
    {
        ngx_famcall_gw_answer(op, NGX_HTTP_OK, NULL, 0);
        return;
    }

    /* the statement's parameters are C strings */
    text = ngx_alloc(len + 1, ngx_cycle->log);
    if (text == NULL) {
        ngx_famcall_gw_fail(op, "internal", "internal error", NULL);
        return;
    }

    ngx_memcpy(text, data, len);
    text[len] = '\0';

    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);
    ngx_famcall_uuid_format(call, id);

    /* this node's workers: a peer on one of them gets it from us */
    ngx_famcall_gw_node_here(gw, here);

    sid = ngx_famcall_call_sock_id(gw, (u_char *) src, ngx_strlen(src));

    sock = ngx_famcall_call_sock(ccf, sid);

    if (sock == NULL) {
        sock = ngx_alloc(sizeof(ngx_famcall_call_sock_t), ngx_cycle->log);
        if (sock == NULL) {
            ngx_free(text);
            ngx_famcall_gw_fail(op, "internal", "internal error", NULL);
            return;
        }

        ngx_memzero(sock, sizeof(ngx_famcall_call_sock_t));
        sock->node.key = sid;
        sock->ccf = ccf;
        ngx_queue_init(&sock->waiting);
        ngx_rbtree_insert(&ccf->relays, &sock->node);
    }

    params[0] = user;
    params[1] = id;
    params[2] = type;
    params[3] = text;
    params[4] = src;
    params[5] = here;

    sock->busy = 1;
    sock->epoch = ngx_famcall_call_bind_epoch(ccf, call);

    if (ngx_famcall_gw_query_then(op, ccf->sql + NGX_FAMCALL_CALL_SQL_RELAY,
                                  6, params, ngx_famcall_call_relay_done,
                                  sock)
        != NGX_OK)
    {
        /* answered (unavailable): the next one may go; the caller frees
         * the socket's entry when nothing waits */
        sock->busy = 0;
    }

    ngx_free(text);
}


/*
 * NGX_OK: relayed, the node has the call bound with this socket on one
 * side; NGX_DECLINED: the row decides
 */
static ngx_int_t
ngx_famcall_call_direct(ngx_famcall_calls_conf_t *ccf, ngx_famcall_gw_t *gw,
    ngx_famcall_gw_op_t *op, const char *type, const u_char *call,
    u_char *data, size_t len)
{
    char        src[NGX_FAMCALL_CALL_SRC_LEN + 1];
    char        user[NGX_FAMCALL_ID_LEN + 1];
    u_char      me[16], peer[16];
    u_char      psrc[NGX_FAMCALL_CALL_SRC_LEN + 1];
    ngx_int_t   rc;
    ngx_str_t   s, t, d;

    if (gw == NULL) {
        return NGX_DECLINED;
    }

    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);

    if (ngx_famcall_uuid_parse(user, NGX_FAMCALL_ID_LEN, me) != 0) {
        return NGX_DECLINED;
    }

    s.data = (u_char *) src;
    s.len = ngx_strlen(src);

    if (ngx_famcall_call_bind_peer(ccf, call, me, &s, peer, psrc) != NGX_OK) {
        return NGX_DECLINED;
    }

    s.data = psrc;
    s.len = ngx_strlen(psrc);
    t.data = (u_char *) type;
    t.len = ngx_strlen(type);
    d.data = data;
    d.len = len;

    rc = ngx_famcall_gw_deliver_socket(gw, peer, &s, &t, &d);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, gw->log, 0,
                   "famcall call: %s direct to %V", type, &s);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    /* the peer's socket or its worker is gone: the row knows better */
    ngx_famcall_call_unbind(ccf, call);

    return NGX_DECLINED;
}


/*
 * A relay's statement answered: the binding it found in the row, when both
 * sockets are on this node (its fourth column), and the socket's next
 * relays go, in order.
 */
static void
ngx_famcall_call_relay_done(void *data, PGresult *res)
{
    ngx_famcall_call_sock_t  *sock = data;

    ngx_str_t                  bind;
    ngx_queue_t               *q;
    ngx_famcall_gw_conf_t     *gwcf;
    ngx_famcall_call_relay_t  *r;

    sock->busy = 0;

    if (res != NULL && PQnfields(res) == 4 && !PQgetisnull(res, 0, 3)) {
        gwcf = ngx_http_cycle_get_module_main_conf((ngx_cycle_t *) ngx_cycle,
                                               ngx_http_famcall_gateway_module);
        bind.data = (u_char *) PQgetvalue(res, 0, 3);
        bind.len = PQgetlength(res, 0, 3);
        ngx_famcall_call_bind_fill(sock->ccf, gwcf->gw, sock->epoch, &bind);
    }

    while (!sock->busy && !ngx_queue_empty(&sock->waiting)) {
        q = ngx_queue_head(&sock->waiting);
        ngx_queue_remove(q);
        r = ngx_queue_data(q, ngx_famcall_call_relay_t, link);

        ngx_famcall_call_relay_go(sock->ccf, r->op, r->type, r->call,
                                  r->data, r->len);
        ngx_free(r);
    }

    if (!sock->busy && ngx_queue_empty(&sock->waiting)) {
        ngx_famcall_call_sock_free(sock);
    }
}


/* "<instance>.<id>" of this worker: the id; 0: not this worker's */
static uint64_t
ngx_famcall_call_sock_id(ngx_famcall_gw_t *gw, const u_char *src, size_t len)
{
    ngx_int_t  id;

    if (gw == NULL || len <= NGX_FAMCALL_ID_LEN + 1
        || src[NGX_FAMCALL_ID_LEN] != '.'
        || ngx_strncmp(src, ngx_famcall_gw_instance(gw), NGX_FAMCALL_ID_LEN)
           != 0)
    {
        return 0;
    }

    id = ngx_atoi((u_char *) src + NGX_FAMCALL_ID_LEN + 1,
                  len - NGX_FAMCALL_ID_LEN - 1);

    return (id == NGX_ERROR) ? 0 : (uint64_t) id;
}


static ngx_famcall_call_sock_t *
ngx_famcall_call_sock(ngx_famcall_calls_conf_t *ccf, uint64_t id)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = ccf->relays.root;
    sentinel = ccf->relays.sentinel;

    while (node != NULL && node != sentinel) {
        if (id == node->key) {
            return (ngx_famcall_call_sock_t *) node;
        }

        node = (id < node->key) ? node->left : node->right;
    }

    return NULL;
}


/* its waiting relays' ops belong to the socket: they are not touched */
static void
ngx_famcall_call_sock_free(ngx_famcall_call_sock_t *sock)
{
    ngx_queue_t  *q;

    while (!ngx_queue_empty(&sock->waiting)) {
        q = ngx_queue_head(&sock->waiting);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_famcall_call_relay_t, link));
    }

    ngx_rbtree_delete(&sock->ccf->relays, &sock->node);
    ngx_free(sock);
}


/*
 * The socket closed: the gateway has freed its ops (the waiting relays'
 * too) and detached its statement, whose answer never comes.
 */
static void
ngx_famcall_call_relay_closed(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *src)
{
    ngx_famcall_call_sock_t   *sock;
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_famcall_calls_conf();

    sock = ngx_famcall_call_sock(ccf, ngx_famcall_call_sock_id(gw, src->data,
                                                                src->len));
    if (sock != NULL) {
        ngx_famcall_call_sock_free(sock);
    }
}
