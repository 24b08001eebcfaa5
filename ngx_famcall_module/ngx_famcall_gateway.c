/*
 * famcall: the realtime gateway of one worker (docs/websocket.md).
 *
 *   - the registry: user id -> that user's sockets in this worker, and
 *     presence: a user's first socket here marks them online in the
 *     database, their last one offline (sql/008's presence rows, one per
 *     user and worker, so "online anywhere" holds across workers and nodes);
 *   - the bus: a LISTEN connection (ngx_famcall_pg_listen) hears every event
 *     any worker of any node committed, and hands each to the sockets of
 *     its users that live here;
 *   - client events: decoded (ngx_famcall_event.c), turned into one
 *     database call each (sends ride the group-commit batcher), answered
 *     with ack or error under the client's ref.
 *
 * Every database call a socket makes is an op in the socket's list; when
 * the socket goes, its ops are detached, so no answer reaches freed memory.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_famcall.h"
#include "ngx_famcall_ws.h"
#include "ngx_famcall_event.h"
#include "ngx_famcall_token.h"


#define NGX_FAMCALL_GW_BUCKETS_MIN    1024
#define NGX_FAMCALL_GW_MAX_OPS        32
#define NGX_FAMCALL_GW_HEARTBEAT      60000
#define NGX_FAMCALL_GW_TYPING_BURST   5
#define NGX_FAMCALL_GW_SRC_LEN        (NGX_FAMCALL_ID_LEN + 1 + NGX_INT64_LEN)


struct ngx_famcall_gw_s {
    ngx_http_famcall_main_conf_t  *fmcf;
    ngx_log_t                     *log;
    char                           instance[NGX_FAMCALL_ID_LEN + 1];
    uint64_t                       next_id;
    u_char                        *scratch;      /* ws_max_message bytes */

    ngx_queue_t                   *buckets;
    ngx_uint_t                     nbuckets;     /* a power of 2 */
    ngx_uint_t                     nusers;

    ngx_event_t                    heartbeat;
    unsigned                       subscribed:1; /* the bus was up before */
    unsigned                       swept:1;      /* exit sweep sent */
    unsigned                       exiting:1;    /* in exit_process */
};


struct ngx_famcall_gw_user_s {
    ngx_queue_t                    bucket;
    u_char                         id[16];
    ngx_queue_t                    sockets;
    ngx_uint_t                     nsockets;
    ngx_famcall_gw_t              *gw;
    ngx_famcall_pg_query_t        *query;        /* presence change */
    unsigned                       online:1;     /* as the database has it */
    unsigned                       asked:1;      /* what query asks for */
};


typedef struct {
    ngx_queue_t                    link;         /* in ws->ops */
    ngx_famcall_ws_t              *ws;
    ngx_famcall_pg_query_t        *query;
    ngx_famcall_batch_entry_t     *entry;
    size_t                         reflen;
    u_char                         ref[1];       /* JSON: "..." or null */
} ngx_famcall_gw_op_t;


typedef struct {
    ngx_famcall_gw_t              *gw;
    json_t                        *ev;           /* waits for its message */
} ngx_famcall_gw_fetch_t;


static ngx_famcall_gw_user_t *ngx_famcall_gw_user_find(ngx_famcall_gw_t *gw,
    const u_char *id);
static ngx_int_t ngx_famcall_gw_user_add(ngx_famcall_gw_t *gw,
    ngx_famcall_ws_t *ws);
static void ngx_famcall_gw_user_remove(ngx_famcall_ws_t *ws);
static void ngx_famcall_gw_grow(ngx_famcall_gw_t *gw);
static void ngx_famcall_gw_presence(ngx_famcall_gw_user_t *u);
static void ngx_famcall_gw_presence_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_gw_user_free_maybe(ngx_famcall_gw_user_t *u);
static void ngx_famcall_gw_user_format(const u_char *id, char *out);

static void ngx_famcall_gw_notify(void *data, const char *payload,
    size_t len);
static void ngx_famcall_gw_deliver(ngx_famcall_gw_t *gw, json_t *ev);
static void ngx_famcall_gw_fetch_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static ngx_int_t ngx_famcall_gw_is_src(ngx_famcall_gw_t *gw,
    ngx_famcall_ws_t *ws, const char *src);

