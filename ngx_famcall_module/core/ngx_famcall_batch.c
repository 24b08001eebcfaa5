/*
 * famcall: group commit, node-wide (see ngx_famcall_batch.h).
 *
 * The worker that queues an item keeps its entry (owner, answer), found
 * by the item's token; the item itself goes to the worker's stream in
 * shared memory (ngx_famcall_batch_queue.c).  The stream's runner sends
 * one batch at a time: when it comes back, the runner answers its own
 * entries, sends the other workers theirs (one message per worker,
 * ngx_famcall_ipc.c), and takes the next batch, or lets go of the stream
 * when nothing is queued.  A batch's query has the pool's timeout, so
 * nothing waits for ever, and a pending batch keeps a graceful shutdown
 * waiting until it is answered.  An entry whose answer never comes (its
 * runner died) gets 503 after the batcher's timeout; the client retries
 * with the same client_id, which answers it with what was stored.
 *
 * The streams may take turns: a runner whose items are few and fresh waits
 * while another stream's batch is at the database, or while another
 * stream has waited longer for its turn, and is woken when that batch
 * comes back.  A batch has a fixed cost in PostgreSQL worth more than a
 * dozen sends (docs/benchmarks.md, "What we learned"), and streams that
 * never wait run many small batches side by side, most of
 * whose commits queue behind each other anyway (a NOTIFY's commits are
 * serialised).  Turns make fewer, bigger batches when the node is calm;
 * a backlog (NGX_FAMCALL_BATCH_TURN_ITEMS items, or an oldest one
 * NGX_FAMCALL_BATCH_TURN_MS old) goes at once, side by side, as before.
 * Off by default (famcall_send_turns): the few milliseconds they add to
 * the median raise the p99 with it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_batch.h"
#include "ngx_famcall_batch_queue.h"
#include "ngx_famcall_ipc.h"


#define NGX_FAMCALL_BATCHERS  4

/* a stream waits for its turn only with fewer items than this, all of
   them younger than this: so a turn adds at most that much to a send */
#define NGX_FAMCALL_BATCH_TURN_ITEMS  48
#define NGX_FAMCALL_BATCH_TURN_MS     8
/* a batch at the database for longer is stuck, or its runner is gone:
   nobody waits for it */
#define NGX_FAMCALL_BATCH_TURN_BUSY_MS  100


/* this worker's side of one of the node's streams */
typedef struct {
    ngx_famcall_batcher_t       *batcher;
    ngx_famcall_bq_t            *queue;       /* in shared memory */
    ngx_uint_t                   index;
    unsigned                     running:1;   /* this worker runs it */
    unsigned                     inflight:1;  /* its batch at the database */
    ngx_event_t                  flush;       /* posted: end of this turn */
    ngx_event_t                  turn;        /* its wait for its turn
                                                 ends at the latest */
    struct ngx_famcall_batch_s  *batch;       /* the one it runs at a time */
} ngx_famcall_batch_stream_t;


/*
 * The worker's batchers, found by the id their messages carry: the data of
 * the worker's batch message handlers (ngx_famcall_ipc_on).
 */
typedef struct {
    ngx_famcall_batcher_t       *batchers[NGX_FAMCALL_BATCHERS];
    ngx_uint_t                   n;
    u_char                      *msg;         /* answers being written to
                                                 another worker */
} ngx_famcall_batch_set_t;


struct ngx_famcall_batcher_s {
    ngx_uint_t                   id;          /* in its set */
    ngx_famcall_batch_set_t     *set;
    ngx_famcall_ipc_t           *ipc;
    ngx_famcall_pg_pool_t       *pg;
    ngx_uint_t                   stmt;
    ngx_uint_t                   nfields;
    ngx_uint_t                   part;        /* the field picking a stream */
    ngx_uint_t                   max_items;
    ngx_uint_t                   turns;       /* famcall_send_turns */
    ngx_msec_t                   timeout;
    ngx_msec_t                   stale;       /* timeout / 2 */
    ngx_uint_t                   nstreams;
    ngx_famcall_batch_stream_t  *streams;

    uint64_t                     next_token;
    ngx_rbtree_t                 entries;     /* by token */
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  waiting;     /* oldest first */
    ngx_queue_t                  refused;     /* the queue was full */
    time_t                       refused_logged;

    ngx_event_t                  refuse;      /* posted: answer `refused` */
    ngx_event_t                  expire;      /* the oldest entry's time */
    ngx_log_t                   *log;
};


