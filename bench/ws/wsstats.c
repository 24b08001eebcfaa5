/*
 * wsload: counters and latency histograms, printed as key=value lines.
 *
 * A big run is several processes; percentiles cannot be averaged, so each
 * process prints its histograms too (sparse "bucket:count" lists) and
 * `wsload merge` adds counters and buckets up and computes the figures of
 * the whole run from the merged histograms. One table names every counter,
 * for printing and merging alike.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wsload.h"


stats_t  st;

enum { SUM, MAX };

static const struct {
    const char  *name;
    size_t       off;
    int          how;
} fields[] = {
#define F(n, how)  { #n, offsetof(stats_t, n), how }
    F(wanted, SUM), F(connected, SUM), F(connect_failed, SUM),
    F(refused, SUM), F(bad_handshake, SUM), F(dropped, SUM),
    F(server_closed, SUM), F(close_1000, SUM), F(close_1001, SUM),
    F(close_4000, SUM), F(close_4001, SUM), F(close_other, SUM),
    F(closed_clean, SUM), F(close_timeout, SUM), F(protocol_errors, SUM),
    F(pings, SUM), F(presence, SUM), F(events_other, SUM),
    F(hello_mismatch, SUM),
    F(sent, SUM), F(acked, SUM), F(acked_window, SUM), F(errors, SUM),
    F(delivered, SUM),
    F(delivered_window, SUM), F(foreign, SUM), F(echoed, SUM),
    F(skipped, SUM), F(not_acked, SUM), F(not_delivered, SUM),
    F(stamped, SUM),
    F(calls_ready, SUM), F(calls_failed, SUM), F(calls_ended, SUM),
    F(ringing, SUM), F(setups, SUM), F(setups_window, SUM),
    F(duplicated, SUM), F(refused_done, SUM), F(tl_target_us, MAX),
    F(connect_ms, MAX), F(send_ms, MAX), F(behind_max_us, MAX),
    F(cpu_ms, SUM), F(warmup_ms, MAX),
#undef F
    { "lat_max_us", offsetof(stats_t, lat.max), MAX },
    { "lat_sock_max_us", offsetof(stats_t, lat_sock.max), MAX },
    { "ack_max_us", offsetof(stats_t, ack.max), MAX },
    { "setup_max_us", offsetof(stats_t, setup.max), MAX },
    { "cycle_max_us", offsetof(stats_t, cycle.max), MAX },
};

/* the histograms, printed as NAME_hist and merged by that name */
static const struct {
    const char  *name;
    size_t       off;
} hists[] = {
    { "lat", offsetof(stats_t, lat) },
    { "lat_sock", offsetof(stats_t, lat_sock) },
    { "ack", offsetof(stats_t, ack) },
    { "setup", offsetof(stats_t, setup) },
    { "cycle", offsetof(stats_t, cycle) },
};

#define NHISTS  (sizeof(hists) / sizeof(hists[0]))
#define HIST(s, i)  ((hist_t *) ((char *) (s) + hists[i].off))

#define NFIELDS  (sizeof(fields) / sizeof(fields[0]))


static unsigned
bucket(uint64_t us)
{
    unsigned  e;

    if (us < 64) {
        return (unsigned) us;
    }
    e = 63 - (unsigned) __builtin_clzll(us);     /* 2^e <= us, e >= 6 */
    if (e > 36) {
        return HIST_BUCKETS - 1;
    }
    return 64 + (e - 6) * HIST_SUB + (unsigned) ((us >> (e - 5)) - HIST_SUB);
}


/* the highest value bucket b holds: percentiles err on the slow side */
static uint64_t
bucket_top(unsigned b)
{
    unsigned  e, m;

    if (b < 64) {
        return b;
    }
    e = (b - 64) / HIST_SUB + 6;
    m = (b - 64) % HIST_SUB + HIST_SUB;
    return (((uint64_t) m + 1) << (e - 5)) - 1;
}


void
hist_add(hist_t *h, uint64_t us)
{
    h->n[bucket(us)]++;
    h->count++;
    if (us > h->max) {
        h->max = us;
    }
}