static void ngx_famcall_gw_register(ngx_famcall_gw_t *gw);
static void ngx_famcall_gw_registered(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_gw_heartbeat_handler(ngx_event_t *ev);
static void ngx_famcall_gw_ignore(void *data, ngx_famcall_pg_status_e status,
    PGresult *res);

static void ngx_famcall_gw_send_message(ngx_famcall_ws_t *ws,
    ngx_famcall_gw_op_t *op, json_t *data);
static void ngx_famcall_gw_query(ngx_famcall_ws_t *ws,
    ngx_famcall_gw_op_t *op, ngx_famcall_sql_e stmt, ngx_uint_t n,
    const char *const *params);
static void ngx_famcall_gw_auth(ngx_famcall_ws_t *ws,
    ngx_famcall_gw_op_t *op, json_t *data);
static ngx_famcall_gw_op_t *ngx_famcall_gw_op_new(ngx_famcall_ws_t *ws,
    const char *ref);
static void ngx_famcall_gw_op_free(ngx_famcall_gw_op_t *op);
static void ngx_famcall_gw_query_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_gw_batch_done(void *owner, ngx_int_t status,
    u_char *body, size_t len);
static void ngx_famcall_gw_answer(ngx_famcall_gw_op_t *op, ngx_int_t status,
    u_char *body, size_t len);
static void ngx_famcall_gw_error(ngx_famcall_ws_t *ws, const u_char *ref,
    size_t reflen, const char *code, const char *message, const char *field);
static void ngx_famcall_gw_src(ngx_famcall_ws_t *ws, char *out);


ngx_int_t
ngx_famcall_gw_init(ngx_cycle_t *cycle, ngx_http_famcall_main_conf_t *fmcf)
{
    u_char             rnd[16];
    ngx_uint_t         i;
    ngx_famcall_gw_t  *gw;

    gw = ngx_pcalloc(cycle->pool, sizeof(ngx_famcall_gw_t));
    if (gw == NULL) {
        return NGX_ERROR;
    }

    gw->fmcf = fmcf;
    gw->log = cycle->log;
    gw->nbuckets = NGX_FAMCALL_GW_BUCKETS_MIN;
    gw->buckets = ngx_alloc(gw->nbuckets * sizeof(ngx_queue_t), cycle->log);
    gw->scratch = ngx_palloc(cycle->pool, fmcf->ws_max_message);

    if (gw->buckets == NULL || gw->scratch == NULL
        || RAND_bytes(rnd, sizeof(rnd)) != 1)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < gw->nbuckets; i++) {
        ngx_queue_init(&gw->buckets[i]);
    }

    /* a version 4 UUID names this worker's presence rows */
    rnd[6] = (rnd[6] & 0x0f) | 0x40;
    rnd[8] = (rnd[8] & 0x3f) | 0x80;
    ngx_famcall_gw_user_format(rnd, gw->instance);

    gw->heartbeat.handler = ngx_famcall_gw_heartbeat_handler;
    gw->heartbeat.data = gw;
    gw->heartbeat.log = cycle->log;
    gw->heartbeat.cancelable = 1;

    fmcf->gw = gw;

    if (ngx_famcall_pg_listen(fmcf->pg, cycle, NGX_FAMCALL_SQL_LISTEN,
                              ngx_famcall_gw_notify, gw)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_famcall_gw_register(gw);
    ngx_add_timer(&gw->heartbeat, NGX_FAMCALL_GW_HEARTBEAT);

    return NGX_OK;
}


/* the worker exits: sockets still open go without a close handshake */
void
ngx_famcall_gw_exit(ngx_http_famcall_main_conf_t *fmcf)
{
    ngx_uint_t              i;
    ngx_queue_t            *q;
    ngx_famcall_gw_t       *gw = fmcf->gw;
    ngx_famcall_gw_user_t  *u;

    if (gw == NULL) {
        return;
    }

    gw->exiting = 1;

    if (gw->heartbeat.timer_set) {
        ngx_del_timer(&gw->heartbeat);
    }

    for (i = 0; i < gw->nbuckets; i++) {
        while (!ngx_queue_empty(&gw->buckets[i])) {
            q = ngx_queue_head(&gw->buckets[i]);
            u = ngx_queue_data(q, ngx_famcall_gw_user_t, bucket);

            while (!ngx_queue_empty(&u->sockets)) {
                q = ngx_queue_head(&u->sockets);
                ngx_famcall_ws_abort(ngx_queue_data(q, ngx_famcall_ws_t,
                                                    gw_link));
            }

            /* its presence query (if any) dies with the pool */
            if (u->query != NULL) {
                ngx_famcall_pg_detach(u->query);
                u->query = NULL;
            }

            ngx_queue_remove(&u->bucket);
            ngx_free(u);
        }
    }

    ngx_free(gw->buckets);
    gw->buckets = NULL;
    gw->nbuckets = 0;
    fmcf->gw = NULL;
}


u_char *
ngx_famcall_gw_scratch(ngx_famcall_ws_t *ws)
{
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;

    return fmcf->gw->scratch;
}


/* a socket is up: register it, say hello */
ngx_int_t
ngx_famcall_gw_open(ngx_famcall_ws_t *ws)
{
    u_char                        *p;
    char                           user[NGX_FAMCALL_ID_LEN + 1];
    u_char                         buf[256];
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;
    ngx_famcall_gw_t              *gw = fmcf->gw;

    ws->id = ++gw->next_id;

    if (ngx_famcall_gw_user_add(gw, ws) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_famcall_gw_user_format(ws->user, user);

    p = ngx_snprintf(buf, sizeof(buf),
                     "{\"type\":\"hello\",\"data\":{\"user_id\":\"%s\","
                     "\"expires_at\":%T,\"ping_interval\":%M}}",
                     user, ws->expires, fmcf->ws_ping_interval / 1000);

    return ngx_famcall_ws_send_text(ws, buf, p - buf);
}


/* the socket is going: forget it, and every answer it waits for */
void
ngx_famcall_gw_close(ngx_famcall_ws_t *ws)
{
    ngx_queue_t                   *q;
    ngx_famcall_gw_op_t           *op;
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;
    ngx_famcall_gw_t              *gw = fmcf->gw;
    char                           instance[NGX_FAMCALL_ID_LEN + 1];
    const char                    *params[1];

    while (!ngx_queue_empty(&ws->ops)) {
        q = ngx_queue_head(&ws->ops);
        op = ngx_queue_data(q, ngx_famcall_gw_op_t, link);

        if (op->query != NULL) {
            ngx_famcall_pg_detach(op->query);
            op->query = NULL;
        }

        if (op->entry != NULL) {
            ngx_famcall_batch_detach(op->entry);
            op->entry = NULL;
        }

        ngx_famcall_gw_op_free(op);
    }

    if (ws->gw_user == NULL || gw == NULL) {
        return;
    }

    /*
     * A graceful exit (reload, quit): one sweep of this worker's presence
     * rows replaces a query per user; its query timer keeps the worker
     * until the database answered.
     */
    if ((ngx_exiting || ngx_quit) && !gw->swept && !gw->exiting) {
        gw->swept = 1;
        ngx_memcpy(instance, gw->instance, sizeof(instance));
        params[0] = instance;
        (void) ngx_famcall_pg_send(fmcf->pg, NGX_FAMCALL_SQL_INSTANCE_SWEEP,
                                   1, params, ngx_famcall_gw_ignore, gw);
    }

    ngx_famcall_gw_user_remove(ws);
}


/* ---- client events ---------------------------------------------------- */

void
ngx_famcall_gw_message(ngx_famcall_ws_t *ws, const u_char *data, size_t len)
{
    int                     rc;
    char                    user[NGX_FAMCALL_ID_LEN + 1];
    char                    src[NGX_FAMCALL_GW_SRC_LEN + 1];
    char                    seq[NGX_INT64_LEN + 1];
    char                    lim[NGX_INT64_LEN + 1];
    json_t                 *d;
    long long               n;
    ngx_msec_t              now, full;
    const char             *params[5];
    ngx_famcall_gw_op_t    *op;
    ngx_famcall_event_t     ev;
    ngx_famcall_verror_t    err;

    rc = ngx_famcall_event_decode((const char *) data, len, &ev, &err);

    if (rc != 0) {
        op = ngx_famcall_gw_op_new(ws, ev.ref);
        if (op != NULL) {
            ngx_famcall_gw_error(ws, op->ref, op->reflen, err.code,
                                 err.message, err.field);
            ngx_famcall_gw_op_free(op);
        }

        ngx_famcall_event_free(&ev);
        return;
    }

    op = ngx_famcall_gw_op_new(ws, ev.ref);
    if (op == NULL) {
        ngx_famcall_event_free(&ev);
        return;
    }

    if (ws->nops > NGX_FAMCALL_GW_MAX_OPS) {
        ngx_famcall_gw_error(ws, op->ref, op->reflen, "rate_limited",
                             "too many events waiting for answers", NULL);
        ngx_famcall_gw_op_free(op);
        ngx_famcall_event_free(&ev);
        return;
    }

    d = ev.data;
    ngx_famcall_gw_user_format(ws->user, user);
    ngx_famcall_gw_src(ws, src);

    switch (ev.type) {

    case NGX_FAMCALL_EV_MESSAGE_SEND:
        ngx_famcall_gw_send_message(ws, op, d);
        break;

    case NGX_FAMCALL_EV_MESSAGE_DELIVERED:
    case NGX_FAMCALL_EV_MESSAGE_READ:
        n = ngx_famcall_event_int(d, "up_to_seq", 0);
        ngx_snprintf((u_char *) seq, sizeof(seq), "%L%Z", (int64_t) n);

        params[0] = user;
        params[1] = ngx_famcall_json_string(d, "conversation_id");
        params[2] = (ev.type == NGX_FAMCALL_EV_MESSAGE_READ) ? "read"
                                                             : "delivered";
        params[3] = seq;
        params[4] = src;
        ngx_famcall_gw_query(ws, op, NGX_FAMCALL_SQL_RECEIPT, 5, params);
        break;

    case NGX_FAMCALL_EV_TYPING:
        /* a token bucket: `full` is when it would hold a full burst */
        now = ngx_current_msec;
        full = ws->typing_at;

        if ((ngx_msec_int_t) (now - full) < -(ngx_msec_int_t)
                (NGX_FAMCALL_GW_TYPING_BURST - 1) * 1000)
        {
            ngx_famcall_gw_error(ws, op->ref, op->reflen, "rate_limited",
                                 "typing is sent at most once a second",
                                 NULL);
            ngx_famcall_gw_op_free(op);
            break;
        }

        if ((ngx_msec_int_t) (now - full) > 0) {
            full = now;
        }

        ws->typing_at = full + 1000;

        params[0] = user;
        params[1] = ngx_famcall_json_string(d, "conversation_id");
        params[2] = ngx_famcall_json_string(d, "state");
        params[3] = src;
        ngx_famcall_gw_query(ws, op, NGX_FAMCALL_SQL_TYPING, 4, params);
        break;

    case NGX_FAMCALL_EV_SYNC:
        n = ngx_famcall_event_int(d, "limit", -1);
        if (n > 0) {
            ngx_snprintf((u_char *) lim, sizeof(lim), "%L%Z", (int64_t) n);
        }

        params[0] = user;
        params[1] = ngx_famcall_json_string(d, "since");
        params[2] = (n > 0) ? lim : NULL;
        ngx_famcall_gw_query(ws, op, NGX_FAMCALL_SQL_SYNC, 3, params);
        break;

    case NGX_FAMCALL_EV_AUTH:
        ngx_famcall_gw_auth(ws, op, d);
        break;

    default:
        ngx_famcall_gw_op_free(op);
        break;
    }

    ngx_famcall_event_free(&ev);
}


static void
ngx_famcall_gw_send_message(ngx_famcall_ws_t *ws, ngx_famcall_gw_op_t *op,
    json_t *data)
{
    char                           user[NGX_FAMCALL_ID_LEN + 1];
    char                           src[NGX_FAMCALL_GW_SRC_LEN + 1];
    json_t                        *item;
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;

    ngx_famcall_gw_user_format(ws->user, user);
    ngx_famcall_gw_src(ws, src);

    item = json_pack("{s:s, s:O, s:O, s:O, s:s}",
                     "me", user,
                     "conversation", json_object_get(data, "conversation_id"),
                     "client_id", json_object_get(data, "client_id"),
                     "body", json_object_get(data, "body"),
                     "src", src);

    if (item == NULL) {
        ngx_famcall_gw_answer(op, NGX_FAMCALL_BATCH_FAILED, NULL, 0);
        return;
    }

    /* the answer may come at once (the database is down) */
    if (ngx_famcall_batch_add(fmcf->send_batcher, item,
                              ngx_famcall_gw_batch_done, op, &op->entry)
        != NGX_OK)
    {
        ngx_famcall_gw_answer(op, NGX_FAMCALL_BATCH_FAILED, NULL, 0);
    }
}


static void
ngx_famcall_gw_query(ngx_famcall_ws_t *ws, ngx_famcall_gw_op_t *op,
    ngx_famcall_sql_e stmt, ngx_uint_t n, const char *const *params)
{
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;

    op->query = ngx_famcall_pg_send(fmcf->pg, stmt, n, params,
                                    ngx_famcall_gw_query_done, op);

    if (op->query == NULL) {
        ngx_famcall_gw_answer(op, NGX_FAMCALL_BATCH_UNAVAILABLE, NULL, 0);
    }
}


/* a fresh access token for the same user keeps the socket open */
static void
ngx_famcall_gw_auth(ngx_famcall_ws_t *ws, ngx_famcall_gw_op_t *op,
    json_t *data)
{
    u_char                         id[16], *p;
    u_char                         buf[64];
    const char                    *token;
    ngx_famcall_jwt_claims_t       claims;
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;

    token = ngx_famcall_json_string(data, "access_token");

    if (ngx_famcall_jwt_verify(fmcf->jwt_secret.data, fmcf->jwt_secret.len,
                               token, ngx_strlen(token), ngx_time(), &claims)
        != 0
        || ngx_famcall_gw_user_parse(claims.sub, id) != NGX_OK
        || ngx_memcmp(id, ws->user, 16) != 0)
    {
        ngx_famcall_gw_error(ws, op->ref, op->reflen, "unauthorized",
                             "not a valid access token for this user",
                             "access_token");
        ngx_famcall_gw_op_free(op);
        return;
    }

    ws->expires = claims.exp;
    ngx_famcall_ws_rearm(ws);

    p = ngx_snprintf(buf, sizeof(buf), "{\"expires_at\":%T}", claims.exp);
    ngx_famcall_gw_answer(op, NGX_HTTP_OK, buf, p - buf);
}


static ngx_famcall_gw_op_t *
ngx_famcall_gw_op_new(ngx_famcall_ws_t *ws, const char *ref)
{
    char                 *s;
    size_t                len;
    json_t               *j;
    ngx_famcall_gw_op_t  *op;

    s = NULL;

    if (ref != NULL) {
        j = json_string(ref);
        s = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        json_decref(j);

        if (s == NULL) {
            return NULL;
        }
    }

    len = s ? ngx_strlen(s) : 4;

    op = ngx_alloc(sizeof(ngx_famcall_gw_op_t) + len, ws->connection->log);
    if (op == NULL) {
        free(s);
        return NULL;
    }

    op->ws = ws;
    op->query = NULL;
    op->entry = NULL;
    op->reflen = len;
    ngx_memcpy(op->ref, s ? s : "null", len);
    free(s);

    ngx_queue_insert_tail(&ws->ops, &op->link);
    ws->nops++;

    return op;
}


static void
ngx_famcall_gw_op_free(ngx_famcall_gw_op_t *op)
{
    if (op->ws != NULL) {
        ngx_queue_remove(&op->link);
        op->ws->nops--;
    }

    ngx_free(op);
}


static void
ngx_famcall_gw_query_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_op_t  *op = data;

    op->query = NULL;

    if (status != NGX_FAMCALL_PG_OK || PQntuples(res) != 1
        || PQnfields(res) != 2)
    {
        ngx_famcall_gw_answer(op, status == NGX_FAMCALL_PG_SQL_ERROR
                                  ? NGX_FAMCALL_BATCH_FAILED
                                  : NGX_FAMCALL_BATCH_UNAVAILABLE,
                              NULL, 0);
        return;
    }

    ngx_famcall_gw_answer(op,
        ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0)),
        PQgetisnull(res, 0, 1) ? NULL : (u_char *) PQgetvalue(res, 0, 1),
        PQgetisnull(res, 0, 1) ? 0 : PQgetlength(res, 0, 1));
}


