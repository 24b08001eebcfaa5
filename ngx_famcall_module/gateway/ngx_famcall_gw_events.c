/*
 * famcall: the events clients send on their sockets (docs/websocket.md),
 * as a table of handlers (ngx_famcall_gw_events.h).  A message is decoded
 * against every registered event (ngx_famcall_event.c), becomes an op in
 * the socket's list, and its handler answers the op with ack or error
 * under the event's ref.  The gateway's own events are here: message:send
 * rides the group-commit batcher, the others are one query each.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_event.h"
#include "ngx_famcall_event_fields.h"

#include "ngx_famcall_gw.h"
#include "ngx_famcall_gw_deliver.h"


static void ngx_famcall_gw_send_message(void *owner, json_t *data);
static void ngx_famcall_gw_delivered(void *owner, json_t *data);
static void ngx_famcall_gw_read(void *owner, json_t *data);
static void ngx_famcall_gw_receipt(ngx_famcall_gw_op_t *op, json_t *data,
    const char *kind);
static void ngx_famcall_gw_typing(void *owner, json_t *data);
static void ngx_famcall_gw_sync(void *owner, json_t *data);
static void ngx_famcall_gw_auth(void *owner, json_t *data);
static ngx_famcall_gw_op_t *ngx_famcall_gw_op_new(
    ngx_famcall_gw_session_t *s, const char *ref);
static void ngx_famcall_gw_op_free(ngx_famcall_gw_op_t *op);
static void ngx_famcall_gw_query_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_gw_batch_done(void *owner, ngx_int_t status,
    u_char *body, size_t len);
static void ngx_famcall_gw_error(ngx_famcall_ws_t *ws, const u_char *ref,
    size_t reflen, const char *code, const char *message, const char *field);


/* the gateway's first statement in the pool's list */
#define gw_sql(op)  ((op)->s->gw->gwcf->sql)


static const ngx_famcall_gw_event_t  ngx_famcall_gw_own_events[] = {
    { "message:send", ngx_famcall_ev_send_fields,
      ngx_famcall_gw_send_message },
    { "message:delivered", ngx_famcall_ev_receipt_fields,
      ngx_famcall_gw_delivered },
    { "message:read", ngx_famcall_ev_receipt_fields, ngx_famcall_gw_read },
    { "typing", ngx_famcall_ev_typing_fields, ngx_famcall_gw_typing },
    { "sync", ngx_famcall_ev_sync_fields, ngx_famcall_gw_sync },
    { "auth", ngx_famcall_ev_auth_fields, ngx_famcall_gw_auth },
    { NULL, NULL, NULL }
};


/* the gateway's own events, registered like any feature's */
ngx_int_t
ngx_famcall_gw_events_init(ngx_conf_t *cf)
{
    return ngx_famcall_gw_events_add(cf, ngx_famcall_gw_own_events);
}


ngx_int_t
ngx_famcall_gw_events_add(ngx_conf_t *cf, const ngx_famcall_gw_event_t *events)
{
    ngx_uint_t                     i;
    ngx_famcall_gw_conf_t         *gwcf;
    ngx_famcall_gw_event_t        *ev, *e;

    gwcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_famcall_gateway_module);

    if (gwcf->events == NULL) {
        gwcf->events = ngx_array_create(cf->pool, 16,
                                        sizeof(ngx_famcall_gw_event_t));
        if (gwcf->events == NULL) {
            return NGX_ERROR;
        }
    }

    for ( /* void */ ; events->name != NULL; events++) {

        if (events->fields == NULL || events->handler == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "famcall: socket event \"%s\" needs fields "
                               "and a handler", events->name);
            return NGX_ERROR;
        }

        e = gwcf->events->elts;

        for (i = 0; i < gwcf->events->nelts; i++) {
            if (ngx_strcmp(e[i].name, events->name) == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "famcall: socket event \"%s\" is "
                                   "registered twice", events->name);
                return NGX_ERROR;
            }
        }

        ev = ngx_array_push(gwcf->events);
        if (ev == NULL) {
            return NGX_ERROR;
        }

        *ev = *events;
    }

    return NGX_OK;
}


