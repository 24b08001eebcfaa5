/*
 * famcall: the per-worker PostgreSQL pool (see ngx_famcall_pg.h): where a
 * query goes.  One connection's life is in ngx_famcall_pg_conn.c.
 *
 * The first famcall_db_pool_size connections are always open; the others,
 * up to famcall_db_pool_max, are spares: opened one at a time while every
 * open connection is stuck or full (a spare that fails to connect delays
 * the next one, backing off as a reconnect does), never reconnected, and
 * closed once idle for NGX_FAMCALL_PG_SPARE_IDLE.  Queries go to the
 * always-open connections first, so the spares see no traffic once those
 * move again, and a calm pool pipelines on its always-open connections.
 *
 * "Stuck" is measured without a timer or a syscall: each connection keeps
 * the time its oldest query started waiting (when it was sent to an empty
 * pipeline, or when the query before it completed), and the query sender
 * compares it with nginx's cached clock.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_pg_conn.h"


#define NGX_FAMCALL_PG_MAX_INFLIGHT   64
#define NGX_FAMCALL_PG_MAX_PARAMS     16
#define NGX_FAMCALL_PG_MAX_WAITING    4096

/*
 * A connection whose oldest query has waited this long (ms) with no result
 * is stuck.  Queries normally take a few ms; a batch of sends up to a few
 * tens under load (the send batcher's own "stuck" is the same 100 ms).
 * Shorter opens spares on every hiccup; longer leaves more queries behind
 * a lock before the pool notices.
 */
#define NGX_FAMCALL_PG_STUCK          100

/* a spare with nothing sent for this long (ms) closes */
#define NGX_FAMCALL_PG_SPARE_IDLE     10000


static ngx_famcall_pg_conn_t *ngx_famcall_pg_pick(ngx_famcall_pg_pool_t *pool);
static ngx_famcall_pg_conn_t *ngx_famcall_pg_pick_in(
    ngx_famcall_pg_pool_t *pool, ngx_uint_t from, ngx_uint_t to);
static ngx_uint_t ngx_famcall_pg_stuck(ngx_famcall_pg_conn_t *pc);
static ngx_famcall_pg_conn_t *ngx_famcall_pg_spare_find(
    ngx_famcall_pg_pool_t *pool);
static void ngx_famcall_pg_spare_idle_handler(ngx_event_t *ev);
static void ngx_famcall_pg_timeout_handler(ngx_event_t *ev);
static ngx_famcall_pg_query_t *ngx_famcall_pg_query_new(
    ngx_famcall_pg_pool_t *pool, ngx_uint_t stmt, ngx_uint_t nparams,
    const char *const *values, ngx_famcall_pg_handler_pt handler,
    void *data);
