/*
 * famcall: a per-worker pool of non-blocking libpq connections driven by
 * nginx's event loop.
 *
 * Every connection stays in pipeline mode: queries are prepared statements
 * from the list the pool is created with, prepared lazily on first use,
 * each followed by its own sync point so one failing query never aborts
 * another.  Several queries can be in flight on one connection.
 *
 * The owner of a query (a request, later a WebSocket) gets exactly one call
 * of its handler, unless it detaches first with ngx_famcall_pg_detach().
 *
 * A query that waits on a lock holds up everything pipelined behind it on
 * its connection.  So a connection whose oldest query has waited longer
 * than a short threshold with no result since is "stuck": new queries go
 * to a connection that is moving, or to a spare one opened for them (up to
 * famcall_db_pool_max connections in all), or wait in the pool for the
 * first connection that moves.  Spares close again once idle.
 */

#ifndef _NGX_FAMCALL_PG_H_INCLUDED_
#define _NGX_FAMCALL_PG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <libpq-fe.h>


typedef enum {
    NGX_FAMCALL_PG_OK = 0,
    NGX_FAMCALL_PG_SQL_ERROR,       /* the statement failed; logged */
    NGX_FAMCALL_PG_UNAVAILABLE,     /* no connection, or it broke */
    NGX_FAMCALL_PG_TIMEOUT          /* no answer within famcall_db_timeout */
} ngx_famcall_pg_status_e;


/* what a query sent now would meet (ngx_famcall_pg_pool_state) */
typedef enum {
    NGX_FAMCALL_PG_POOL_DOWN = 0,   /* nothing up nor coming up: refused */
    NGX_FAMCALL_PG_POOL_UP,         /* a moving connection, or one coming
                                       up, would take it */
    NGX_FAMCALL_PG_POOL_BUSY        /* connected, but every connection is
                                       stuck or full and no spare can be
                                       opened: it would wait */
} ngx_famcall_pg_pool_state_e;


typedef struct ngx_famcall_pg_pool_s   ngx_famcall_pg_pool_t;
typedef struct ngx_famcall_pg_query_s  ngx_famcall_pg_query_t;

/* res is valid during the call only; NULL unless status is OK */
typedef void (*ngx_famcall_pg_handler_pt)(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);


/*
 * a notification on the listened channel (payload, len), or, with a NULL
 * payload, "(re)subscribed": notifications sent meanwhile were missed
 */
typedef void (*ngx_famcall_pg_notify_pt)(void *data, const char *payload,
    size_t len);


typedef struct {
    const char   *name;
    const char   *sql;
    int           nparams;
} ngx_famcall_stmt_t;


/*
 * Run stmt with params (kept by pointer: static) on every query connection
 * as it connects, its answer ignored.
 */
void ngx_famcall_pg_warm(ngx_famcall_pg_pool_t *pool, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *params);

/*
 * size connections, always open; up to max in all with the spares, which
 * are opened while the others are stuck.  stmts: every statement of the
 * module (kept by pointer: the conf's).
 */
ngx_famcall_pg_pool_t *ngx_famcall_pg_pool_create(ngx_cycle_t *cycle,
    ngx_str_t *conninfo, ngx_uint_t size, ngx_uint_t max,
    ngx_msec_t timeout, const ngx_famcall_stmt_t *stmts, ngx_uint_t nstmts);
void ngx_famcall_pg_pool_destroy(ngx_famcall_pg_pool_t *pool);

/*
 * From the pool's state alone, no query: for a health check that must not
 * wait behind busy connections.
 */
ngx_famcall_pg_pool_state_e ngx_famcall_pg_pool_state(
    ngx_famcall_pg_pool_t *pool);

/*
 * One more connection, outside the query rotation, runs statement stmt
 * (a LISTEN) whenever it (re)connects and passes what it hears to notify.
 */
ngx_int_t ngx_famcall_pg_listen(ngx_famcall_pg_pool_t *pool,
    ngx_cycle_t *cycle, ngx_uint_t stmt, ngx_famcall_pg_notify_pt notify,
    void *data);

/*
 * The listening connection closes (its session, and so its LISTEN, ends)
 * and nothing more is passed to notify; ngx_famcall_pg_listen opens it
 * again.  Not from inside notify.
 */
void ngx_famcall_pg_unlisten(ngx_famcall_pg_pool_t *pool);

/*
 * Queue statement stmt (an index into the pool's list) with text
 * parameters (NULL values are SQL NULLs).  The parameters are copied.
 * Returns NULL when the database is unreachable right now: the caller
 * answers 503 at once instead of waiting.
 */
ngx_famcall_pg_query_t *ngx_famcall_pg_send(ngx_famcall_pg_pool_t *pool,
    ngx_uint_t stmt, ngx_uint_t nparams, const char *const *values,
    ngx_famcall_pg_handler_pt handler, void *data);

/* the owner is gone: its handler will not be called */
void ngx_famcall_pg_detach(ngx_famcall_pg_query_t *q);


#endif /* _NGX_FAMCALL_PG_H_INCLUDED_ */
