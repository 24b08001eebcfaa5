/*
 * famcall: the bus.  Every event is a NOTIFY famcall from the transaction
 * that stored it (sql/008_realtime.sql), one event per line:
 *
 *     <type> <user id>,<user id>,... <source socket or -> <data as JSON>
 *
 * The node's leader passes each worker the lines of the users it has
 * sockets of (ngx_famcall_gw_node.c), and they arrive here.  Routing parses
 * no JSON: the users are looked up in this worker's registry, and for those
 * who have sockets here the frame {"type": <type>, "data": <data>} is put
 * together once from the line's text and written to each of their sockets
 * but the source.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_gw.h"


/* a message announced by reference, waiting to be fetched */
typedef struct {
    ngx_famcall_gw_t              *gw;
    ngx_famcall_gw_line_t          line;         /* users, src: copies */
} ngx_famcall_gw_fetch_t;


static void ngx_famcall_gw_fetch(ngx_famcall_gw_t *gw,
    ngx_famcall_gw_line_t *line);
static void ngx_famcall_gw_fetch_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static uint64_t ngx_famcall_gw_src_here(ngx_famcall_gw_t *gw, ngx_str_t *src);
static ngx_uint_t ngx_famcall_gw_line_socket(ngx_famcall_gw_t *gw,
    ngx_famcall_gw_line_t *line);
static u_char *ngx_famcall_gw_frame(ngx_famcall_gw_t *gw,
    ngx_famcall_gw_line_t *line, size_t *len);


void
ngx_famcall_gw_notify(void *data, const char *payload, size_t len)
{
    ngx_famcall_gw_t  *gw = data;

    u_char                 *p, *last, *eol;
    ngx_famcall_gw_line_t   line;

    if (payload == NULL) {
        /* (re)subscribed: after an outage, or when this worker took the
         * node's LISTEN over, every socket may have missed events, and a
         * sync finds them */
        if (gw->subscribed || gw->took_over) {
            ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                          "famcall: the event bus is back; sockets resync");
            ngx_famcall_gw_resync_all(gw);
        }

        gw->subscribed = 1;
        gw->took_over = 0;
        return;
    }

    p = (u_char *) payload;
    last = p + len;

    while (p < last) {
        /* memchr: a line is mostly its JSON, scanned by every worker */
        eol = memchr(p, '\n', last - p);
        if (eol == NULL) {
            eol = last;
        }

        if (ngx_famcall_gw_line_parse(p, eol, &line) == NGX_OK) {
            (void) ngx_famcall_gw_line_deliver(gw, &line);

        } else {
            ngx_log_error(NGX_LOG_ERR, gw->log, 0,
                          "famcall: unreadable event ignored: \"%*s\"",
                          ngx_min(eol - p, 60), p);
        }

        p = eol + 1;
    }
}


/* "<type> <users> <src> <data>" */
ngx_int_t
ngx_famcall_gw_line_parse(u_char *p, u_char *last, ngx_famcall_gw_line_t *line)
{
    u_char     *sp;
    ngx_str_t  *field[3];
    ngx_uint_t  i;

    field[0] = &line->type;
    field[1] = &line->users;
    field[2] = &line->src;

    for (i = 0; i < 3; i++) {
        sp = memchr(p, ' ', last - p);
        if (sp == NULL || sp == p) {
            return NGX_ERROR;
        }

        field[i]->data = p;
        field[i]->len = sp - p;
        p = sp + 1;
    }

    if (line->src.len == 1 && line->src.data[0] == '-') {
        line->src.len = 0;
    }

    line->data.data = p;
    line->data.len = last - p;

    return line->data.len ? NGX_OK : NGX_ERROR;
}


/*
 * One pass over the line's users; the frame is put together when the first
 * of them turns out to have sockets here (most lines concern no user of
 * this worker).  The sockets written to are counted.  A src "=<src>" is
 * the one socket to write to (ngx_famcall_gw_deliver.h), any other the
 * one not to (its sender).
 */
