/*
 * famcall: one connection of the PostgreSQL pool (see ngx_famcall_pg.h).
 *
 * Each connection is a small state machine: DOWN -> CONNECTING -> READY,
 * back to DOWN when it breaks, with a reconnect timer that backs off from
 * 100 ms to 5 s (a spare is not reconnected: ngx_famcall_pg.c).
 *
 * libpq owns the socket; nginx only watches it, with level-triggered events
 * because PQconsumeInput() does not promise to read until EAGAIN.  Teardown
 * never closes the fd itself: PQfinish() does.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_pg_conn.h"


static void ngx_famcall_pg_connect_handler(ngx_event_t *ev);
static ngx_int_t ngx_famcall_pg_poll_connect(ngx_famcall_pg_conn_t *pc);
static ngx_int_t ngx_famcall_pg_wrap_socket(ngx_famcall_pg_conn_t *pc);
static ngx_int_t ngx_famcall_pg_want(ngx_famcall_pg_conn_t *pc,
    ngx_uint_t read, ngx_uint_t write);
static void ngx_famcall_pg_reconnect_handler(ngx_event_t *ev);
static void ngx_famcall_pg_read_handler(ngx_event_t *ev);
static void ngx_famcall_pg_write_handler(ngx_event_t *ev);
static void ngx_famcall_pg_process_results(ngx_famcall_pg_conn_t *pc);
static void ngx_famcall_pg_unwatch(ngx_connection_t *c);
static void ngx_famcall_pg_input_check(ngx_famcall_pg_conn_t *pc);


ngx_int_t
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

    return NGX_OK;
}


void
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


void
ngx_famcall_pg_connect(ngx_famcall_pg_conn_t *pc)
{
    const char             *keys[3], *values[3];
    ngx_famcall_pg_pool_t  *pool = pc->pool;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "famcall pg %s #%ui: connecting",
                   ngx_famcall_pg_kind(pc), pc->id);

    /*
     * The connection names its kind in pg_stat_activity ("famcall conn",
     * "famcall spare", "famcall listener"), so an operator (and t/06) can
     * tell the always-open connections from spares that come and go; an
     * application_name in famcall_db wins over it.
     */
    keys[0] = "dbname";
    values[0] = (const char *) pool->conninfo;
    keys[1] = "fallback_application_name";
    values[1] = pc->listener ? "famcall listener"
                             : (pc->spare ? "famcall spare" : "famcall conn");
    keys[2] = NULL;
    values[2] = NULL;

    /* expand_dbname: the conninfo string is read as a whole conninfo */
    pc->pg = PQconnectStartParams(keys, values, 1);

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
        ngx_famcall_pg_ready(pc);
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

    pc->pool->reconnects++;
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


void
ngx_famcall_pg_broken(ngx_famcall_pg_conn_t *pc, const char *why)
{
    ngx_uint_t               connected;
    ngx_queue_t              failed, *qn;
    ngx_famcall_pg_query_t  *q;
    ngx_famcall_pg_pool_t   *pool = pc->pool;

    connected = (pc->state == NGX_FAMCALL_PG_READY);
    pool->lost += connected;

    if (pc->spare) {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "famcall: spare database connection %s: %s",
                      connected ? "lost" : "failed", why ? why : "");

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


void
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
void
ngx_famcall_pg_fail_later(ngx_famcall_pg_conn_t *pc)
{
    pc->failed = 1;
    ngx_post_event(pc->c->read, &ngx_posted_events);
}


ngx_int_t
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


const char *
ngx_famcall_pg_kind(ngx_famcall_pg_conn_t *pc)
{
    return pc->listener ? "listener" : (pc->spare ? "spare" : "conn");
}