static void
ngx_famcall_gw_batch_done(void *owner, ngx_int_t status, u_char *body,
    size_t len)
{
    ngx_famcall_gw_answer(owner, status, body, len);
}


/*
 * The answer to one client event: ack with the body as data, or error
 * with the body's error object ({"error": {...}} from sql/'s famcall_err).
 * Frees op.
 */
static void
ngx_famcall_gw_answer(ngx_famcall_gw_op_t *op, ngx_int_t status,
    u_char *body, size_t len)
{
    u_char            *frame, *p;
    size_t             size;
    ngx_famcall_ws_t  *ws = op->ws;

    static const char  ack[] = "{\"type\":\"ack\",\"ref\":";
    static const char  err[] = "{\"type\":\"error\",\"ref\":";

    if (ws == NULL || !ngx_famcall_ws_alive(ws)) {
        ngx_famcall_gw_op_free(op);
        return;
    }

    if (status >= 200 && status < 300) {

        /* an event without a ref asked for no ack (errors still go) */
        if (op->ref[0] != '"') {
            ngx_famcall_gw_op_free(op);
            return;
        }

        if (body == NULL || len == 0) {
            body = (u_char *) "{}";
            len = 2;
        }

        size = sizeof(ack) - 1 + op->reflen + sizeof(",\"data\":}") - 1 + len;

        frame = ngx_alloc(size, ws->connection->log);
        if (frame != NULL) {
            p = ngx_cpymem(frame, ack, sizeof(ack) - 1);
            p = ngx_cpymem(p, op->ref, op->reflen);
            p = ngx_cpymem(p, ",\"data\":", sizeof(",\"data\":") - 1);
            p = ngx_cpymem(p, body, len);
            *p++ = '}';

            (void) ngx_famcall_ws_send_text(ws, frame, p - frame);
            ngx_free(frame);
        }

        ngx_famcall_gw_op_free(op);
        return;
    }

    if (body == NULL || len < 2 || body[0] != '{') {
        ngx_famcall_gw_error(ws, op->ref, op->reflen,
                             status == NGX_FAMCALL_BATCH_UNAVAILABLE
                             ? "unavailable" : "internal",
                             status == NGX_FAMCALL_BATCH_UNAVAILABLE
                             ? "the database is unavailable, retry"
                             : "internal error",
                             NULL);
        ngx_famcall_gw_op_free(op);
        return;
    }

    /* {"type":"error","ref":R, + the rest of {"error": {...}} */
    size = sizeof(err) - 1 + op->reflen + 1 + len - 1;

    frame = ngx_alloc(size, ws->connection->log);
    if (frame != NULL) {
        p = ngx_cpymem(frame, err, sizeof(err) - 1);
        p = ngx_cpymem(p, op->ref, op->reflen);
        *p++ = ',';
        p = ngx_cpymem(p, body + 1, len - 1);

        (void) ngx_famcall_ws_send_text(ws, frame, p - frame);
        ngx_free(frame);
    }

    ngx_famcall_gw_op_free(op);
}