struct ngx_famcall_batch_entry_s {
    ngx_rbtree_node_t            node;        /* key: the token */
    ngx_queue_t                  queue;       /* waiting or refused */
    ngx_famcall_batcher_t       *batcher;
    ngx_msec_t                   added;
    ngx_famcall_batch_answer_pt  answer;
    void                        *owner;
    ngx_famcall_batch_entry_t  **ref;         /* the owner's pointer to us */
    unsigned                     in_tree:1;
};


/*
 * A batch at the database: whose its items are, and, once it is back, each
 * item's row.  A stream has one, allocated with it: a stream runs one
 * batch at a time, and nothing is allocated per batch.
 */
typedef struct ngx_famcall_batch_s {
    ngx_famcall_batch_stream_t  *stream;
    ngx_uint_t                   n;
    int                         *row;         /* -1: no row */
    ngx_famcall_bq_origin_t      origins[1];  /* n of them */
} ngx_famcall_batch_t;


/* an answer in a message: token, status, body length (-1: none), body */
typedef struct {
    uint64_t                     token;
    int32_t                      status;
    int32_t                      len;
} ngx_famcall_batch_wire_t;


static void ngx_famcall_batch_flush_handler(ngx_event_t *ev);
static void ngx_famcall_batch_run(ngx_famcall_batch_stream_t *st);
static ngx_msec_t ngx_famcall_batch_wait_turn(ngx_famcall_batch_stream_t *st);
static void ngx_famcall_batch_resume(ngx_famcall_batch_stream_t *st);
static void ngx_famcall_batch_wake(ngx_famcall_batch_stream_t *st);
static void ngx_famcall_batch_hand_on(ngx_famcall_batch_stream_t *st);
static void ngx_famcall_batch_claim(ngx_famcall_batch_stream_t *st);
static void ngx_famcall_batch_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res);
static void ngx_famcall_batch_route(ngx_famcall_batch_t *batch,
    ngx_int_t status, PGresult *res);
static void ngx_famcall_batch_item(ngx_famcall_batch_t *batch, ngx_uint_t k,
    PGresult *res, ngx_int_t *status, u_char **body, size_t *len);
static void ngx_famcall_batch_send_answers(ngx_famcall_batch_t *batch,
    ngx_uint_t k, ngx_int_t status, PGresult *res);
static void ngx_famcall_batch_answers(void *data, u_char *msg, size_t len);
static void ngx_famcall_batch_kick(void *data, u_char *msg, size_t len);
static void ngx_famcall_batch_deliver(ngx_famcall_batcher_t *b,
    uint64_t token, ngx_int_t status, u_char *body, size_t len);
static void ngx_famcall_batch_answer(ngx_famcall_batch_entry_t *e,
    ngx_int_t status, u_char *body, size_t len);
static void ngx_famcall_batch_forget(ngx_famcall_batch_entry_t *e);
static void ngx_famcall_batch_drop(ngx_queue_t *q);
static void ngx_famcall_batch_refuse_handler(ngx_event_t *ev);
static void ngx_famcall_batch_expire_handler(ngx_event_t *ev);
static void ngx_famcall_batch_arm(ngx_famcall_batcher_t *b);


ngx_shm_zone_t *
ngx_famcall_batch_zone(ngx_conf_t *cf, ngx_str_t *name, ngx_uint_t nstreams,
    size_t queue_size, void *tag)
{
    return ngx_famcall_bq_zone(cf, name, nstreams, queue_size, tag);
}


