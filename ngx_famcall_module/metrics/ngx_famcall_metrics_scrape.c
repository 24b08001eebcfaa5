/*
 * famcall: the famcall_metrics location: every series summed over the
 * slots of the zone, in Prometheus' text format 0.0.4.
 *
 * A counter sums every slot of the current layout, live or not (what a
 * gone worker counted was counted); a gauge only the slots of live
 * processes.  The values are read without a lock while their owners add
 * to them: each is one aligned 64-bit word, so a scrape sees each value
 * whole, and a histogram's buckets and sum may be one observation apart,
 * as in any Prometheus client.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_metrics_int.h"


/* the longest number printed: a sign, 20 digits, a point, decimals */
#define NGX_FAMCALL_METRICS_NUM  48


static u_char *ngx_famcall_metrics_family(ngx_famcall_metrics_conf_t *mcf,
    ngx_famcall_metrics_family_t *fam, int64_t *sum, u_char *p);
static u_char *ngx_famcall_metrics_fixed(u_char *p, int64_t v,
    ngx_uint_t scale);
static size_t ngx_famcall_metrics_estimate(ngx_famcall_metrics_conf_t *mcf);


ngx_int_t
ngx_famcall_metrics_handler(ngx_http_request_t *r)
{
    size_t                         len;
    u_char                        *p;
    int64_t                       *sum, *vals;
    ngx_int_t                      rc;
    ngx_uint_t                     i, j, live, *g;
    ngx_buf_t                     *b;
    ngx_chain_t                    out;
    ngx_atomic_uint_t              pid;
    ngx_famcall_metrics_conf_t    *mcf;
    ngx_famcall_metrics_slot_t    *slot;
    ngx_famcall_metrics_family_t  *fam;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_famcall_metrics_module);

    if (mcf->base == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    /* this worker's own pool is read now; the others' every second */
    ngx_famcall_metrics_publish_db(mcf);

    sum = ngx_pcalloc(r->pool, (mcf->nvalues + 1) * sizeof(int64_t));
    if (sum == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    g = mcf->gauges.elts;

    for (i = 0; i < mcf->nslots; i++) {
        slot = ngx_famcall_metrics_slot(mcf, i);

        if (slot->layout != mcf->layout) {
            continue;
        }

        pid = slot->pid;
        live = (pid != 0
                && ((ngx_pid_t) pid == ngx_pid
                    || kill((ngx_pid_t) pid, 0) == 0
                    || ngx_errno != NGX_ESRCH));

        vals = (int64_t *) (slot + 1);

        /* gauges are summed from live slots only: taken out again below */
        for (j = 0; j < mcf->nvalues; j++) {
            sum[j] += vals[j];
        }

        if (!live) {
            for (j = 0; j < mcf->gauges.nelts; j++) {
                sum[g[j]] -= vals[g[j]];
            }
        }
    }

    len = ngx_famcall_metrics_estimate(mcf);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->pos;
    fam = mcf->families.elts;

    for (i = 0; i < mcf->families.nelts; i++) {
        p = ngx_famcall_metrics_family(mcf, &fam[i], sum, p);
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static u_char *
ngx_famcall_metrics_family(ngx_famcall_metrics_conf_t *mcf,
    ngx_famcall_metrics_family_t *fam, int64_t *sum, u_char *p)
{
    int64_t                          cum, *v;
    ngx_uint_t                       i, k, nb, sep;
    ngx_famcall_metrics_series_t    *s;
    const ngx_famcall_metric_def_t  *def = fam->def;
    static const char               *types[] = {
        "counter", "gauge", "histogram"
    };

    p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n", def->name, def->help,
                    def->name, types[def->type]);

    s = fam->series.elts;
    nb = def->nbuckets;

    for (i = 0; i < fam->series.nelts; i++) {
        v = &sum[s[i].id];

        if (def->sparse) {
            for (k = 0; k < ngx_famcall_metrics_values(def); k++) {
                if (v[k] != 0) {
                    break;
                }
            }

            if (k == ngx_famcall_metrics_values(def)) {
                continue;
            }
        }

        if (def->type != NGX_FAMCALL_METRIC_HISTOGRAM) {
            p = ngx_sprintf(p, "%s%s%V%s %L\n", def->name,
                            s[i].labels.len ? "{" : "", &s[i].labels,
                            s[i].labels.len ? "}" : "", v[0]);
            continue;
        }

        sep = (s[i].labels.len != 0);
        cum = 0;

        for (k = 0; k <= nb; k++) {
            cum += v[k];
            p = ngx_sprintf(p, "%s_bucket{%V%s", def->name, &s[i].labels,
                            sep ? ",le=\"" : "le=\"");

            if (k == nb) {
                p = ngx_cpymem(p, "+Inf", 4);

            } else {
                p = ngx_famcall_metrics_fixed(p, (int64_t) def->buckets[k],
                                              def->scale);
            }

            p = ngx_sprintf(p, "\"} %L\n", cum);
        }

        p = ngx_sprintf(p, "%s_sum%s%V%s ", def->name, sep ? "{" : "",
                        &s[i].labels, sep ? "}" : "");
        p = ngx_famcall_metrics_fixed(p, v[nb + 1], def->scale);
        p = ngx_sprintf(p, "\n%s_count%s%V%s %L\n", def->name,
                        sep ? "{" : "", &s[i].labels, sep ? "}" : "", cum);
    }

    return p;
}


/* v / scale (a power of ten) in decimal, without trailing zeros */
static u_char *
ngx_famcall_metrics_fixed(u_char *p, int64_t v, ngx_uint_t scale)
{
    u_char      frac[NGX_INT64_LEN], *f;
    ngx_uint_t  digits, s;
    uint64_t    a;

    if (scale <= 1) {
        return ngx_sprintf(p, "%L", v);
    }

    if (v < 0) {
        *p++ = '-';
        a = (uint64_t) -v;

    } else {
        a = (uint64_t) v;
    }

    for (digits = 0, s = scale; s > 1; s /= 10) {
        digits++;
    }

    p = ngx_sprintf(p, "%uL", a / scale);

    a %= scale;

    for (f = frac + digits; f > frac; a /= 10) {
        *--f = (u_char) ('0' + a % 10);
    }

    f = frac + digits;

    while (f > frac && f[-1] == '0') {
        f--;
    }

    if (f > frac) {
        *p++ = '.';
        p = ngx_cpymem(p, frac, f - frac);
    }

    return p;
}


static size_t
ngx_famcall_metrics_estimate(ngx_famcall_metrics_conf_t *mcf)
{
    size_t                           len, line;
    ngx_uint_t                       i, j, lines;
    ngx_famcall_metrics_series_t    *s;
    ngx_famcall_metrics_family_t    *fam;
    const ngx_famcall_metric_def_t  *def;

    len = 0;
    fam = mcf->families.elts;

    for (i = 0; i < mcf->families.nelts; i++) {
        def = fam[i].def;
        len += 2 * ngx_strlen(def->name) + ngx_strlen(def->help) + 32;

        lines = (def->type == NGX_FAMCALL_METRIC_HISTOGRAM)
                ? def->nbuckets + 3 : 1;
        s = fam[i].series.elts;

        for (j = 0; j < fam[i].series.nelts; j++) {
            line = ngx_strlen(def->name) + s[j].labels.len
                   + sizeof("_bucket{,le=\"\"} ") + 2 * NGX_FAMCALL_METRICS_NUM;
            len += lines * line;
        }
    }

    return len;
}
