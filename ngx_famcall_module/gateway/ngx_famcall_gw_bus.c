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
 *
 * An event too long for one line (a NOTIFY carries under 8000 bytes, a
 * worker's datagram 60 KB) comes as parts, lines whose data is
 * "~<id>.<i>.<n> <piece>": the same type, users and src, and the i-th of
 * n pieces of the data.  A sender's parts come in order and together: a
 * transaction's notifications are delivered together and in order, and a
 * worker's box to another is one ordered stream of datagrams; only the
 * parts of different senders may interleave, so they are put together by
 * id.  A sender that dies half way leaves an event that never completes:
 * it is dropped once NGX_FAMCALL_GW_PARTS_AGE old, or when more than
 * NGX_FAMCALL_GW_PARTS are waiting.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_gw.h"


#define NGX_FAMCALL_GW_PARTS        16          /* events, at once */
#define NGX_FAMCALL_GW_PARTS_MAX    128         /* parts of one event */
#define NGX_FAMCALL_GW_PARTS_SIZE   (512 * 1024) /* one event's data */
#define NGX_FAMCALL_GW_PARTS_AGE    10000


/* an event coming in parts */
typedef struct {
    ngx_queue_t                    link;         /* in gw->parts */
    ngx_msec_t                     started;
    ngx_uint_t                     next;         /* the part it waits for */
    ngx_uint_t                     n;
    size_t                         idlen;
    u_char                         id[64];
    u_char                        *data;
    size_t                         len;
    size_t                         size;
} ngx_famcall_gw_parts_t;


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
static ngx_uint_t ngx_famcall_gw_part(ngx_famcall_gw_t *gw,
    ngx_famcall_gw_line_t *line);
static void ngx_famcall_gw_parts_drop(ngx_famcall_gw_parts_t *p);


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
    ngx_uint_t              n, revoke;
    ngx_queue_t            *q;
    ngx_famcall_gw_user_t     *user;
    ngx_famcall_gw_session_t  *ws;

    if (line->data.data[0] == '~') {
        return ngx_famcall_gw_part(gw, line);
    }

    if (ngx_famcall_gw_hooks_line(gw, line)) {
        return 0;
    }

    if (line->src.len && line->src.data[0] == '=') {
        return ngx_famcall_gw_line_socket(gw, line);
    }

    /* the user's sessions ended: each socket hears it, then is closed */
    revoke = (line->type.len == sizeof("session:revoked") - 1
              && ngx_strncmp(line->type.data, "session:revoked",
                             line->type.len) == 0);

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

            if (revoke) {
                ngx_famcall_ws_close(ws->ws, NGX_FAMCALL_WS_CLOSE_REVOKED,
                                     "session revoked");
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


/*
 * A part: kept until its event is whole, then the event is delivered as
 * if it had come in one line.
 */
static ngx_uint_t
ngx_famcall_gw_part(ngx_famcall_gw_t *gw, ngx_famcall_gw_line_t *line)
{
    u_char                  *p, *last, *dot, *sp;
    u_char                  *data;
    size_t                   idlen, size;
    ngx_int_t                i, n;
    ngx_uint_t               sent;
    ngx_queue_t             *q;
    ngx_famcall_gw_parts_t  *pt;

    if (gw->parts.prev == NULL) {
        ngx_queue_init(&gw->parts);
    }

    /* "~<id>.<i>.<n> <piece>" */
    p = line->data.data + 1;
    last = line->data.data + line->data.len;

    sp = memchr(p, ' ', last - p);
    dot = memchr(p, '.', last - p);

    if (sp == NULL || dot == NULL || dot > sp) {
        goto bad;
    }

    idlen = dot - p;
    p = dot + 1;
    dot = memchr(p, '.', sp - p);

    if (dot == NULL || idlen == 0 || idlen > sizeof(pt->id)) {
        goto bad;
    }

    i = ngx_atoi(p, dot - p);
    n = ngx_atoi(dot + 1, sp - dot - 1);

    if (i < 1 || n < 1 || i > n || n > NGX_FAMCALL_GW_PARTS_MAX) {
        goto bad;
    }

    p = line->data.data + 1;

    /* the oldest go: their senders are gone, or they took far too long */
    while (!ngx_queue_empty(&gw->parts)) {
        q = ngx_queue_head(&gw->parts);
        pt = ngx_queue_data(q, ngx_famcall_gw_parts_t, link);

        if (gw->nparts < NGX_FAMCALL_GW_PARTS
            && ngx_current_msec - pt->started < NGX_FAMCALL_GW_PARTS_AGE)
        {
            break;
        }

        ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                      "famcall: an event in parts never completed: \"%*s\"",
                      pt->idlen, pt->id);
        ngx_famcall_gw_parts_drop(pt);
        gw->nparts--;
    }

    pt = NULL;

    for (q = ngx_queue_head(&gw->parts);
         q != ngx_queue_sentinel(&gw->parts);
         q = ngx_queue_next(q))
    {
        pt = ngx_queue_data(q, ngx_famcall_gw_parts_t, link);

        if (pt->idlen == idlen && ngx_memcmp(pt->id, p, idlen) == 0) {
            break;
        }

        pt = NULL;
    }

    if (pt == NULL) {
        if (i != 1) {
            goto bad;
        }

        pt = ngx_calloc(sizeof(ngx_famcall_gw_parts_t), gw->log);
        if (pt == NULL) {
            return 0;
        }

        pt->started = ngx_current_msec;
        pt->next = 1;
        pt->n = n;
        pt->idlen = idlen;
        ngx_memcpy(pt->id, p, idlen);
        ngx_queue_insert_tail(&gw->parts, &pt->link);
        gw->nparts++;
    }

    if ((ngx_uint_t) i != pt->next || (ngx_uint_t) n != pt->n) {
        ngx_famcall_gw_parts_drop(pt);
        gw->nparts--;
        goto bad;
    }

    p = sp + 1;
    size = pt->len + (last - p);

    if (size > NGX_FAMCALL_GW_PARTS_SIZE) {
        ngx_famcall_gw_parts_drop(pt);
        gw->nparts--;
        goto bad;
    }

    if (size > pt->size) {
        size = ngx_max(size, ngx_min(2 * pt->size, NGX_FAMCALL_GW_PARTS_SIZE));

        data = ngx_alloc(size, gw->log);
        if (data == NULL) {
            ngx_famcall_gw_parts_drop(pt);
            gw->nparts--;
            return 0;
        }

        if (pt->len) {
            ngx_memcpy(data, pt->data, pt->len);
        }

        ngx_free(pt->data);
        pt->data = data;
        pt->size = size;
    }

    pt->len = ngx_cpymem(pt->data + pt->len, p, last - p) - pt->data;
    pt->next++;

    if (pt->next <= pt->n) {
        return 0;
    }

    /* whole: the event as its sender wrote it */
    ngx_queue_remove(&pt->link);
    gw->nparts--;

    sent = 0;

    if (pt->len > 0 && pt->data[0] != '~') {
        line->data.data = pt->data;
        line->data.len = pt->len;
        sent = ngx_famcall_gw_line_deliver(gw, line);
    }

    ngx_free(pt->data);
    ngx_free(pt);

    return sent;

bad:

    ngx_log_error(NGX_LOG_ERR, gw->log, 0,
                  "famcall: a part of an event out of place ignored: \"%*s\"",
                  ngx_min(line->data.len, 60), line->data.data);
    return 0;
}


static void
ngx_famcall_gw_parts_drop(ngx_famcall_gw_parts_t *pt)
{
    ngx_queue_remove(&pt->link);
    ngx_free(pt->data);
    ngx_free(pt);
}


/* the worker exits: what never completed */
void
ngx_famcall_gw_parts_free(ngx_famcall_gw_t *gw)
{
    ngx_queue_t  *q;

    if (gw->parts.prev == NULL) {
        return;
    }

    while (!ngx_queue_empty(&gw->parts)) {
        q = ngx_queue_head(&gw->parts);
        ngx_famcall_gw_parts_drop(ngx_queue_data(q, ngx_famcall_gw_parts_t,
                                                 link));
    }

    gw->nparts = 0;
}


void
ngx_famcall_gw_resync_all(ngx_famcall_gw_t *gw)
{
    ngx_uint_t              b;
    ngx_queue_t            *q, *s;
    ngx_famcall_gw_user_t  *u;

    static const char  resync[] = "{\"type\":\"resync\",\"data\":{}}";

    /* what features keep from the bus may be out of date too */
    ngx_famcall_gw_hooks_resync(gw);

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