static void
ngx_famcall_gw_error(ngx_famcall_ws_t *ws, const u_char *ref, size_t reflen,
    const char *code, const char *message, const char *field)
{
    char    *s;
    json_t  *e, *frame;

    e = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (e != NULL && field != NULL) {
        json_object_set_new(e, "field", json_string(field));
    }

    frame = json_pack("{s:s, s:o?, s:o?}", "type", "error",
                      "ref", json_loadb((const char *) ref, reflen,
                                        JSON_DECODE_ANY, NULL),
                      "error", e);
    if (frame == NULL) {
        return;
    }

    s = json_dumps(frame, JSON_COMPACT);
    json_decref(frame);

    if (s != NULL) {
        (void) ngx_famcall_ws_send_text(ws, (u_char *) s, ngx_strlen(s));
        free(s);
    }
}


/* "<worker instance>.<socket id>": the socket an event came from */
static void
ngx_famcall_gw_src(ngx_famcall_ws_t *ws, char *out)
{
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;

    ngx_snprintf((u_char *) out, NGX_FAMCALL_GW_SRC_LEN + 1, "%s.%uL%Z",
                 fmcf->gw->instance, ws->id);
}


/* ---- the bus ------------------------------------------------------------ */

static void
ngx_famcall_gw_notify(void *data, const char *payload, size_t len)
{
    ngx_famcall_gw_t  *gw = data;

    size_t                  i;
    json_t                 *doc, *events, *ev;
    ngx_queue_t            *q, *s;
    ngx_uint_t              b;
    ngx_famcall_gw_user_t  *u;

    static const char  resync[] = "{\"type\":\"resync\",\"data\":{}}";

    if (payload == NULL) {
        /* (re)subscribed: after an outage every socket may have missed
         * events, and a sync finds them */
        if (gw->subscribed) {
            ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                          "famcall: the event bus is back; sockets resync");

            for (b = 0; b < gw->nbuckets; b++) {
                for (q = ngx_queue_head(&gw->buckets[b]);
                     q != ngx_queue_sentinel(&gw->buckets[b]);
                     q = ngx_queue_next(q))
                {
                    u = ngx_queue_data(q, ngx_famcall_gw_user_t, bucket);

                    for (s = ngx_queue_head(&u->sockets);
                         s != ngx_queue_sentinel(&u->sockets);
                         s = ngx_queue_next(s))
                    {
                        (void) ngx_famcall_ws_send_text(
                            ngx_queue_data(s, ngx_famcall_ws_t, gw_link),
                            (u_char *) resync, sizeof(resync) - 1);
                    }
                }
            }
        }

        gw->subscribed = 1;
        return;
    }

    doc = json_loadb(payload, len, 0, NULL);
    events = json_object_get(doc, "e");

    if (!json_is_array(events)) {
        ngx_log_error(NGX_LOG_ERR, gw->log, 0,
                      "famcall: unreadable notification ignored");
        json_decref(doc);
        return;
    }

    json_array_foreach(events, i, ev) {
        ngx_famcall_gw_deliver(gw, ev);
    }

    json_decref(doc);
}


