/*
 * famcall: call signaling, ngx_http_famcall_calls_module
 * (ngx_http_famcall_calls_module.c): its directives (famcall_call_*), its
 * statements (sql/019_calls.sql), its socket events (call:*) and the
 * worker's sweeper of calls that rang out.
 *
 *   ngx_http_famcall_calls_module.c  directives, conf, statements, the
 *                                    sweeper's timer
 *   ngx_famcall_call_events.c        the call:* events' handlers
 *   ngx_famcall_call_fields.c        every field table of the module's
 *                                    events and bodies, pure C (t/fuzz/)
 *   ngx_famcall_call_relay.c         webrtc:offer, answer, ice: between
 *                                    the call's two bound devices
 *   ngx_famcall_call_http.c          GET /v1/calls, POST /v1/calls/{}/stats
 *   ngx_famcall_call_lost.c          a bound socket that closes while its
 *                                    user stays on the worker
 *
 * The calls row in PostgreSQL is the truth of a call's state; every
 * transition is one statement (a conditional update) that also tells the
 * sockets concerned on the bus, so this module keeps no call state of its
 * own in a worker.
 */

#ifndef _NGX_FAMCALL_CALLS_H_INCLUDED_
#define _NGX_FAMCALL_CALLS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_core.h"
#include "ngx_famcall_token.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_http.h"
#include "ngx_famcall_gw_events.h"


/* ends at most this many calls per round; a full round runs again at once */
#define NGX_FAMCALL_CALL_SWEEP_BATCH  100

/* "<instance>.<socket id>", as ngx_famcall_gw_op_src() writes it */
#define NGX_FAMCALL_CALL_SRC_LEN      (NGX_FAMCALL_ID_LEN + 1 + NGX_INT64_LEN)


/* the module's statements: its conf's sql + these */
typedef enum {
    NGX_FAMCALL_CALL_SQL_INVITE = 0,
    NGX_FAMCALL_CALL_SQL_ACCEPT,
    NGX_FAMCALL_CALL_SQL_STOP,
    NGX_FAMCALL_CALL_SQL_END,
    NGX_FAMCALL_CALL_SQL_SWEEP,
    NGX_FAMCALL_CALL_SQL_RELAY,
    NGX_FAMCALL_CALL_SQL_RESUME,
    NGX_FAMCALL_CALL_SQL_LIST,
    NGX_FAMCALL_CALL_SQL_STATS,
    NGX_FAMCALL_CALL_SQL_ACTIVE,
    NGX_FAMCALL_CALL_SQL_CLOSED,
    NGX_FAMCALL_CALL_SQL_COUNT
} ngx_famcall_call_sql_e;


typedef struct {
    ngx_msec_t                 ring_timeout;    /* famcall_call_ring_timeout */
    ngx_uint_t                 invite_rate;     /* invites a minute, a user */
    ngx_msec_t                 sweep_interval;
    ngx_msec_t                 reconnect_grace; /* famcall_call_reconnect_grace */

    ngx_uint_t                 sql;             /* its first statement */

    /* this worker's sweeper */
    ngx_http_famcall_main_conf_t  *fmcf;
    ngx_event_t                sweep;
    ngx_famcall_pg_query_t    *sweep_query;     /* in flight, or NULL */

    /* the node's bindings (ngx_famcall_call_bind.h) */
    ngx_shm_zone_t            *bind_zone;

    /* this worker's sockets whose relays wait for a statement
     * (ngx_famcall_call_relay.c) */
    ngx_rbtree_t               relays;
    ngx_rbtree_node_t          relays_sentinel;
} ngx_famcall_calls_conf_t;


extern ngx_module_t  ngx_http_famcall_calls_module;


/* ngx_famcall_call_events.c: registers call:* with the gateway */
ngx_int_t ngx_famcall_call_events_init(ngx_conf_t *cf);

/* ngx_famcall_call_relay.c: registers webrtc:* with the gateway */
ngx_int_t ngx_famcall_call_relay_init(ngx_conf_t *cf);

/*
 * ngx_famcall_call_bind.c: call_id (text) is about to end or resume from a
 * socket of this node: the node relays for it through the row from now on
 */
void ngx_famcall_call_unbind_id(const char *call_id);

/* ngx_famcall_call_lost.c: hears of this worker's sockets that close */
ngx_int_t ngx_famcall_call_lost_init(ngx_conf_t *cf);

/* ngx_famcall_call_http.c: the routes */
ngx_int_t ngx_famcall_calls_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_call_stats(ngx_famcall_ctx_t *ctx);

/* the module's conf in this worker */
ngx_famcall_calls_conf_t *ngx_famcall_calls_conf(void);


#endif /* _NGX_FAMCALL_CALLS_H_INCLUDED_ */