ngx_famcall_batcher_t *
ngx_famcall_batcher_create(ngx_pool_t *pool, ngx_famcall_pg_pool_t *pg,
    ngx_famcall_ipc_t *ipc, ngx_shm_zone_t *zone, ngx_uint_t stmt,
    ngx_uint_t nfields, ngx_uint_t part, ngx_uint_t max_items,
    ngx_uint_t turns, ngx_msec_t timeout, ngx_log_t *log)
{
    ngx_uint_t                   i;
    ngx_famcall_batcher_t       *b;
    ngx_famcall_batch_set_t     *set;
    ngx_famcall_batch_stream_t  *st;

    if (nfields == 0 || nfields > NGX_FAMCALL_BATCH_MAX_FIELDS
        || part >= nfields)
    {
        return NULL;
    }

    /* the worker's first batcher makes the set its messages go through */
    set = ngx_famcall_ipc_data(ipc, NGX_FAMCALL_IPC_BATCH_ANSWERS);

    if (set == NULL) {
        set = ngx_pcalloc(pool, sizeof(ngx_famcall_batch_set_t));
        if (set == NULL) {
            return NULL;
        }

        set->msg = ngx_palloc(pool, NGX_FAMCALL_IPC_MAX);
        if (set->msg == NULL) {
            return NULL;
        }

        ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BATCH_ANSWERS,
                           ngx_famcall_batch_answers, set);
        ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BATCH_KICK,
                           ngx_famcall_batch_kick, set);
    }

    if (set->n == NGX_FAMCALL_BATCHERS) {
        return NULL;
    }

    b = ngx_pcalloc(pool, sizeof(ngx_famcall_batcher_t));
    if (b == NULL) {
        return NULL;
    }

    b->id = set->n;
    b->set = set;
    b->ipc = ipc;
    b->pg = pg;
    b->stmt = stmt;
    b->nfields = nfields;
    b->part = part;
    b->max_items = max_items;
    b->turns = turns;
    b->timeout = timeout;
    b->stale = timeout / 2;
    b->log = log;

    /*
     * Tokens start at random: an answer meant for a worker that died, and
     * whose pid another process reuses, then matches none of its entries.
     */
    b->next_token = ((uint64_t) ngx_random() << 33)
                    ^ ((uint64_t) ngx_random() << 11) ^ (uint64_t) ngx_random();

    b->nstreams = ngx_famcall_bq_nstreams(zone);
    b->streams = ngx_pcalloc(pool,
                             b->nstreams * sizeof(ngx_famcall_batch_stream_t));
    if (b->streams == NULL) {
        return NULL;
    }

    for (i = 0; i < b->nstreams; i++) {
        st = &b->streams[i];

        st->batch = ngx_palloc(pool, sizeof(ngx_famcall_batch_t)
                                     + (max_items - 1)
                                       * sizeof(ngx_famcall_bq_origin_t));
        if (st->batch == NULL) {
            return NULL;
        }

        st->batch->stream = st;
        st->batch->row = ngx_palloc(pool, max_items * sizeof(int));
        if (st->batch->row == NULL) {
            return NULL;
        }

        st->batcher = b;
        st->queue = ngx_famcall_bq_stream(zone, i);
        st->index = i;
        st->flush.handler = ngx_famcall_batch_flush_handler;
        st->flush.data = st;
        st->flush.log = log;
        /* not cancelable: an exiting worker waits the few ms for it */
        st->turn.handler = ngx_famcall_batch_flush_handler;
        st->turn.data = st;
        st->turn.log = log;
    }

    ngx_rbtree_init(&b->entries, &b->sentinel, ngx_rbtree_insert_value);
    ngx_queue_init(&b->waiting);
    ngx_queue_init(&b->refused);

    b->refuse.handler = ngx_famcall_batch_refuse_handler;
    b->refuse.data = b;
    b->refuse.log = log;

    /* not cancelable: an HTTP request waiting for its answer keeps a
       graceful shutdown waiting (a socket's entries go when it closes) */
    b->expire.handler = ngx_famcall_batch_expire_handler;
    b->expire.data = b;
    b->expire.log = log;

    set->batchers[set->n++] = b;

    /* items that a runner which died before this worker started left */
    for (i = 0; i < b->nstreams; i++) {
        ngx_famcall_batch_claim(&b->streams[i]);
    }

    return b;
}


void
ngx_famcall_batcher_exit(ngx_famcall_batcher_t *b)
{
    ngx_uint_t                   i;
    ngx_famcall_batch_stream_t  *st;

    for (i = 0; i < b->nstreams; i++) {
        st = &b->streams[i];

        if (st->running) {
            ngx_famcall_batch_hand_on(st);
        }

        if (st->flush.posted) {
            ngx_delete_posted_event(&st->flush);
        }
    }

    if (b->refuse.posted) {
        ngx_delete_posted_event(&b->refuse);
    }

    /* whatever still waits has no one left to answer (a fast shutdown) */
    ngx_famcall_batch_drop(&b->waiting);
    ngx_famcall_batch_drop(&b->refused);

    if (b->expire.timer_set) {
        ngx_del_timer(&b->expire);
    }
}


/* free a queue's entries without answering: their owners are gone too */
static void
ngx_famcall_batch_drop(ngx_queue_t *q)
{
    ngx_famcall_batch_entry_t  *e;

    while (!ngx_queue_empty(q)) {
        e = ngx_queue_data(ngx_queue_head(q), ngx_famcall_batch_entry_t,
                           queue);
        if (e->ref != NULL) {
            *e->ref = NULL;
        }
        ngx_famcall_batch_forget(e);
    }
}


