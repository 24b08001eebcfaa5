/*
 * famcall-pushd: the loop.
 *
 *     famcall-pushd -c famcall-pushd.conf [-v]
 *
 * Each turn: lease the due rows (when LISTEN said some were queued, or
 * every poll_ms for rows whose retry came due), hand each to its provider,
 * wait on the database's socket and libcurl's at once, finish the
 * requests that are done, and settle their rows in one statement.
 * SIGTERM or SIGINT: lease nothing more, finish what is in flight (for at
 * most timeout_ms), settle, exit.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "pushd.h"


volatile sig_atomic_t  pushd_stopping;


static const char *const  pushd_provider_names[] = {
    "expo", "fcm", "apns", "webhook"
};


static void pushd_loop(pushd_t *d);
static void pushd_claim(pushd_t *d);
static void pushd_route(pushd_t *d, pushd_row_t *row);
static void pushd_log_stats(pushd_t *d);


long long
pushd_now_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


void
pushd_log(pushd_t *d, const char *level, const char *fmt, ...)
{
    char       ts[32];
    time_t     now;
    va_list    ap;
    struct tm  tm;

    if (d != NULL && !d->verbose && strcmp(level, "debug") == 0) {
        return;
    }

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);

    fprintf(stderr, "%s famcall-pushd[%d] %s: ", ts, (int) getpid(), level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}


static void
pushd_on_signal(int sig)
{
    (void) sig;
    pushd_stopping = 1;
}


int
main(int argc, char **argv)
{
    int               c;
    char              host[64];
    pushd_t          *d;
    const char       *conf = NULL;
    struct sigaction  sa;

    d = calloc(1, sizeof(pushd_t));
    if (d == NULL) {
        return 1;
    }

    pushd_conf_defaults(&d->conf);

    while ((c = getopt(argc, argv, "c:v")) != -1) {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case 'v':
            d->verbose = 1;
            break;
        default:
            fprintf(stderr, "usage: famcall-pushd -c FILE [-v]\n");
            return 2;
        }
    }

    if (conf == NULL) {
        fprintf(stderr, "usage: famcall-pushd -c FILE [-v]\n");
        return 2;
    }

    if (pushd_conf_read(&d->conf, conf) != 0) {
        return 1;
    }

    /* who holds a lease, in the outbox rows: host, pid and a random tag */
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    srandom((unsigned) (getpid() ^ pushd_now_ms()));
    snprintf(d->owner, sizeof(d->owner), "%s:%d:%08lx", host, (int) getpid(),
             (unsigned long) random());

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pushd_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        return 1;
    }

    d->multi = curl_multi_init();
    if (d->multi == NULL) {
        return 1;
    }

    curl_multi_setopt(d->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);

    d->settle_tail = &d->settle;
    d->expo_tail = &d->expo;
    d->fcm.waiting_tail = &d->fcm.waiting;
    d->pg_backoff = 100;

    if (d->conf.fcm_service_account != NULL) {
        if (pushd_fcm_init(d) != 0) {
            return 1;
        }
        d->has_fcm = 1;
    }

    if (d->conf.apns_key_file != NULL) {
        if (pushd_apns_init(d) != 0) {
            return 1;
        }
        d->has_apns = 1;
    }

    pushd_log(d, "info", "started as %s (expo%s%s%s)", d->owner,
              d->has_fcm ? ", fcm" : "", d->has_apns ? ", apns" : "",
              d->conf.webhook ? ", webhook" : "");

    pushd_loop(d);

    pushd_log_stats(d);
    pushd_log(d, "info", "stopped");

    if (d->pg) {
        PQfinish(d->pg);
    }

    curl_multi_cleanup(d->multi);
    curl_global_cleanup();
    EVP_PKEY_free(d->fcm.key);
    EVP_PKEY_free(d->apns.key);
    free(d->fcm.project_id);
    free(d->fcm.client_email);
    free(d->fcm.token_uri);
    free(d->fcm.access_token);
    free(d->apns.jwt);
    free(d->conf.db);
    free(d->conf.ca_file);
    free(d->conf.expo_url);
    free(d->conf.expo_receipts_url);
    free(d->conf.expo_access_token);
    free(d->conf.fcm_url);
    free(d->conf.fcm_service_account);
    free(d->conf.fcm_token_url);
    free(d->conf.apns_url);
    free(d->conf.apns_key_file);
    free(d->conf.apns_key_id);
    free(d->conf.apns_team_id);
    free(d->conf.apns_topic);
    free(d);

    return 0;
}