static void ngx_famcall_pg_listen_start(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_warm_start(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_warm_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_pg_listen_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);


ngx_famcall_pg_pool_t *
ngx_famcall_pg_pool_create(ngx_cycle_t *cycle, ngx_str_t *conninfo,
    ngx_uint_t size, ngx_uint_t max, ngx_msec_t timeout,
    const ngx_famcall_stmt_t *stmts, ngx_uint_t nstmts)
{
    ngx_uint_t              i;
    ngx_famcall_pg_pool_t  *pool;
    ngx_famcall_pg_conn_t  *pc;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_famcall_pg_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->log = cycle->log;
    pool->timeout = timeout;
    pool->size = size;
    pool->max = ngx_max(max, size);
    pool->spare_backoff = NGX_FAMCALL_PG_BACKOFF_MIN;
    pool->stmts = stmts;
    pool->nstmts = nstmts;
    ngx_queue_init(&pool->waiting);

    pool->conninfo = ngx_pnalloc(cycle->pool, conninfo->len + 1);
    pool->conns = ngx_pcalloc(cycle->pool,
                              pool->max * sizeof(ngx_famcall_pg_conn_t));
    if (pool->conninfo == NULL || pool->conns == NULL) {
        return NULL;
    }

    (void) ngx_cpystrn((u_char *) pool->conninfo, conninfo->data,
                       conninfo->len + 1);

    for (i = 0; i < pool->max; i++) {
        pc = &pool->conns[i];

        if (ngx_famcall_pg_conn_init(pc, pool, cycle) != NGX_OK) {
            return NULL;
        }

        pc->id = i;

        if (i >= size) {
            pc->spare = 1;      /* DOWN until needed */
            pc->idle.handler = ngx_famcall_pg_spare_idle_handler;
            pc->idle.data = pc;
            pc->idle.log = pool->log;
            pc->idle.cancelable = 1;
            continue;
        }

        ngx_famcall_pg_connect(pc);
    }

    return pool;
}


ngx_int_t
ngx_famcall_pg_listen(ngx_famcall_pg_pool_t *pool, ngx_cycle_t *cycle,
    ngx_uint_t stmt, ngx_famcall_pg_notify_pt notify, void *data)
{
    ngx_famcall_pg_conn_t  *pc;

    pc = pool->listener;

    if (pc != NULL) {
        /* listening again after ngx_famcall_pg_unlisten */
        ngx_famcall_pg_conn_destroy(pc);
        pc->backoff = NGX_FAMCALL_PG_BACKOFF_MIN;

    } else {
        pc = ngx_pcalloc(cycle->pool, sizeof(ngx_famcall_pg_conn_t));
        if (pc == NULL
            || ngx_famcall_pg_conn_init(pc, pool, cycle) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    pc->listener = 1;
    pc->id = pool->max;
    pool->listener = pc;
    pool->listen_stmt = stmt;
    pool->notify = notify;
    pool->notify_data = data;

    ngx_famcall_pg_connect(pc);

    return NGX_OK;
}


void
ngx_famcall_pg_unlisten(ngx_famcall_pg_pool_t *pool)
{
    if (pool->listener != NULL) {
        ngx_famcall_pg_conn_destroy(pool->listener);
        pool->notify = NULL;
    }
}


/* the listener is up: LISTEN again (a new session listens to nothing) */
static void
ngx_famcall_pg_listen_start(ngx_famcall_pg_conn_t *pc)
{
    ngx_famcall_pg_query_t  *q;

    q = ngx_famcall_pg_query_new(pc->pool, pc->pool->listen_stmt, 0, NULL,
                                 ngx_famcall_pg_listen_done, pc);

    if (q == NULL || ngx_famcall_pg_dispatch(pc, q) != NGX_OK) {
        if (q != NULL) {
            ngx_famcall_pg_query_free(q);
        }
        /* the connection is failing: it reconnects and tries again */
    }
}


void
ngx_famcall_pg_warm(ngx_famcall_pg_pool_t *pool, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *params)
{
    pool->warm_stmt = stmt;
    pool->warm_nparams = nparams;
    pool->warm_params = params;
    pool->warm = 1;
}


/*
 * A new connection runs the warm-up statement first: PostgreSQL prepares
 * it and plans a PL/pgSQL function's statements at its first call in a
 * session, tens of milliseconds that otherwise fall on the first batch.
 */
static void
ngx_famcall_pg_warm_start(ngx_famcall_pg_conn_t *pc)
{
    ngx_famcall_pg_query_t  *q;
    ngx_famcall_pg_pool_t   *pool = pc->pool;

    /*
     * not on a spare: it is opened for queries that wait now, and the
     * warm-up would go before them (and may itself wait on a lock)
     */
    if (!pool->warm || pc->spare) {
        return;
    }

    q = ngx_famcall_pg_query_new(pool, pool->warm_stmt, pool->warm_nparams,
                                 pool->warm_params, ngx_famcall_pg_warm_done,
                                 pc);

    if (q == NULL || ngx_famcall_pg_dispatch(pc, q) != NGX_OK) {
        if (q != NULL) {
            ngx_famcall_pg_query_free(q);
        }
    }
}


static void
ngx_famcall_pg_warm_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_pg_conn_t  *pc = data;

    if (status != NGX_FAMCALL_PG_OK) {
        ngx_log_error(NGX_LOG_WARN, pc->pool->log, 0,
                      "famcall: the warm-up statement failed");
    }
}


static void
ngx_famcall_pg_listen_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_pg_conn_t  *pc = data;
    ngx_famcall_pg_pool_t  *pool = pc->pool;

    if (status != NGX_FAMCALL_PG_OK) {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "famcall: LISTEN failed, the connection is reset");
        if (pc->c != NULL && !pc->failed) {
            ngx_famcall_pg_fail_later(pc);
        }
        return;
    }

    /* subscribed: whatever was sent while nobody listened is missed */
    pool->notify(pool->notify_data, NULL, 0);
}