ngx_uint_t
ngx_famcall_gw_line_deliver(ngx_famcall_gw_t *gw, ngx_famcall_gw_line_t *line)
{
    u_char                 *frame, *u, *end, *comma;
    u_char                  id[16];
    size_t                  len;
    uint64_t                src;
    ngx_uint_t              n;
    ngx_queue_t            *q;
    ngx_famcall_gw_user_t     *user;
    ngx_famcall_gw_session_t  *ws;

    if (line->src.len && line->src.data[0] == '=') {
        return ngx_famcall_gw_line_socket(gw, line);
    }

    n = 0;
    frame = NULL;
    len = 0;
    src = 0;
    u = line->users.data;
    end = u + line->users.len;

    for ( /* void */ ; u < end; u = comma + 1) {
        comma = memchr(u, ',', end - u);
        if (comma == NULL) {
            comma = end;
        }

        if (ngx_famcall_uuid_parse((char *) u, comma - u, id) != 0) {
            continue;
        }

        user = ngx_famcall_gw_user_find(gw, id);
        if (user == NULL) {
            continue;
        }

        if (frame == NULL) {
            if (line->type.len == sizeof("message:ref") - 1
                && ngx_strncmp(line->type.data, "message:ref",
                               line->type.len) == 0)
            {
                ngx_famcall_gw_fetch(gw, line);
                return 0;
            }

            frame = ngx_famcall_gw_frame(gw, line, &len);
            if (frame == NULL) {
                return n;
            }

            src = ngx_famcall_gw_src_here(gw, &line->src);
        }

        for (q = ngx_queue_head(&user->sockets);
             q != ngx_queue_sentinel(&user->sockets);
             q = ngx_queue_next(q))
        {
            ws = ngx_queue_data(q, ngx_famcall_gw_session_t, gw_link);

            if (ws->id != src
                && ngx_famcall_ws_send_text(ws->ws, frame, len) == NGX_OK)
            {
                n++;
            }
        }
    }

    ngx_free(frame);

    return n;
}


/* {"type": <type>, "data": <data>}, to be freed */
static u_char *
ngx_famcall_gw_frame(ngx_famcall_gw_t *gw, ngx_famcall_gw_line_t *line,
    size_t *len)
{
    u_char  *frame, *p;

    *len = sizeof("{\"type\":\"\",\"data\":}") - 1 + line->type.len
           + line->data.len;

    frame = ngx_alloc(*len, gw->log);
    if (frame == NULL) {
        return NULL;
    }

    p = ngx_cpymem(frame, "{\"type\":\"", sizeof("{\"type\":\"") - 1);
    p = ngx_cpymem(p, line->type.data, line->type.len);
    p = ngx_cpymem(p, "\",\"data\":", sizeof("\",\"data\":") - 1);
    p = ngx_cpymem(p, line->data.data, line->data.len);
    *p = '}';

    return frame;
}


/* "=<instance>.<id>": that socket of the line's (one) user, if it is here */
static ngx_uint_t
ngx_famcall_gw_line_socket(ngx_famcall_gw_t *gw, ngx_famcall_gw_line_t *line)
{
    u_char                 *frame;
    u_char                  id[16];
    size_t                  len;
    uint64_t                sid;
    ngx_str_t               src;
    ngx_uint_t              n;
    ngx_queue_t               *q;
    ngx_famcall_gw_user_t     *user;
    ngx_famcall_gw_session_t  *ws;

    src.data = line->src.data + 1;
    src.len = line->src.len - 1;

    sid = ngx_famcall_gw_src_here(gw, &src);

    if (sid == 0
        || ngx_famcall_uuid_parse((char *) line->users.data, line->users.len,
                                  id)
           != 0)
    {
        return 0;
    }

    user = ngx_famcall_gw_user_find(gw, id);
    if (user == NULL) {
        return 0;
    }

    for (q = ngx_queue_head(&user->sockets);
         q != ngx_queue_sentinel(&user->sockets);
         q = ngx_queue_next(q))
    {
        ws = ngx_queue_data(q, ngx_famcall_gw_session_t, gw_link);

        if (ws->id != sid) {
            continue;
        }

        frame = ngx_famcall_gw_frame(gw, line, &len);
        if (frame == NULL) {
            return 0;
        }

        n = (ngx_famcall_ws_send_text(ws->ws, frame, len) == NGX_OK);
        ngx_free(frame);

        return n;
    }

    return 0;
}


