/*
 * famcall: the figures the metrics module keeps itself, for the parts
 * that know nothing of it.
 *
 *   - The API's requests, per route of the router, method and status
 *     class, and their time: a log-phase handler reads the route the
 *     router chose (its ctx), so the router is not touched.  A request
 *     that matched no route counts as route="unmatched".
 *   - WebSocket sockets: the transport calls ngx_famcall_metrics_ws_*().
 *   - The database pool: each worker's pool keeps its own totals, added
 *     into the worker's slot every second and at each scrape (the pool
 *     stays free of metrics).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_metrics_int.h"
#include "ngx_famcall_http.h"
#include "ngx_famcall_pg_conn.h"


#define NGX_FAMCALL_METRICS_PUBLISH  1000


static ngx_int_t ngx_famcall_metrics_log_handler(ngx_http_request_t *r);
static const char *ngx_famcall_metrics_method(ngx_uint_t method);
static void ngx_famcall_metrics_publish(ngx_event_t *ev);


/* milliseconds, exposed as seconds */
static const ngx_uint_t  ngx_famcall_metrics_ms_buckets[] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};


static const ngx_famcall_metric_def_t  ngx_famcall_metrics_requests = {
    "famcall_http_requests_total",
    "API requests answered, by route, method and status class",
    NGX_FAMCALL_METRIC_COUNTER, NULL, 0, 0, 1
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_duration = {
    "famcall_http_request_duration_seconds",
    "Time from a request's first byte to its answer, by route, method "
    "and status class",
    NGX_FAMCALL_METRIC_HISTOGRAM, ngx_famcall_metrics_ms_buckets,
    sizeof(ngx_famcall_metrics_ms_buckets) / sizeof(ngx_uint_t), 1000, 1
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_ws_open_def = {
    "famcall_ws_sockets_open",
    "WebSocket sockets open now",
    NGX_FAMCALL_METRIC_GAUGE, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_ws_opened_def = {
    "famcall_ws_sockets_opened_total",
    "WebSocket sockets taken over after their handshake",
    NGX_FAMCALL_METRIC_COUNTER, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_ws_closed_def = {
    "famcall_ws_sockets_closed_total",
    "WebSocket sockets closed, by the close code sent or received first "
    "(1006: none, the connection dropped)",
    NGX_FAMCALL_METRIC_COUNTER, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_db_conns_def = {
    "famcall_db_connections",
    "Database connections of the workers' pools, by state",
    NGX_FAMCALL_METRIC_GAUGE, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_db_waiting_def = {
    "famcall_db_queries_waiting",
    "Queries waiting in the pools for a connection",
    NGX_FAMCALL_METRIC_GAUGE, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_db_flight_def = {
    "famcall_db_queries_in_flight",
    "Queries sent on a connection and not answered yet",
    NGX_FAMCALL_METRIC_GAUGE, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_db_errors_def = {
    "famcall_db_query_errors_total",
    "Queries that failed, by reason (sql: the statement failed; "
    "unavailable: no connection, or it broke; timeout)",
    NGX_FAMCALL_METRIC_COUNTER, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_db_lost_def = {
    "famcall_db_connections_lost_total",
    "Connections that broke while up",
    NGX_FAMCALL_METRIC_COUNTER, NULL, 0, 0, 0
};

static const ngx_famcall_metric_def_t  ngx_famcall_metrics_db_recon_def = {
    "famcall_db_reconnects_total",
    "Attempts to connect again after a connection broke or failed",
    NGX_FAMCALL_METRIC_COUNTER, NULL, 0, 0, 0
};


/* the codes a socket is counted under: the last is every other code */
static const ngx_uint_t  ngx_famcall_metrics_ws_codes[] = {
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 4000, 4001, 0
};

static const char  *ngx_famcall_metrics_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx"
};

/* the pool's status enum, NGX_FAMCALL_PG_SQL_ERROR on */
static const char  *ngx_famcall_metrics_db_reasons[] = {
    "reason=\"sql\"", "reason=\"unavailable\"", "reason=\"timeout\""
};


ngx_int_t
ngx_famcall_metrics_builtin_init(ngx_conf_t *cf,
    ngx_famcall_metrics_conf_t *mcf)
{
    u_char      *labels;
    ngx_uint_t   i, code;

#define ngx_famcall_metrics_reg(field, def, labels)                          \
    field = ngx_famcall_metrics_register(cf, mcf, def, labels);              \
    if (field == NGX_FAMCALL_METRIC_NONE) {                                  \
        return NGX_ERROR;                                                    \
    }

    ngx_famcall_metrics_reg(mcf->ws_open, &ngx_famcall_metrics_ws_open_def,
                            NULL);
    ngx_famcall_metrics_reg(mcf->ws_opened,
                            &ngx_famcall_metrics_ws_opened_def, NULL);

    for (i = 0; i < NGX_FAMCALL_METRICS_WS_CODES; i++) {
        labels = ngx_pnalloc(cf->pool, sizeof("code=\"other\""));
        if (labels == NULL) {
            return NGX_ERROR;
        }

        code = ngx_famcall_metrics_ws_codes[i];

        if (code) {
            ngx_sprintf(labels, "code=\"%ui\"%Z", code);

        } else {
            ngx_sprintf(labels, "code=\"other\"%Z");
        }

        ngx_famcall_metrics_reg(mcf->ws_closed[i],
                                &ngx_famcall_metrics_ws_closed_def,
                                (char *) labels);
    }

    ngx_famcall_metrics_reg(mcf->db_ready, &ngx_famcall_metrics_db_conns_def,
                            "state=\"ready\"");
    ngx_famcall_metrics_reg(mcf->db_connecting,
                            &ngx_famcall_metrics_db_conns_def,
                            "state=\"connecting\"");
    ngx_famcall_metrics_reg(mcf->db_waiting,
                            &ngx_famcall_metrics_db_waiting_def, NULL);
    ngx_famcall_metrics_reg(mcf->db_in_flight,
                            &ngx_famcall_metrics_db_flight_def, NULL);

    for (i = 0; i < NGX_FAMCALL_METRICS_DB_ERRORS; i++) {
        ngx_famcall_metrics_reg(mcf->db_errors[i],
                                &ngx_famcall_metrics_db_errors_def,
                                ngx_famcall_metrics_db_reasons[i]);
    }

    ngx_famcall_metrics_reg(mcf->db_lost, &ngx_famcall_metrics_db_lost_def,
                            NULL);
    ngx_famcall_metrics_reg(mcf->db_reconnects,
                            &ngx_famcall_metrics_db_recon_def, NULL);

    return NGX_OK;
}


/*
 * At the module's postconfiguration, every feature's routes added: a
 * series per route and class, and the log-phase handler.
 */
ngx_int_t
ngx_famcall_metrics_routes_init(ngx_conf_t *cf,
    ngx_famcall_metrics_conf_t *mcf)
{
    u_char                        *labels, *path;
    ngx_str_t                      s;
    ngx_uint_t                     i, c;
    const char                    *method;
    ngx_http_handler_pt           *h;
    ngx_famcall_route_t           *rt;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_famcall_metrics_route_t   *mr;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);

    mcf->nroutes = fmcf->routes.nelts + 1;
    mcf->routes = ngx_pcalloc(cf->pool,
                              mcf->nroutes
                              * sizeof(ngx_famcall_metrics_route_t));
    if (mcf->routes == NULL) {
        return NGX_ERROR;
    }

    rt = fmcf->routes.elts;

    for (i = 0; i < mcf->nroutes; i++) {
        mr = &mcf->routes[i];

        if (i < fmcf->routes.nelts) {
            s.data = (u_char *) rt[i].path;
            s.len = ngx_strlen(rt[i].path);
            method = ngx_famcall_metrics_method(rt[i].method);

            path = ngx_famcall_metric_escape(cf->pool, &s);
            if (path == NULL) {
                return NGX_ERROR;
            }

        } else {
            path = (u_char *) "unmatched";
            method = "any";
        }

        for (c = 0; c < NGX_FAMCALL_METRICS_CLASSES; c++) {
            labels = ngx_pnalloc(cf->pool, ngx_strlen(path) + 64);
            if (labels == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(labels, "route=\"%s\",method=\"%s\",status=\"%s\"%Z",
                        path, method, ngx_famcall_metrics_classes[c]);

            ngx_famcall_metrics_reg(mr->requests[c],
                                    &ngx_famcall_metrics_requests,
                                    (char *) labels);
            ngx_famcall_metrics_reg(mr->duration[c],
                                    &ngx_famcall_metrics_duration,
                                    (char *) labels);
        }
    }

#undef ngx_famcall_metrics_reg

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_famcall_metrics_log_handler;

    return NGX_OK;
}


static const char *
ngx_famcall_metrics_method(ngx_uint_t method)
{
    switch (method) {
    case NGX_HTTP_GET:
        return "GET";
    case NGX_HTTP_POST:
        return "POST";
    case NGX_HTTP_PUT:
        return "PUT";
    case NGX_HTTP_PATCH:
        return "PATCH";
    case NGX_HTTP_DELETE:
        return "DELETE";
    default:
        return "other";
    }
}


/* only the API's requests: the router's ctx is on them */
static ngx_int_t
ngx_famcall_metrics_log_handler(ngx_http_request_t *r)
{
    ngx_int_t                     ms;
    ngx_uint_t                    status, route;
    ngx_time_t                   *tp;
    ngx_famcall_ctx_t            *ctx;
    ngx_famcall_metrics_conf_t   *mcf;
    ngx_famcall_metrics_route_t  *mr;

    ctx = ngx_http_get_module_ctx(r, ngx_http_famcall_module);
    if (ctx == NULL || r != r->main) {
        return NGX_OK;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_famcall_metrics_module);
    if (mcf->values == NULL) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    /* nothing was answered (the client left first): not an answer */
    if (status < 100 || status > 599) {
        return NGX_OK;
    }

    route = mcf->nroutes - 1;

    if (ctx->route != NULL) {
        route = ctx->route - (ngx_famcall_route_t *) ctx->fmcf->routes.elts;

        if (route >= mcf->nroutes - 1) {
            route = mcf->nroutes - 1;
        }
    }

    mr = &mcf->routes[route];
    status = status / 100 - 1;

    tp = ngx_timeofday();
    ms = (ngx_int_t) ((tp->sec - r->start_sec) * 1000
                      + (tp->msec - r->start_msec));

    ngx_famcall_metric_inc(mr->requests[status]);
    ngx_famcall_metric_observe(mr->duration[status],
                               (uint64_t) ngx_max(ms, 0));

    return NGX_OK;
}


void
ngx_famcall_metrics_ws_opened(void)
{
    ngx_famcall_metrics_conf_t  *mcf = ngx_famcall_metrics_conf();

    if (mcf == NULL || mcf->values == NULL) {
        return;
    }

    mcf->values[mcf->ws_opened]++;
    mcf->values[mcf->ws_open]++;
}


void
ngx_famcall_metrics_ws_closed(ngx_uint_t code)
{
    ngx_uint_t                   i;
    ngx_famcall_metrics_conf_t  *mcf = ngx_famcall_metrics_conf();

    if (mcf == NULL || mcf->values == NULL) {
        return;
    }

    if (code == 0) {
        code = 1006;
    }

    for (i = 0; i < NGX_FAMCALL_METRICS_WS_CODES - 1; i++) {
        if (ngx_famcall_metrics_ws_codes[i] == code) {
            break;
        }
    }

    mcf->values[mcf->ws_closed[i]]++;
    mcf->values[mcf->ws_open]--;
}


void
ngx_famcall_metrics_builtin_start(ngx_cycle_t *cycle,
    ngx_famcall_metrics_conf_t *mcf)
{
    mcf->publish.handler = ngx_famcall_metrics_publish;
    mcf->publish.data = mcf;
    mcf->publish.log = cycle->log;
    mcf->publish.cancelable = 1;

    ngx_add_timer(&mcf->publish, NGX_FAMCALL_METRICS_PUBLISH);
}


void
ngx_famcall_metrics_builtin_stop(ngx_famcall_metrics_conf_t *mcf)
{
    if (mcf->publish.timer_set) {
        ngx_del_timer(&mcf->publish);
    }
}


static void
ngx_famcall_metrics_publish(ngx_event_t *ev)
{
    ngx_famcall_metrics_conf_t  *mcf = ev->data;

    ngx_famcall_metrics_publish_db(mcf);

    if (!ngx_exiting) {
        ngx_add_timer(&mcf->publish, NGX_FAMCALL_METRICS_PUBLISH);
    }
}


void
ngx_famcall_metrics_publish_db(ngx_famcall_metrics_conf_t *mcf)
{
    int64_t                        *v;
    ngx_uint_t                      i, ready, connecting, flight;
    ngx_uint_t                      total[NGX_FAMCALL_METRICS_DB_ERRORS + 2];
    ngx_uint_t                      id[NGX_FAMCALL_METRICS_DB_ERRORS + 2];
    ngx_famcall_pg_conn_t          *pc;
    ngx_famcall_pg_pool_t          *pool;
    ngx_http_famcall_main_conf_t   *fmcf;

    fmcf = ngx_famcall_core_conf((ngx_cycle_t *) ngx_cycle);

    if (mcf->values == NULL || fmcf == NULL || fmcf->pg == NULL) {
        return;
    }

    v = mcf->values;
    pool = fmcf->pg;
    ready = 0;
    connecting = 0;
    flight = 0;

    for (i = 0; i < pool->max; i++) {
        pc = &pool->conns[i];
        ready += (pc->state == NGX_FAMCALL_PG_READY);
        connecting += (pc->state == NGX_FAMCALL_PG_CONNECTING);
        flight += pc->ninflight;
    }

    if ((pc = pool->listener) != NULL) {
        ready += (pc->state == NGX_FAMCALL_PG_READY);
        connecting += (pc->state == NGX_FAMCALL_PG_CONNECTING);
    }

    v[mcf->db_ready] = ready;
    v[mcf->db_connecting] = connecting;
    v[mcf->db_waiting] = pool->nwaiting;
    v[mcf->db_in_flight] = flight;

    /* the pool's totals since it began; the slot's since the zone did */
    total[0] = pool->failed[NGX_FAMCALL_PG_SQL_ERROR];
    total[1] = pool->failed[NGX_FAMCALL_PG_UNAVAILABLE];
    total[2] = pool->failed[NGX_FAMCALL_PG_TIMEOUT];
    total[3] = pool->lost;
    total[4] = pool->reconnects;

    id[0] = mcf->db_errors[0];
    id[1] = mcf->db_errors[1];
    id[2] = mcf->db_errors[2];
    id[3] = mcf->db_lost;
    id[4] = mcf->db_reconnects;

    for (i = 0; i < NGX_FAMCALL_METRICS_DB_ERRORS + 2; i++) {
        v[id[i]] += (int64_t) (total[i] - mcf->db_seen[i]);
        mcf->db_seen[i] = total[i];
    }
}
