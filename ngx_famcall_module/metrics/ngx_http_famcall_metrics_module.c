/*
 * famcall: the metrics module, ngx_http_famcall_metrics_module: the
 * famcall_metrics directive, the registration of series, the shared zone
 * and this process's slot in it (ngx_famcall_metrics.h says why slots).
 *
 * The zone's size follows the registrations: each one grows it, which
 * nginx reads only once the whole configuration is read, so a feature may
 * register from any of its configuration callbacks.  The module is last in
 * config's list: the router's routes are all known at its
 * postconfiguration, where the per-route series are registered.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_metrics_int.h"


static void *ngx_famcall_metrics_create_conf(ngx_conf_t *cf);
static ngx_int_t ngx_famcall_metrics_postconfiguration(ngx_conf_t *cf);
static char *ngx_famcall_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_famcall_metrics_size(ngx_conf_t *cf,
    ngx_famcall_metrics_conf_t *mcf);
static ngx_int_t ngx_famcall_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_famcall_metrics_init_process(ngx_cycle_t *cycle);
static void ngx_famcall_metrics_exit_process(ngx_cycle_t *cycle);
static ngx_famcall_metrics_slot_t *ngx_famcall_metrics_claim(
    ngx_famcall_metrics_conf_t *mcf);
static void ngx_famcall_metrics_zero(ngx_famcall_metrics_conf_t *mcf,
    int64_t *values, ngx_uint_t gauges_only);


static ngx_command_t  ngx_famcall_metrics_commands[] = {

    { ngx_string("famcall_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_famcall_metrics,
      0,
      0,
      NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_metrics_postconfiguration, /* postconfiguration */

    ngx_famcall_metrics_create_conf,       /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_metrics_module_ctx,  /* module context */
    ngx_famcall_metrics_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_famcall_metrics_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_famcall_metrics_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_famcall_metrics_zone_name =
    ngx_string("famcall_metrics");


static void *
ngx_famcall_metrics_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_metrics_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_metrics_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->families, cf->pool, 16,
                       sizeof(ngx_famcall_metrics_family_t)) != NGX_OK
        || ngx_array_init(&mcf->defs, cf->pool, 64,
                          sizeof(ngx_famcall_metric_def_t *)) != NGX_OK
        || ngx_array_init(&mcf->gauges, cf->pool, 16, sizeof(ngx_uint_t))
           != NGX_OK)
    {
        return NULL;
    }

    ngx_crc32_init(mcf->crc);

    /*
     * its size and name are set as series are registered, before nginx
     * maps it (ngx_famcall_metrics_size)
     */
    mcf->zone = ngx_shared_memory_add(cf, &ngx_famcall_metrics_zone_name, 0,
                                      &ngx_http_famcall_metrics_module);
    if (mcf->zone == NULL) {
        return NULL;
    }

    mcf->zone->init = ngx_famcall_metrics_init_zone;
    mcf->zone->data = mcf;

    if (ngx_famcall_metrics_builtin_init(cf, mcf) != NGX_OK) {
        return NULL;
    }

    return mcf;
}


static ngx_int_t
ngx_famcall_metrics_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_metrics_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_famcall_metrics_module);

    return ngx_famcall_metrics_routes_init(cf, mcf);
}


static char *
ngx_famcall_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_famcall_metrics_handler;

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_famcall_metric_register(ngx_conf_t *cf,
    const ngx_famcall_metric_def_t *def, const char *labels)
{
    ngx_famcall_metrics_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_famcall_metrics_module);

    return ngx_famcall_metrics_register(cf, mcf, def, labels);
}


