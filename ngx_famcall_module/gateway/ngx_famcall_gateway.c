/*
 * famcall: the realtime gateway of one worker (docs/websocket.md,
 * docs/architecture.md): starting and stopping it, sockets joining and
 * leaving it, and the worker's instance row (gateway_instances) that
 * presence rows hang off.  The registry, the bus and client events are in
 * ngx_famcall_gw_*.c (see ngx_famcall_gw.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_famcall_gw.h"


static ngx_int_t ngx_famcall_gw_open(ngx_famcall_ws_t *ws);
static void ngx_famcall_gw_close(ngx_famcall_ws_t *ws);
static void ngx_famcall_gw_register(ngx_famcall_gw_t *gw);
static void ngx_famcall_gw_registered(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_gw_heartbeat_handler(ngx_event_t *ev);


ngx_int_t
ngx_famcall_gw_init(ngx_cycle_t *cycle, ngx_http_famcall_main_conf_t *fmcf,
    ngx_famcall_gw_conf_t *gwcf)
{
    u_char             rnd[16];
    ngx_uint_t         i;
    ngx_famcall_gw_t  *gw;

    gw = ngx_pcalloc(cycle->pool, sizeof(ngx_famcall_gw_t));
    if (gw == NULL) {
        return NGX_ERROR;
    }

    gw->fmcf = fmcf;
    gw->gwcf = gwcf;
    gw->log = cycle->log;
    gw->nbuckets = NGX_FAMCALL_GW_BUCKETS_MIN;
    gw->buckets = ngx_alloc(gw->nbuckets * sizeof(ngx_queue_t), cycle->log);
    gw->scratch = ngx_palloc(cycle->pool, gwcf->ws.max_message);

    if (gw->buckets == NULL || gw->scratch == NULL
        || ngx_famcall_gw_presence_init(gw, cycle->pool) != NGX_OK
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
    ngx_famcall_uuid_format(rnd, gw->instance);

    /* the transport reaches the gateway only through this */
    gw->handler.open = ngx_famcall_gw_open;
    gw->handler.message = ngx_famcall_gw_message;
    gw->handler.close = ngx_famcall_gw_close;
    gw->handler.buffer = gw->scratch;
    gw->handler.conf = &gwcf->ws;

    gw->heartbeat.handler = ngx_famcall_gw_heartbeat_handler;
    gw->heartbeat.data = gw;
    gw->heartbeat.log = cycle->log;
    gw->heartbeat.cancelable = 1;

    gwcf->gw = gw;

    if (ngx_famcall_gw_node_start(gw, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_famcall_gw_register(gw);
    ngx_add_timer(&gw->heartbeat, NGX_FAMCALL_GW_HEARTBEAT);

    return NGX_OK;
}


/* the worker exits: sockets still open go without a close handshake */
void
ngx_famcall_gw_exit(ngx_famcall_gw_conf_t *gwcf)
{
    ngx_uint_t              i;
    ngx_queue_t            *q;
    ngx_famcall_gw_t          *gw = gwcf->gw;
    ngx_famcall_gw_user_t     *u;
    ngx_famcall_gw_session_t  *s;

    if (gw == NULL) {
        return;
    }

    gw->exiting = 1;

    ngx_famcall_gw_node_stop(gw);

    if (gw->heartbeat.timer_set) {
        ngx_del_timer(&gw->heartbeat);
    }

    ngx_famcall_gw_presence_stop(gw);

    for (i = 0; i < gw->nbuckets; i++) {
        while (!ngx_queue_empty(&gw->buckets[i])) {
            q = ngx_queue_head(&gw->buckets[i]);
            u = ngx_queue_data(q, ngx_famcall_gw_user_t, bucket);

            while (!ngx_queue_empty(&u->sockets)) {
                q = ngx_queue_head(&u->sockets);
                s = ngx_queue_data(q, ngx_famcall_gw_session_t, gw_link);
                ngx_famcall_ws_abort(s->ws);
            }

            ngx_queue_remove(&u->bucket);
            ngx_free(u);
        }
    }

    ngx_famcall_gw_parts_free(gw);

    ngx_free(gw->buckets);
    gw->buckets = NULL;
    gw->nbuckets = 0;
    gwcf->gw = NULL;
}


/*
 * GET /v1/ws: the transport checks the handshake, the gateway
 * authenticates it and keeps a session for the socket.
 */
ngx_int_t
ngx_famcall_gw_ws_open(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_famcall_ws_t              *ws;
    ngx_famcall_gw_conf_t         *gwcf;
    ngx_famcall_gw_session_t      *s;
    ngx_famcall_ws_offer_t         offer;
    ngx_famcall_jwt_claims_t       claims;
    ngx_http_request_t            *r = ctx->request;
    ngx_http_famcall_main_conf_t  *fmcf = ctx->fmcf;

    rc = ngx_famcall_ws_handshake(ctx, &offer);
    if (rc != NGX_OK) {
        return rc;
    }

    if (offer.token.len == 0
        || ngx_famcall_jwt_verify(fmcf->jwt_secret.data, fmcf->jwt_secret.len,
                                  (char *) offer.token.data, offer.token.len,
                                  ngx_time(), &claims)
           != 0)
    {
        return ngx_famcall_send_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                      "unauthorized",
                                      "a valid access token is required",
                                      NULL);
    }

    gwcf = ngx_http_get_module_main_conf(r, ngx_http_famcall_gateway_module);

    if (gwcf->gw == NULL) {
        return NGX_ERROR;
    }

    /* $famcall_user_id in the access log line of the handshake */
    ctx->user_id.data = ngx_pnalloc(r->pool, NGX_FAMCALL_ID_LEN);
    if (ctx->user_id.data != NULL) {
        ctx->user_id.len = NGX_FAMCALL_ID_LEN;
        ngx_memcpy(ctx->user_id.data, claims.sub, NGX_FAMCALL_ID_LEN);
        ctx->auth_checked = 1;
    }

    s = ngx_calloc(sizeof(ngx_famcall_gw_session_t), r->connection->log);
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->gw = gwcf->gw;
    ngx_memcpy(s->user, claims.user, 16);
    ngx_queue_init(&s->ops);

    ws = ngx_famcall_ws_accept(ctx, &offer, &gwcf->gw->handler, s,
                               claims.exp);
    if (ws == NULL) {
        ngx_free(s);
        return NGX_ERROR;
    }

    s->ws = ws;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "famcall ws: session for user %s", claims.sub);

    return NGX_DONE;
}


