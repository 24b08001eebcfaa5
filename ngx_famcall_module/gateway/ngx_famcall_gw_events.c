/*
 * famcall: the events clients send on their sockets (docs/websocket.md).
 * Each is decoded (ngx_famcall_event.c), becomes one database call (sends
 * ride the group-commit batcher), and is answered with ack or error under
 * its ref.  The call is an op in the socket's list until it is answered.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_event.h"

#include "ngx_famcall_gw.h"
#include "ngx_famcall_gw_deliver.h"


static void ngx_famcall_gw_send_message(ngx_famcall_ws_t *ws,
    ngx_famcall_gw_op_t *op, json_t *data, const char *user, const char *src);
static void ngx_famcall_gw_query(ngx_famcall_ws_t *ws, ngx_famcall_gw_op_t *op,
    ngx_famcall_gw_sql_e stmt, ngx_uint_t n, const char *const *params);
static void ngx_famcall_gw_auth(ngx_famcall_ws_t *ws, ngx_famcall_gw_op_t *op,
    json_t *data);
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


void
ngx_famcall_gw_message(ngx_famcall_ws_t *ws, const u_char *data, size_t len)
{
    int                     rc;
    char                    user[NGX_FAMCALL_ID_LEN + 1];
    char                    src[NGX_FAMCALL_GW_SRC_LEN + 1];
    char                    seq[NGX_INT64_LEN + 1];
    char                    lim[NGX_INT64_LEN + 1];
    char                    here[NGX_FAMCALL_GW_HERE_LEN];
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
        ngx_famcall_gw_send_message(ws, op, d, user, src);
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
        ngx_famcall_gw_query(ws, op, NGX_FAMCALL_GW_SQL_RECEIPT, 5, params);
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

        /* this node's workers: the peer's sockets there get it from us */
        ngx_famcall_gw_node_here(((ngx_famcall_gw_conf_t *) ws->gwcf)->gw,
                                 here);

        params[0] = user;
        params[1] = ngx_famcall_json_string(d, "conversation_id");
        params[2] = ngx_famcall_json_string(d, "state");
        params[3] = src;
        params[4] = here;
        ngx_famcall_gw_query(ws, op, NGX_FAMCALL_GW_SQL_TYPING, 5, params);
        break;

    case NGX_FAMCALL_EV_SYNC:
        n = ngx_famcall_event_int(d, "limit", -1);
        if (n > 0) {
            ngx_snprintf((u_char *) lim, sizeof(lim), "%L%Z", (int64_t) n);
        }

        params[0] = user;
        params[1] = ngx_famcall_json_string(d, "since");
        params[2] = (n > 0) ? lim : NULL;
        ngx_famcall_gw_query(ws, op, NGX_FAMCALL_GW_SQL_SYNC, 3, params);
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
    json_t *data, const char *user, const char *src)
{
    json_t                        *c;
    ngx_str_t                      me, conv, item[NGX_FAMCALL_SEND_FIELDS];

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
ngx_famcall_gw_query(ngx_famcall_ws_t *ws, ngx_famcall_gw_op_t *op,
    ngx_famcall_gw_sql_e stmt, ngx_uint_t n, const char *const *params)
{
    ngx_http_famcall_main_conf_t  *fmcf = ws->fmcf;
    ngx_famcall_gw_conf_t         *gwcf = ws->gwcf;

    op->query = ngx_famcall_pg_send(fmcf->pg, gwcf->sql + stmt, n, params,
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
        || ngx_famcall_gw_user_parse((u_char *) claims.sub, ngx_strlen(claims.sub), id) != NGX_OK
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


/* the socket is going: no answer may reach it */
void
ngx_famcall_gw_ops_detach(ngx_famcall_ws_t *ws)
{
    ngx_queue_t          *q;
    ngx_famcall_gw_op_t  *op;

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
}


static void
ngx_famcall_gw_query_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_op_t  *op = data;

    ngx_famcall_gw_conf_t  *gwcf;

    op->query = NULL;

    if (status != NGX_FAMCALL_PG_OK || PQntuples(res) != 1
        || PQnfields(res) < 2 || PQnfields(res) > 3)
    {
        ngx_famcall_gw_answer(op, status == NGX_FAMCALL_PG_SQL_ERROR
                                  ? NGX_FAMCALL_BATCH_FAILED
                                  : NGX_FAMCALL_BATCH_UNAVAILABLE,
                              NULL, 0);
        return;
    }

    /* a third column: bus lines that this node delivers itself */
    if (PQnfields(res) == 3 && !PQgetisnull(res, 0, 2)) {
        gwcf = op->ws->gwcf;
        (void) ngx_famcall_gw_deliver_lines(gwcf->gw,
                                            (u_char *) PQgetvalue(res, 0, 2),
                                            PQgetlength(res, 0, 2));
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
