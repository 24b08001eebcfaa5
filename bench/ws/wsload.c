/*
 * wsload: load generator for famcall's WebSocket gateway.
 *
 *   wsload hold --users FILE --secret KEYFILE --port P [--count N] ...
 *       open N authenticated sockets (one per user line "user_id [sid]"),
 *       wait for every server hello, print "# phase=held", then hold them
 *       (answering pings) for --seconds, or until SIGTERM/SIGINT; close
 *       them with the close handshake and print the summary.
 *
 *   wsload chat --pairs FILE --secret KEYFILE --port-a P [--port-b Q]
 *       --rate R --seconds T ...
 *       one socket per side of each pair line "a sid_a b sid_b conv"
 *       (side a on port-a, side b on port-b), then R message:send per
 *       second in total for T seconds, round robin over the pairs, the
 *       sending side alternating from pair to pair and from round to round
 *       (tick_send); the other side's message:new carries
 *       the send time (CLOCK_MONOTONIC ns, the message body), so the
 *       latency is send -> delivered; --warmup S leaves messages sent in
 *       the first S seconds out of the latency histograms (they are still
 *       counted, and the per-second timeline shows them). Then waits (at
 *       most --drain seconds) for every ack and delivery, and prints the
 *       summary.
 *
 *   wsload merge FILE...   one summary for several processes' summaries.
 *
 *   wsload token --users FILE --secret KEYFILE [--offset K]
 *       print the access token wsload would use for that user (a script
 *       checks it with GET /v1/me before a run).
 *
 * Common: --offset K (first line of the file used), --count N, --src
 * A.B.C.D and --nsrc K (source addresses, round robin; distinct per
 * process), --host (server address, 127.0.0.1), --path (/v1/ws),
 * --connect-rate R (5000/s), --inflight M (200 handshakes at once: the
 * listen backlog is finite), --ttl S (token lifetime, 7200), --wait-go
 * (after connecting print "# phase=ready" and wait for SIGUSR1, so several
 * processes start sending together), --trace FILE (chat: one line per
 * delivery, "send_ns latency_us", send time on CLOCK_MONOTONIC as perf's
 * -k CLOCK_MONOTONIC: to find a stall's moment within its second).
 *
 * Output: key=value lines on stdout (wsstats.c); progress lines start
 * with '#'. Exit status 0 when every wanted socket was connected (and, in
 * chat, every message acked and delivered), 1 otherwise.
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

#include <jansson.h>
#include <jwt.h>
#include <yajl/yajl_parse.h>

#include "wsload.h"


#define ID_LEN  36

typedef struct {
    char  id[ID_LEN + 1];
    char  sid[ID_LEN + 1];
} user_t;

/* options */
static const char  *o_users, *o_pairs, *o_secret, *o_path = "/v1/ws", *o_trace;
static FILE        *trace;
static uint32_t     o_host = 0x7f000001, o_src = 0x7f010001, o_nsrc = 16;
static uint16_t     o_port_a, o_port_b;
static long         o_offset, o_count = -1, o_ttl = 7200;
static double       o_seconds, o_rate = 1000, o_connect_rate = 5000,
                    o_drain = 10, o_warmup;
static long         o_inflight = 200;
static int          o_wait_go;

static unsigned char  *key;
static size_t          keylen;

/* sockets: conns[i] is users[i]'s (chat: pair i/2, side i%2) */
static user_t   *users;
static char    (*convs)[ID_LEN + 1];
static conn_t   *conns;
static uint32_t  nconns, opened, pending, live;
static uint64_t  t_connect0;

/* chat: per message (index = ref) its send time and whether it was answered */
static uint64_t  *sent_at, nmsgs, nsent, answered, t_send0, t_send_end,
                  t_measure;      /* sends from here on enter the histograms */
