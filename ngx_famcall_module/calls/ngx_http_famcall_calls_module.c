/*
 * famcall: the calls module, ngx_http_famcall_calls_module: the
 * famcall_call_* directives, the statements of sql/019_calls.sql, the
 * call:* socket events (ngx_famcall_call_events.c) and, in every worker, the
 * sweeper that ends calls whose ring timeout passed.
 *
 * The sweeper also ends accepted calls whose side stayed lost (its bound
 * socket gone) past famcall_call_reconnect_grace (sql/021).
 *
 * The sweeper runs in every worker of every node: a call rings out on time
 * even when the node that placed it is gone, and the statement takes its
 * rows with SKIP LOCKED, so sweepers that run at once end different calls
 * and never wait on each other.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_calls.h"


static ngx_int_t ngx_famcall_calls_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_calls_create_conf(ngx_conf_t *cf);
static char *ngx_famcall_calls_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_famcall_calls_init_process(ngx_cycle_t *cycle);
static void ngx_famcall_calls_exit(void *data);
static void ngx_famcall_call_sweep(ngx_event_t *ev);
static void ngx_famcall_call_sweep_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);


static ngx_conf_num_bounds_t  ngx_famcall_call_rate_bounds = {
    ngx_famcall_conf_check_bounds, 1, 10000
};


#define famcall_off(f)  offsetof(ngx_famcall_calls_conf_t, f)

static ngx_command_t  ngx_famcall_calls_commands[] = {

    { ngx_string("famcall_call_ring_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(ring_timeout), NULL },

    { ngx_string("famcall_call_invite_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(invite_rate), &ngx_famcall_call_rate_bounds },

    { ngx_string("famcall_call_reconnect_grace"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(reconnect_grace), NULL },

    { ngx_string("famcall_call_sweep_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(sweep_interval), NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_calls_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_calls_postconfiguration,   /* postconfiguration */

    ngx_famcall_calls_create_conf,         /* create main configuration */
    ngx_famcall_calls_init_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_calls_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_calls_module_ctx,    /* module context */
    ngx_famcall_calls_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_famcall_calls_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* sql/019_calls.sql */
static const ngx_famcall_stmt_t
    ngx_famcall_calls_sql[NGX_FAMCALL_CALL_SQL_COUNT] =
{

    [NGX_FAMCALL_CALL_SQL_INVITE] = { "famcall_call_invite",
      NGX_FAMCALL_SQL_FN("famcall_call_invite",
          "$1::uuid, $2::uuid, $3::text, $4::text, $5::int, $6::int"), 6 },

    [NGX_FAMCALL_CALL_SQL_ACCEPT] = { "famcall_call_accept",
      NGX_FAMCALL_SQL_FN("famcall_call_accept",
                         "$1::uuid, $2::uuid, $3::text"), 3 },

    [NGX_FAMCALL_CALL_SQL_STOP] = { "famcall_call_stop",
      NGX_FAMCALL_SQL_FN("famcall_call_stop",
                         "$1::uuid, $2::uuid, $3::text, $4::text"), 4 },

    [NGX_FAMCALL_CALL_SQL_END] = { "famcall_call_end",
      NGX_FAMCALL_SQL_FN("famcall_call_end",
                         "$1::uuid, $2::uuid, $3::text, $4::text"), 4 },

    [NGX_FAMCALL_CALL_SQL_SWEEP] = { "famcall_call_sweep",
      NGX_FAMCALL_SQL_FN("famcall_call_sweep", "$1::int, $2::int"), 2 },

    /* sql/025: the bus line this node delivers itself, and the binding */
    [NGX_FAMCALL_CALL_SQL_RELAY] = { "famcall_call_relay",
      "SELECT status, body, local, bind FROM famcall_call_relay($1::uuid, "
      "$2::uuid, $3::text, $4::text, $5::text, $6::uuid[])", 6 },

    /* sql/021 */
    [NGX_FAMCALL_CALL_SQL_RESUME] = { "famcall_call_resume",
      NGX_FAMCALL_SQL_FN("famcall_call_resume",
                         "$1::uuid, $2::uuid, $3::text"), 3 },

    [NGX_FAMCALL_CALL_SQL_LIST] = { "famcall_calls_list",
      NGX_FAMCALL_SQL_FN("famcall_calls_list",
                         "$1::uuid, $2::text, $3::int"), 3 },

    [NGX_FAMCALL_CALL_SQL_STATS] = { "famcall_call_stats",
      NGX_FAMCALL_SQL_FN("famcall_call_stats",
                         "$1::uuid, $2::uuid, $3::jsonb"), 3 },

    /* sql/022 */
    [NGX_FAMCALL_CALL_SQL_ACTIVE] = { "famcall_calls_active",
      NGX_FAMCALL_SQL_FN("famcall_calls_active", "$1::uuid"), 1 },

    /* sql/026 */
    [NGX_FAMCALL_CALL_SQL_CLOSED] = { "famcall_call_socket_closed",
      NGX_FAMCALL_SQL_FN("famcall_call_socket_closed",
                         "$1::uuid, $2::text"), 2 },
};


static const ngx_famcall_route_t  ngx_famcall_calls_routes[] = {

    { NGX_HTTP_GET,  "/v1/calls", ngx_famcall_calls_list, 1, 0 },
    { NGX_HTTP_POST, "/v1/calls/{}/stats", ngx_famcall_call_stats, 1, 1 },

    { 0, NULL, NULL, 0, 0 }
};


static ngx_int_t
ngx_famcall_calls_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_famcall_calls_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_calls_sql,
                                      NGX_FAMCALL_CALL_SQL_COUNT, &ccf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_famcall_call_events_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_famcall_call_relay_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_famcall_call_lost_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_calls_routes);
}