ngx_int_t
ngx_famcall_batch_add(ngx_famcall_batcher_t *b, const ngx_str_t *fields,
    ngx_famcall_batch_answer_pt answer, void *owner,
    ngx_famcall_batch_entry_t **ref)
{
    ngx_uint_t                   run;
    const ngx_str_t             *key;
    ngx_famcall_batch_entry_t   *e;
    ngx_famcall_batch_stream_t  *st;

    e = ngx_calloc(sizeof(ngx_famcall_batch_entry_t), b->log);
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->batcher = b;
    e->added = ngx_current_msec;
    e->answer = answer;
    e->owner = owner;
    e->ref = ref;
    e->node.key = (ngx_rbtree_key_t) ++b->next_token;
    *ref = e;

    /*
     * The stream by the item's key (the conversation): one key's items
     * are stored in the order they were queued, since a stream runs one
     * batch at a time, and two streams never wait on each other's locks.
     */
    key = &fields[b->part];
    st = &b->streams[key->data ? ngx_crc32_short(key->data, key->len)
                                 % b->nstreams
                               : 0];

    if (ngx_famcall_bq_put(st->queue, e->node.key, b->nfields, fields,
                           b->stale, &run)
        != NGX_OK)
    {
        if (b->refused_logged != ngx_time()) {
            b->refused_logged = ngx_time();
            ngx_log_error(NGX_LOG_WARN, b->log, 0,
                          "famcall: the send queue is full, answering 503 "
                          "(famcall_send_queue_size)");
        }

        ngx_queue_insert_tail(&b->refused, &e->queue);
        if (!b->refuse.posted) {
            ngx_post_event(&b->refuse, &ngx_posted_events);
        }

        return NGX_OK;
    }

    ngx_rbtree_insert(&b->entries, &e->node);
    e->in_tree = 1;
    ngx_queue_insert_tail(&b->waiting, &e->queue);

    if (!b->expire.timer_set) {
        ngx_famcall_batch_arm(b);
    }

    /*
     * Not at once: at the end of this event-loop turn, so that the sends
     * read from many sockets in one turn leave together.  Nothing waits on
     * a timer; a turn is as long as the work already in hand.
     */
    if (run && !st->running) {
        ngx_log_debug1(NGX_LOG_DEBUG_CORE, b->log, 0,
                       "famcall batch: stream %ui idle, this worker runs it",
                       st->index);
        st->running = 1;
        ngx_post_event(&st->flush, &ngx_posted_events);
    }

    return NGX_OK;
}


void
ngx_famcall_batch_detach(ngx_famcall_batch_entry_t *e)
{
    ngx_famcall_batch_forget(e);
}


static void
ngx_famcall_batch_flush_handler(ngx_event_t *ev)
{
    ngx_famcall_batch_run(ev->data);
}


/* the runner, with no batch at the database: send the next one, or let go */
static void
ngx_famcall_batch_run(ngx_famcall_batch_stream_t *st)
{
    u_char                 *buf;
    ngx_uint_t              n;
    ngx_msec_t              wait;
    const char             *params[NGX_FAMCALL_BATCH_MAX_FIELDS];
    ngx_famcall_batch_t    *batch;
    ngx_famcall_batcher_t  *b = st->batcher;

    while (st->running && !st->inflight) {

        batch = st->batch;

        wait = ngx_famcall_batch_wait_turn(st);
        if (wait) {
            if (!st->turn.timer_set) {
                ngx_log_debug2(NGX_LOG_DEBUG_CORE, b->log, 0,
                               "famcall batch: stream %ui waits its turn, "
                               "%M ms at most", st->index, wait);
                ngx_add_timer(&st->turn, wait);
            }
            return;
        }

        if (st->turn.timer_set) {
            ngx_del_timer(&st->turn);
        }

        n = ngx_famcall_bq_take(st->queue, b->nfields, b->max_items, &buf,
                                params, batch->origins, b->log);
        if (n == 0) {
            ngx_log_debug1(NGX_LOG_DEBUG_CORE, b->log, 0,
                           "famcall batch: stream %ui empty, let go",
                           st->index);
            st->running = 0;    /* nothing queued: the stream is let go */
            return;
        }

        batch->n = n;

        ngx_log_debug2(NGX_LOG_DEBUG_CORE, b->log, 0,
                       "famcall batch: stream %ui sends a batch of %ui",
                       st->index, n);

        if (buf == NULL) {
            ngx_famcall_batch_route(batch, NGX_FAMCALL_BATCH_FAILED, NULL);
            continue;
        }

        /* libpq has copied the parameters once this returns */
        if (ngx_famcall_pg_send(b->pg, b->stmt, b->nfields, params,
                                ngx_famcall_batch_done, batch)
            == NULL)
        {
            ngx_free(buf);
            ngx_famcall_batch_route(batch, NGX_FAMCALL_BATCH_UNAVAILABLE,
                                    NULL);
            continue;
        }

        ngx_free(buf);
        st->inflight = 1;
        ngx_famcall_bq_set_busy(st->queue, 1);
    }
}