void
ngx_famcall_gw_message(ngx_famcall_ws_t *ws, const u_char *data, size_t len)
{
    int                            rc;
    ngx_array_t                   *events;
    ngx_famcall_gw_op_t           *op;
    ngx_famcall_event_t            ev;
    ngx_famcall_verror_t           err;
    ngx_famcall_gw_event_t        *types;
    ngx_famcall_gw_session_t      *s = ws->data;
    events = s->gw->gwcf->events;
    types = events->elts;

    rc = ngx_famcall_event_decode((const char *) data, len, types,
                                  events->nelts, &ev, &err);

    if (rc != 0) {
        op = ngx_famcall_gw_op_new(s, ev.ref);
        if (op != NULL) {
            ngx_famcall_gw_fail(op, err.code, err.message, err.field);
        }

        ngx_famcall_event_free(&ev);
        return;
    }

    op = ngx_famcall_gw_op_new(s, ev.ref);
    if (op == NULL) {
        ngx_famcall_event_free(&ev);
        return;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                   "famcall ws: event \"%s\", %ui waiting, ref %*s",
                   types[ev.type].name, s->nops, op->reflen, op->ref);

    if (s->nops > NGX_FAMCALL_GW_MAX_OPS) {
        ngx_famcall_gw_fail(op, "rate_limited",
                            "too many events waiting for answers", NULL);
        ngx_famcall_event_free(&ev);
        return;
    }

    types[ev.type].handler(op, ev.data);

    ngx_famcall_event_free(&ev);
}


void
ngx_famcall_gw_op_user(ngx_famcall_gw_op_t *op, char *out)
{
    ngx_famcall_uuid_format(op->s->user, out);
}


void
ngx_famcall_gw_op_src(ngx_famcall_gw_op_t *op, char *out)
{
    ngx_famcall_gw_src(op->s, out);
}


static void
ngx_famcall_gw_send_message(void *owner, json_t *data)
{
    ngx_famcall_gw_op_t  *op = owner;

    json_t                        *c;
    char                           user[NGX_FAMCALL_ID_LEN + 1];
    char                           src[NGX_FAMCALL_GW_SRC_LEN + 1];
    ngx_str_t                      me, conv, item[NGX_FAMCALL_SEND_FIELDS];
    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);

    /* the decoder has checked the three are strings (ids: uuids) */
    me.data = (u_char *) user;
    me.len = ngx_strlen(user);

    c = json_object_get(data, "conversation_id");
    conv.data = (u_char *) json_string_value(c);
    conv.len = json_string_length(c);

    ngx_famcall_send_item(item, &me, &conv, json_object_get(data, "client_id"),
                          json_object_get(data, "body"), src);

    if (ngx_famcall_batch_add(ngx_famcall_chat_batcher((ngx_cycle_t *)
                                                       ngx_cycle), item,
                              ngx_famcall_gw_batch_done, op, &op->entry)
        != NGX_OK)
    {
        ngx_famcall_gw_answer(op, NGX_FAMCALL_BATCH_FAILED, NULL, 0);
    }
}


static void
ngx_famcall_gw_delivered(void *owner, json_t *data)
{
    ngx_famcall_gw_receipt(owner, data, "delivered");
}


static void
ngx_famcall_gw_read(void *owner, json_t *data)
{
    ngx_famcall_gw_receipt(owner, data, "read");
}


static void
ngx_famcall_gw_receipt(ngx_famcall_gw_op_t *op, json_t *data,
    const char *kind)
{
    char         user[NGX_FAMCALL_ID_LEN + 1];
    char         src[NGX_FAMCALL_GW_SRC_LEN + 1];
    char         seq[NGX_INT64_LEN + 1];
    long long    n;
    const char  *params[5];

    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);

    n = ngx_famcall_event_int(data, "up_to_seq", 0);
    ngx_snprintf((u_char *) seq, sizeof(seq), "%L%Z", (int64_t) n);

    params[0] = user;
    params[1] = ngx_famcall_json_string(data, "conversation_id");
    params[2] = kind;
    params[3] = seq;
    params[4] = src;
    ngx_famcall_gw_query(op, gw_sql(op) + NGX_FAMCALL_GW_SQL_RECEIPT, 5,
                         params);
}