static uint8_t   *acked_flag;


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
    fputs("wsload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}


/* the key exactly as nginx reads famcall_jwt_secret_file: the file's bytes
 * without trailing CR/LF */
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


/* the access token the server would issue at login (ngx_famcall_token.c):
 * HS256, iss famcall, sub the user, sid the session, iat, exp */
static char *
mint(const user_t *u)
{
    jwt_t  *jwt;
    char   *s;
    long    now = (long) time(NULL);

    if (jwt_new(&jwt) != 0
        || jwt_add_grant(jwt, "iss", "famcall") != 0
        || jwt_add_grant(jwt, "sub", u->id) != 0
        || (u->sid[0] && jwt_add_grant(jwt, "sid", u->sid) != 0)
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


/* lines of whitespace-separated UUIDs, "user [sid]" or "a sid_a b sid_b
 * conversation"; lines offset .. offset+count-1 are used */
static long
load(const char *path, int pairs)
{
    FILE    *f = fopen(path, "r");
    char    *line = NULL, *tok[5], *t, *save;
    size_t   cap = 0, have = 0;
    long     lineno = 0, n = 0, i, nf;

    if (f == NULL) {
        die("%s: %s", path, strerror(errno));
    }

    while ((o_count < 0 || n < o_count) && getline(&line, &cap, f) > 0) {
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
        if (pairs && nf != 5) {
            die("%s:%ld: want \"a sid_a b sid_b conversation\"", path, lineno);
        }

        if ((size_t) n >= have) {
            have = have ? 2 * have : 1024;
            users = realloc(users, have * 2 * sizeof(user_t));
            convs = realloc(convs, have * sizeof(*convs));
            if (users == NULL || convs == NULL) {
                die("out of memory");
            }
        }
        if (pairs) {
            for (i = 0; i < 2; i++) {
                user_t  *u = &users[2 * n + i];

                memcpy(u->id, tok[2 * i], ID_LEN + 1);
                memcpy(u->sid, tok[2 * i + 1], ID_LEN + 1);
            }
            memcpy(convs[n], tok[4], ID_LEN + 1);
        } else {
            memcpy(users[n].id, tok[0], ID_LEN + 1);
            if (nf > 1) {
                memcpy(users[n].sid, tok[1], ID_LEN + 1);
            } else {
                users[n].sid[0] = '\0';
            }
        }
        n++;
    }
    free(line);
    fclose(f);

    if (!pairs) {
        free(convs);
        convs = NULL;       /* also tells the connector: one port */
    }
    if (o_count >= 0 && n < o_count) {
        die("%s: only %ld usable lines from line %ld", path, n, o_offset + 1);
    }
    return n;
}


/* ---- connecting ---- */

static int
connected_all(void)
{
    return opened == nconns && pending == 0;
}


/* open sockets at o_connect_rate, at most o_inflight unanswered at once */
static int64_t
tick_connect(uint64_t now)
{
    uint64_t  allowed;
    conn_t   *c;
    char     *tok;

    allowed = (uint64_t) ((double) (now - t_connect0) * o_connect_rate / 1e9) + 1;

    while (opened < nconns && opened < allowed && pending < o_inflight) {
        c = &conns[opened];
        c->user = opened;
        tok = mint(&users[opened]);
        if (ws_open(c, o_src + opened % o_nsrc, o_host,
                    convs && (opened & 1) ? o_port_b : o_port_a,
                    o_path, tok) < 0)
        {
            if (st.connect_failed++ < 3) {
                fprintf(stderr, "wsload: socket %u: %s\n", opened,
                        strerror(errno));
            }
        } else {
            pending++;
            live++;
        }
        free(tok);
        opened++;
    }

    if (opened == nconns || pending >= o_inflight) {
        return -1;
    }
    return (int64_t) (t_connect0 + (uint64_t) (opened * 1e9 / o_connect_rate))
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


/* ---- received frames ---- */

/*
 * Frames are read with yajl's event parser, keeping only the fields the
 * handlers use: a jansson tree per frame (a malloc per node, 20,000 frames
 * a second) took a third of the generator's CPU, which it shares with the
 * server it measures. What counts as malformed is still jansson's.
 */

/* the fields kept (f[]), and the objects holding some of them (K_) */
enum {
    F_TYPE, F_REF,                              /* top level */
    F_CODE, F_MESSAGE,                          /* in "error" */
    F_USER_ID, F_BODY, F_SENDER, F_CONV,        /* in "data" */
    F_N,
    K_TOP = F_N, K_ERROR, K_DATA
};

static const struct {
    int          in, to;
    size_t       len;
    const char  *name;
} rx_keys[] = {
    { K_TOP, F_TYPE, 4, "type" }, { K_TOP, F_REF, 3, "ref" },
    { K_TOP, K_ERROR, 5, "error" }, { K_TOP, K_DATA, 4, "data" },
    { K_ERROR, F_CODE, 4, "code" }, { K_ERROR, F_MESSAGE, 7, "message" },
    { K_DATA, F_USER_ID, 7, "user_id" }, { K_DATA, F_BODY, 4, "body" },
    { K_DATA, F_SENDER, 9, "sender_id" },
    { K_DATA, F_CONV, 15, "conversation_id" }
};

static struct {
    yajl_handle           h;          /* kept, replaced after a bad frame */
    const char           *f[F_N];     /* NUL-terminated copies, or NULL */
    char                 *buf;        /* the copies: they fit in the frame */
    size_t                cap, used;
    const unsigned char  *p;          /* the frame */
    size_t                n, end;     /* end: where its top-level value ended */
    int                   depth;      /* arrays and objects open */
    int                   in;         /* what the object at depth 2 is */
    int                   want;       /* what the value after a key is, or -1 */
    int                   at;         /* the same for the value being read */
    int                   values;     /* top-level values begun */
    int                   odd;        /* jansson may judge it otherwise */
    json_t               *tree;       /* an odd frame's, read by jansson */
} rx;


/* a value begins: the field it is for is cleared (the last of repeated
 * keys counts, as in jansson); 0 for a second top-level value */
static int
rx_value(void)
{
    rx.at = rx.want;
    rx.want = -1;
    if (rx.depth == 0 && rx.values++) {
        return 0;
    }
    if (rx.depth >= JSON_PARSER_MAX_DEPTH) {
        rx.odd = 1;                 /* jansson's limit, not yajl's */
    }
    if (rx.at == K_DATA) {
        rx.f[F_USER_ID] = rx.f[F_BODY] = rx.f[F_SENDER] = rx.f[F_CONV] = NULL;
    } else if (rx.at == K_ERROR) {
        rx.f[F_CODE] = rx.f[F_MESSAGE] = NULL;
    } else if (rx.at >= 0) {
        rx.f[rx.at] = NULL;
    }
    return 1;
}


/* yajl unescaped s into its own buffer: jansson refuses some escapes
 * yajl takes (\u0000, lone surrogates) */
static void
rx_escapes(const unsigned char *s)
{
    uintptr_t  a = (uintptr_t) s, p = (uintptr_t) rx.p;

    if (a < p || a >= p + rx.n) {
        rx.odd = 1;
    }
}


static int
rx_key(void *ctx, const unsigned char *s, size_t len)
{
    int     in = rx.depth == 1 ? K_TOP : rx.depth == 2 ? rx.in : -1;
    size_t  i;

    (void) ctx;
    rx_escapes(s);
    rx.want = -1;
    for (i = 0; i < sizeof(rx_keys) / sizeof(rx_keys[0]); i++) {
        if (rx_keys[i].in == in && rx_keys[i].len == len
            && memcmp(rx_keys[i].name, s, len) == 0)
        {
            rx.want = rx_keys[i].to;
            break;
        }
    }
    return 1;
}


static int
rx_string(void *ctx, const unsigned char *s, size_t len)
{
    char  *d;

    (void) ctx;
    if (!rx_value()) {
        return 0;
    }
    rx_escapes(s);
    if (rx.at >= 0 && rx.at < F_N) {
        /* room: unescaping never lengthens, and the NUL takes a quote's */
        if (len >= rx.cap - rx.used) {
            return 0;
        }
        d = rx.buf + rx.used;
        memcpy(d, s, len);
        d[len] = '\0';
        rx.used += len + 1;
        rx.f[rx.at] = d;
    }
    return 1;
}


/* jansson refused integers beyond long long and reals beyond double: up to
 * 18 characters without an exponent neither can be */
static int
rx_number(void *ctx, const char *s, size_t len)
{
    (void) ctx;
    if (len > 18 || memchr(s, 'e', len) || memchr(s, 'E', len)) {
        rx.odd = 1;
    }
    return rx_value();
}


static int
rx_null(void *ctx)
{
    (void) ctx;
    return rx_value();
}


static int
rx_bool(void *ctx, int b)
{
    (void) ctx;
    (void) b;
    return rx_value();
}


static int
rx_start(void *ctx)
{
    (void) ctx;
    if (!rx_value()) {
        return 0;
    }
    if (rx.depth++ == 1) {
        rx.in = rx.at;              /* the keys at depth 2 are this one's */
    }
    return 1;
}


static int
rx_end(void *ctx)
{
    (void) ctx;
    if (--rx.depth == 0) {
        rx.end = yajl_get_bytes_consumed(rx.h);
    }
    return 1;
}


static const yajl_callbacks  rx_callbacks = {
    rx_null, rx_bool, NULL, NULL, rx_number, rx_string,
    rx_start, rx_key, rx_end, rx_start, rx_end
};


/* JSON's whitespace (yajl also skips \v and \f between tokens) */
static int
rx_blank(const unsigned char *p, size_t n)
{
    for (; n; p++, n--) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            return 0;
        }
    }
    return 1;
}


/* printable ASCII and JSON's whitespace only: yajl and jansson differ on
 * \v, \f, NUL (jansson skips one after a number), overlong or surrogate
 * UTF-8 */
static int
rx_plain_bytes(const unsigned char *p, size_t n)
{
    for (; n; p++, n--) {
        if (*p >= 0x80
            || (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r'))
        {
            return 0;
        }
    }
    return 1;
}


/* the same, eight bytes at a time where none is under 0x20 or over 0x7f
 * (a byte at a time it cost about as much as yajl's whole parse) */
static int
rx_plain(const unsigned char *p, size_t n)
{
    uint64_t  w;

    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        if (((w | (w - 0x2020202020202020ull)) & 0x8080808080808080ull)
            && !rx_plain_bytes(p, 8))
        {
            return 0;
        }
    }
    return rx_plain_bytes(p, n);
}


/* an odd frame, read the old way: jansson's tree, and its verdict */
static int
rx_jansson(const unsigned char *p, size_t n)
{
    json_t  *in[3];
    size_t   i;

    rx.tree = json_loadb((const char *) p, n, 0, NULL);
    in[0] = rx.tree;
    in[K_ERROR - K_TOP] = json_object_get(rx.tree, "error");
    in[K_DATA - K_TOP] = json_object_get(rx.tree, "data");
    for (i = 0; i < sizeof(rx_keys) / sizeof(rx_keys[0]); i++) {
        if (rx_keys[i].to < F_N) {
            rx.f[rx_keys[i].to] = json_string_value(
                json_object_get(in[rx_keys[i].in - K_TOP], rx_keys[i].name));
        }
    }
    return rx.tree != NULL;
}


/* one top-level object or array and nothing but whitespace after it. The
 * handle parses on (multiple values) after a good frame, and is replaced
 * after a bad one (yajl 2.1 has no reset). Odd frames, where yajl and
 * jansson may judge otherwise (rx_plain, escapes, depth, numbers), go to
 * jansson as before: they are rare, and malformed stays what it was. */
static int
rx_parse(const unsigned char *p, size_t n)
{
    int  ok;

    json_decref(rx.tree);
    rx.tree = NULL;
    memset(rx.f, 0, sizeof(rx.f));
    if (!rx_plain(p, n)) {
        return rx_jansson(p, n);
    }

    if (rx.h == NULL) {
        rx.h = yajl_alloc(&rx_callbacks, NULL, NULL);
        if (rx.h == NULL
            || !yajl_config(rx.h, yajl_allow_multiple_values, 1))
        {
            die("yajl_alloc failed");
        }
    }
    if (n >= rx.cap) {
        rx.cap = n + 1024;
        rx.buf = realloc(rx.buf, rx.cap);
        if (rx.buf == NULL) {
            die("out of memory");
        }
    }
    rx.p = p;
    rx.n = n;
    rx.end = rx.used = 0;
    rx.depth = rx.values = rx.odd = 0;
    rx.in = rx.want = -1;

    ok = yajl_parse(rx.h, p, n) == yajl_status_ok
         && rx.end && rx_blank(p + rx.end, n - rx.end);
    if (!ok) {
        yajl_free(rx.h);
        rx.h = NULL;
    }
    if (rx.odd) {
        memset(rx.f, 0, sizeof(rx.f));
        return rx_jansson(p, n);
    }
    return ok;
}


/* the frame's fields (F_), or NULL if it is malformed or has no type */
static const char **
parse(const unsigned char *p, size_t n)
{
    if (!rx_parse(p, n) || rx.f[F_TYPE] == NULL) {
        st.events_other++;
        return NULL;
    }
    return rx.f;
}


/* ---- events ---- */

/* a hello settles a pending socket; its user_id must be the token's */
static void
hello(conn_t *c, const char **f)
{
    if (c->hello) {
        st.events_other++;
        return;
    }
    c->hello = 1;
    pending--;
    st.connected++;
    if (f[F_USER_ID] == NULL || strcmp(f[F_USER_ID], users[c->user].id) != 0) {
        st.hello_mismatch++;
    }
}


static void
server_error(const char **f)
{
    if (st.errors++ < 5) {
        fprintf(stderr, "wsload: error %s: %s\n", f[F_CODE], f[F_MESSAGE]);
    }
}


static void
common_event(conn_t *c, const char **f)
{
    if (strcmp(f[F_TYPE], "hello") == 0) {
        hello(c, f);
    } else if (strcmp(f[F_TYPE], "presence") == 0) {
        st.presence++;
    } else if (strcmp(f[F_TYPE], "error") == 0) {
        server_error(f);
    } else {
        st.events_other++;
    }
}


/* ---- hold ---- */

static void
hold_text(conn_t *c, const unsigned char *p, size_t n)
{
    const char  **f = parse(p, n);

    if (f) {
        common_event(c, f);
    }
}


/* ---- chat ---- */

static uint64_t
chat_msgs(void)
{
    return (uint64_t) (o_rate * o_seconds + 0.5);
}


static int
sent_all(void)
{
    return nsent == nmsgs;
}


static int
drained(void)
{
    return answered == st.sent
           && st.delivered + st.foreign + st.echoed >= st.acked;
}


/* a fresh version 4 UUID (the message's client_id) */
static void
uuid4(char out[ID_LEN + 1])
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      r[16];
    uint64_t           a = ws_random(), b = ws_random();
    int                i, o;

    memcpy(r, &a, 8);
    memcpy(r + 8, &b, 8);
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;

    for (i = 0, o = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 15];
    }
    out[o] = '\0';
}


/* send every message due by now: message k is due at t0 + k/rate, from
 * pair k % npairs (a round is npairs messages). Pair p's sending side
 * alternates from round to round, and within a round from pair to pair:
 * side (p + round) % 2. With two nodes (side a on one, side b on the
 * other) both nodes send all the time; with the side the same for a whole
 * round, one node sent for 0.1 s at 10,000/s, then the other. */
static int64_t
tick_send(uint64_t now)
{
    uint64_t  due, k, npairs = nconns / 2, sched, t;
    char      cid[ID_LEN + 1], buf[512];
    conn_t   *c;
    int       n;

    due = now >= t_send_end ? nmsgs
          : (uint64_t) ((double) (now - t_send0) * o_rate / 1e9) + 1;
    if (due > nmsgs) {
        due = nmsgs;
    }

    for (; nsent < due; nsent++) {
        k = nsent;
        c = &conns[2 * (k % npairs) + (((k % npairs) + k / npairs) & 1)];

        sched = t_send0 + (uint64_t) ((double) k * 1e9 / o_rate);
        if (now > sched && (now - sched) / 1000 > st.behind_max_us) {
            st.behind_max_us = (now - sched) / 1000;
        }

        if (c->state != ST_OPEN || !c->hello) {
            st.skipped++;
            continue;
        }

        uuid4(cid);
        t = now_ns();
        n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"message:send\",\"ref\":\"%llu\",\"data\":"
                     "{\"conversation_id\":\"%s\",\"client_id\":\"%s\","
                     "\"body\":\"%llu\"}}",
                     (unsigned long long) k, convs[k % npairs], cid,
                     (unsigned long long) t);
        sent_at[k] = t;
        if (ws_send_text(c, buf, (size_t) n) == 0) {
            st.sent++;
        } else {
            st.skipped++;
        }
    }

    if (nsent == nmsgs) {
        return -1;
    }
    return (int64_t) (t_send0 + (uint64_t) ((double) nsent * 1e9 / o_rate))
           - (int64_t) now;
}


