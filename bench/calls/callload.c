/*
 * callload: load generator for famcall's calls (make bench-calls), built
 * on wsload's WebSocket client (bench/ws/wsconn.c) and counters
 * (bench/ws/wsstats.c). This file: options, sockets, the event loop, the
 * frames; callcalls.c: calls set up and ended, and the setup mode;
 * callrelay.c: the measured relays; calljson.c: a frame's fields.
 *
 *   callload relay --pairs FILE --secret KEYFILE --port-a P [--port-b Q]
 *       --rate R --seconds T ...
 *       one socket per side of each pair line "a sid_a b sid_b conv" (side
 *       a on port-a, side b on port-b); each pair places a real call (a
 *       invites b, b accepts: --setup-rate calls a second, at most
 *       --inflight at once), then "# phase=ready" with --wait-go; then R
 *       webrtc:ice a second in all for T seconds, round robin over the
 *       pairs, the sending side alternating as wsload's chat does; each
 *       carries its send time (CLOCK_MONOTONIC ns) as the candidate's
 *       foundation and its number as the priority, so the peer's copy
 *       gives the latency send -> peer and catches a duplicate. Every
 *       relay has a ref and must be acked. Then waits (at most --drain s)
 *       for every ack and delivery, prints "# phase=drained" (the script
 *       reads the server's CPU there), ends every call (call:end, both
 *       sides hear it) and prints the summary.
 *
 *   callload peerjs --pairs FILE --port P --rate R --seconds T ...
 *       the same relay through the PeerJS server (npm peer): sockets on
 *       /peerjs?key=peerjs&id=<user>&token=<sid>, no subprotocol, ready at
 *       its OPEN; CANDIDATE messages as the PeerJS client sends them, to
 *       the pair's other side (no ack: PeerJS has none).
 *
 *   callload setup --pairs FILE --secret KEYFILE --port-a P [--port-b Q]
 *       --rate R --seconds T ...
 *       R call setups a second for T seconds, each on an idle pair (a
 *       FIFO): a invites, b accepts when its call:invite rings, a ends the
 *       call when it hears call:accept; a setup is done when a has its
 *       end acked and b heard call:end (the pair is idle again). A setup
 *       due while no pair is idle is not offered (skipped). Latencies:
 *       invite -> the caller hears call:accept (setup), invite -> done
 *       (cycle).
 *
 *   callload merge FILE...   one summary for several processes' summaries.
 *
 * Common: --offset K (first pair line used), --count N (pairs), --src
 * A.B.C.D and --nsrc K (source addresses), --connect-rate (2000/s),
 * --inflight (200 handshakes or call setups at once), --ttl, --warmup S
 * (relays sent in the first S seconds left out of the latency figures),
 * --target-ms (5: the per-second timeline counts relays slower than it,
 * DESIGN.md's relay target), --wait-go (as wsload).
 *
 * Output: wsload's key=value summary (calls_ready, calls_failed,
 * calls_ended, ringing, setups, duplicated, setup_* and cycle_* among
 * them); progress lines start with '#'. Exit status 0 when every socket
 * was connected, every call set up and ended, every relay acked and
 * delivered once (setup: every setup offered finished); 1 otherwise.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/resource.h>

#include <jwt.h>

#include "../ws/wsload.h"
#include "calljson.h"
#include "callload.h"


/* options */
const char     *o_pairs, *o_secret;
uint32_t        o_host = 0x7f000001, o_src = 0x7f010001, o_nsrc = 16;
uint16_t        o_port_a, o_port_b;
long            o_offset, o_count = -1, o_ttl = 7200, o_inflight = 200;
double          o_seconds, o_rate = 1000, o_connect_rate = 2000,
                o_setup_rate = 1000, o_drain = 10, o_warmup, o_target_ms = 5;
int             o_wait_go, mode;

static unsigned char  *key;
static size_t          keylen;

pair_t         *pairs;
conn_t         *conns;
uint32_t        npairs, nconns;
static uint32_t opened, pending, live;
static uint64_t t_connect0;

uint64_t        nmsgs, nsent, t_send0, t_send_end, t_measure;


uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}


void
die(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fputs("callload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}


void
complain(uint64_t n, const char *fmt, ...)
{
    va_list  ap;

    if (n >= 5) {
        return;                     /* the first few say enough */
    }
    va_start(ap, fmt);
    fputs("callload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}


/* the key as nginx reads famcall_jwt_secret_file (as wsload) */
static void
read_secret(const char *path)
{
    FILE  *f = fopen(path, "r");

    if (f == NULL) {
        die("%s: %s", path, strerror(errno));
    }
    key = malloc(4097);
    keylen = fread(key, 1, 4096, f);
    fclose(f);
    while (keylen && (key[keylen - 1] == '\n' || key[keylen - 1] == '\r')) {
        keylen--;
    }
    if (keylen < 32) {
        die("%s: a key of at least 32 bytes", path);
    }
}


/* an access token as the server issues them (ngx_famcall_token.c) */
static char *
mint(const char *user, const char *sid)
{
    jwt_t  *jwt;
    char   *s;
    long    now = (long) time(NULL);

    if (jwt_new(&jwt) != 0
        || jwt_add_grant(jwt, "iss", "famcall") != 0
        || jwt_add_grant(jwt, "sub", user) != 0
        || jwt_add_grant(jwt, "sid", sid) != 0
        || jwt_add_grant_int(jwt, "iat", now) != 0
        || jwt_add_grant_int(jwt, "exp", now + o_ttl) != 0
        || jwt_set_alg(jwt, JWT_ALG_HS256, key, (int) keylen) != 0
        || (s = jwt_encode_str(jwt)) == NULL)
    {
        die("cannot make a token");
    }
    jwt_free(jwt);
    return s;
}


/* lines "a sid_a b sid_b conversation" from --offset, --count of them */
static void
load(const char *path)
{
    FILE    *f = fopen(path, "r");
    char    *line = NULL, *tok[5], *t, *save;
    size_t   cap = 0, have = 0;
    long     lineno = 0, nf;

    if (f == NULL) {
        die("%s: %s", path, strerror(errno));
    }
    while ((o_count < 0 || npairs < o_count) && getline(&line, &cap, f) > 0) {
        if (lineno++ < o_offset) {
            continue;
        }
        nf = 0;
        for (t = strtok_r(line, " \t\r\n", &save); t && nf < 5;
             t = strtok_r(NULL, " \t\r\n", &save))
        {
            if (strlen(t) != ID_LEN) {
                die("%s:%ld: not a UUID: %s", path, lineno, t);
            }
            tok[nf++] = t;
        }
        if (nf == 0) {
            continue;
        }
        if (nf != 5) {
            die("%s:%ld: want \"a sid_a b sid_b conversation\"", path, lineno);
        }
        if (npairs >= have) {
            have = have ? 2 * have : 1024;
            pairs = realloc(pairs, have * sizeof(pair_t));
            if (pairs == NULL) {
                die("out of memory");
            }
        }
        memset(&pairs[npairs], 0, sizeof(pair_t));
        memcpy(pairs[npairs].a, tok[0], ID_LEN + 1);
        memcpy(pairs[npairs].sa, tok[1], ID_LEN + 1);
        memcpy(pairs[npairs].b, tok[2], ID_LEN + 1);
        memcpy(pairs[npairs].sb, tok[3], ID_LEN + 1);
        npairs++;
    }
    free(line);
    fclose(f);
    if (o_count >= 0 && npairs < o_count) {
        die("%s: only %u usable lines from line %ld", path, npairs,
            o_offset + 1);
    }
    if (npairs == 0) {
        die("%s: no pairs", path);
    }
}


/* ---- connecting ---- */

static int
connected_all(void)
{
    return opened == nconns && pending == 0;
}


static int64_t
tick_connect(uint64_t now)
{
    uint64_t   allowed;
    conn_t    *c;
    pair_t    *p;
    char      *tok = NULL, path[256];
    const char *user, *sid;

    allowed = (uint64_t) ((double) (now - t_connect0) * o_connect_rate / 1e9)
              + 1;

    while (opened < nconns && opened < allowed && pending < o_inflight) {
        c = &conns[opened];
        c->user = opened;
        p = &pairs[opened / 2];
        user = opened & 1 ? p->b : p->a;
        sid = opened & 1 ? p->sb : p->sa;
        if (mode == M_PEERJS) {
            snprintf(path, sizeof(path), "/peerjs?key=peerjs&id=%s&token=%s",
                     user, sid);
        } else {
            snprintf(path, sizeof(path), "/v1/ws");
            tok = mint(user, sid);
        }
        if (ws_open(c, o_src + opened % o_nsrc, o_host,
                    opened & 1 ? o_port_b : o_port_a, path, tok) < 0)
        {
            complain(st.connect_failed++, "socket %u: %s", opened,
                     strerror(errno));
        } else {
            pending++;
            live++;
        }
        free(tok);
        tok = NULL;
        opened++;
    }

    if (opened == nconns || pending >= o_inflight) {
        return -1;
    }
    return (int64_t) (t_connect0
                      + (uint64_t) (opened * 1e9 / o_connect_rate))
           - (int64_t) now;
}


static void
gone(conn_t *c)
{
    live--;
    if (!c->hello) {
        pending--;
    }
}


/* the server's greeting (famcall's hello, PeerJS's OPEN) settles a socket */
void
greeted(conn_t *c, const char *user_id)
{
    pair_t  *p = &pairs[c->user / 2];

    if (c->hello) {
        st.events_other++;
        return;
    }
    c->hello = 1;
    pending--;
    st.connected++;
    if (mode != M_PEERJS
        && (user_id == NULL
            || strcmp(user_id, c->user & 1 ? p->b : p->a) != 0))
    {
        st.hello_mismatch++;
    }
}


/* ---- frames ---- */

static void
famcall_text(conn_t *c, const unsigned char *b, size_t n)
{
    const char  **f = cj_parse(b, n), *type;
    pair_t       *p = &pairs[c->user / 2];

    if (f == NULL || (type = f[J_TYPE]) == NULL) {
        complain(st.events_other++, "a frame without a type: %.*s",
                 (int) (n > 200 ? 200 : n), b);
        return;
    }

    if (strcmp(type, "webrtc:ice") == 0) {
        relay_delivered(c, f[J_CANDIDATE], f[J_CALL_ID] && p->call[0]
                        && strcmp(f[J_CALL_ID], p->call) == 0);

    } else if (strcmp(type, "ack") == 0) {
        if (!call_answer(c, f, 1) && !relay_acked(f)) {
            st.events_other++;
        }

    } else if (strcmp(type, "error") == 0) {
        if (call_answer(c, f, 0)) {
            return;
        }
        relay_refused(f);
        complain(st.errors++, "error %s: %s", f[J_CODE] ? f[J_CODE] : "?",
                 f[J_MESSAGE] ? f[J_MESSAGE] : "?");

    } else if (call_event(c, f)) {
        return;

    } else if (strcmp(type, "hello") == 0) {
        greeted(c, f[J_USER_ID]);

    } else if (strcmp(type, "presence") == 0) {
        st.presence++;

    } else {
        st.events_other++;
    }
}


static void
peerjs_text(conn_t *c, const unsigned char *b, size_t n)
{
    const char  **f = cj_parse(b, n), *type;
    pair_t       *p = &pairs[c->user / 2];

    if (f == NULL || (type = f[J_TYPE]) == NULL) {
        complain(st.events_other++, "a frame without a type: %.*s",
                 (int) (n > 200 ? 200 : n), b);
        return;
    }
    if (strcmp(type, "CANDIDATE") == 0) {
        relay_delivered(c, f[J_P_CANDIDATE], f[J_SRC]
                        && strcmp(f[J_SRC], c->user & 1 ? p->a : p->b) == 0);
    } else if (strcmp(type, "OPEN") == 0) {
        greeted(c, NULL);
    } else if (strcmp(type, "ERROR") == 0 || strcmp(type, "ID-TAKEN") == 0) {
        complain(st.errors++, "PeerJS %s: %s", type,
                 f[J_P_MSG] ? f[J_P_MSG] : "?");
    } else {
        st.events_other++;
    }
}


/* ---- closing ---- */

static int
all_gone(void)
{
    return live == 0;
}


static int
go_given(void)
{
    return ws_go_sig;
}


static void
close_all(void)
{
    uint32_t  i;

    for (i = 0; i < nconns; i++) {
        ws_close(&conns[i]);
    }
    ws_stop_sig = 0;    /* a stop cuts a run short; the sockets still close */
    ws_run(all_gone, NULL, now_ns() + 10000000000ull, 1);
    for (i = 0; i < nconns; i++) {
        if (conns[i].state != ST_FREE) {
            st.close_timeout++;
            ws_drop(&conns[i]);
        }
    }
}


/* ---- main ---- */

static uint32_t
ipv4(const char *s)
{
    struct in_addr  a;

    if (inet_pton(AF_INET, s, &a) != 1) {
        die("not an IPv4 address: %s", s);
    }
    return ntohl(a.s_addr);
}


static void
usage(void)
{
    fputs("usage: callload relay|peerjs|setup [options] | callload merge "
          "FILE...\n  (see the comment at the top of "
          "bench/calls/callload.c)\n", stderr);
    exit(2);
}


static void
setup_loop(void)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((rlim_t) nconns + 32 > rl.rlim_cur) {
        die("%u sockets need more than this process's %llu files",
            nconns, (unsigned long long) rl.rlim_cur);
    }

    ws_loop_init();

    conns = calloc(nconns, sizeof(conn_t));
    if (conns == NULL) {
        die("setup: %s", strerror(errno));
    }
}


static void
phase(const char *name)
{
    printf("# phase=%s connected=%llu wanted=%u calls=%llu failed=%llu "
           "seconds=%.1f\n", name, (unsigned long long) st.connected, nconns,
           (unsigned long long) st.calls_ready,
           (unsigned long long) st.calls_failed,
           (now_ns() - t_connect0) / 1e9);
    fflush(stdout);
}


int
main(int argc, char **argv)
{
    enum { O_PAIRS = 1, O_SECRET, O_HOST, O_PORT, O_PORT_A, O_PORT_B, O_SRC,
           O_NSRC, O_OFFSET, O_COUNT, O_SECONDS, O_RATE, O_CRATE, O_SRATE,
           O_INFLIGHT, O_DRAIN, O_TTL, O_GO, O_WARMUP, O_TARGET };
    static const struct option  opts[] = {
        { "pairs", 1, 0, O_PAIRS }, { "secret", 1, 0, O_SECRET },
        { "host", 1, 0, O_HOST }, { "port", 1, 0, O_PORT },
        { "port-a", 1, 0, O_PORT_A }, { "port-b", 1, 0, O_PORT_B },
        { "src", 1, 0, O_SRC }, { "nsrc", 1, 0, O_NSRC },
        { "offset", 1, 0, O_OFFSET }, { "count", 1, 0, O_COUNT },
        { "seconds", 1, 0, O_SECONDS }, { "rate", 1, 0, O_RATE },
        { "connect-rate", 1, 0, O_CRATE }, { "setup-rate", 1, 0, O_SRATE },
        { "inflight", 1, 0, O_INFLIGHT }, { "drain", 1, 0, O_DRAIN },
        { "ttl", 1, 0, O_TTL }, { "wait-go", 0, 0, O_GO },
        { "warmup", 1, 0, O_WARMUP }, { "target-ms", 1, 0, O_TARGET },
        { 0, 0, 0, 0 }
    };
    struct rusage  ru;
    int            o, ok;

    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "merge") == 0) {
        return stats_merge(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "relay") == 0) {
        mode = M_RELAY;
    } else if (strcmp(argv[1], "peerjs") == 0) {
        mode = M_PEERJS;
    } else if (strcmp(argv[1], "setup") == 0) {
        mode = M_SETUP;
    } else {
        usage();
    }

    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_PAIRS:    o_pairs = optarg; break;
        case O_SECRET:   o_secret = optarg; break;
        case O_HOST:     o_host = ipv4(optarg); break;
        case O_PORT:     o_port_a = o_port_b = (uint16_t) atoi(optarg); break;
        case O_PORT_A:   o_port_a = (uint16_t) atoi(optarg); break;
        case O_PORT_B:   o_port_b = (uint16_t) atoi(optarg); break;
        case O_SRC:      o_src = ipv4(optarg); break;
        case O_NSRC:     o_nsrc = (uint32_t) atol(optarg); break;
        case O_OFFSET:   o_offset = atol(optarg); break;
        case O_COUNT:    o_count = atol(optarg); break;
        case O_SECONDS:  o_seconds = atof(optarg); break;
        case O_RATE:     o_rate = atof(optarg); break;
        case O_CRATE:    o_connect_rate = atof(optarg); break;
        case O_SRATE:    o_setup_rate = atof(optarg); break;
        case O_INFLIGHT: o_inflight = atol(optarg); break;
        case O_DRAIN:    o_drain = atof(optarg); break;
        case O_TTL:      o_ttl = atol(optarg); break;
        case O_GO:       o_wait_go = 1; break;
        case O_WARMUP:   o_warmup = atof(optarg); break;
        case O_TARGET:   o_target_ms = atof(optarg); break;
        default:         usage();
        }
    }

    /* loopback only: this is a local benchmark tool */
    if (!o_pairs || !o_port_a || (mode != M_PEERJS && !o_secret)
        || o_nsrc == 0 || o_inflight < 1 || o_rate <= 0 || o_seconds <= 0
        || o_connect_rate <= 0 || o_setup_rate <= 0 || o_target_ms <= 0
        || (o_host >> 24) != 127 || (o_src >> 24) != 127
        || ((o_src + o_nsrc - 1) >> 24) != 127)
    {
        usage();
    }
    if (!o_port_b) {
        o_port_b = o_port_a;
    }

    if (mode != M_PEERJS) {
        read_secret(o_secret);
    }
    load(o_pairs);
    nconns = 2 * npairs;
    st.wanted = nconns;
    st.tl_target_us = (uint64_t) (o_target_ms * 1000);
    setup_loop();

    ws_handlers.text = mode == M_PEERJS ? peerjs_text : famcall_text;
    ws_handlers.gone = gone;

    t_connect0 = now_ns();
    ws_run(connected_all, tick_connect, t_connect0 + 300000000000ull, 1);
    st.connect_ms = (now_ns() - t_connect0) / 1000000;

    if (mode == M_RELAY && st.connected == nconns) {
        t_calls0 = now_ns();
        t_measure = UINT64_MAX;     /* these setups are not measured */
        ws_run(calls_settled, tick_invite, t_calls0 + 120000000000ull, 1);
    }
    phase(o_wait_go ? "ready" : "connected");
    if (o_wait_go && !ws_stop_sig) {
        ws_run(go_given, NULL, 0, 1);
    }

    if (!ws_stop_sig && mode == M_SETUP) {
        setup_run();
    } else if (!ws_stop_sig) {
        relay_run();
    }
    phase("drained");

    if (mode == M_RELAY) {
        next_call = 0;
        t_calls0 = now_ns();
        ws_run(calls_settled, tick_hangup, t_calls0 + 60000000000ull, 1);
    }

    close_all();

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        st.cpu_ms = (uint64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000
                    + (uint64_t) (ru.ru_utime.tv_usec
                                  + ru.ru_stime.tv_usec) / 1000;
    }
    stats_print(&st, mode == M_RELAY ? "relay"
                     : mode == M_PEERJS ? "peerjs" : "setup", stdout);

    ok = st.connected == st.wanted && st.calls_failed == 0
         && st.not_acked == 0 && st.not_delivered == 0 && st.errors == 0
         && st.foreign == 0 && st.duplicated == 0 && st.skipped == 0;
    if (mode == M_RELAY) {
        ok = ok && st.calls_ready == npairs && st.calls_ended == npairs;
    }
    return ok ? 0 : 1;
}