/* also while the module's own conf is being created (not found yet) */
ngx_uint_t
ngx_famcall_metrics_register(ngx_conf_t *cf, ngx_famcall_metrics_conf_t *mcf,
    const ngx_famcall_metric_def_t *def, const char *labels)
{
    size_t                         len;
    ngx_uint_t                     i, n, scale;
    ngx_famcall_metrics_family_t  *fam;
    ngx_famcall_metrics_series_t  *s;
    const ngx_famcall_metric_def_t  **d;

    if (def->type == NGX_FAMCALL_METRIC_HISTOGRAM) {
        for (scale = def->scale; scale > 1 && scale % 10 == 0; scale /= 10) {
            /* void */
        }

        if (def->nbuckets == 0 || scale != 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "famcall metric \"%s\": a histogram needs "
                               "buckets and a power of ten as its scale",
                               def->name);
            return NGX_FAMCALL_METRIC_NONE;
        }
    }

    fam = mcf->families.elts;

    for (i = 0; i < mcf->families.nelts; i++) {
        if (ngx_strcmp(fam[i].def->name, def->name) == 0) {
            break;
        }
    }

    if (i == mcf->families.nelts) {
        fam = ngx_array_push(&mcf->families);
        if (fam == NULL) {
            return NGX_FAMCALL_METRIC_NONE;
        }

        fam->def = def;

        if (ngx_array_init(&fam->series, cf->pool, 8,
                           sizeof(ngx_famcall_metrics_series_t))
            != NGX_OK)
        {
            return NGX_FAMCALL_METRIC_NONE;
        }

    } else {
        fam = &fam[i];

        if (fam->def != def) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "famcall metric \"%s\" defined twice",
                               def->name);
            return NGX_FAMCALL_METRIC_NONE;
        }
    }

    len = labels ? ngx_strlen(labels) : 0;
    s = fam->series.elts;

    for (i = 0; i < fam->series.nelts; i++) {
        if (s[i].labels.len == len
            && ngx_strncmp(s[i].labels.data, labels, len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "famcall metric \"%s{%s}\" registered twice",
                               def->name, labels ? labels : "");
            return NGX_FAMCALL_METRIC_NONE;
        }
    }

    s = ngx_array_push(&fam->series);
    if (s == NULL) {
        return NGX_FAMCALL_METRIC_NONE;
    }

    s->labels.len = len;
    s->labels.data = (u_char *) (labels ? labels : "");
    s->id = mcf->nvalues;

    n = (def->type == NGX_FAMCALL_METRIC_HISTOGRAM) ? def->nbuckets + 2 : 1;

    for (i = 0; i < n; i++) {
        d = ngx_array_push(&mcf->defs);
        if (d == NULL) {
            return NGX_FAMCALL_METRIC_NONE;
        }

        *d = def;
    }

    if (def->type == NGX_FAMCALL_METRIC_GAUGE) {
        i = s->id;
        if (ngx_array_push(&mcf->gauges) == NULL) {
            return NGX_FAMCALL_METRIC_NONE;
        }

        ((ngx_uint_t *) mcf->gauges.elts)[mcf->gauges.nelts - 1] = i;
    }

    mcf->nvalues += n;

    ngx_crc32_update(&mcf->crc, (u_char *) def->name,
                     ngx_strlen(def->name) + 1);
    ngx_crc32_update(&mcf->crc, (u_char *) &def->type, sizeof(ngx_uint_t));
    ngx_crc32_update(&mcf->crc, s->labels.data, s->labels.len + 1);

    if (ngx_famcall_metrics_size(cf, mcf) != NGX_OK) {
        return NGX_FAMCALL_METRIC_NONE;
    }

    return s->id;
}


u_char *
ngx_famcall_metric_escape(ngx_pool_t *pool, ngx_str_t *value)
{
    u_char      *out, *p;
    ngx_uint_t   i;

    out = ngx_pnalloc(pool, value->len * 2 + 1);
    if (out == NULL) {
        return NULL;
    }

    p = out;

    for (i = 0; i < value->len; i++) {
        switch (value->data[i]) {
        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = value->data[i];
            break;
        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;
        default:
            *p++ = value->data[i];
        }
    }

    *p = '\0';

    return out;
}


/*
 * Enough slots for every worker twice (the old ones finishing a reload
 * beside the new ones), known from worker_processes when it came before
 * http, else from the CPUs (what "auto" would give).  The zone's name
 * follows the series (and so does its size), and room for the slab
 * pool's own pages is added.
 */