/* too big for a notification: fetch it, then deliver as message:new */
static void
ngx_famcall_gw_fetch(ngx_famcall_gw_t *gw, ngx_famcall_gw_line_t *line)
{
    u_char                  *p;
    json_t                  *d;
    const char              *params[1];
    ngx_famcall_gw_fetch_t  *f;

    d = json_loadb((char *) line->data.data, line->data.len, 0, NULL);
    params[0] = ngx_famcall_json_string(d, "id");

    f = ngx_alloc(sizeof(ngx_famcall_gw_fetch_t) + line->users.len
                  + line->src.len, gw->log);

    if (params[0] == NULL || f == NULL) {
        ngx_free(f);
        json_decref(d);
        return;
    }

    f->gw = gw;
    p = (u_char *) (f + 1);

    ngx_str_set(&f->line.type, "message:new");
    f->line.users.data = p;
    f->line.users.len = line->users.len;
    p = ngx_cpymem(p, line->users.data, line->users.len);
    f->line.src.data = p;
    f->line.src.len = line->src.len;
    ngx_memcpy(p, line->src.data, line->src.len);
    ngx_str_null(&f->line.data);

    if (ngx_famcall_pg_send(gw->fmcf->pg,
                            gw->gwcf->sql + NGX_FAMCALL_GW_SQL_MESSAGE_GET,
                            1, params, ngx_famcall_gw_fetch_done, f)
        == NULL)
    {
        ngx_free(f);
    }

    json_decref(d);
}


static void
ngx_famcall_gw_fetch_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_fetch_t  *f = data;

    if (status == NGX_FAMCALL_PG_OK && PQntuples(res) == 1
        && PQnfields(res) == 2 && !PQgetisnull(res, 0, 1)
        && f->gw->buckets != NULL)
    {
        f->line.data.data = (u_char *) PQgetvalue(res, 0, 1);
        f->line.data.len = PQgetlength(res, 0, 1);
        (void) ngx_famcall_gw_line_deliver(f->gw, &f->line);
    }

    ngx_free(f);
}


void
ngx_famcall_gw_resync_all(ngx_famcall_gw_t *gw)
{
    ngx_uint_t              b;
    ngx_queue_t            *q, *s;
    ngx_famcall_gw_user_t  *u;

    static const char  resync[] = "{\"type\":\"resync\",\"data\":{}}";

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
                    (ngx_queue_data(s, ngx_famcall_gw_session_t, gw_link))->ws,
                    (u_char *) resync, sizeof(resync) - 1);
            }
        }
    }
}


/*
 * src is "<worker instance>.<socket id>": the id of the socket here that
 * sent the event, or 0 (socket ids start at 1) when it is not one of ours.
 */
static uint64_t
ngx_famcall_gw_src_here(ngx_famcall_gw_t *gw, ngx_str_t *src)
{
    ngx_int_t  id;

    if (src->len <= NGX_FAMCALL_ID_LEN + 1
        || src->data[NGX_FAMCALL_ID_LEN] != '.'
        || ngx_strncmp(src->data, gw->instance, NGX_FAMCALL_ID_LEN) != 0)
    {
        return 0;
    }

    id = ngx_atoi(src->data + NGX_FAMCALL_ID_LEN + 1,
                  src->len - NGX_FAMCALL_ID_LEN - 1);

    return (id == NGX_ERROR) ? 0 : (uint64_t) id;
}
