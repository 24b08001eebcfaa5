/*
 * famcall: group commit (see ngx_famcall_batch.h).
 *
 * Entries wait in `pending` only while `max_inflight` batches are already
 * at the database; the moment one comes back, the next batch leaves with
 * everything that queued up meanwhile (up to `max_items`).  A batch's
 * query has the pool's timeout, so nothing waits for ever, and a pending
 * batch keeps a graceful shutdown waiting until it is answered.
 *
 * An entry keeps its fields already written as array elements ("..." with
 * '"' and '\' escaped, or NULL), so a batch's parameters are the entries'
 * elements joined by commas inside braces.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_batch.h"


typedef enum {
    NGX_FAMCALL_BATCH_PENDING = 0,
    NGX_FAMCALL_BATCH_SENT
} ngx_famcall_batch_state_e;


struct ngx_famcall_batcher_s {
    ngx_famcall_pg_pool_t       *pg;
    ngx_uint_t                   stmt;
    ngx_uint_t                   nfields;
    ngx_uint_t                   max_inflight;
    ngx_uint_t                   max_items;
    ngx_uint_t                   inflight;
    ngx_queue_t                  pending;
    ngx_uint_t                   npending;
    ngx_event_t                  flush;       /* posted: end of this turn */
    ngx_log_t                   *log;
};


struct ngx_famcall_batch_entry_s {
    ngx_queue_t                  queue;
    ngx_famcall_batcher_t       *batcher;
    ngx_famcall_batch_state_e    state;
    ngx_str_t                    elts[NGX_FAMCALL_BATCH_MAX_FIELDS];
    ngx_famcall_batch_answer_pt  answer;
    void                        *owner;       /* NULL once detached */
    ngx_famcall_batch_entry_t  **ref;         /* the owner's pointer to us */
    unsigned                     answered:1;
};


typedef struct {
    ngx_famcall_batcher_t       *batcher;
    ngx_uint_t                   n;
    ngx_famcall_batch_entry_t   *entries[1];  /* n of them */
} ngx_famcall_batch_t;


static void ngx_famcall_batch_flush(ngx_famcall_batcher_t *b);
static void ngx_famcall_batch_flush_handler(ngx_event_t *ev);
static void ngx_famcall_batch_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res);
static void ngx_famcall_batch_finish(ngx_famcall_batch_t *batch,
    ngx_int_t status);
static void ngx_famcall_batch_answer(ngx_famcall_batch_entry_t *e,
    ngx_int_t status, u_char *body, size_t len);
static void ngx_famcall_batch_entry_free(ngx_famcall_batch_entry_t *e);
static size_t ngx_famcall_batch_elt_len(const ngx_str_t *v);
static u_char *ngx_famcall_batch_elt(u_char *p, const ngx_str_t *v);


ngx_famcall_batcher_t *
ngx_famcall_batcher_create(ngx_pool_t *pool, ngx_famcall_pg_pool_t *pg,
    ngx_uint_t stmt, ngx_uint_t nfields, ngx_uint_t max_inflight,
    ngx_uint_t max_items, ngx_log_t *log)
{
    ngx_famcall_batcher_t  *b;

    if (nfields == 0 || nfields > NGX_FAMCALL_BATCH_MAX_FIELDS) {
        return NULL;
    }

    b = ngx_pcalloc(pool, sizeof(ngx_famcall_batcher_t));
    if (b == NULL) {
        return NULL;
    }

    b->pg = pg;
    b->stmt = stmt;
    b->nfields = nfields;
    b->max_inflight = max_inflight;
    b->max_items = max_items;
    b->log = log;
    ngx_queue_init(&b->pending);

    b->flush.handler = ngx_famcall_batch_flush_handler;
    b->flush.data = b;
    b->flush.log = log;

    return b;
}