static ngx_int_t
ngx_famcall_metrics_size(ngx_conf_t *cf, ngx_famcall_metrics_conf_t *mcf)
{
    size_t            need;
    uint32_t          crc;
    ngx_int_t         workers;
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    workers = ccf->worker_processes;
    if (workers == NGX_CONF_UNSET || workers <= 0) {
        workers = ngx_ncpu;
    }

    mcf->nslots = ngx_max((ngx_uint_t) workers * 2 + 2,
                          NGX_FAMCALL_METRICS_MIN_SLOTS);

    mcf->stride = ngx_align(sizeof(ngx_famcall_metrics_slot_t)
                            + mcf->nvalues * sizeof(int64_t),
                            NGX_FAMCALL_METRICS_LINE);

    need = ngx_align(mcf->nslots * mcf->stride, ngx_pagesize);

    mcf->zone->shm.size = need + 8 * ngx_pagesize
                          + ngx_align(need / ngx_pagesize
                                      * sizeof(ngx_slab_page_t) * 2,
                                      ngx_pagesize);

    crc = mcf->crc;
    ngx_crc32_update(&crc, (u_char *) &mcf->nslots, sizeof(ngx_uint_t));
    ngx_crc32_final(crc);

    /* never 0, which a slot never written holds */
    mcf->layout = ((uint64_t) crc << 1) | 1;

    mcf->zone->shm.name.data = ngx_pnalloc(cf->pool,
                                           sizeof("famcall_metrics_") + 8);
    if (mcf->zone->shm.name.data == NULL) {
        return NGX_ERROR;
    }

    mcf->zone->shm.name.len = ngx_sprintf(mcf->zone->shm.name.data,
                                          "famcall_metrics_%08xD", crc)
                              - mcf->zone->shm.name.data;

    return NGX_OK;
}


ngx_famcall_metrics_slot_t *
ngx_famcall_metrics_slot(ngx_famcall_metrics_conf_t *mcf, ngx_uint_t i)
{
    return (ngx_famcall_metrics_slot_t *) (mcf->base + i * mcf->stride);
}


/* the same name is the same series: a zone kept keeps its slots */
static ngx_int_t
ngx_famcall_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_famcall_metrics_conf_t  *omcf = data;
    ngx_famcall_metrics_conf_t  *mcf = shm_zone->data;

    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (omcf != NULL) {
        mcf->base = omcf->base;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        mcf->base = shpool->data;
        return NGX_OK;
    }

    mcf->base = ngx_slab_calloc(shpool, mcf->nslots * mcf->stride);
    if (mcf->base == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "famcall metrics: no room for the slots in \"%V\"",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    shpool->data = mcf->base;

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, shm_zone->shm.log, 0,
                   "famcall metrics: zone %V, %ui slots of %ui values",
                   &shm_zone->shm.name, mcf->nslots, mcf->nvalues);

    return NGX_OK;
}


static ngx_int_t
ngx_famcall_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_famcall_metrics_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_module) == NULL) {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_famcall_metrics_module);
    if (mcf == NULL || mcf->base == NULL) {
        return NGX_OK;
    }

    mcf->slot = ngx_famcall_metrics_claim(mcf);

    if (mcf->slot == NULL) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "famcall metrics: no slot left for this worker, "
                      "its figures are not counted");
        return NGX_OK;
    }

    mcf->values = (int64_t *) (mcf->slot + 1);

    ngx_famcall_metrics_builtin_start(cycle, mcf);

    return NGX_OK;
}


/*
 * A free slot first, else one whose process is gone.  Counters of the
 * same layout stay (they only grow); gauges were the last owner's.
 */