/* an ack or an error for the message whose ref is given: 0 and its index
 * the first time that message is answered, -1 otherwise */
static int
answer(const char **f, uint64_t *kp)
{
    const char  *ref = f[F_REF];
    char        *end;
    uint64_t     k;

    if (ref == NULL) {
        return -1;
    }
    k = strtoull(ref, &end, 10);
    if (*end || k >= nsent || sent_at[k] == 0 || acked_flag[k]) {
        return -1;
    }
    acked_flag[k] = 1;
    answered++;
    *kp = k;
    return 0;
}


static void
chat_text(conn_t *c, const unsigned char *p, size_t n)
{
    const char  **f = parse(p, n), *type, *body, *sender, *conv;
    uint64_t      now = now_ns(), ts, k;
    const user_t *peer;

    if (f == NULL) {
        return;
    }
    type = f[F_TYPE];

    if (strcmp(type, "message:new") == 0) {
        body = f[F_BODY];
        sender = f[F_SENDER];
        conv = f[F_CONV];
        peer = &users[c->user ^ 1];
        ts = body ? strtoull(body, NULL, 10) : 0;

        if (sender && strcmp(sender, users[c->user].id) == 0) {
            st.echoed++;            /* back to the socket that sent it */
        } else if (sender == NULL || strcmp(sender, peer->id) != 0
                   || conv == NULL || strcmp(conv, convs[c->user / 2]) != 0
                   || ts == 0 || ts > now)
        {
            st.foreign++;
        } else {
            st.delivered++;
            if (now <= t_send_end) {
                st.delivered_window++;
            }
            if (ws_rx_ns > ts && ws_rx_ns <= now) {
                st.stamped++;
            }
            if (ts >= t_measure) {
                hist_add(&st.lat, (now - ts) / 1000);
                hist_add(&st.lat_sock, ((ws_rx_ns > ts && ws_rx_ns <= now
                                         ? ws_rx_ns : now) - ts) / 1000);
            }
            if (ts >= t_send0) {
                timeline_add(&st, (ts - t_send0) / 1000000000u, (now - ts) / 1000);
            }
            if (trace != NULL) {
                fprintf(trace, "%llu %llu\n", (unsigned long long) ts,
                        (unsigned long long) (now - ts) / 1000);
            }
        }

    } else if (strcmp(type, "ack") == 0) {
        if (answer(f, &k) == 0) {
            st.acked++;
            if (now <= t_send_end) {
                st.acked_window++;
            }
            if (sent_at[k] >= t_measure) {
                hist_add(&st.ack, (now - sent_at[k]) / 1000);
            }
        } else {
            st.events_other++;
        }

    } else if (strcmp(type, "error") == 0) {
        answer(f, &k);
        server_error(f);

    } else {
        common_event(c, f);
    }
}