/* one event {"t", "u", "x", "d"} to the local sockets of its users */
static void
ngx_famcall_gw_deliver(ngx_famcall_gw_t *gw, json_t *ev)
{
    char                    *text;
    size_t                   i, tlen;
    u_char                   id[16];
    json_t                  *users, *uid, *frame;
    const char              *type, *src, *msgid;
    ngx_queue_t             *q;
    ngx_famcall_ws_t        *ws;
    const char              *params[1];
    ngx_famcall_gw_user_t   *u;
    ngx_famcall_gw_fetch_t  *f;

    type = ngx_famcall_json_string(ev, "t");
    src = ngx_famcall_json_string(ev, "x");
    users = json_object_get(ev, "u");

    if (type == NULL || !json_is_array(users)) {
        return;
    }

    /* anyone here at all? */
    json_array_foreach(users, i, uid) {
        if (json_is_string(uid)
            && ngx_famcall_gw_user_parse(json_string_value(uid), id) == NGX_OK
            && ngx_famcall_gw_user_find(gw, id) != NULL)
        {
            break;
        }
    }

    if (i == json_array_size(users)) {
        return;
    }

    if (ngx_strcmp(type, "message:ref") == 0) {
        /* too big for a notification: fetch it, then deliver */
        msgid = ngx_famcall_json_string(json_object_get(ev, "d"), "id");

        f = ngx_alloc(sizeof(ngx_famcall_gw_fetch_t), gw->log);
        if (msgid == NULL || f == NULL) {
            ngx_free(f);
            return;
        }

        f->gw = gw;
        f->ev = json_incref(ev);
        params[0] = msgid;

        if (ngx_famcall_pg_send(gw->fmcf->pg, NGX_FAMCALL_SQL_MESSAGE_GET, 1,
                                params, ngx_famcall_gw_fetch_done, f)
            == NULL)
        {
            json_decref(f->ev);
            ngx_free(f);
        }

        return;
    }

    frame = json_pack("{s:s, s:O?}", "type", type,
                      "data", json_object_get(ev, "d"));
    text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    json_decref(frame);

    if (text == NULL) {
        return;
    }

    tlen = ngx_strlen(text);

    json_array_foreach(users, i, uid) {
        if (!json_is_string(uid)
            || ngx_famcall_gw_user_parse(json_string_value(uid), id) != NGX_OK)
        {
            continue;
        }

        u = ngx_famcall_gw_user_find(gw, id);
        if (u == NULL) {
            continue;
        }

        for (q = ngx_queue_head(&u->sockets);
             q != ngx_queue_sentinel(&u->sockets);
             q = ngx_queue_next(q))
        {
            ws = ngx_queue_data(q, ngx_famcall_ws_t, gw_link);

            if (src == NULL || ngx_famcall_gw_is_src(gw, ws, src) != NGX_OK) {
                (void) ngx_famcall_ws_send_text(ws, (u_char *) text, tlen);
            }
        }
    }

    free(text);
}