static void
pushd_loop(pushd_t *d)
{
    int               left, nfd;
    long              timeout;
    long long         now, stop_by = 0;
    CURLMsg          *msg;
    PGnotify         *n;
    struct curl_waitfd  wfd;

    for ( ;; ) {
        now = pushd_now_ms();

        if (pushd_stopping && stop_by == 0) {
            pushd_log(d, "info", "stopping: %zu rows in flight",
                      d->inflight);
            stop_by = now + d->conf.timeout_ms;
        }

        if (d->pg == NULL && now >= d->pg_retry_at) {
            if (pushd_db_connect(d) != 0) {
                d->pg_retry_at = now + d->pg_backoff;
                d->pg_backoff = d->pg_backoff * 2 > 5000
                                ? 5000 : d->pg_backoff * 2;
            } else {
                d->pg_backoff = 100;
            }
        }

        /*
         * Settle in groups: each settle is a commit, and one per answer
         * bounded a dispatcher to a few hundred pushes a second.  A group
         * waits at most PUSHD_SETTLE_MS, and not at all once nothing else
         * is in flight.
         */
        if (d->pg != NULL && d->settle != NULL
            && (d->nsettle >= PUSHD_SETTLE_MAX || d->running == 0
                || pushd_stopping || now - d->settle_since >= PUSHD_SETTLE_MS))
        {
            (void) pushd_db_settle(d);
        }

        if (pushd_stopping && (d->inflight == 0 || now >= stop_by)) {
            break;
        }

        if (d->pg != NULL && !pushd_stopping
            && (d->wake || now >= d->next_claim)
            && d->inflight < (size_t) d->conf.max_inflight)
        {
            d->wake = 0;
            d->next_claim = now + d->conf.poll_ms;
            pushd_claim(d);
        }

        if (d->pg != NULL && !pushd_stopping && now >= d->next_receipts
            && !d->receipts_inflight)
        {
            d->next_receipts = now + d->conf.receipt_poll_ms;
            pushd_expo_receipts(d);
        }

        if (d->pg != NULL && now >= d->next_purge) {
            d->next_purge = now + 3600 * 1000;
            (void) pushd_db_purge(d);
        }

        if (now >= d->next_stats) {
            if (d->next_stats) {
                pushd_log_stats(d);
            }
            d->next_stats = now + 60000;
        }

        /* wait: the database's socket, libcurl's, or the next poll */
        timeout = (long) (d->next_claim - now);
        if (d->wake) {
            timeout = 0;
        }
        if (d->settle != NULL
            && d->settle_since + PUSHD_SETTLE_MS - now < timeout)
        {
            timeout = (long) (d->settle_since + PUSHD_SETTLE_MS - now);
        }
        if (timeout > d->conf.poll_ms) {
            timeout = d->conf.poll_ms;
        }
        if (timeout < 0) {
            timeout = 0;
        }
        if (d->pg == NULL && d->pg_retry_at - now < timeout) {
            timeout = d->pg_retry_at > now ? (long) (d->pg_retry_at - now)
                                           : 0;
        }
        if (pushd_stopping && timeout > 100) {
            timeout = 100;
        }

        nfd = 0;
        if (d->pg != NULL) {
            wfd.fd = PQsocket(d->pg);
            wfd.events = CURL_WAIT_POLLIN;
            wfd.revents = 0;
            nfd = 1;
        }

        curl_multi_poll(d->multi, nfd ? &wfd : NULL, nfd, (int) timeout,
                        NULL);

        curl_multi_perform(d->multi, &d->running);

        while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                pushd_req_finish(d, msg->easy_handle, msg->data.result);
            }
        }

        if (d->pg != NULL) {
            if (PQconsumeInput(d->pg) != 1) {
                pushd_log(d, "error", "database: %s",
                          PQerrorMessage(d->pg));
                PQfinish(d->pg);
                d->pg = NULL;
                continue;
            }

            while ((n = PQnotifies(d->pg)) != NULL) {
                d->wake = 1;
                PQfreemem(n);
            }
        }
    }
}


static void
pushd_claim(pushd_t *d)
{
    int           lim;
    long long     start;
    pushd_row_t  *rows, *row, *next;

    lim = d->conf.max_inflight - (int) d->inflight;
    if (lim > d->conf.claim_batch) {
        lim = d->conf.claim_batch;
    }

    start = pushd_now_ms();
    lim = pushd_db_claim(d, lim, &rows);
    if (lim <= 0) {
        return;
    }

    d->inflight += lim;

    /* a full batch: more may be due, look again at once */
    if (lim == d->conf.claim_batch) {
        d->wake = 1;
    }

    pushd_log(d, "debug", "leased %d rows in %lld ms", lim,
              pushd_now_ms() - start);

    for (row = rows; row; row = next) {
        next = row->next;
        row->next = NULL;
        pushd_route(d, row);
    }

    pushd_expo_flush(d);
}


