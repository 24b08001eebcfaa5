/*
 * famcall: the per-worker PostgreSQL pool (see ngx_famcall_pg.h).
 *
 * Each connection is a small state machine: DOWN -> CONNECTING -> READY,
 * back to DOWN when it breaks, with a reconnect timer that backs off from
 * 100 ms to 5 s.  The first famcall_db_pool_size connections are always
 * open; the others, up to famcall_db_pool_max, are spares: opened one at a
 * time while every open connection is stuck or full (a spare that fails to
 * connect delays the next one with the same backoff), never reconnected,
 * and closed once idle for NGX_FAMCALL_PG_SPARE_IDLE.  Queries go to the
 * always-open connections first, so the spares see no traffic once those
 * move again, and the normal case pipelines as before.
 *
 * "Stuck" is measured without a timer or a syscall: each connection keeps
 * the time its oldest query started waiting (when it was sent to an empty
 * pipeline, or when the query before it completed), and the query sender
 * compares it with nginx's cached clock.
 *
 * libpq owns the socket; nginx only watches it, with level-triggered events
 * because PQconsumeInput() does not promise to read until EAGAIN.  Teardown
 * never closes the fd itself: PQfinish() does.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_pg.h"


#define NGX_FAMCALL_PG_MAX_INFLIGHT   64
#define NGX_FAMCALL_PG_MAX_PARAMS     16
#define NGX_FAMCALL_PG_MAX_WAITING    4096
#define NGX_FAMCALL_PG_BACKOFF_MIN    100
#define NGX_FAMCALL_PG_BACKOFF_MAX    5000

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


typedef enum {
    NGX_FAMCALL_PG_DOWN = 0,
    NGX_FAMCALL_PG_CONNECTING,
    NGX_FAMCALL_PG_READY
} ngx_famcall_pg_state_e;


typedef enum {
    NGX_FAMCALL_PGQ_PREPARE = 0,    /* waiting for the PREPARE's results */
    NGX_FAMCALL_PGQ_QUERY,          /* waiting for the statement's results */
    NGX_FAMCALL_PGQ_SYNC            /* results done, waiting for the sync */
} ngx_famcall_pgq_phase_e;


typedef struct {
    ngx_famcall_pg_pool_t     *pool;
    PGconn                    *pg;
    ngx_connection_t          *c;
    ngx_famcall_pg_state_e     state;
    ngx_uint_t                 id;           /* in pool->conns, for logs */
    ngx_queue_t                inflight;
    ngx_uint_t                 ninflight;
    ngx_msec_t                 moved;        /* the oldest query in flight
                                                waits since */
    ngx_msec_t                 used;         /* a query was last sent */
    ngx_event_t                reconnect;
    ngx_event_t                idle;         /* a spare's idle check */
    ngx_msec_t                 backoff;
    u_char                    *prepared;     /* one flag per statement */
    unsigned                   failed:1;     /* teardown is posted */
    unsigned                   listener:1;   /* LISTENs; takes no queries */
    unsigned                   spare:1;      /* opened on demand */
    unsigned                   stuck:1;      /* seen stuck, logged */
} ngx_famcall_pg_conn_t;


struct ngx_famcall_pg_pool_s {
    ngx_log_t                 *log;
    char                      *conninfo;
    ngx_msec_t                 timeout;
    ngx_uint_t                 size;        /* always open */
    ngx_uint_t                 max;         /* with the spares */
    ngx_famcall_pg_conn_t     *conns;       /* max of them */
    const ngx_famcall_stmt_t  *stmts;       /* the core's list */
    ngx_uint_t                 nstmts;
    ngx_queue_t                waiting;
    ngx_uint_t                 nwaiting;

    ngx_msec_t                 spare_retry; /* no spare opens before */
    ngx_msec_t                 spare_backoff;

    ngx_famcall_pg_conn_t     *listener;    /* NULL: nobody listens */
    ngx_uint_t                 listen_stmt;