/*
 * Whether the runner waits for its turn, and for how long at most: while
 * another stream's batch is at the database, or another runner has been
 * waiting for longer than this one, unless this one has a backlog.  The
 * waiting mark goes up before the others are looked at, and a batch that
 * comes back is marked done before its runner looks for waiting ones
 * (ngx_famcall_batch_done): so one of the two sees the other.  A mark
 * older than a turn can last is a runner that died waiting: ignored.
 */
static ngx_msec_t
ngx_famcall_batch_wait_turn(ngx_famcall_batch_stream_t *st)
{
    ngx_pid_t               runner;
    ngx_uint_t              j, n, turn;
    ngx_msec_t              since, mine;
    ngx_msec_int_t          age;
    ngx_famcall_batcher_t  *b = st->batcher;

    if (!b->turns || b->nstreams < 2) {
        return 0;
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_famcall_bq_clear_waiting(st->queue);
        return 0;
    }

    n = ngx_famcall_bq_backlog(st->queue, &age);

    if (n == 0 || n >= NGX_FAMCALL_BATCH_TURN_ITEMS
        || age >= NGX_FAMCALL_BATCH_TURN_MS)
    {
        ngx_famcall_bq_clear_waiting(st->queue);
        return 0;
    }

    mine = ngx_famcall_bq_waiting(st->queue, &runner);
    if (mine == 0) {
        mine = ngx_current_msec;
        ngx_famcall_bq_set_waiting(st->queue, mine);
    }

    turn = 1;

    for (j = 0; j < b->nstreams; j++) {
        if (j == st->index) {
            continue;
        }

        since = ngx_famcall_bq_busy(b->streams[j].queue);

        if (since != 0
            && (ngx_msec_int_t) (ngx_current_msec - since)
               < NGX_FAMCALL_BATCH_TURN_BUSY_MS)
        {
            turn = 0;
            break;
        }

        since = ngx_famcall_bq_waiting(b->streams[j].queue, &runner);

        if (since != 0
            && (ngx_msec_int_t) (ngx_current_msec - since)
               <= NGX_FAMCALL_BATCH_TURN_MS
            && ((ngx_msec_int_t) (mine - since) > 0
                || ((ngx_msec_int_t) (mine - since) == 0 && j < st->index)))
        {
            /* it has waited longer (or as long, and comes first) */
            turn = 0;
            break;
        }
    }

    if (turn) {
        ngx_famcall_bq_clear_waiting(st->queue);
        return 0;
    }

    return NGX_FAMCALL_BATCH_TURN_MS - age;
}


/* this worker's runner of st, if it waits for its turn, looks again at the
   end of this event-loop turn */
static void
ngx_famcall_batch_resume(ngx_famcall_batch_stream_t *st)
{
    if (st->running && !st->inflight && !st->flush.posted) {
        ngx_post_event(&st->flush, &ngx_posted_events);
    }
}


/* the runners waiting for their turn: this worker's at the end of this
   event-loop turn, another worker's by a message */
static void
ngx_famcall_batch_wake(ngx_famcall_batch_stream_t *st)
{
    u_char                       msg[2];
    ngx_pid_t                    runner;
    ngx_uint_t                   j;
    ngx_msec_t                   since;
    ngx_famcall_batcher_t       *b = st->batcher;
    ngx_famcall_batch_stream_t  *other;

    for (j = 0; j < b->nstreams; j++) {
        other = &b->streams[j];

        if (j == st->index) {
            continue;
        }

        /* a mark older than a turn lasts: its runner died waiting */
        since = ngx_famcall_bq_waiting(other->queue, &runner);

        if (since == 0 || runner == 0
            || (ngx_msec_int_t) (ngx_current_msec - since)
               > NGX_FAMCALL_BATCH_TURN_MS)
        {
            continue;
        }

        if (runner == ngx_pid) {
            ngx_famcall_batch_resume(other);
            continue;
        }

        msg[0] = (u_char) b->id;
        msg[1] = (u_char) j;
        ngx_log_debug2(NGX_LOG_DEBUG_CORE, b->log, 0,
                       "famcall batch: stream %ui's batch is back, "
                       "worker %P's turn", j, runner);

        (void) ngx_famcall_ipc_send(b->ipc, runner,
                                    NGX_FAMCALL_IPC_BATCH_KICK, msg, 2);
    }
}