/* the database checks membership and blocks, and tells the members */
static void
ngx_famcall_gw_typing(void *owner, json_t *data)
{
    ngx_famcall_gw_op_t  *op = owner;

    char                       user[NGX_FAMCALL_ID_LEN + 1];
    char                       src[NGX_FAMCALL_GW_SRC_LEN + 1];
    char                       here[NGX_FAMCALL_GW_HERE_LEN];
    ngx_msec_t                 now, full;
    const char                *params[5];
    ngx_famcall_gw_session_t  *s = op->s;

    /* a token bucket: `full` is when it would hold a full burst */
    now = ngx_current_msec;
    full = s->typing_at;

    if ((ngx_msec_int_t) (now - full) < -(ngx_msec_int_t)
            (NGX_FAMCALL_GW_TYPING_BURST - 1) * 1000)
    {
        ngx_famcall_gw_fail(op, "rate_limited",
                            "typing is sent at most once a second", NULL);
        return;
    }

    if ((ngx_msec_int_t) (now - full) > 0) {
        full = now;
    }

    s->typing_at = full + 1000;

    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);

    /* this node's workers: the peer's sockets there get it from us */
    ngx_famcall_gw_node_here(s->gw, here);

    params[0] = user;
    params[1] = ngx_famcall_json_string(data, "conversation_id");
    params[2] = ngx_famcall_json_string(data, "state");
    params[3] = src;
    params[4] = here;
    ngx_famcall_gw_query(op, gw_sql(op) + NGX_FAMCALL_GW_SQL_TYPING, 5,
                         params);
}


static void
ngx_famcall_gw_sync(void *owner, json_t *data)
{
    ngx_famcall_gw_op_t  *op = owner;

    char         user[NGX_FAMCALL_ID_LEN + 1];
    char         lim[NGX_INT64_LEN + 1];
    long long    n;
    const char  *params[3];

    ngx_famcall_gw_op_user(op, user);

    n = ngx_famcall_event_int(data, "limit", -1);
    if (n > 0) {
        ngx_snprintf((u_char *) lim, sizeof(lim), "%L%Z", (int64_t) n);
    }

    params[0] = user;
    params[1] = ngx_famcall_json_string(data, "since");
    params[2] = (n > 0) ? lim : NULL;
    ngx_famcall_gw_query(op, gw_sql(op) + NGX_FAMCALL_GW_SQL_SYNC, 3,
                         params);
}


void
ngx_famcall_gw_query(ngx_famcall_gw_op_t *op, ngx_uint_t stmt, ngx_uint_t n,
    const char *const *params)
{
    (void) ngx_famcall_gw_query_then(op, stmt, n, params, NULL, NULL);
}


ngx_int_t
ngx_famcall_gw_query_then(ngx_famcall_gw_op_t *op, ngx_uint_t stmt,
    ngx_uint_t n, const char *const *params, ngx_famcall_gw_done_pt done,
    void *data)
{
    ngx_http_famcall_main_conf_t  *fmcf = op->s->gw->fmcf;

    op->query = ngx_famcall_pg_send(fmcf->pg, stmt, n, params,
                                    ngx_famcall_gw_query_done, op);

    if (op->query == NULL) {
        ngx_famcall_gw_answer(op, NGX_FAMCALL_BATCH_UNAVAILABLE, NULL, 0);
        return NGX_ERROR;
    }

    op->done = done;
    op->done_data = data;

    return NGX_OK;
}


/* a fresh access token for the same user keeps the socket open */
static void
ngx_famcall_gw_auth(void *owner, json_t *data)
{
    ngx_famcall_gw_op_t  *op = owner;

    u_char                        *p;
    u_char                         buf[64];
    const char                    *token;
    ngx_famcall_gw_session_t      *s = op->s;
    ngx_famcall_jwt_claims_t       claims;
    ngx_http_famcall_main_conf_t  *fmcf = s->gw->fmcf;

    token = ngx_famcall_json_string(data, "access_token");

    if (ngx_famcall_jwt_verify(fmcf->jwt_secret.data, fmcf->jwt_secret.len,
                               token, ngx_strlen(token), ngx_time(), &claims)
        != 0
        || ngx_memcmp(claims.user, s->user, 16) != 0)
    {
        ngx_famcall_gw_fail(op, "unauthorized",
                            "not a valid access token for this user",
                            "access_token");
        return;
    }

    s->ws->expires = claims.exp;
    ngx_famcall_ws_rearm(s->ws);

    p = ngx_snprintf(buf, sizeof(buf), "{\"expires_at\":%T}", claims.exp);
    ngx_famcall_gw_answer(op, NGX_HTTP_OK, buf, p - buf);
}