    ngx_uint_t                 warm_stmt;   /* run at each connect */
    ngx_uint_t                 warm_nparams;
    const char *const         *warm_params;
    unsigned                   warm:1;
    ngx_famcall_pg_notify_pt   notify;
    void                      *notify_data;
};


struct ngx_famcall_pg_query_s {
    ngx_queue_t                queue;
    ngx_famcall_pg_pool_t     *pool;
    ngx_famcall_pg_conn_t     *conn;        /* NULL while waiting */
    ngx_famcall_pg_handler_pt  handler;     /* NULL once detached */
    void                      *data;
    ngx_event_t                timer;
    ngx_uint_t                 stmt;
    ngx_uint_t                 nparams;
    char                     **values;
    ngx_famcall_pgq_phase_e    phase;
    PGresult                  *res;
    ngx_famcall_pg_status_e    status;
};


static void ngx_famcall_pg_connect(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_connect_handler(ngx_event_t *ev);
static ngx_int_t ngx_famcall_pg_poll_connect(ngx_famcall_pg_conn_t *pc);
static ngx_int_t ngx_famcall_pg_wrap_socket(ngx_famcall_pg_conn_t *pc);
static ngx_int_t ngx_famcall_pg_want(ngx_famcall_pg_conn_t *pc,
    ngx_uint_t read, ngx_uint_t write);
static void ngx_famcall_pg_reconnect_handler(ngx_event_t *ev);
static void ngx_famcall_pg_read_handler(ngx_event_t *ev);
static void ngx_famcall_pg_write_handler(ngx_event_t *ev);
static void ngx_famcall_pg_process_results(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_broken(ngx_famcall_pg_conn_t *pc,
    const char *why);
static void ngx_famcall_pg_close(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_unwatch(ngx_connection_t *c);
static void ngx_famcall_pg_fail_later(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_input_check(ngx_famcall_pg_conn_t *pc);
static ngx_famcall_pg_conn_t *ngx_famcall_pg_pick(ngx_famcall_pg_pool_t *pool);
static ngx_famcall_pg_conn_t *ngx_famcall_pg_pick_in(
    ngx_famcall_pg_pool_t *pool, ngx_uint_t from, ngx_uint_t to);
static ngx_uint_t ngx_famcall_pg_stuck(ngx_famcall_pg_conn_t *pc);
static ngx_famcall_pg_conn_t *ngx_famcall_pg_spare_find(
    ngx_famcall_pg_pool_t *pool);
static void ngx_famcall_pg_spare_idle_handler(ngx_event_t *ev);
static const char *ngx_famcall_pg_kind(ngx_famcall_pg_conn_t *pc);
static ngx_int_t ngx_famcall_pg_dispatch(ngx_famcall_pg_conn_t *pc,
    ngx_famcall_pg_query_t *q);
static void ngx_famcall_pg_drain_waiting(ngx_famcall_pg_pool_t *pool);
static ngx_uint_t ngx_famcall_pg_reachable(ngx_famcall_pg_pool_t *pool);
static void ngx_famcall_pg_fail_waiting(ngx_famcall_pg_pool_t *pool);
static void ngx_famcall_pg_complete(ngx_famcall_pg_query_t *q);
static void ngx_famcall_pg_timeout_handler(ngx_event_t *ev);
static void ngx_famcall_pg_query_free(ngx_famcall_pg_query_t *q);
static ngx_famcall_pg_query_t *ngx_famcall_pg_query_new(
    ngx_famcall_pg_pool_t *pool, ngx_uint_t stmt, ngx_uint_t nparams,
    const char *const *values, ngx_famcall_pg_handler_pt handler,
    void *data);
static ngx_int_t ngx_famcall_pg_conn_init(ngx_famcall_pg_conn_t *pc,
    ngx_famcall_pg_pool_t *pool, ngx_cycle_t *cycle);
static void ngx_famcall_pg_listen_start(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_warm_start(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_warm_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_pg_listen_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_pg_conn_destroy(ngx_famcall_pg_conn_t *pc);


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

    pc = ngx_pcalloc(cycle->pool, sizeof(ngx_famcall_pg_conn_t));
    if (pc == NULL || ngx_famcall_pg_conn_init(pc, pool, cycle) != NGX_OK) {
        return NGX_ERROR;
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


static ngx_int_t
ngx_famcall_pg_conn_init(ngx_famcall_pg_conn_t *pc,
    ngx_famcall_pg_pool_t *pool, ngx_cycle_t *cycle)
{
    pc->pool = pool;
    ngx_queue_init(&pc->inflight);

    pc->prepared = ngx_pcalloc(cycle->pool, pool->nstmts);
    if (pc->prepared == NULL) {
        return NGX_ERROR;
    }

    pc->reconnect.handler = ngx_famcall_pg_reconnect_handler;
    pc->reconnect.data = pc;
    pc->reconnect.log = pool->log;
    pc->reconnect.cancelable = 1;
    pc->backoff = NGX_FAMCALL_PG_BACKOFF_MIN;

    pc->idle.handler = ngx_famcall_pg_spare_idle_handler;
    pc->idle.data = pc;
    pc->idle.log = pool->log;
    pc->idle.cancelable = 1;

    return NGX_OK;
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


static void
ngx_famcall_pg_conn_destroy(ngx_famcall_pg_conn_t *pc)
{
    ngx_queue_t             *qn;
    ngx_famcall_pg_query_t  *q;

    if (pc->reconnect.timer_set) {
        ngx_del_timer(&pc->reconnect);
    }

    while (!ngx_queue_empty(&pc->inflight)) {
        qn = ngx_queue_head(&pc->inflight);
        ngx_queue_remove(qn);
        q = ngx_queue_data(qn, ngx_famcall_pg_query_t, queue);
        ngx_famcall_pg_query_free(q);
    }

    pc->ninflight = 0;
    ngx_famcall_pg_close(pc);
}


static void
ngx_famcall_pg_connect(ngx_famcall_pg_conn_t *pc)
{
    ngx_famcall_pg_pool_t  *pool = pc->pool;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "famcall pg %s #%ui: connecting",
                   ngx_famcall_pg_kind(pc), pc->id);

    pc->pg = PQconnectStart(pool->conninfo);

    if (pc->pg == NULL || PQstatus(pc->pg) == CONNECTION_BAD
        || PQsetnonblocking(pc->pg, 1) != 0)
    {
        ngx_famcall_pg_broken(pc, "connect failed to start");
        return;
    }

    pc->state = NGX_FAMCALL_PG_CONNECTING;
    ngx_memzero(pc->prepared, pc->pool->nstmts);

    if (ngx_famcall_pg_wrap_socket(pc) != NGX_OK) {
        ngx_famcall_pg_broken(pc, "cannot watch the socket");
        return;
    }

    /* libpq: start as if PQconnectPoll() had asked to wait for writing */
    if (ngx_famcall_pg_want(pc, 0, 1) != NGX_OK) {
        ngx_famcall_pg_broken(pc, "cannot watch the socket");
        return;
    }

    ngx_add_timer(pc->c->read, pool->timeout);
}


static ngx_int_t
ngx_famcall_pg_wrap_socket(ngx_famcall_pg_conn_t *pc)
{
    ngx_socket_t       fd;
    ngx_connection_t  *c;

    fd = PQsocket(pc->pg);
    if (fd == -1) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, pc->pool->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = pc;
    c->read->log = pc->pool->log;
    c->write->log = pc->pool->log;
    c->read->handler = ngx_famcall_pg_connect_handler;
    c->write->handler = ngx_famcall_pg_connect_handler;
    c->read->cancelable = 1;

    pc->c = c;

    return NGX_OK;
}


/* level-triggered interest in read and write readiness */
static ngx_int_t
ngx_famcall_pg_want(ngx_famcall_pg_conn_t *pc, ngx_uint_t read,
    ngx_uint_t write)
{
    ngx_event_t  *rev, *wev;

    rev = pc->c->read;
    wev = pc->c->write;

    if (read && !rev->active) {
        if (ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (!read && rev->active) {
        if (ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (write && !wev->active) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (!write && wev->active) {
        if (ngx_del_event(wev, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_famcall_pg_connect_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_famcall_pg_conn_t  *pc = c->data;

    if (ev->timedout) {
        ngx_famcall_pg_broken(pc, "connect timed out");
        return;
    }

    if (ngx_famcall_pg_poll_connect(pc) != NGX_OK) {
        return;     /* pc was torn down */
    }

    if (pc->state == NGX_FAMCALL_PG_READY) {
        if (pc->listener) {
            ngx_famcall_pg_listen_start(pc);

        } else {
            ngx_famcall_pg_warm_start(pc);
            ngx_famcall_pg_drain_waiting(pc->pool);
        }
    }
}


static ngx_int_t
ngx_famcall_pg_poll_connect(ngx_famcall_pg_conn_t *pc)
{
    ngx_connection_t        *c;
    PostgresPollingStatusType  rc;

    rc = PQconnectPoll(pc->pg);

    /* libpq may have moved to a new socket (another address, SSL retry) */
    if (PQsocket(pc->pg) != pc->c->fd) {
        c = pc->c;
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }
        ngx_famcall_pg_unwatch(c);
        ngx_free_connection(c);
        pc->c = NULL;

        if (PQsocket(pc->pg) == -1
            || ngx_famcall_pg_wrap_socket(pc) != NGX_OK)
        {
            ngx_famcall_pg_broken(pc, PQerrorMessage(pc->pg));
            return NGX_ERROR;
        }

        ngx_add_timer(pc->c->read, pc->pool->timeout);
    }

    switch (rc) {

    case PGRES_POLLING_READING:
        if (ngx_famcall_pg_want(pc, 1, 0) != NGX_OK) {
            ngx_famcall_pg_broken(pc, "cannot watch the socket");
            return NGX_ERROR;
        }
        return NGX_OK;

    case PGRES_POLLING_WRITING:
        if (ngx_famcall_pg_want(pc, 0, 1) != NGX_OK) {
            ngx_famcall_pg_broken(pc, "cannot watch the socket");
            return NGX_ERROR;
        }
        return NGX_OK;

    case PGRES_POLLING_OK:
        break;

    default:
        ngx_famcall_pg_broken(pc, PQerrorMessage(pc->pg));
        return NGX_ERROR;
    }

    if (PQenterPipelineMode(pc->pg) != 1
        || ngx_famcall_pg_want(pc, 1, 0) != NGX_OK)
    {
        ngx_famcall_pg_broken(pc, "cannot enter pipeline mode");
        return NGX_ERROR;
    }

    c = pc->c;
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    c->read->handler = ngx_famcall_pg_read_handler;
    c->write->handler = ngx_famcall_pg_write_handler;
    pc->state = NGX_FAMCALL_PG_READY;
    pc->backoff = NGX_FAMCALL_PG_BACKOFF_MIN;
    pc->used = ngx_current_msec;

    if (pc->spare) {
        pc->pool->spare_backoff = NGX_FAMCALL_PG_BACKOFF_MIN;
        ngx_add_timer(&pc->idle, NGX_FAMCALL_PG_SPARE_IDLE);
    }

    ngx_log_error(NGX_LOG_INFO, pc->pool->log, 0,
                  "famcall: database connection ready");

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                   "famcall pg %s #%ui: ready",
                   ngx_famcall_pg_kind(pc), pc->id);

    return NGX_OK;
}


static void
ngx_famcall_pg_reconnect_handler(ngx_event_t *ev)
{
    ngx_famcall_pg_conn_t  *pc = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_famcall_pg_connect(pc);
}


static void
ngx_famcall_pg_read_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_famcall_pg_conn_t  *pc = c->data;
    PGnotify               *n;

    if (pc->failed) {
        ngx_famcall_pg_broken(pc, PQerrorMessage(pc->pg));
        return;
    }

    if (PQconsumeInput(pc->pg) == 0) {
        ngx_famcall_pg_broken(pc, PQerrorMessage(pc->pg));
        return;
    }

    /* only the listener LISTENs; never let notifications pile up */
    while ((n = PQnotifies(pc->pg)) != NULL) {
        if (pc->listener && pc->pool->notify != NULL) {
            pc->pool->notify(pc->pool->notify_data, n->extra,
                             ngx_strlen(n->extra));
        }

        PQfreemem(n);
    }

    ngx_famcall_pg_process_results(pc);

    if (pc->state == NGX_FAMCALL_PG_READY
        && PQstatus(pc->pg) == CONNECTION_BAD)
    {
        ngx_famcall_pg_broken(pc, PQerrorMessage(pc->pg));
        return;
    }

    /* libpq: after consuming input, an unfinished flush is retried */
    if (pc->state == NGX_FAMCALL_PG_READY && pc->c->write->active) {
        ngx_famcall_pg_write_handler(pc->c->write);
    }

    /* queries that found every connection stuck or full: this one moved */
    if (pc->pool->nwaiting && !pc->listener) {
        ngx_famcall_pg_drain_waiting(pc->pool);
    }
}


static void
ngx_famcall_pg_write_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_famcall_pg_conn_t  *pc = c->data;
    int                     rc;

    rc = PQflush(pc->pg);

    if (rc == -1) {
        ngx_famcall_pg_broken(pc, PQerrorMessage(pc->pg));
        return;
    }

    if (rc == 0 && ngx_famcall_pg_want(pc, 1, 0) != NGX_OK) {
        ngx_famcall_pg_broken(pc, "cannot watch the socket");
        return;
    }

    ngx_famcall_pg_input_check(pc);
}


/*
 * In pipeline mode each of our queries yields: [PREPARE result, NULL],
 * its result, NULL, then PGRES_PIPELINE_SYNC.  The query completes at the
 * sync, when libpq is done with it.
 */
static void
ngx_famcall_pg_process_results(ngx_famcall_pg_conn_t *pc)
{
    PGresult                *res;
    ngx_queue_t             *head;
    ExecStatusType           st;
    ngx_famcall_pg_query_t  *q;

    while (pc->state == NGX_FAMCALL_PG_READY
           && !pc->failed
           && !ngx_queue_empty(&pc->inflight)
           && !PQisBusy(pc->pg))
    {
        head = ngx_queue_head(&pc->inflight);
        q = ngx_queue_data(head, ngx_famcall_pg_query_t, queue);

        res = PQgetResult(pc->pg);

        if (res == NULL) {
            q->phase = (q->phase == NGX_FAMCALL_PGQ_PREPARE)
                       ? NGX_FAMCALL_PGQ_QUERY : NGX_FAMCALL_PGQ_SYNC;
            continue;
        }

        st = PQresultStatus(res);

        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            ngx_queue_remove(head);
            pc->ninflight--;

            /* the next query's wait starts now */
            pc->moved = ngx_current_msec;

            if (pc->stuck) {
                pc->stuck = 0;
                ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                               "famcall pg %s #%ui: moving again, "
                               "%ui in flight", ngx_famcall_pg_kind(pc),
                               pc->id, pc->ninflight);
            }

            ngx_famcall_pg_complete(q);
            continue;
        }

        if (q->phase == NGX_FAMCALL_PGQ_PREPARE) {
            if (st != PGRES_COMMAND_OK) {
                ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                              "famcall: preparing \"%s\" failed: %s",
                              pc->pool->stmts[q->stmt].name,
                              PQresultErrorMessage(res));
                pc->prepared[q->stmt] = 0;
            }

            PQclear(res);
            continue;
        }

        if (q->res != NULL) {
            PQclear(res);       /* only the first result set is used */
            continue;
        }

        q->res = res;

        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            q->status = NGX_FAMCALL_PG_OK;

        } else {
            q->status = NGX_FAMCALL_PG_SQL_ERROR;

            if (st == PGRES_FATAL_ERROR) {
                ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                              "famcall: statement \"%s\" failed: %s",
                              pc->pool->stmts[q->stmt].name,
                              PQresultErrorMessage(res));
            }
        }
    }
}


static void
ngx_famcall_pg_broken(ngx_famcall_pg_conn_t *pc, const char *why)
{
    ngx_uint_t               connected;
    ngx_queue_t              failed, *qn;
    ngx_famcall_pg_query_t  *q;
    ngx_famcall_pg_pool_t   *pool = pc->pool;

    connected = (pc->state == NGX_FAMCALL_PG_READY);

    if (pc->spare) {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "famcall: spare database connection lost: %s",
                      why ? why : "");

    } else {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "famcall: database connection lost, "
                      "retrying in %M ms: %s", pc->backoff, why ? why : "");
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "famcall pg %s #%ui: broken, %ui in flight",
                   ngx_famcall_pg_kind(pc), pc->id, pc->ninflight);

    /* take the queries out first: their handlers may send new ones */
    ngx_queue_init(&failed);

    while (!ngx_queue_empty(&pc->inflight)) {
        qn = ngx_queue_head(&pc->inflight);
        ngx_queue_remove(qn);
        ngx_queue_insert_tail(&failed, qn);
    }

    pc->ninflight = 0;
    ngx_famcall_pg_close(pc);

    if (pc->spare) {
        /* not reconnected; one that could not connect delays the next */
        if (!connected) {
            pool->spare_retry = ngx_current_msec + pool->spare_backoff;

            ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                           "famcall pg %s #%ui: backoff, no spare for %M ms",
                           ngx_famcall_pg_kind(pc), pc->id,
                           pool->spare_backoff);

            pool->spare_backoff = ngx_min(pool->spare_backoff * 2,
                                          NGX_FAMCALL_PG_BACKOFF_MAX);
        }

    } else if (!(ngx_exiting || ngx_terminate || ngx_quit)) {
        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "famcall pg %s #%ui: backoff, reconnecting in %M ms",
                       ngx_famcall_pg_kind(pc), pc->id, pc->backoff);

        ngx_add_timer(&pc->reconnect, pc->backoff);
        pc->backoff = ngx_min(pc->backoff * 2, NGX_FAMCALL_PG_BACKOFF_MAX);
    }

    while (!ngx_queue_empty(&failed)) {
        qn = ngx_queue_head(&failed);
        ngx_queue_remove(qn);
        q = ngx_queue_data(qn, ngx_famcall_pg_query_t, queue);

        if (q->res) {
            PQclear(q->res);
            q->res = NULL;
        }

        if (q->status != NGX_FAMCALL_PG_TIMEOUT) {
            q->status = NGX_FAMCALL_PG_UNAVAILABLE;
        }

        ngx_famcall_pg_complete(q);
    }

    if (!ngx_famcall_pg_reachable(pool)) {
        ngx_famcall_pg_fail_waiting(pool);
    }
}


static void
ngx_famcall_pg_close(ngx_famcall_pg_conn_t *pc)
{
    ngx_connection_t  *c = pc->c;

    if (c != NULL) {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        ngx_famcall_pg_unwatch(c);

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        c->fd = (ngx_socket_t) -1;      /* PQfinish() closes it */
        ngx_free_connection(c);
        pc->c = NULL;
    }

    if (pc->pg != NULL) {
        PQfinish(pc->pg);
        pc->pg = NULL;
    }

    if (pc->idle.timer_set) {
        ngx_del_timer(&pc->idle);
    }

    pc->state = NGX_FAMCALL_PG_DOWN;
    pc->failed = 0;
    pc->stuck = 0;
}


static void
ngx_famcall_pg_unwatch(ngx_connection_t *c)
{
    /* NGX_CLOSE_EVENT: no syscall; closing the fd drops it from epoll */
    if (ngx_del_conn) {
        ngx_del_conn(c, NGX_CLOSE_EVENT);
        return;
    }

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }
}