static void
pushd_route(pushd_t *d, pushd_row_t *row)
{
    const char  *type;

    if (row->payload == NULL) {
        pushd_done(d, row, PUSHD_PARK, NULL, "the payload is not JSON");
        return;
    }

    if (row->expires_at && row->expires_at <= time(NULL)) {
        pushd_done(d, row, PUSHD_PARK, NULL, "expired");
        return;
    }

    if (row->sms) {
        if (!d->conf.webhook) {
            pushd_done(d, row, PUSHD_DEFER, NULL, "webhook is off here");
            return;
        }

        pushd_webhook_send(d, row);
        return;
    }

    if (row->provider == NULL || row->token == NULL) {
        pushd_done(d, row, PUSHD_PARK, NULL, "no device");
        return;
    }

    /* a call rings an iPhone with a VoIP token through PushKit */
    type = pushd_str(row->payload, "type");
    if (type != NULL && strncmp(type, "call", 4) == 0
        && row->voip_token != NULL && d->has_apns)
    {
        row->voip = 1;
        pushd_apns_send(d, row);
        return;
    }

    if (strcmp(row->provider, "expo") == 0) {
        pushd_expo_add(d, row);

    } else if (strcmp(row->provider, "fcm") == 0 && d->has_fcm) {
        pushd_fcm_send(d, row);

    } else if (strcmp(row->provider, "apns") == 0 && d->has_apns) {
        pushd_apns_send(d, row);

    } else {
        pushd_done(d, row, PUSHD_DEFER, NULL, "%s is not configured here",
                   row->provider);
    }
}


/* row is settled (at the next turn, with the others) */
void
pushd_done(pushd_t *d, pushd_row_t *row, pushd_outcome_e outcome,
    const char *sent_by, const char *fmt, ...)
{
    va_list  ap;

    row->outcome = outcome;
    row->sent_by = sent_by;
    row->next = NULL;

    va_start(ap, fmt);
    vsnprintf(row->error, sizeof(row->error), fmt, ap);
    va_end(ap);

    if (outcome == PUSHD_DEFER) {
        row->retry_ms = d->conf.defer_ms;
    }

    if (outcome != PUSHD_OK && outcome != PUSHD_DEFER) {
        pushd_log(d, outcome == PUSHD_RETRY ? "debug" : "warn",
                  "row %lld (try %d): %s: %s", row->id, row->attempts,
                  outcome == PUSHD_RETRY ? "retry"
                  : outcome == PUSHD_PARK ? "parked" : "token removed",
                  row->error);
    }

    if (d->settle == NULL) {
        d->settle_since = pushd_now_ms();
    }

    *d->settle_tail = row;
    d->settle_tail = &row->next;
    d->nsettle++;
}


/*
 * Again later: exponential backoff from backoff_base_ms, doubling per
 * try up to backoff_max_ms, with full jitter over its upper half (so the
 * rows that failed together do not come back together); never sooner
 * than the provider's Retry-After.
 */
void
pushd_retry(pushd_t *d, pushd_row_t *row, long retry_after,
    const char *fmt, ...)
{
    long     ms;
    int      i;
    va_list  ap;
    char     error[200];

    ms = d->conf.backoff_base_ms;
    for (i = 1; i < row->attempts && ms < d->conf.backoff_max_ms; i++) {
        ms *= 2;
    }
    if (ms > d->conf.backoff_max_ms) {
        ms = d->conf.backoff_max_ms;
    }

    ms = ms / 2 + random() % (ms / 2 + 1);

    if (retry_after >= 0 && retry_after * 1000 > ms) {
        ms = retry_after * 1000;
    }

    va_start(ap, fmt);
    vsnprintf(error, sizeof(error), fmt, ap);
    va_end(ap);

    pushd_done(d, row, PUSHD_RETRY, NULL, "%s", error);
    row->retry_ms = ms;
}


void
pushd_row_free(pushd_row_t *row)
{
    free(row->collapse_key);
    json_decref(row->payload);
    free(row->provider);
    free(row->platform);
    free(row->token);
    free(row->voip_token);
    free(row);
}


const char *
pushd_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}


/* a delivery, and its latency from the commit */
void
pushd_stat(pushd_t *d, int provider, pushd_row_t *row)
{
    pushd_stats_t  *st = &d->stats[provider];
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    st->lat[st->nlat++ % 1024] =
        (tv.tv_sec + tv.tv_usec / 1e6 - row->created_at) * 1000;
    st->sent++;
}


static int
pushd_cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static void
pushd_log_stats(pushd_t *d)
{
    int             i;
    unsigned        n;
    double          sorted[1024];
    pushd_stats_t  *st;

    for (i = 0; i < 4; i++) {
        st = &d->stats[i];
        if (st->nlat == 0) {
            continue;
        }

        n = st->nlat < 1024 ? st->nlat : 1024;
        memcpy(sorted, st->lat, n * sizeof(double));
        qsort(sorted, n, sizeof(double), pushd_cmp_double);

        pushd_log(d, "info", "%s: %llu delivered; commit to answer over "
                  "the last %u: p50 %.0f ms, p99 %.0f ms",
                  pushd_provider_names[i], st->sent, n, sorted[n / 2],
                  sorted[n * 99 / 100]);
    }
}
