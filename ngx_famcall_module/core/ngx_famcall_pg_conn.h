/*
 * famcall: the PostgreSQL pool's insides, shared by ngx_famcall_pg.c (the
 * pool: where a query goes, spares, waiting queries) and
 * ngx_famcall_pg_conn.c (one connection's life: connect, pipeline, results,
 * teardown).  Nothing else includes it; the interface is ngx_famcall_pg.h.
 */

#ifndef _NGX_FAMCALL_PG_CONN_H_INCLUDED_
#define _NGX_FAMCALL_PG_CONN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_pg.h"


/* a broken connection reconnects, a spare that failed retries, after */
#define NGX_FAMCALL_PG_BACKOFF_MIN    100
#define NGX_FAMCALL_PG_BACKOFF_MAX    5000


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

    /* totals since the pool began, read by the metrics module */
    ngx_uint_t                 failed[4];   /* by ngx_famcall_pg_status_e */
    ngx_uint_t                 lost;        /* broken while up */
    ngx_uint_t                 reconnects;
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


/* ngx_famcall_pg_conn.c */
ngx_int_t ngx_famcall_pg_conn_init(ngx_famcall_pg_conn_t *pc,
    ngx_famcall_pg_pool_t *pool, ngx_cycle_t *cycle);
void ngx_famcall_pg_conn_destroy(ngx_famcall_pg_conn_t *pc);
void ngx_famcall_pg_connect(ngx_famcall_pg_conn_t *pc);
ngx_int_t ngx_famcall_pg_dispatch(ngx_famcall_pg_conn_t *pc,
    ngx_famcall_pg_query_t *q);
void ngx_famcall_pg_broken(ngx_famcall_pg_conn_t *pc, const char *why);
void ngx_famcall_pg_close(ngx_famcall_pg_conn_t *pc);
void ngx_famcall_pg_fail_later(ngx_famcall_pg_conn_t *pc);
const char *ngx_famcall_pg_kind(ngx_famcall_pg_conn_t *pc);

/* ngx_famcall_pg.c */
void ngx_famcall_pg_ready(ngx_famcall_pg_conn_t *pc);
void ngx_famcall_pg_complete(ngx_famcall_pg_query_t *q);
void ngx_famcall_pg_query_free(ngx_famcall_pg_query_t *q);
void ngx_famcall_pg_drain_waiting(ngx_famcall_pg_pool_t *pool);
ngx_uint_t ngx_famcall_pg_reachable(ngx_famcall_pg_pool_t *pool);
void ngx_famcall_pg_fail_waiting(ngx_famcall_pg_pool_t *pool);


#endif /* _NGX_FAMCALL_PG_CONN_H_INCLUDED_ */