/* ---- closing ---- */

static int
all_gone(void)
{
    return live == 0;
}


static int
never(void)
{
    return 0;
}


static int
go_given(void)
{
    return ws_go_sig;
}


/* the close handshake on every socket, bounded: what is left after 10 s
 * is dropped and counted as close_timeout */
static void
close_all(void)
{
    uint32_t  i;

    for (i = 0; i < nconns; i++) {
        ws_close(&conns[i]);
    }
    ws_run(all_gone, NULL, now_ns() + 10000000000ull, 0);
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
    fputs("usage: wsload hold|chat [options] | wsload merge FILE...\n"
          "  (see the comment at the top of bench/ws/wsload.c)\n", stderr);
    exit(2);
}


static void
setup(void)
{
    struct rlimit  rl;

    /* the soft limit up to the hard one: each socket is a file */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((rlim_t) nconns + 32 > rl.rlim_cur) {
        die("%u sockets need more than this process's %llu files: "
            "use more processes", nconns, (unsigned long long) rl.rlim_cur);
    }

    /* signals as events: SIGUSR1 starts sending, SIGTERM/SIGINT stop */
    ws_loop_init();

    conns = calloc(nconns, sizeof(conn_t));
    if (conns == NULL) {
        die("setup: %s", strerror(errno));
    }
}