/*
 * libpq reads the socket while it flushes (so that neither side blocks on a
 * full buffer): results can land in its input buffer outside our read
 * handler, and then the socket is no longer readable and epoll says nothing.
 * Have the read handler look at the buffer in this same loop iteration;
 * without this a connection that got no new queries stalled until the query
 * timeout (seen as seconds-long tails with two connections per worker).
 */
static void
ngx_famcall_pg_input_check(ngx_famcall_pg_conn_t *pc)
{
    if (!ngx_queue_empty(&pc->inflight) && !pc->c->read->posted) {
        ngx_post_event(pc->c->read, &ngx_posted_events);
    }
}


/*
 * A send or flush failed half way: the pipeline may hold a command no entry
 * accounts for, so the connection must go, but not under our caller's feet.
 */
static void
ngx_famcall_pg_fail_later(ngx_famcall_pg_conn_t *pc)
{
    pc->failed = 1;
    ngx_post_event(pc->c->read, &ngx_posted_events);
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


static const char *
ngx_famcall_pg_kind(ngx_famcall_pg_conn_t *pc)
{
    return pc->listener ? "listener" : (pc->spare ? "spare" : "conn");
}


static ngx_int_t
ngx_famcall_pg_dispatch(ngx_famcall_pg_conn_t *pc, ngx_famcall_pg_query_t *q)
{
    int                        rc;
    const ngx_famcall_stmt_t  *st = &pc->pool->stmts[q->stmt];

    q->phase = NGX_FAMCALL_PGQ_QUERY;

    if (!pc->prepared[q->stmt]) {
        if (PQsendPrepare(pc->pg, st->name, st->sql, st->nparams, NULL) != 1) {
            goto failed;
        }

        pc->prepared[q->stmt] = 1;
        q->phase = NGX_FAMCALL_PGQ_PREPARE;
    }

    if (PQsendQueryPrepared(pc->pg, st->name, (int) q->nparams,
                            (const char *const *) q->values,
                            NULL, NULL, 0) != 1
        || PQpipelineSync(pc->pg) != 1)
    {
        goto failed;
    }

    if (pc->ninflight == 0) {
        pc->moved = ngx_current_msec;
    }

    q->conn = pc;
    ngx_queue_insert_tail(&pc->inflight, &q->queue);
    pc->ninflight++;
    pc->used = ngx_current_msec;

    rc = PQflush(pc->pg);

    if (rc == -1 || (rc == 1 && ngx_famcall_pg_want(pc, 1, 1) != NGX_OK)) {
        ngx_famcall_pg_fail_later(pc);
        return NGX_OK;
    }

    ngx_famcall_pg_input_check(pc);

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_WARN, pc->pool->log, 0,
                  "famcall: sending \"%s\" failed: %s",
                  st->name, PQerrorMessage(pc->pg));

    ngx_famcall_pg_fail_later(pc);

    return NGX_ERROR;
}


static void
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
static ngx_uint_t
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


static void
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


static void
ngx_famcall_pg_complete(ngx_famcall_pg_query_t *q)
{
    ngx_famcall_pg_handler_pt  handler = q->handler;

    q->handler = NULL;

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


static void
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