ngx_int_t
ngx_famcall_batch_add(ngx_famcall_batcher_t *b, const ngx_str_t *fields,
    ngx_famcall_batch_answer_pt answer, void *owner,
    ngx_famcall_batch_entry_t **ref)
{
    u_char                     *p;
    size_t                      len;
    ngx_uint_t                  f;
    ngx_famcall_batch_entry_t  *e;

    len = 0;
    for (f = 0; f < b->nfields; f++) {
        len += ngx_famcall_batch_elt_len(&fields[f]);
    }

    /* the entry and its elements in one allocation */
    e = ngx_alloc(sizeof(ngx_famcall_batch_entry_t) + len, b->log);
    if (e == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(e, sizeof(ngx_famcall_batch_entry_t));

    p = (u_char *) (e + 1);
    for (f = 0; f < b->nfields; f++) {
        e->elts[f].data = p;
        p = ngx_famcall_batch_elt(p, &fields[f]);
        e->elts[f].len = p - e->elts[f].data;
    }

    e->state = NGX_FAMCALL_BATCH_PENDING;
    e->batcher = b;
    e->answer = answer;
    e->owner = owner;
    e->ref = ref;
    *ref = e;

    ngx_queue_insert_tail(&b->pending, &e->queue);
    b->npending++;

    /*
     * Not at once: at the end of this event-loop turn, so that the sends
     * read from many sockets in one turn leave together.  Nothing waits on
     * a timer; a turn is as long as the work already in hand.
     */
    if (!b->flush.posted) {
        ngx_post_event(&b->flush, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_famcall_batch_flush_handler(ngx_event_t *ev)
{
    ngx_famcall_batch_flush(ev->data);
}


void
ngx_famcall_batch_detach(ngx_famcall_batch_entry_t *e)
{
    e->owner = NULL;
    e->ref = NULL;

    if (e->state == NGX_FAMCALL_BATCH_PENDING) {
        /* never sent: the batcher forgets it */
        ngx_queue_remove(&e->queue);
        e->batcher->npending--;
        ngx_famcall_batch_entry_free(e);
    }
}


static void
ngx_famcall_batch_flush(ngx_famcall_batcher_t *b)
{
    u_char                     *buf, *p;
    size_t                      len;
    ngx_uint_t                  i, n, f;
    ngx_queue_t                *q;
    const char                 *params[NGX_FAMCALL_BATCH_MAX_FIELDS];
    ngx_famcall_batch_t        *batch;
    ngx_famcall_batch_entry_t  *e;

    while (b->inflight < b->max_inflight && b->npending > 0) {

        n = ngx_min(b->npending, b->max_items);

        batch = ngx_alloc(sizeof(ngx_famcall_batch_t)
                          + (n - 1) * sizeof(ngx_famcall_batch_entry_t *),
                          b->log);
        if (batch == NULL) {
            return;     /* the entries stay pending for the next turn */
        }

        batch->batcher = b;
        batch->n = n;

        /* per field: braces, n elements, n - 1 commas, the NUL */
        len = b->nfields * (n + 2);

        for (i = 0; i < n; i++) {
            q = ngx_queue_head(&b->pending);
            ngx_queue_remove(q);
            b->npending--;

            e = ngx_queue_data(q, ngx_famcall_batch_entry_t, queue);
            e->state = NGX_FAMCALL_BATCH_SENT;
            batch->entries[i] = e;

            for (f = 0; f < b->nfields; f++) {
                len += e->elts[f].len;
            }
        }

        buf = ngx_alloc(len, b->log);
        if (buf == NULL) {
            ngx_famcall_batch_finish(batch, NGX_FAMCALL_BATCH_FAILED);
            continue;
        }

        p = buf;
        for (f = 0; f < b->nfields; f++) {
            params[f] = (const char *) p;
            *p++ = '{';

            for (i = 0; i < n; i++) {
                if (i > 0) {
                    *p++ = ',';
                }
                p = ngx_cpymem(p, batch->entries[i]->elts[f].data,
                               batch->entries[i]->elts[f].len);
            }

            *p++ = '}';
            *p++ = '\0';
        }

        /* libpq has copied the parameters once this returns */
        if (ngx_famcall_pg_send(b->pg, b->stmt, b->nfields, params,
                                ngx_famcall_batch_done, batch)
            == NULL)
        {
            ngx_free(buf);
            ngx_famcall_batch_finish(batch, NGX_FAMCALL_BATCH_UNAVAILABLE);
            continue;
        }

        ngx_free(buf);
        b->inflight++;
    }
}


static void
ngx_famcall_batch_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_batch_t  *batch = data;

    int                         row, nrows;
    ngx_int_t                   i, code;
    ngx_famcall_batcher_t      *b = batch->batcher;
    ngx_famcall_batch_entry_t  *e;

    b->inflight--;

    if (status != NGX_FAMCALL_PG_OK) {
        ngx_famcall_batch_finish(batch,
                                 status == NGX_FAMCALL_PG_SQL_ERROR
                                 ? NGX_FAMCALL_BATCH_FAILED
                                 : NGX_FAMCALL_BATCH_UNAVAILABLE);
        ngx_famcall_batch_flush(b);
        return;
    }

    nrows = (PQnfields(res) == 3) ? PQntuples(res) : 0;

    for (row = 0; row < nrows; row++) {
        i = ngx_atoi((u_char *) PQgetvalue(res, row, 0),
                     PQgetlength(res, row, 0));

        if (i < 1 || (ngx_uint_t) i > batch->n) {
            continue;
        }

        e = batch->entries[i - 1];
        if (e->answered) {
            continue;
        }

        code = ngx_atoi((u_char *) PQgetvalue(res, row, 1),
                        PQgetlength(res, row, 1));

        ngx_famcall_batch_answer(e, code,
            PQgetisnull(res, row, 2) ? NULL : (u_char *) PQgetvalue(res, row, 2),
            PQgetisnull(res, row, 2) ? 0 : PQgetlength(res, row, 2));
    }

    /* an item without a row would be a bug in the SQL: say so, once */
    ngx_famcall_batch_finish(batch, NGX_FAMCALL_BATCH_FAILED);
    ngx_famcall_batch_flush(b);
}


/* answer every entry not answered yet with status, and free the batch */
static void
ngx_famcall_batch_finish(ngx_famcall_batch_t *batch, ngx_int_t status)
{
    ngx_uint_t                  i;
    ngx_famcall_batch_entry_t  *e;

    for (i = 0; i < batch->n; i++) {
        e = batch->entries[i];

        if (!e->answered) {
            ngx_famcall_batch_answer(e, status, NULL, 0);
        }

        ngx_famcall_batch_entry_free(e);
    }

    ngx_free(batch);
}


static void
ngx_famcall_batch_answer(ngx_famcall_batch_entry_t *e, ngx_int_t status,
    u_char *body, size_t len)
{
    e->answered = 1;

    if (e->owner == NULL) {
        return;
    }

    /* from here the owner holds no pointer to us: it may go at once */
    if (e->ref != NULL) {
        *e->ref = NULL;
        e->ref = NULL;
    }

    e->answer(e->owner, status, body, len);
}


static void
ngx_famcall_batch_entry_free(ngx_famcall_batch_entry_t *e)
{
    ngx_free(e);
}


/* an array element: NULL, or the value in double quotes */
static size_t
ngx_famcall_batch_elt_len(const ngx_str_t *v)
{
    size_t  i, len;

    if (v->data == NULL) {
        return sizeof("NULL") - 1;
    }

    len = v->len + 2;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '"' || v->data[i] == '\\') {
            len++;
        }
    }

    return len;
}


static u_char *
ngx_famcall_batch_elt(u_char *p, const ngx_str_t *v)
{
    size_t  i;

    if (v->data == NULL) {
        return ngx_cpymem(p, "NULL", sizeof("NULL") - 1);
    }

    *p++ = '"';

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '"' || v->data[i] == '\\') {
            *p++ = '\\';
        }
        *p++ = v->data[i];
    }

    *p++ = '"';

    return p;
}