/* an exiting runner lets go, and tells a worker with items queued */
static void
ngx_famcall_batch_hand_on(ngx_famcall_batch_stream_t *st)
{
    u_char     msg[2];
    ngx_pid_t  kick;

    if (ngx_famcall_bq_release(st->queue, &kick) != NGX_OK) {
        return;     /* only its own items are left: it finishes them */
    }

    st->running = 0;

    ngx_log_debug2(NGX_LOG_DEBUG_CORE, st->batcher->log, 0,
                   "famcall batch: exiting, stream %ui handed on to %P",
                   st->index, kick);

    if (kick != 0) {
        msg[0] = (u_char) st->batcher->id;
        msg[1] = (u_char) st->index;
        (void) ngx_famcall_ipc_send(st->batcher->ipc, kick,
                                    NGX_FAMCALL_IPC_BATCH_KICK, msg, 2);
    }
}


/* run the stream if it has items and no (live) runner */
static void
ngx_famcall_batch_claim(ngx_famcall_batch_stream_t *st)
{
    if (st->running) {
        return;
    }

    if (ngx_famcall_bq_claim(st->queue, st->batcher->stale)) {
        ngx_log_debug1(NGX_LOG_DEBUG_CORE, st->batcher->log, 0,
                       "famcall batch: stream %ui claimed", st->index);
        st->running = 1;
        if (!st->flush.posted) {
            ngx_post_event(&st->flush, &ngx_posted_events);
        }
    }
}


static void
ngx_famcall_batch_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_batch_t  *batch = data;

    ngx_famcall_batch_stream_t  *st = batch->stream;

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, st->batcher->log, 0,
                   "famcall batch: stream %ui's batch of %ui back: %d",
                   st->index, batch->n, (int) status);

    st->inflight = 0;
    ngx_famcall_bq_set_busy(st->queue, 0);

    ngx_famcall_batch_route(batch,
                            status == NGX_FAMCALL_PG_OK ? NGX_OK
                            : status == NGX_FAMCALL_PG_SQL_ERROR
                              ? NGX_FAMCALL_BATCH_FAILED
                              : NGX_FAMCALL_BATCH_UNAVAILABLE,
                            status == NGX_FAMCALL_PG_OK ? res : NULL);

    /*
     * An exiting worker hands the stream on after each batch (it finishes
     * its own sends): after, not before, so that a stream passed between
     * exiting workers still moves on by a batch at every pass.
     */
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_famcall_batch_hand_on(st);
    }

    ngx_famcall_batch_wake(st);
    ngx_famcall_batch_run(st);
}


/*
 * Every item of the batch gets its row's answer (status NGX_OK and res),
 * or status: this worker's at once, each other worker's in one message
 * (or as few as its answers fit in).  An item without a row would be a
 * bug in the SQL: it gets 500.
 */
static void
ngx_famcall_batch_route(ngx_famcall_batch_t *batch, ngx_int_t status,
    PGresult *res)
{
    int                     row, nrows;
    u_char                 *body;
    size_t                  len;
    ngx_int_t               i, code;
    ngx_uint_t              k;
    ngx_famcall_batcher_t  *b = batch->stream->batcher;

    for (k = 0; k < batch->n; k++) {
        batch->row[k] = -1;
    }

    nrows = (res != NULL && PQnfields(res) == 3) ? PQntuples(res) : 0;

    for (row = 0; row < nrows; row++) {
        i = ngx_atoi((u_char *) PQgetvalue(res, row, 0),
                     PQgetlength(res, row, 0));

        if (i >= 1 && (ngx_uint_t) i <= batch->n && batch->row[i - 1] == -1) {
            batch->row[i - 1] = row;
        }
    }

    if (status == NGX_OK) {
        status = NGX_FAMCALL_BATCH_FAILED;
    }

    for (k = 0; k < batch->n; k++) {
        if (batch->origins[k].pid == ngx_pid) {
            code = status;
            ngx_famcall_batch_item(batch, k, res, &code, &body, &len);
            ngx_famcall_batch_deliver(b, batch->origins[k].token, code,
                                      body, len);

        } else if (batch->origins[k].pid != 0) {
            ngx_famcall_batch_send_answers(batch, k, status, res);
        }
    }
}