static ngx_famcall_gw_op_t *
ngx_famcall_gw_op_new(ngx_famcall_gw_session_t *s, const char *ref)
{
    char                 *json;
    size_t                len;
    json_t               *j;
    ngx_famcall_gw_op_t  *op;

    json = NULL;

    if (ref != NULL) {
        j = json_string(ref);
        json = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        json_decref(j);

        if (json == NULL) {
            return NULL;
        }
    }

    len = json ? ngx_strlen(json) : 4;

    op = ngx_alloc(sizeof(ngx_famcall_gw_op_t) + len,
                   s->ws->connection->log);
    if (op == NULL) {
        free(json);
        return NULL;
    }

    op->s = s;
    op->query = NULL;
    op->entry = NULL;
    op->done = NULL;
    op->done_data = NULL;
    op->reflen = len;
    ngx_memcpy(op->ref, json ? json : "null", len);
    free(json);

    ngx_queue_insert_tail(&s->ops, &op->link);
    s->nops++;

    return op;
}


static void
ngx_famcall_gw_op_free(ngx_famcall_gw_op_t *op)
{
    if (op->s != NULL) {
        ngx_queue_remove(&op->link);
        op->s->nops--;
    }

    ngx_free(op);
}


/* the socket is going: no answer may reach it */
void
ngx_famcall_gw_ops_detach(ngx_famcall_gw_session_t *s)
{
    ngx_queue_t          *q;
    ngx_famcall_gw_op_t  *op;

    while (!ngx_queue_empty(&s->ops)) {
        q = ngx_queue_head(&s->ops);
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
}


static void
ngx_famcall_gw_query_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_op_t  *op = data;

    void                    *done_data;
    ngx_famcall_gw_done_pt   done;

    op->query = NULL;

    /* op is freed by its answer */
    done = op->done;
    done_data = op->done_data;

    /* more than three columns: the feature's own, for its done */
    if (status != NGX_FAMCALL_PG_OK || PQntuples(res) != 1
        || PQnfields(res) < 2 || (PQnfields(res) > 3 && done == NULL))
    {
        ngx_famcall_gw_answer(op, status == NGX_FAMCALL_PG_SQL_ERROR
                                  ? NGX_FAMCALL_BATCH_FAILED
                                  : NGX_FAMCALL_BATCH_UNAVAILABLE,
                              NULL, 0);
        res = NULL;
        goto done;
    }

    /* a third column: bus lines that this node delivers itself */
    if (PQnfields(res) >= 3 && !PQgetisnull(res, 0, 2)) {
        (void) ngx_famcall_gw_deliver_lines(op->s->gw,
                                            (u_char *) PQgetvalue(res, 0, 2),
                                            PQgetlength(res, 0, 2));
    }

    ngx_famcall_gw_answer(op,
        ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0)),
        PQgetisnull(res, 0, 1) ? NULL : (u_char *) PQgetvalue(res, 0, 1),
        PQgetisnull(res, 0, 1) ? 0 : PQgetlength(res, 0, 1));

done:

    if (done != NULL) {
        done(done_data, res);
    }
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
void
ngx_famcall_gw_answer(ngx_famcall_gw_op_t *op, ngx_int_t status,
    u_char *body, size_t len)
{
    u_char            *frame, *p;
    size_t             size;
    ngx_famcall_ws_t  *ws = op->s ? op->s->ws : NULL;

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


void
ngx_famcall_gw_fail(ngx_famcall_gw_op_t *op, const char *code,
    const char *message, const char *field)
{
    if (op->s != NULL && ngx_famcall_ws_alive(op->s->ws)) {
        ngx_famcall_gw_error(op->s->ws, op->ref, op->reflen, code, message,
                             field);
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