/* a connection is up: what it does first, and what it takes */
void
ngx_famcall_pg_ready(ngx_famcall_pg_conn_t *pc)
{
    ngx_famcall_pg_pool_t  *pool = pc->pool;

    if (pc->listener) {
        ngx_famcall_pg_listen_start(pc);
        return;
    }

    if (pc->spare) {
        pool->spare_backoff = NGX_FAMCALL_PG_BACKOFF_MIN;
        ngx_add_timer(&pc->idle, NGX_FAMCALL_PG_SPARE_IDLE);

    } else {
        ngx_famcall_pg_warm_start(pc);
    }

    ngx_famcall_pg_drain_waiting(pool);
}


/*
 * At worker exit: no owner is called back (their requests are not finalized
 * any more); the sockets are released so nginx finds none left open.
 */
void
ngx_famcall_pg_pool_destroy(ngx_famcall_pg_pool_t *pool)
{
    ngx_uint_t    i;
    ngx_queue_t  *qn;

    while (!ngx_queue_empty(&pool->waiting)) {
        qn = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(qn);
        ngx_famcall_pg_query_free(ngx_queue_data(qn, ngx_famcall_pg_query_t,
                                                 queue));
    }

    pool->nwaiting = 0;

    for (i = 0; i < pool->max; i++) {
        ngx_famcall_pg_conn_destroy(&pool->conns[i]);
    }

    if (pool->listener != NULL) {
        ngx_famcall_pg_conn_destroy(pool->listener);
    }
}


ngx_famcall_pg_query_t *
ngx_famcall_pg_send(ngx_famcall_pg_pool_t *pool, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_famcall_pg_handler_pt handler, void *data)
{
    ngx_famcall_pg_conn_t   *pc;
    ngx_famcall_pg_query_t  *q;

    if (stmt >= pool->nstmts) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "famcall: no statement %ui", stmt);
        return NULL;
    }

    if (nparams > NGX_FAMCALL_PG_MAX_PARAMS || (ngx_int_t) nparams
                       != pool->stmts[stmt].nparams)
    {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "famcall: bad parameter count for \"%s\"",
                      pool->stmts[stmt].name);
        return NULL;
    }

    if (!ngx_famcall_pg_reachable(pool)
        || pool->nwaiting >= NGX_FAMCALL_PG_MAX_WAITING)
    {
        pool->failed[NGX_FAMCALL_PG_UNAVAILABLE]++;
        return NULL;
    }

    q = ngx_famcall_pg_query_new(pool, stmt, nparams, values, handler, data);
    if (q == NULL) {
        return NULL;
    }

    pc = ngx_famcall_pg_pick(pool);

    if (pc == NULL || ngx_famcall_pg_dispatch(pc, q) != NGX_OK) {
        ngx_queue_insert_tail(&pool->waiting, &q->queue);
        pool->nwaiting++;
    }

    return q;
}


void
ngx_famcall_pg_detach(ngx_famcall_pg_query_t *q)
{
    q->handler = NULL;

    if (q->conn == NULL) {
        /* still waiting for a connection: nobody needs it any more */
        ngx_queue_remove(&q->queue);
        q->pool->nwaiting--;
        ngx_famcall_pg_query_free(q);
    }
}


/*
 * The connection for a new query: the always-open one with the fewest in
 * flight that is not stuck, else such a spare; else NULL, and a spare
 * starts to open if one may.
 */
static ngx_famcall_pg_conn_t *
ngx_famcall_pg_pick(ngx_famcall_pg_pool_t *pool)
{
    ngx_famcall_pg_conn_t  *pc;

    pc = ngx_famcall_pg_pick_in(pool, 0, pool->size);
    if (pc != NULL) {
        return pc;
    }

    pc = ngx_famcall_pg_pick_in(pool, pool->size, pool->max);
    if (pc != NULL) {
        return pc;
    }

    pc = ngx_famcall_pg_spare_find(pool);
    if (pc != NULL) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "famcall pg %s #%ui: opened, "
                       "the other connections are stuck or full",
                       ngx_famcall_pg_kind(pc), pc->id);

        ngx_famcall_pg_connect(pc);
    }

    return NULL;
}


static ngx_famcall_pg_conn_t *
ngx_famcall_pg_pick_in(ngx_famcall_pg_pool_t *pool, ngx_uint_t from,
    ngx_uint_t to)
{
    ngx_uint_t              i;
    ngx_famcall_pg_conn_t  *pc, *best;

    best = NULL;

    for (i = from; i < to; i++) {
        pc = &pool->conns[i];

        if (pc->state != NGX_FAMCALL_PG_READY
            || pc->failed
            || pc->ninflight >= NGX_FAMCALL_PG_MAX_INFLIGHT
            || ngx_famcall_pg_stuck(pc))
        {
            continue;
        }

        if (best == NULL || pc->ninflight < best->ninflight) {
            best = pc;
        }
    }

    return best;
}