/* item k's answer: its row's, or (status, no body) */
static void
ngx_famcall_batch_item(ngx_famcall_batch_t *batch, ngx_uint_t k,
    PGresult *res, ngx_int_t *status, u_char **body, size_t *len)
{
    int  row = batch->row[k];

    *body = NULL;
    *len = 0;

    if (row == -1) {
        return;
    }

    *status = ngx_atoi((u_char *) PQgetvalue(res, row, 1),
                       PQgetlength(res, row, 1));

    if (!PQgetisnull(res, row, 2)) {
        *body = (u_char *) PQgetvalue(res, row, 2);
        *len = PQgetlength(res, row, 2);
    }
}


/*
 * The answers of items k.. that belong to item k's worker, as messages to
 * it; their origins are cleared (pid 0) as they are written.
 */
static void
ngx_famcall_batch_send_answers(ngx_famcall_batch_t *batch, ngx_uint_t k,
    ngx_int_t status, PGresult *res)
{
    u_char                    *body, *m;
    size_t                     len, used;
    ngx_int_t                  code;
    ngx_pid_t                  pid;
    ngx_uint_t                 j;
    ngx_famcall_batch_wire_t   w;

    m = batch->stream->batcher->set->msg;
    m[0] = (u_char) batch->stream->batcher->id;
    used = 1;
    pid = batch->origins[k].pid;

    for (j = k; j < batch->n; j++) {
        if (batch->origins[j].pid != pid) {
            continue;
        }

        batch->origins[j].pid = 0;

        code = status;
        ngx_famcall_batch_item(batch, j, res, &code, &body, &len);

        if (len > NGX_FAMCALL_IPC_MAX - 1 - sizeof(w)) {
            /* cannot happen (a body is at most 4,000 characters) */
            code = NGX_FAMCALL_BATCH_FAILED;
            body = NULL;
            len = 0;
        }

        if (used + sizeof(w) + len > NGX_FAMCALL_IPC_MAX) {
            (void) ngx_famcall_ipc_send(batch->stream->batcher->ipc, pid,
                                        NGX_FAMCALL_IPC_BATCH_ANSWERS,
                                        m, used);
            used = 1;
        }

        w.token = batch->origins[j].token;
        w.status = (int32_t) code;
        w.len = body ? (int32_t) len : -1;

        used = ngx_cpymem(m + used, &w, sizeof(w)) - m;
        if (body != NULL) {
            used = ngx_cpymem(m + used, body, len) - m;
        }
    }

    /* a worker that is gone has no one left to answer */
    (void) ngx_famcall_ipc_send(batch->stream->batcher->ipc, pid,
                                NGX_FAMCALL_IPC_BATCH_ANSWERS, m, used);
}


/* a runner's message: answers for this worker's entries */
static void
ngx_famcall_batch_answers(void *set, u_char *data, size_t len)
{
    u_char                    *p, *last, *body;
    ngx_famcall_batcher_t     *b;
    ngx_famcall_batch_set_t   *bs = set;
    ngx_famcall_batch_wire_t   w;

    if (len < 1 || data[0] >= bs->n) {
        return;
    }

    b = bs->batchers[data[0]];
    p = data + 1;
    last = data + len;

    while ((size_t) (last - p) >= sizeof(w)) {
        ngx_memcpy(&w, p, sizeof(w));
        p += sizeof(w);

        body = NULL;
        if (w.len >= 0) {
            if ((size_t) (last - p) < (size_t) w.len) {
                return;
            }
            body = p;
            p += w.len;
        }

        ngx_famcall_batch_deliver(b, w.token, w.status, body,
                                  body ? (size_t) w.len : 0);
    }
}


/* an exiting runner handed a stream on: run it, if nobody else does */
static void
ngx_famcall_batch_kick(void *set, u_char *data, size_t len)
{
    ngx_famcall_batcher_t       *b;
    ngx_famcall_batch_set_t     *bs = set;
    ngx_famcall_batch_stream_t  *st;

    if (len < 2 || data[0] >= bs->n) {
        return;
    }

    b = bs->batchers[data[0]];

    if (data[1] >= b->nstreams) {
        return;
    }

    st = &b->streams[data[1]];

    if (!st->running) {
        ngx_famcall_batch_claim(st);

    } else {
        ngx_famcall_batch_resume(st);
    }
}