static void
ngx_famcall_gw_fetch_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_fetch_t  *f = data;

    json_t  *msg;

    if (status == NGX_FAMCALL_PG_OK && PQntuples(res) == 1
        && PQnfields(res) == 2 && !PQgetisnull(res, 0, 1)
        && f->gw->buckets != NULL)
    {
        msg = json_loadb(PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1), 0,
                         NULL);

        if (msg != NULL) {
            json_object_set_new(f->ev, "t", json_string("message:new"));
            json_object_set_new(f->ev, "d", msg);
            ngx_famcall_gw_deliver(f->gw, f->ev);
        }
    }

    json_decref(f->ev);
    ngx_free(f);
}


static ngx_int_t
ngx_famcall_gw_is_src(ngx_famcall_gw_t *gw, ngx_famcall_ws_t *ws,
    const char *src)
{
    ngx_int_t  id;

    if (ngx_strncmp(src, gw->instance, NGX_FAMCALL_ID_LEN) != 0
        || src[NGX_FAMCALL_ID_LEN] != '.')
    {
        return NGX_DECLINED;
    }

    src += NGX_FAMCALL_ID_LEN + 1;
    id = ngx_atoi((u_char *) src, ngx_strlen(src));

    return (id != NGX_ERROR && (uint64_t) id == ws->id) ? NGX_OK
                                                         : NGX_DECLINED;
}