static ngx_uint_t
ngx_famcall_pg_stuck(ngx_famcall_pg_conn_t *pc)
{
    if (pc->ninflight == 0
        || (ngx_msec_int_t) (ngx_current_msec - pc->moved)
           < NGX_FAMCALL_PG_STUCK)
    {
        return 0;
    }

    if (!pc->stuck) {
        pc->stuck = 1;
        ngx_log_debug4(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                       "famcall pg %s #%ui: stuck, %ui in flight, "
                       "the oldest for %M ms", ngx_famcall_pg_kind(pc),
                       pc->id, pc->ninflight, ngx_current_msec - pc->moved);
    }

    return 1;
}


/*
 * A spare that may open now: the database answers (a connection is up),
 * none is coming up already (one spare at a time: a burst of queries
 * waits for it rather than opening them all), and no spare failed to
 * connect within the backoff.
 */
static ngx_famcall_pg_conn_t *
ngx_famcall_pg_spare_find(ngx_famcall_pg_pool_t *pool)
{
    ngx_uint_t              i, up;
    ngx_famcall_pg_conn_t  *pc, *spare;

    if (ngx_exiting || ngx_terminate || ngx_quit
        || (ngx_msec_int_t) (ngx_current_msec - pool->spare_retry) < 0)
    {
        return NULL;
    }

    up = 0;
    spare = NULL;

    for (i = 0; i < pool->max; i++) {
        pc = &pool->conns[i];

        switch (pc->state) {

        case NGX_FAMCALL_PG_CONNECTING:
            return NULL;

        case NGX_FAMCALL_PG_READY:
            up = 1;
            break;

        default:
            if (pc->spare && spare == NULL) {
                spare = pc;
            }
        }
    }

    return up ? spare : NULL;
}


static void
ngx_famcall_pg_spare_idle_handler(ngx_event_t *ev)
{
    ngx_famcall_pg_conn_t  *pc = ev->data;
    ngx_msec_int_t          idle;

    if (pc->state != NGX_FAMCALL_PG_READY) {
        return;
    }

    idle = (ngx_msec_int_t) (ngx_current_msec - pc->used);

    if (pc->ninflight == 0 && idle >= NGX_FAMCALL_PG_SPARE_IDLE) {
        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                       "famcall pg %s #%ui: closed, idle for %M ms",
                       ngx_famcall_pg_kind(pc), pc->id, (ngx_msec_t) idle);

        ngx_famcall_pg_close(pc);
        return;
    }

    ngx_add_timer(&pc->idle, (pc->ninflight || idle < 0)
                             ? NGX_FAMCALL_PG_SPARE_IDLE
                             : NGX_FAMCALL_PG_SPARE_IDLE - idle);
}


ngx_famcall_pg_pool_state_e
ngx_famcall_pg_pool_state(ngx_famcall_pg_pool_t *pool)
{
    ngx_uint_t              i, up;
    ngx_famcall_pg_conn_t  *pc;

    up = 0;

    for (i = 0; i < pool->max; i++) {
        pc = &pool->conns[i];

        if (pc->state == NGX_FAMCALL_PG_CONNECTING) {
            return NGX_FAMCALL_PG_POOL_UP;  /* a query would wait for it */
        }

        if (pc->state != NGX_FAMCALL_PG_READY || pc->failed) {
            continue;
        }

        if (pc->ninflight < NGX_FAMCALL_PG_MAX_INFLIGHT
            && !ngx_famcall_pg_stuck(pc))
        {
            return NGX_FAMCALL_PG_POOL_UP;
        }

        up = 1;
    }

    if (!up) {
        return NGX_FAMCALL_PG_POOL_DOWN;
    }

    return ngx_famcall_pg_spare_find(pool) ? NGX_FAMCALL_PG_POOL_UP
                                           : NGX_FAMCALL_PG_POOL_BUSY;
}