uint64_t
hist_pct(const hist_t *h, double pct)
{
    uint64_t  want, seen = 0, top;
    unsigned  b;

    if (h->count == 0) {
        return 0;
    }
    want = (uint64_t) (pct / 100.0 * (double) h->count + 0.999999);
    if (want == 0) {
        want = 1;
    }
    for (b = 0; b < HIST_BUCKETS; b++) {
        seen += h->n[b];
        if (seen >= want) {
            top = bucket_top(b);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}


void
timeline_add(stats_t *s, uint64_t second, uint64_t us)
{
    if (second < TL_SECONDS) {
        s->tl_n[second]++;
        s->tl_sum_us[second] += us;
        if (us > s->tl_max_us[second]) {
            s->tl_max_us[second] = us;
        }
        if (us > (s->tl_target_us ? s->tl_target_us : TL_TARGET_US)) {
            s->tl_over[second]++;
        }
    }
}


/* "n:sum_us:max_us:over" per second, up to the last second with deliveries */
static void
timeline_print(const stats_t *s, FILE *f)
{
    unsigned  i, last = 0;

    for (i = 0; i < TL_SECONDS; i++) {
        if (s->tl_n[i]) {
            last = i + 1;
        }
    }
    fputs("timeline=", f);
    for (i = 0; i < last; i++) {
        fprintf(f, "%s%llu:%llu:%llu:%llu", i ? "," : "",
                (unsigned long long) s->tl_n[i],
                (unsigned long long) s->tl_sum_us[i],
                (unsigned long long) s->tl_max_us[i],
                (unsigned long long) s->tl_over[i]);
    }
    fputc('\n', f);
}


static int
timeline_parse(stats_t *s, const char *v)
{
    unsigned            i;
    unsigned long long  n, sum, max, over;
    int                 used;

    for (i = 0; *v && i < TL_SECONDS; i++) {
        if (sscanf(v, "%llu:%llu:%llu:%llu%n", &n, &sum, &max, &over, &used)
            != 4)
        {
            return -1;
        }
        s->tl_n[i] += n;
        s->tl_sum_us[i] += sum;
        s->tl_over[i] += over;
        if (max > s->tl_max_us[i]) {
            s->tl_max_us[i] = max;
        }
        v += used;
        if (*v == ',') {
            v++;
        }
    }
    return 0;
}


static void
hist_print(const char *name, const hist_t *h, FILE *f)
{
    unsigned  b;
    int       first = 1;

    fprintf(f, "%s=", name);
    for (b = 0; b < HIST_BUCKETS; b++) {
        if (h->n[b]) {
            fprintf(f, "%s%u:%llu", first ? "" : ",", b,
                    (unsigned long long) h->n[b]);
            first = 0;
        }
    }
    fputc('\n', f);
}


static void
pcts(const char *name, const hist_t *h, FILE *f)
{
    static const double  p[] = { 50, 90, 99, 99.9 };
    static const char   *k[] = { "p50", "p90", "p99", "p999" };
    size_t               i;

    for (i = 0; i < 4; i++) {
        fprintf(f, "%s_%s_ms=%.3f\n", name, k[i], hist_pct(h, p[i]) / 1000.0);
    }
    fprintf(f, "%s_max_ms=%.3f\n", name, h->max / 1000.0);
}


void
stats_print(const stats_t *s, const char *mode, FILE *f)
{
    size_t  i;
    char    name[32];

    fprintf(f, "mode=%s\n", mode);
    for (i = 0; i < NFIELDS; i++) {
        fprintf(f, "%s=%llu\n", fields[i].name, (unsigned long long)
                *(const uint64_t *) ((const char *) s + fields[i].off));
    }

    if (s->sent || s->delivered) {
        /* *_window: acks (commits) and deliveries while the senders were
         * sending, so a server that falls behind shows as a lower rate, not
         * a later one */
        fprintf(f, "sent_per_s=%.1f\n",
                s->send_ms ? s->sent * 1000.0 / (double) s->send_ms : 0.0);
        fprintf(f, "acked_per_s=%.1f\n", s->send_ms
                ? s->acked_window * 1000.0 / (double) s->send_ms : 0.0);
        fprintf(f, "delivered_per_s=%.1f\n", s->send_ms
                ? s->delivered_window * 1000.0 / (double) s->send_ms : 0.0);
        pcts("lat", &s->lat, f);
        pcts("lat_sock", &s->lat_sock, f);
        pcts("ack", &s->ack, f);
        timeline_print(s, f);
    }
    if (s->setups) {
        fprintf(f, "setups_per_s=%.1f\n", s->send_ms
                ? s->setups_window * 1000.0 / (double) s->send_ms : 0.0);
    }
    for (i = 3; i < NHISTS; i++) {
        if (HIST(s, i)->count) {
            pcts(hists[i].name, HIST(s, i), f);
        }
    }
    for (i = 0; i < NHISTS; i++) {
        if (i < 3 ? s->sent || s->delivered : HIST(s, i)->count != 0) {
            snprintf(name, sizeof(name), "%s_hist", hists[i].name);
            hist_print(name, HIST(s, i), f);
        }
    }
    fflush(f);
}


/* "b:n,b:n,..." into h */
static int
hist_parse(hist_t *h, const char *v)
{
    unsigned long       b;
    unsigned long long  n;
    char               *end;

    while (*v) {
        errno = 0;
        b = strtoul(v, &end, 10);
        if (*end != ':' || b >= HIST_BUCKETS) {
            return -1;
        }
        n = strtoull(end + 1, &end, 10);
        if (errno || (*end != ',' && *end != '\0')) {
            return -1;
        }
        h->n[b] += n;
        h->count += n;
        v = *end ? end + 1 : end;
    }
    return 0;
}


/* the histogram "NAME_hist" names, or NULL */
static hist_t *
hist_named(stats_t *s, const char *key)
{
    size_t  i, n;

    for (i = 0; i < NHISTS; i++) {
        n = strlen(hists[i].name);
        if (strncmp(key, hists[i].name, n) == 0
            && strcmp(key + n, "_hist") == 0)
        {
            return HIST(s, i);
        }
    }
    return NULL;
}


int
stats_merge(int nfiles, char **files)
{
    static stats_t  sum;
    char           *line = NULL, *v;
    size_t          cap = 0, i;
    ssize_t         len;
    uint64_t        x, *dst;
    hist_t         *h;
    const char     *mode = "merged";
    static char     modebuf[32];
    FILE           *f;
    int             k;

    for (k = 0; k < nfiles; k++) {
        f = fopen(files[k], "r");
        if (f == NULL) {
            fprintf(stderr, "wsload merge: %s: %s\n", files[k], strerror(errno));
            return 1;
        }

        while ((len = getline(&line, &cap, f)) > 0) {
            if (line[len - 1] == '\n') {
                line[len - 1] = '\0';
            }
            /* progress lines start with '#'; anything else is key=value */
            v = strchr(line, '=');
            if (line[0] == '#' || v == NULL) {
                continue;
            }
            *v++ = '\0';

            if (strcmp(line, "mode") == 0) {
                snprintf(modebuf, sizeof(modebuf), "%s", v);
                mode = modebuf;
            } else if ((h = hist_named(&sum, line)) != NULL) {
                if (hist_parse(h, v) < 0) {
                    fprintf(stderr, "wsload merge: %s: bad %s\n", files[k], line);
                    fclose(f);
                    return 1;
                }
            } else if (strcmp(line, "timeline") == 0) {
                if (timeline_parse(&sum, v) < 0) {
                    fprintf(stderr, "wsload merge: %s: bad timeline\n", files[k]);
                    fclose(f);
                    return 1;
                }
            } else {
                for (i = 0; i < NFIELDS; i++) {
                    if (strcmp(line, fields[i].name) == 0) {
                        x = strtoull(v, NULL, 10);
                        dst = (uint64_t *) ((char *) &sum + fields[i].off);
                        *dst = fields[i].how == SUM ? *dst + x
                                                    : (x > *dst ? x : *dst);
                        break;
                    }
                }
                /* others (percentiles, rates) are recomputed below */
            }
        }
        fclose(f);
    }

    free(line);
    fprintf(stdout, "processes=%d\n", nfiles);
    stats_print(&sum, mode, stdout);
    return 0;
}