/* a socket is up: register it, say hello */
static ngx_int_t
ngx_famcall_gw_open(ngx_famcall_ws_t *ws)
{
    u_char                        *p;
    char                           user[NGX_FAMCALL_ID_LEN + 1];
    u_char                         buf[256];
    ngx_famcall_gw_session_t      *s = ws->data;
    ngx_famcall_gw_t              *gw = s->gw;

    s->id = ++gw->next_id;

    if (ngx_famcall_gw_user_add(gw, s) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_famcall_uuid_format(s->user, user);

    p = ngx_snprintf(buf, sizeof(buf),
                     "{\"type\":\"hello\",\"data\":{\"user_id\":\"%s\","
                     "\"expires_at\":%T,\"ping_interval\":%M}}",
                     user, ws->expires, gw->gwcf->ws.ping_interval / 1000);

    return ngx_famcall_ws_send_text(ws, buf, p - buf);
}


/* the socket is going: forget it, and every answer it waits for */
static void
ngx_famcall_gw_close(ngx_famcall_ws_t *ws)
{
    ngx_famcall_gw_session_t      *s = ws->data;
    ngx_famcall_gw_t              *gw = s->gw;
    ngx_str_t                      src;
    char                           instance[NGX_FAMCALL_ID_LEN + 1];
    char                           id[NGX_FAMCALL_GW_SRC_LEN + 1];
    const char                    *params[1];

    ngx_famcall_gw_ops_detach(s);

    /* what features keep about the socket (a call's binding) goes too */
    if (s->id != 0) {
        ngx_famcall_gw_src(s, id);
        src.data = (u_char *) id;
        src.len = ngx_strlen(id);
        ngx_famcall_gw_hooks_closed(gw, s->user, &src);
    }

    if (s->gw_user == NULL || gw->gwcf->gw == NULL) {
        ngx_free(s);
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
        (void) ngx_famcall_pg_send(gw->fmcf->pg,
                                   gw->gwcf->sql
                                   + NGX_FAMCALL_GW_SQL_INSTANCE_SWEEP,
                                   1, params, ngx_famcall_gw_ignore, gw);
    }

    ngx_famcall_gw_user_remove(s);
    ngx_free(s);
}


/* "<worker instance>.<socket id>": the socket an event came from */
void
ngx_famcall_gw_src(ngx_famcall_gw_session_t *s, char *out)
{
    ngx_snprintf((u_char *) out, NGX_FAMCALL_GW_SRC_LEN + 1, "%s.%uL%Z",
                 s->gw->instance, s->id);
}


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
                               gw->gwcf->sql
                               + NGX_FAMCALL_GW_SQL_INSTANCE_REGISTER,
                               3, params, ngx_famcall_gw_registered, gw);
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

    if (status == NGX_FAMCALL_PG_OK && !gw->registered && !gw->exiting) {
        gw->registered = 1;
        ngx_famcall_gw_presence_flush(gw);

    } else if (status != NGX_FAMCALL_PG_OK && !gw->registered
               && !gw->exiting && !ngx_exiting && !ngx_quit)
    {
        /* presence waits on it: try again in a second, not a minute */
        if (gw->heartbeat.timer_set) {
            ngx_del_timer(&gw->heartbeat);
        }

        ngx_add_timer(&gw->heartbeat, NGX_FAMCALL_GW_REGISTER_RETRY);
    }

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
                                   gw->gwcf->sql
                                   + NGX_FAMCALL_GW_SQL_INSTANCE_SWEEP,
                                   1, params, ngx_famcall_gw_ignore, gw);
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


void
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