void
ngx_famcall_pg_drain_waiting(ngx_famcall_pg_pool_t *pool)
{
    ngx_queue_t             *qn;
    ngx_famcall_pg_conn_t   *pc;
    ngx_famcall_pg_query_t  *q;

    while (!ngx_queue_empty(&pool->waiting)) {
        pc = ngx_famcall_pg_pick(pool);
        if (pc == NULL) {
            return;
        }

        qn = ngx_queue_head(&pool->waiting);
        q = ngx_queue_data(qn, ngx_famcall_pg_query_t, queue);

        ngx_queue_remove(qn);
        pool->nwaiting--;

        if (ngx_famcall_pg_dispatch(pc, q) != NGX_OK) {
            ngx_queue_insert_head(&pool->waiting, qn);
            pool->nwaiting++;
            return;
        }
    }
}


/* a query can still be answered: some connection is up or coming up */
ngx_uint_t
ngx_famcall_pg_reachable(ngx_famcall_pg_pool_t *pool)
{
    ngx_uint_t  i;

    for (i = 0; i < pool->max; i++) {
        if (pool->conns[i].state != NGX_FAMCALL_PG_DOWN) {
            return 1;
        }
    }

    return 0;
}


void
ngx_famcall_pg_fail_waiting(ngx_famcall_pg_pool_t *pool)
{
    ngx_queue_t             *qn;
    ngx_famcall_pg_query_t  *q;

    while (!ngx_queue_empty(&pool->waiting)) {
        qn = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(qn);
        pool->nwaiting--;

        q = ngx_queue_data(qn, ngx_famcall_pg_query_t, queue);
        q->status = NGX_FAMCALL_PG_UNAVAILABLE;
        ngx_famcall_pg_complete(q);
    }
}


void
ngx_famcall_pg_complete(ngx_famcall_pg_query_t *q)
{
    ngx_famcall_pg_handler_pt  handler = q->handler;

    q->handler = NULL;
    q->pool->failed[q->status]++;

    if (handler != NULL) {
        handler(q->data, q->status,
                q->status == NGX_FAMCALL_PG_OK ? q->res : NULL);
    }

    ngx_famcall_pg_query_free(q);
}


static void
ngx_famcall_pg_timeout_handler(ngx_event_t *ev)
{
    ngx_famcall_pg_query_t  *q = ev->data;

    q->status = NGX_FAMCALL_PG_TIMEOUT;

    if (q->conn == NULL) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "famcall: no database connection free "
                      "within the timeout");

        ngx_queue_remove(&q->queue);
        q->pool->nwaiting--;
        ngx_famcall_pg_complete(q);
        return;
    }

    /*
     * The server holds a query longer than famcall_db_timeout: reset the
     * connection, which answers this query (TIMEOUT) and the others on it
     * (UNAVAILABLE); a wedged server is better found out at once.
     */
    ngx_famcall_pg_broken(q->conn, "query timed out");
}


void
ngx_famcall_pg_query_free(ngx_famcall_pg_query_t *q)
{
    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    if (q->res) {
        PQclear(q->res);
    }

    ngx_free(q);
}


static ngx_famcall_pg_query_t *
ngx_famcall_pg_query_new(ngx_famcall_pg_pool_t *pool, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_famcall_pg_handler_pt handler, void *data)
{
    size_t                   size, len[NGX_FAMCALL_PG_MAX_PARAMS];
    u_char                  *p;
    ngx_uint_t               i;
    ngx_famcall_pg_query_t  *q;

    /* one allocation: the query, the value pointers, the values */
    size = sizeof(ngx_famcall_pg_query_t) + nparams * sizeof(char *);
    for (i = 0; i < nparams; i++) {
        len[i] = values[i] ? ngx_strlen(values[i]) + 1 : 0;
        size += len[i];
    }

    q = ngx_alloc(size, pool->log);
    if (q == NULL) {
        return NULL;
    }

    ngx_memzero(q, sizeof(ngx_famcall_pg_query_t));
    q->pool = pool;
    q->handler = handler;
    q->data = data;
    q->stmt = stmt;
    q->nparams = nparams;
    q->values = (char **) (q + 1);

    p = (u_char *) (q->values + nparams);
    for (i = 0; i < nparams; i++) {
        if (values[i] == NULL) {
            q->values[i] = NULL;
            continue;
        }

        q->values[i] = (char *) p;
        p = ngx_cpymem(p, values[i], len[i]);
    }

    q->timer.handler = ngx_famcall_pg_timeout_handler;
    q->timer.data = q;
    q->timer.log = pool->log;
    ngx_add_timer(&q->timer, pool->timeout);

    return q;
}