static void
ngx_famcall_batch_deliver(ngx_famcall_batcher_t *b, uint64_t token,
    ngx_int_t status, u_char *body, size_t len)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = b->entries.root;
    sentinel = b->entries.sentinel;

    while (node != sentinel) {
        if ((ngx_rbtree_key_t) token == node->key) {
            ngx_famcall_batch_answer((ngx_famcall_batch_entry_t *) node,
                                     status, body, len);
            return;
        }

        node = ((ngx_rbtree_key_t) token < node->key) ? node->left
                                                      : node->right;
    }

    /* its owner went, or it expired: nobody to answer */
}


static void
ngx_famcall_batch_answer(ngx_famcall_batch_entry_t *e, ngx_int_t status,
    u_char *body, size_t len)
{
    void                         *owner = e->owner;
    ngx_famcall_batch_answer_pt   answer = e->answer;

    /* from here the owner holds no pointer to us: it may go at once */
    if (e->ref != NULL) {
        *e->ref = NULL;
    }

    ngx_famcall_batch_forget(e);

    answer(owner, status, body, len);
}


/* the entry leaves the tree and its queue, and is freed */
static void
ngx_famcall_batch_forget(ngx_famcall_batch_entry_t *e)
{
    ngx_famcall_batcher_t  *b = e->batcher;

    if (e->in_tree) {
        ngx_rbtree_delete(&b->entries, &e->node);
    }

    ngx_queue_remove(&e->queue);
    ngx_free(e);

    if (ngx_queue_empty(&b->waiting) && b->expire.timer_set) {
        ngx_del_timer(&b->expire);
    }
}


static void
ngx_famcall_batch_refuse_handler(ngx_event_t *ev)
{
    ngx_queue_t                *q;
    ngx_famcall_batcher_t      *b = ev->data;
    ngx_famcall_batch_entry_t  *e;

    while (!ngx_queue_empty(&b->refused)) {
        q = ngx_queue_head(&b->refused);
        e = ngx_queue_data(q, ngx_famcall_batch_entry_t, queue);
        ngx_famcall_batch_answer(e, NGX_FAMCALL_BATCH_UNAVAILABLE, NULL, 0);
    }
}


/*
 * At half the timeout of the oldest entry, a stream whose runner died is
 * taken over; at the whole, entries still unanswered get 503.
 */
static void
ngx_famcall_batch_expire_handler(ngx_event_t *ev)
{
    ngx_uint_t                  i;
    ngx_queue_t                *q;
    ngx_famcall_batcher_t      *b = ev->data;
    ngx_famcall_batch_entry_t  *e;

    for (i = 0; i < b->nstreams; i++) {
        ngx_famcall_batch_claim(&b->streams[i]);
    }

    while (!ngx_queue_empty(&b->waiting)) {
        q = ngx_queue_head(&b->waiting);
        e = ngx_queue_data(q, ngx_famcall_batch_entry_t, queue);

        if ((ngx_msec_int_t) (ngx_current_msec - e->added)
            < (ngx_msec_int_t) b->timeout)
        {
            break;
        }

        ngx_log_error(NGX_LOG_WARN, b->log, 0,
                      "famcall: a queued send had no answer in %M ms, "
                      "answering 503", b->timeout);

        ngx_famcall_batch_answer(e, NGX_FAMCALL_BATCH_UNAVAILABLE, NULL, 0);
    }

    if (!ngx_queue_empty(&b->waiting) && !b->expire.timer_set) {
        ngx_famcall_batch_arm(b);
    }
}


/* the timer for the oldest waiting entry's next step */
static void
ngx_famcall_batch_arm(ngx_famcall_batcher_t *b)
{
    ngx_msec_int_t              left;
    ngx_famcall_batch_entry_t  *e;

    e = ngx_queue_data(ngx_queue_head(&b->waiting),
                       ngx_famcall_batch_entry_t, queue);

    left = (ngx_msec_int_t) (e->added + b->stale - ngx_current_msec);
    if (left <= 0) {
        left = (ngx_msec_int_t) (e->added + b->timeout - ngx_current_msec);
    }

    ngx_add_timer(&b->expire, left > 0 ? (ngx_msec_t) left : 1);
}
