/*
 * famcall: the metrics module's own types, shared by its files: the
 * module (registration, the zone, the slots), the scrape (the text
 * format) and the figures it keeps itself (requests, sockets, the pool).
 *
 * The zone: nginx's slab pool (every zone starts with one: the master
 * unlocks its mutex when a worker dies), which holds nslots slots of
 * `stride` bytes, each a ngx_famcall_metrics_slot_t and nvalues int64
 * values.  Its name holds a hash of the series: a reload that changes
 * them gets a new zone, and the old workers keep writing into theirs.  A series' id is
 * the index of its first value; a histogram has nbuckets + 1 counts (the
 * last is +Inf) and its sum after them.
 */

#ifndef _NGX_FAMCALL_METRICS_INT_H_INCLUDED_
#define _NGX_FAMCALL_METRICS_INT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_metrics.h"


#define NGX_FAMCALL_METRICS_LINE  64      /* a cache line */
#define NGX_FAMCALL_METRICS_MIN_SLOTS  8

/* the route classes a request is counted in, and those it is timed in */
#define NGX_FAMCALL_METRICS_CLASSES   5   /* 1xx .. 5xx */

#define NGX_FAMCALL_METRICS_WS_CODES  13  /* the close codes, and "other" */

#define NGX_FAMCALL_METRICS_DB_ERRORS 3   /* sql, unavailable, timeout */


typedef struct {
    ngx_atomic_t               pid;         /* 0: free */
    uint64_t                   layout;      /* what its values mean */
} ngx_famcall_metrics_slot_t;


typedef struct {
    ngx_str_t                  labels;
    ngx_uint_t                 id;
} ngx_famcall_metrics_series_t;


typedef struct {
    const ngx_famcall_metric_def_t  *def;
    ngx_array_t                series;      /* of ngx_famcall_metrics_series_t */
} ngx_famcall_metrics_family_t;


typedef struct {
    ngx_uint_t                 requests[NGX_FAMCALL_METRICS_CLASSES];
    ngx_uint_t                 duration[NGX_FAMCALL_METRICS_CLASSES];
} ngx_famcall_metrics_route_t;


typedef struct {
    ngx_array_t                families;    /* ngx_famcall_metrics_family_t */
    ngx_array_t                defs;        /* per value: its family's def */
    ngx_array_t                gauges;      /* ids of the gauges' values */
    ngx_uint_t                 nvalues;

    ngx_shm_zone_t            *zone;
    ngx_uint_t                 nslots;
    size_t                     stride;
    uint32_t                   crc;         /* of every series so far */
    uint64_t                   layout;      /* the crc, never 0 */
    u_char                    *base;        /* the slots, in the zone */

    /* this process's slot, NULL: none (the master, a helper, none left) */
    ngx_famcall_metrics_slot_t  *slot;
    int64_t                   *values;

    /* the figures the module keeps itself (ngx_famcall_metrics_builtin.c) */
    ngx_famcall_metrics_route_t  *routes;   /* per route of the router */
    ngx_uint_t                 nroutes;     /* the last is "unmatched" */
    ngx_uint_t                 ws_open;
    ngx_uint_t                 ws_opened;
    ngx_uint_t                 ws_closed[NGX_FAMCALL_METRICS_WS_CODES];
    ngx_uint_t                 db_ready;
    ngx_uint_t                 db_connecting;
    ngx_uint_t                 db_waiting;
    ngx_uint_t                 db_in_flight;
    ngx_uint_t                 db_errors[NGX_FAMCALL_METRICS_DB_ERRORS];
    ngx_uint_t                 db_lost;
    ngx_uint_t                 db_reconnects;
    /* the pool's totals when they were last added in */
    ngx_uint_t                 db_seen[NGX_FAMCALL_METRICS_DB_ERRORS + 2];
    ngx_event_t                publish;
} ngx_famcall_metrics_conf_t;


/* how many values a series of def has */
#define ngx_famcall_metrics_values(def)                                      \
    ((def)->type == NGX_FAMCALL_METRIC_HISTOGRAM ? (def)->nbuckets + 2 : 1)


ngx_uint_t ngx_famcall_metrics_register(ngx_conf_t *cf,
    ngx_famcall_metrics_conf_t *mcf, const ngx_famcall_metric_def_t *def,
    const char *labels);
ngx_famcall_metrics_conf_t *ngx_famcall_metrics_conf(void);
ngx_famcall_metrics_slot_t *ngx_famcall_metrics_slot(
    ngx_famcall_metrics_conf_t *mcf, ngx_uint_t i);

/* ngx_famcall_metrics_scrape.c: the famcall_metrics location's handler */
ngx_int_t ngx_famcall_metrics_handler(ngx_http_request_t *r);

/* ngx_famcall_metrics_builtin.c */
ngx_int_t ngx_famcall_metrics_builtin_init(ngx_conf_t *cf,
    ngx_famcall_metrics_conf_t *mcf);
ngx_int_t ngx_famcall_metrics_routes_init(ngx_conf_t *cf,
    ngx_famcall_metrics_conf_t *mcf);
void ngx_famcall_metrics_builtin_start(ngx_cycle_t *cycle,
    ngx_famcall_metrics_conf_t *mcf);
void ngx_famcall_metrics_builtin_stop(ngx_famcall_metrics_conf_t *mcf);
/* the pool's figures into this process's slot, now */
void ngx_famcall_metrics_publish_db(ngx_famcall_metrics_conf_t *mcf);


#endif /* _NGX_FAMCALL_METRICS_INT_H_INCLUDED_ */