/* ---- the registry and presence ----------------------------------------- */

static ngx_famcall_gw_user_t *
ngx_famcall_gw_user_find(ngx_famcall_gw_t *gw, const u_char *id)
{
    uint64_t                h;
    ngx_queue_t            *q, *b;
    ngx_famcall_gw_user_t  *u;

    if (gw->buckets == NULL) {
        return NULL;
    }

    /* user ids are random UUIDs: their bytes are the hash */
    ngx_memcpy(&h, id + 8, sizeof(h));
    b = &gw->buckets[h & (gw->nbuckets - 1)];

    for (q = ngx_queue_head(b); q != ngx_queue_sentinel(b);
         q = ngx_queue_next(q))
    {
        u = ngx_queue_data(q, ngx_famcall_gw_user_t, bucket);

        if (ngx_memcmp(u->id, id, 16) == 0) {
            return u;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_famcall_gw_user_add(ngx_famcall_gw_t *gw, ngx_famcall_ws_t *ws)
{
    uint64_t                h;
    ngx_famcall_gw_user_t  *u;

    u = ngx_famcall_gw_user_find(gw, ws->user);

    if (u == NULL) {
        u = ngx_calloc(sizeof(ngx_famcall_gw_user_t), gw->log);
        if (u == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(u->id, ws->user, 16);
        ngx_queue_init(&u->sockets);
        u->gw = gw;

        ngx_memcpy(&h, u->id + 8, sizeof(h));
        ngx_queue_insert_tail(&gw->buckets[h & (gw->nbuckets - 1)],
                              &u->bucket);

        if (++gw->nusers > 2 * gw->nbuckets) {
            ngx_famcall_gw_grow(gw);
        }
    }

    ngx_queue_insert_tail(&u->sockets, &ws->gw_link);
    u->nsockets++;
    ws->gw_user = u;

    ngx_famcall_gw_presence(u);

    return NGX_OK;
}


static void
ngx_famcall_gw_user_remove(ngx_famcall_ws_t *ws)
{
    ngx_famcall_gw_user_t  *u = ws->gw_user;

    ngx_queue_remove(&ws->gw_link);
    u->nsockets--;
    ws->gw_user = NULL;

    ngx_famcall_gw_presence(u);
    ngx_famcall_gw_user_free_maybe(u);
}


static void
ngx_famcall_gw_grow(ngx_famcall_gw_t *gw)
{
    uint64_t                h;
    ngx_uint_t              i, n;
    ngx_queue_t            *nb, *q;
    ngx_famcall_gw_user_t  *u;

    n = gw->nbuckets * 2;

    nb = ngx_alloc(n * sizeof(ngx_queue_t), gw->log);
    if (nb == NULL) {
        return;     /* longer chains, still correct */
    }

    for (i = 0; i < n; i++) {
        ngx_queue_init(&nb[i]);
    }

    for (i = 0; i < gw->nbuckets; i++) {
        while (!ngx_queue_empty(&gw->buckets[i])) {
            q = ngx_queue_head(&gw->buckets[i]);
            ngx_queue_remove(q);

            u = ngx_queue_data(q, ngx_famcall_gw_user_t, bucket);
            ngx_memcpy(&h, u->id + 8, sizeof(h));
            ngx_queue_insert_tail(&nb[h & (n - 1)], q);
        }
    }

    ngx_free(gw->buckets);
    gw->buckets = nb;
    gw->nbuckets = n;
}


/*
 * Tell the database what this worker knows: online while the user has a
 * socket here.  One query at a time per user, so an open and a close in
 * quick succession reach the database in their order.
 */
static void
ngx_famcall_gw_presence(ngx_famcall_gw_user_t *u)
{
    char               user[NGX_FAMCALL_ID_LEN + 1];
    ngx_uint_t         want;
    const char        *params[3];
    ngx_famcall_gw_t  *gw = u->gw;

    want = (u->nsockets > 0);

    if (u->query != NULL || want == u->online || gw->exiting
        || ngx_exiting || ngx_quit)
    {
        return;
    }

    ngx_famcall_gw_user_format(u->id, user);

    params[0] = gw->instance;
    params[1] = user;
    params[2] = want ? "true" : "false";

    u->asked = want;
    u->query = ngx_famcall_pg_send(gw->fmcf->pg, NGX_FAMCALL_SQL_PRESENCE, 3,
                                   params, ngx_famcall_gw_presence_done, u);
}


static void
ngx_famcall_gw_presence_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_user_t  *u = data;

    u->query = NULL;

    if (status == NGX_FAMCALL_PG_OK) {
        u->online = u->asked;
        ngx_famcall_gw_presence(u);     /* things changed meanwhile? */
    }

    /* else: the next open or close here tries again */

    ngx_famcall_gw_user_free_maybe(u);
}


static void
ngx_famcall_gw_user_free_maybe(ngx_famcall_gw_user_t *u)
{
    ngx_famcall_gw_t  *gw = u->gw;

    if (u->nsockets > 0 || u->query != NULL || gw->exiting) {
        return;     /* (at exit, ngx_famcall_gw_exit frees them all) */
    }

    /* online in the database but going away: the exit sweep clears it */
    if (u->online && !(ngx_exiting || ngx_quit)) {
        return;
    }

    ngx_queue_remove(&u->bucket);
    gw->nusers--;
    ngx_free(u);
}


ngx_int_t
ngx_famcall_gw_user_parse(const char *uuid, u_char *out)
{
    ngx_int_t  hi, lo;
    ngx_uint_t i, n;

    if (ngx_strlen(uuid) != NGX_FAMCALL_ID_LEN) {
        return NGX_ERROR;
    }

    for (i = 0, n = 0; i < NGX_FAMCALL_ID_LEN; /* void */) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (uuid[i] != '-') {
                return NGX_ERROR;
            }
            i++;
            continue;
        }

        hi = ngx_hextoi((u_char *) &uuid[i], 1);
        lo = ngx_hextoi((u_char *) &uuid[i + 1], 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        out[n++] = (u_char) (hi * 16 + lo);
        i += 2;
    }

    return NGX_OK;
}


static void
ngx_famcall_gw_user_format(const u_char *id, char *out)
{
    ngx_uint_t  i;
    u_char     *p = (u_char *) out;

    static const u_char  hex[] = "0123456789abcdef";

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *p++ = '-';
        }

        *p++ = hex[id[i] >> 4];
        *p++ = hex[id[i] & 0xf];
    }

    *p = '\0';
}


