/*
 * famcall: the metrics module, ngx_http_famcall_metrics_module: counters,
 * gauges and histograms any feature keeps, served in Prometheus' text
 * format (0.0.4) by a `famcall_metrics` location.
 *
 * A feature registers its series while the configuration is read (any
 * http module's create/init conf or postconfiguration): one call per
 * series, a family definition and its labels, which gives back an id.  At
 * run time the id is all it passes:
 *
 *     id = ngx_famcall_metric_register(cf, &my_sends_def,
 *                                      "outcome=\"ok\"");
 *     ...
 *     ngx_famcall_metric_inc(id);
 *
 * The figures live in a shared zone: every process has a slot of its own
 * (claimed at its start by pid), and a scrape sums the slots, so the hot
 * path is a plain add to memory no other process writes: no lock, no
 * atomic, no shared cache line.  A slot given up by an exiting worker, or
 * left by one that died, keeps its counters (a counter never goes back)
 * and loses its gauges.  The zone outlives a reload while the series stay
 * the same; a reload that changes them starts every figure from zero,
 * which Prometheus reads as a counter reset.
 *
 * Labels must be bounded: a route, a status class, a close code, never a
 * user, a call or a device.  A label value is escaped by the caller with
 * ngx_famcall_metric_labels() or is known to need none.
 */

#ifndef _NGX_FAMCALL_METRICS_H_INCLUDED_
#define _NGX_FAMCALL_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_FAMCALL_METRIC_COUNTER    0
#define NGX_FAMCALL_METRIC_GAUGE      1
#define NGX_FAMCALL_METRIC_HISTOGRAM  2

/* what a register call gives back when it fails: the others ignore it */
#define NGX_FAMCALL_METRIC_NONE       ((ngx_uint_t) -1)


/*
 * A family: one name, help and type for several series (one per set of
 * labels).  Kept by pointer: static.  Histograms observe integers (say,
 * microseconds) in buckets with these upper bounds, ascending, and are
 * exposed divided by scale (1000000: seconds).  A family with many series
 * of which few are used (one per route and status class) is sparse: a
 * series appears once it has counted something, as Prometheus' own
 * clients do with labelled children.
 */
typedef struct {
    const char        *name;
    const char        *help;
    ngx_uint_t         type;
    const ngx_uint_t  *buckets;
    ngx_uint_t         nbuckets;
    ngx_uint_t         scale;
    ngx_uint_t         sparse;    /* a series still all zero is left out */
} ngx_famcall_metric_def_t;


extern ngx_module_t  ngx_http_famcall_metrics_module;


/*
 * One series of def's family with labels (`a="x",b="y"`, or NULL: none);
 * its id, or NGX_FAMCALL_METRIC_NONE after logging why (nginx -t fails
 * on it).  The same family with the same labels twice is an error.
 */
ngx_uint_t ngx_famcall_metric_register(ngx_conf_t *cf,
    const ngx_famcall_metric_def_t *def, const char *labels);

/* a label value as the text format wants it (\\, \" and \n escaped) */
u_char *ngx_famcall_metric_escape(ngx_pool_t *pool, ngx_str_t *value);


/* in a worker: counters add n >= 0; gauges add any n (this process's) */
void ngx_famcall_metric_add(ngx_uint_t id, int64_t n);
/* a gauge's share of this process, replaced */
void ngx_famcall_metric_set(ngx_uint_t id, int64_t v);
/* one observation of a histogram, in its own unit */
void ngx_famcall_metric_observe(ngx_uint_t id, uint64_t v);

#define ngx_famcall_metric_inc(id)  ngx_famcall_metric_add(id, 1)


/*
 * The figures the module keeps for the WebSocket transport, which knows
 * no ids: a socket taken over, and one freed with the close code sent or
 * received first (0: none).
 */
void ngx_famcall_metrics_ws_opened(void);
void ngx_famcall_metrics_ws_closed(ngx_uint_t code);


#endif /* _NGX_FAMCALL_METRICS_H_INCLUDED_ */