static ngx_famcall_metrics_slot_t *
ngx_famcall_metrics_claim(ngx_famcall_metrics_conf_t *mcf)
{
    ngx_uint_t                   i, pass;
    ngx_atomic_uint_t            pid;
    ngx_famcall_metrics_slot_t  *slot;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < mcf->nslots; i++) {
            slot = ngx_famcall_metrics_slot(mcf, i);
            pid = slot->pid;

            if (pass == 0 && pid != 0) {
                continue;
            }

            if (pass == 1
                && (pid == 0 || kill((ngx_pid_t) pid, 0) == 0
                    || ngx_errno != NGX_ESRCH))
            {
                continue;
            }

            if (!ngx_atomic_cmp_set(&slot->pid, pid, (ngx_atomic_uint_t) ngx_pid))
            {
                continue;
            }

            if (slot->layout != mcf->layout) {
                ngx_famcall_metrics_zero(mcf, (int64_t *) (slot + 1), 0);
                slot->layout = mcf->layout;

            } else {
                ngx_famcall_metrics_zero(mcf, (int64_t *) (slot + 1), 1);
            }

            ngx_log_debug2(NGX_LOG_DEBUG_CORE, ngx_cycle->log, 0,
                           "famcall metrics: slot %ui, was pid %uA", i, pid);

            return slot;
        }
    }

    return NULL;
}


static void
ngx_famcall_metrics_zero(ngx_famcall_metrics_conf_t *mcf, int64_t *values,
    ngx_uint_t gauges_only)
{
    ngx_uint_t   i, *g;

    if (!gauges_only) {
        ngx_memzero(values, mcf->nvalues * sizeof(int64_t));
        return;
    }

    g = mcf->gauges.elts;

    for (i = 0; i < mcf->gauges.nelts; i++) {
        values[g[i]] = 0;
    }
}


static void
ngx_famcall_metrics_exit_process(ngx_cycle_t *cycle)
{
    ngx_famcall_metrics_conf_t  *mcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_module) == NULL) {
        return;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_famcall_metrics_module);
    if (mcf == NULL || mcf->slot == NULL) {
        return;
    }

    ngx_famcall_metrics_builtin_stop(mcf);

    /* what it counted stays counted; what it held open is gone with it */
    ngx_famcall_metrics_zero(mcf, mcf->values, 1);
    ngx_memory_barrier();
    mcf->slot->pid = 0;

    mcf->values = NULL;
    mcf->slot = NULL;
}


ngx_famcall_metrics_conf_t *
ngx_famcall_metrics_conf(void)
{
    ngx_cycle_t  *cycle = (ngx_cycle_t *) ngx_cycle;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_module) == NULL) {
        return NULL;
    }

    return ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_famcall_metrics_module);
}


void
ngx_famcall_metric_add(ngx_uint_t id, int64_t n)
{
    ngx_famcall_metrics_conf_t  *mcf = ngx_famcall_metrics_conf();

    if (mcf == NULL || mcf->values == NULL || id >= mcf->nvalues) {
        return;
    }

    mcf->values[id] += n;
}


void
ngx_famcall_metric_set(ngx_uint_t id, int64_t v)
{
    ngx_famcall_metrics_conf_t  *mcf = ngx_famcall_metrics_conf();

    if (mcf == NULL || mcf->values == NULL || id >= mcf->nvalues) {
        return;
    }

    mcf->values[id] = v;
}


void
ngx_famcall_metric_observe(ngx_uint_t id, uint64_t v)
{
    ngx_uint_t                       i;
    ngx_famcall_metrics_conf_t      *mcf = ngx_famcall_metrics_conf();
    const ngx_famcall_metric_def_t  *def;

    if (mcf == NULL || mcf->values == NULL || id >= mcf->nvalues) {
        return;
    }

    def = ((const ngx_famcall_metric_def_t **) mcf->defs.elts)[id];

    if (def->type != NGX_FAMCALL_METRIC_HISTOGRAM) {
        return;
    }

    for (i = 0; i < def->nbuckets && v > def->buckets[i]; i++) {
        /* void */
    }

    mcf->values[id + i]++;
    mcf->values[id + def->nbuckets + 1] += (int64_t) v;
}