/* ---- this worker's instance row ---------------------------------------- */

static void
ngx_famcall_gw_register(ngx_famcall_gw_t *gw)
{
    char         host[256], pid[NGX_INT64_LEN + 1];
    const char  *params[3];

    if (gethostname(host, sizeof(host) - 1) != 0) {
        ngx_cpystrn((u_char *) host, (u_char *) "localhost", sizeof(host));
    }

    host[sizeof(host) - 1] = '\0';
    ngx_snprintf((u_char *) pid, sizeof(pid), "%P%Z", ngx_pid);

    params[0] = gw->instance;
    params[1] = host;
    params[2] = pid;

    (void) ngx_famcall_pg_send(gw->fmcf->pg,
                               NGX_FAMCALL_SQL_INSTANCE_REGISTER, 3, params,
                               ngx_famcall_gw_registered, gw);
}


/* the other workers on this host: any whose process is gone is swept */
static void
ngx_famcall_gw_registered(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_t  *gw = data;

    size_t       i;
    json_t      *list, *item;
    ngx_int_t    pid;
    const char  *id, *params[1];

    if (status != NGX_FAMCALL_PG_OK || PQntuples(res) != 1
        || PQnfields(res) != 2 || gw->buckets == NULL)
    {
        return;
    }

    list = json_loadb(PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1), 0, NULL);

    json_array_foreach(list, i, item) {
        id = ngx_famcall_json_string(item, "id");
        pid = json_integer_value(json_object_get(item, "pid"));

        if (id == NULL || pid <= 0
            || kill((pid_t) pid, 0) == 0 || ngx_errno != NGX_ESRCH)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, gw->log, 0,
                      "famcall: worker %i is gone, its users go offline",
                      pid);

        params[0] = id;
        (void) ngx_famcall_pg_send(gw->fmcf->pg,
                                   NGX_FAMCALL_SQL_INSTANCE_SWEEP, 1, params,
                                   ngx_famcall_gw_ignore, gw);
    }

    json_decref(list);
}


static void
ngx_famcall_gw_heartbeat_handler(ngx_event_t *ev)
{
    ngx_famcall_gw_t  *gw = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_famcall_gw_register(gw);
    ngx_add_timer(&gw->heartbeat, NGX_FAMCALL_GW_HEARTBEAT);
}


static void
ngx_famcall_gw_ignore(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_t  *gw = data;

    if (status != NGX_FAMCALL_PG_OK) {
        ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                      "famcall: a presence sweep failed; the rows stay "
                      "until the next one");
    }
}
