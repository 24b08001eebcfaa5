/*
 * famcall: the bus.  Every event is a NOTIFY famcall from the transaction
 * that stored it (sql/008_realtime.sql): {"e": [{"t", "u", "x", "d"}]}.
 * The worker's LISTEN connection passes each notification here; each event
 * is rendered once and written to the sockets of its users (u) that live in
 * this worker, except its source socket (x).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_gw.h"


/* a message announced by reference, waiting to be fetched */
typedef struct {
    ngx_famcall_gw_t              *gw;
    json_t                        *ev;
} ngx_famcall_gw_fetch_t;


static void ngx_famcall_gw_deliver(ngx_famcall_gw_t *gw, json_t *ev);
static void ngx_famcall_gw_fetch_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static ngx_int_t ngx_famcall_gw_is_src(ngx_famcall_gw_t *gw,
    ngx_famcall_ws_t *ws, const char *src);


void
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