static void *
ngx_famcall_calls_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_calls_conf_t));
    if (ccf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     ccf->sql = 0;
     *     ccf->fmcf = NULL;
     *     ccf->sweep = { 0 };
     *     ccf->sweep_query = NULL;
     */

    ccf->ring_timeout = NGX_CONF_UNSET_MSEC;
    ccf->invite_rate = NGX_CONF_UNSET_UINT;
    ccf->sweep_interval = NGX_CONF_UNSET_MSEC;
    ccf->reconnect_grace = NGX_CONF_UNSET_MSEC;

    return ccf;
}


static char *
ngx_famcall_calls_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_famcall_calls_conf_t  *ccf = conf;

    ngx_conf_init_msec_value(ccf->ring_timeout, 45000);
    ngx_conf_init_uint_value(ccf->invite_rate, 10);
    ngx_conf_init_msec_value(ccf->sweep_interval, 1000);
    ngx_conf_init_msec_value(ccf->reconnect_grace, 20000);

    if (ccf->reconnect_grace > 600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_call_reconnect_grace\" must be "
                           "at most 10m");
        return NGX_CONF_ERROR;
    }

    /* the database counts it in whole milliseconds, as an int */
    if (ccf->ring_timeout < 1000 || ccf->ring_timeout > 600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_call_ring_timeout\" must be "
                           "from 1s to 10m");
        return NGX_CONF_ERROR;
    }

    if (ccf->sweep_interval < 100 || ccf->sweep_interval > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_call_sweep_interval\" must be "
                           "from 100ms to 1m");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* after the core's (config lists it first): the pool is there */
static ngx_int_t
ngx_famcall_calls_init_process(ngx_cycle_t *cycle)
{
    ngx_famcall_calls_conf_t      *ccf;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_famcall_core_conf(cycle);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    ccf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_famcall_calls_module);

    ccf->fmcf = fmcf;
    ccf->sweep.handler = ngx_famcall_call_sweep;
    ccf->sweep.data = ccf;
    ccf->sweep.log = cycle->log;
    ccf->sweep.cancelable = 1;

    /* workers start together: spread their rounds over the interval */
    ngx_add_timer(&ccf->sweep, ccf->sweep_interval / 2
                               + (ngx_pid % (ccf->sweep_interval / 2 + 1)));

    return ngx_famcall_exit_add(cycle, fmcf, ngx_famcall_calls_exit, ccf);
}


static void
ngx_famcall_calls_exit(void *data)
{
    ngx_famcall_calls_conf_t  *ccf = data;

    if (ccf->sweep.timer_set) {
        ngx_del_timer(&ccf->sweep);
    }

    if (ccf->sweep_query != NULL) {
        ngx_famcall_pg_detach(ccf->sweep_query);
        ccf->sweep_query = NULL;
    }

    ccf->fmcf = NULL;
}


ngx_famcall_calls_conf_t *
ngx_famcall_calls_conf(void)
{
    return ngx_http_cycle_get_module_main_conf((ngx_cycle_t *) ngx_cycle,
                                               ngx_http_famcall_calls_module);
}


static void
ngx_famcall_call_sweep(ngx_event_t *ev)
{
    ngx_famcall_calls_conf_t  *ccf = ev->data;

    u_char       lim[NGX_INT_T_LEN + 1];
    u_char       grace[NGX_INT_T_LEN + 1];
    const char  *params[2];

    if (ccf->fmcf == NULL || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (ccf->sweep_query != NULL) {
        return;
    }

    ngx_snprintf(lim, sizeof(lim), "%ui%Z",
                 (ngx_uint_t) NGX_FAMCALL_CALL_SWEEP_BATCH);
    ngx_snprintf(grace, sizeof(grace), "%M%Z", ccf->reconnect_grace);
    params[0] = (const char *) lim;
    params[1] = (const char *) grace;

    ccf->sweep_query = ngx_famcall_pg_send(ccf->fmcf->pg,
                                           ccf->sql
                                           + NGX_FAMCALL_CALL_SQL_SWEEP,
                                           2, params,
                                           ngx_famcall_call_sweep_done, ccf);

    if (ccf->sweep_query == NULL) {
        /* the database is down: the next round tries again */
        ngx_add_timer(&ccf->sweep, ccf->sweep_interval);
    }
}


/* owned by the worker's conf: the exit handler detaches it first */
static void
ngx_famcall_call_sweep_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_calls_conf_t  *ccf = data;

    ngx_int_t   ended;
    ngx_msec_t  next;
    u_char     *p;

    ccf->sweep_query = NULL;
    next = ccf->sweep_interval;

    if (status == NGX_FAMCALL_PG_OK && PQntuples(res) == 1
        && PQnfields(res) == 2 && !PQgetisnull(res, 0, 1))
    {
        /* {"ended": n} */
        p = (u_char *) ngx_strchr(PQgetvalue(res, 0, 1), ':');
        ended = 0;

        if (p != NULL) {
            for (p++; *p == ' '; p++) { /* void */ }
            ended = ngx_atoi(p, ngx_strlen(p) - 1);
        }

        if (ended > 0) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ccf->sweep.log, 0,
                           "famcall call: %i calls rang out or were lost",
                           ended);
        }

        /* a full round: more may be waiting, go on at once */
        if (ended >= NGX_FAMCALL_CALL_SWEEP_BATCH) {
            next = 1;
        }
    }

    if (ccf->fmcf != NULL && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&ccf->sweep, next);
    }
}