/* connect everything (bounded by 300 s), then tell the driving script */
static void
connect_phase(void)
{
    t_connect0 = now_ns();
    ws_run(connected_all, tick_connect, t_connect0 + 300000000000ull, 1);
    st.connect_ms = (now_ns() - t_connect0) / 1000000;
    printf("# phase=%s connected=%llu wanted=%u seconds=%.1f\n",
           o_wait_go ? "ready" : (convs ? "connected" : "held"),
           (unsigned long long) st.connected,
           nconns, st.connect_ms / 1000.0);
    fflush(stdout);
}


int
main(int argc, char **argv)
{
    enum { O_USERS = 1, O_PAIRS, O_SECRET, O_HOST, O_PORT, O_PORT_A, O_PORT_B,
           O_PATH, O_SRC, O_NSRC, O_OFFSET, O_COUNT, O_SECONDS, O_RATE,
           O_CRATE, O_INFLIGHT, O_DRAIN, O_TTL, O_GO, O_WARMUP, O_TRACE };
    static const struct option  opts[] = {
        { "users", 1, 0, O_USERS }, { "pairs", 1, 0, O_PAIRS },
        { "secret", 1, 0, O_SECRET }, { "host", 1, 0, O_HOST },
        { "port", 1, 0, O_PORT }, { "port-a", 1, 0, O_PORT_A },
        { "port-b", 1, 0, O_PORT_B }, { "path", 1, 0, O_PATH },
        { "src", 1, 0, O_SRC }, { "nsrc", 1, 0, O_NSRC },
        { "offset", 1, 0, O_OFFSET }, { "count", 1, 0, O_COUNT },
        { "seconds", 1, 0, O_SECONDS }, { "rate", 1, 0, O_RATE },
        { "connect-rate", 1, 0, O_CRATE }, { "inflight", 1, 0, O_INFLIGHT },
        { "drain", 1, 0, O_DRAIN }, { "ttl", 1, 0, O_TTL },
        { "wait-go", 0, 0, O_GO }, { "warmup", 1, 0, O_WARMUP },
        { "trace", 1, 0, O_TRACE },
        { 0, 0, 0, 0 }
    };
    const char    *mode;
    int            o, chat;
    struct rusage  ru;
    long         n;

    if (argc < 2) {
        usage();
    }
    mode = argv[1];
    if (strcmp(mode, "merge") == 0) {
        return stats_merge(argc - 2, argv + 2);
    }
    chat = strcmp(mode, "chat") == 0;
    if (strcmp(mode, "token") == 0) {
        o_port_a = 1;       /* not used */
    } else if (!chat && strcmp(mode, "hold") != 0) {
        usage();
    }

    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_USERS:    o_users = optarg; break;
        case O_PAIRS:    o_pairs = optarg; break;
        case O_SECRET:   o_secret = optarg; break;
        case O_HOST:     o_host = ipv4(optarg); break;
        case O_PORT:     o_port_a = o_port_b = (uint16_t) atoi(optarg); break;
        case O_PORT_A:   o_port_a = (uint16_t) atoi(optarg); break;
        case O_PORT_B:   o_port_b = (uint16_t) atoi(optarg); break;
        case O_PATH:     o_path = optarg; break;
        case O_SRC:      o_src = ipv4(optarg); break;
        case O_NSRC:     o_nsrc = (uint32_t) atol(optarg); break;
        case O_OFFSET:   o_offset = atol(optarg); break;
        case O_COUNT:    o_count = atol(optarg); break;
        case O_SECONDS:  o_seconds = atof(optarg); break;
        case O_RATE:     o_rate = atof(optarg); break;
        case O_CRATE:    o_connect_rate = atof(optarg); break;
        case O_INFLIGHT: o_inflight = atol(optarg); break;
        case O_DRAIN:    o_drain = atof(optarg); break;
        case O_TTL:      o_ttl = atol(optarg); break;
        case O_GO:       o_wait_go = 1; break;
        case O_WARMUP:   o_warmup = atof(optarg); break;
        case O_TRACE:    o_trace = optarg; break;
        default:         usage();
        }
    }

    if (!o_secret || !o_port_a || o_nsrc == 0 || o_inflight < 1
        || o_rate <= 0 || o_connect_rate <= 0
        || (chat ? !o_pairs : !o_users)
        || (o_host >> 24) != 127 || (o_src >> 24) != 127
        || ((o_src + o_nsrc - 1) >> 24) != 127)
    {
        /* loopback only: this is a local benchmark tool */
        usage();
    }
    if (!o_port_b) {
        o_port_b = o_port_a;
    }

    /* before any work: a trace that cannot be written fails the run now */
    if (chat && o_trace != NULL && (trace = fopen(o_trace, "w")) == NULL) {
        die("cannot open the trace file %s: %s", o_trace, strerror(errno));
    }

    read_secret(o_secret);
    n = load(chat ? o_pairs : o_users, chat);
    if (strcmp(mode, "token") == 0) {
        char  *tok = mint(&users[0]);

        puts(tok);
        free(tok);
        return 0;
    }
    nconns = (uint32_t) (chat ? 2 * n : n);
    if (nconns == 0) {
        die("no users");
    }
    st.wanted = nconns;
    setup();

    ws_handlers.text = chat ? chat_text : hold_text;
    ws_handlers.gone = gone;

    connect_phase();

    if (o_wait_go && !ws_stop_sig) {
        ws_run(go_given, NULL, 0, 1);
    }

    if (!chat) {
        /* hold: idle sockets, pings answered, until the time is up */
        if (!ws_stop_sig) {
            ws_run(never, NULL, o_seconds > 0
                ? now_ns() + (uint64_t) (o_seconds * 1e9) : 0, 1);
        }

    } else if (!ws_stop_sig) {
        nmsgs = chat_msgs();
        sent_at = calloc(nmsgs + 1, sizeof(*sent_at));
        acked_flag = calloc(nmsgs + 1, 1);
        if (sent_at == NULL || acked_flag == NULL) {
            die("out of memory");
        }
        t_send0 = now_ns();
        if (trace != NULL) {
            fprintf(trace, "# t_send0 %llu\n", (unsigned long long) t_send0);
        }
        t_send_end = t_send0 + (uint64_t) (o_seconds * 1e9);
        t_measure = t_send0 + (uint64_t) (o_warmup * 1e9);
        st.warmup_ms = (uint64_t) (o_warmup * 1000);
        ws_run(sent_all, tick_send, 0, 1);
        st.send_ms = (now_ns() - t_send0) / 1000000;
        ws_run(drained, NULL, now_ns() + (uint64_t) (o_drain * 1e9), 1);
        st.not_acked = st.sent - answered;
        st.not_delivered = st.acked > st.delivered
                           ? st.acked - st.delivered : 0;
        if (trace != NULL) {
            fclose(trace);
        }
    }

    close_all();

    /* the generator shares the machine with the server: say what it took */
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        st.cpu_ms = (uint64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000
                    + (uint64_t) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    }
    stats_print(&st, mode, stdout);

    return st.connected == st.wanted && st.not_acked == 0
           && st.not_delivered == 0 && st.errors == 0 ? 0 : 1;
}
