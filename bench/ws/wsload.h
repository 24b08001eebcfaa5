/*
 * wsload: a WebSocket load generator for famcall's gateway (GET /v1/ws,
 * docs/websocket.md). Single-threaded, epoll; one process drives up to
 * about 19,000 sockets (the open-file limit), so big runs use several
 * processes and `wsload merge` adds their summaries up.
 *
 * Files: wsload.c (options, modes, main loop), wsconn.c (sockets, the
 * RFC 6455 client side), wsstats.c (counters, latency histograms, the
 * key=value summary and its merge).
 */

#ifndef WSLOAD_H
#define WSLOAD_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>


/* connection states */
enum {
    ST_FREE = 0,      /* never opened, or done with */
    ST_CONNECTING,    /* connect() in progress */
    ST_HANDSHAKE,     /* request written (or queued), waiting for the 101 */
    ST_OPEN,          /* 101 checked: frames both ways */
    ST_CLOSING        /* close frame sent, waiting for the server's and EOF */
};

typedef struct conn {
    int              fd;
    uint8_t          state;
    uint8_t          epollout;    /* EPOLLOUT currently requested */
    uint8_t          hello;       /* the server's hello arrived */
    uint8_t          close_rcvd;  /* the server's close frame arrived */
    uint8_t          frag_op;     /* opcode of a fragmented message, or 0 */
    uint8_t          plain;       /* no subprotocol offered (not famcall) */
    uint32_t         user;        /* index into the users table */
    uint32_t         inlen, outlen, msglen;
    unsigned char   *in;          /* bytes read but not yet parsed */
    unsigned char   *out;         /* bytes not yet written */
    unsigned char   *msg;         /* a fragmented message being assembled */
    char             accept[29];  /* the Sec-WebSocket-Accept we expect */
} conn_t;

/* what a mode does with the socket's life events (wsload.c) */
typedef struct {
    void (*text)(conn_t *c, const unsigned char *p, size_t n);
    void (*gone)(conn_t *c);      /* the connection is closed, for any reason */
} handlers_t;


/* ---- wsconn.c ---- */

extern int          ws_epfd;
extern handlers_t   ws_handlers;
/* when the kernel queued the bytes of the frame being handled on its
 * socket (SO_TIMESTAMPNS as CLOCK_MONOTONIC ns; for a read that held
 * several frames, the last one's), or 0 if unknown */
extern uint64_t     ws_rx_ns;

/* start a non-blocking connect from src to dst:port (host order)
 * with the handshake queued behind it; -1 (errno) if the socket fails.
 * token NULL: a plain WebSocket, no subprotocol offered nor accepted (the
 * PeerJS server bench/calls measures beside famcall) */
int  ws_open(conn_t *c, uint32_t src, uint32_t dst, uint16_t port,
    const char *path, const char *token);
/* epoll reported events on c */
void ws_event(conn_t *c, uint32_t events);
/* one masked text frame */
int  ws_send_text(conn_t *c, const char *p, size_t n);
/* fast random bits for masks and client_ids (xorshift64*, seeded once from
 * RAND_bytes): a loopback load generator needs them different, not secret,
 * and RAND_bytes twice per message was a tenth of wsload's CPU */
uint64_t ws_random(void);
/* start the close handshake (code 1000) */
void ws_close(conn_t *c);
/* close the socket now and forget its buffers */
void ws_drop(conn_t *c);


/* ---- wsstats.c ---- */

/* log-linear latency histogram in microseconds: exact below 64 us, then
 * 32 buckets per power of two (at most ~3% too high), up to ~19 hours */
#define HIST_SUB      32
#define HIST_BUCKETS  (64 + (36 - 6 + 1) * HIST_SUB)

typedef struct {
    uint64_t  n[HIST_BUCKETS];
    uint64_t  count;
    uint64_t  max;                /* exact, us */
} hist_t;

void     hist_add(hist_t *h, uint64_t us);
uint64_t hist_pct(const hist_t *h, double pct);    /* us; 0 when empty */

typedef struct {
    /* connections */
    uint64_t  wanted, connected, connect_failed, refused, bad_handshake,
              dropped, server_closed, close_1000, close_1001, close_4000,
              close_4001, close_other, closed_clean, close_timeout,
              protocol_errors, pings, presence, events_other, hello_mismatch;
    /* chat */
    uint64_t  sent, acked, acked_window, errors, delivered, delivered_window, foreign,
              echoed, skipped, not_acked, not_delivered,
              stamped;            /* deliveries with a kernel receive time */
    /* calls (bench/calls/callload): calls set up, refused or broken off,
     * ended; call:ringing heard; setups (invite -> accept -> end) done, in
     * all and while the setups were being offered; relays delivered twice */
    uint64_t  calls_ready, calls_failed, calls_ended, ringing, setups,
              setups_window, duplicated,
              refused_done;       /* refused with an error, done all the same */
    /* maxima over processes */
    uint64_t  connect_ms, send_ms, behind_max_us;
    uint64_t  cpu_ms;             /* this generator's own CPU time, summed */
    uint64_t  warmup_ms;          /* sends this early left out of lat, ack */
    /* per second of sending (by send time): deliveries, their summed and
     * highest latency, and how many took longer than the target, to see
     * when a tail happened and which seconds met the target */
#define TL_SECONDS  600
#define TL_TARGET_US  25000     /* DESIGN.md's chat target: p99 under 25 ms */
    uint64_t  tl_target_us;       /* another target (0: TL_TARGET_US) */
    uint64_t  tl_n[TL_SECONDS], tl_sum_us[TL_SECONDS], tl_max_us[TL_SECONDS],
              tl_over[TL_SECONDS];
    hist_t    lat;                /* send -> message:new on the peer */
    hist_t    lat_sock;           /* the same, to the kernel's receive
                                   * timestamp: without this process's own
                                   * wait for the CPU before it read */
    hist_t    ack;                /* send -> ack (committed) */
    hist_t    setup;              /* calls: invite -> the caller hears accept */
    hist_t    cycle;              /* calls: invite -> both heard the end */
} stats_t;

extern stats_t  st;

void timeline_add(stats_t *s, uint64_t second, uint64_t us);

/* the summary as key=value lines on f */
void stats_print(const stats_t *s, const char *mode, FILE *f);
/* add the summary files up (counters summed, maxima kept, histograms
 * merged) and print one summary; returns 0, or 1 if a file is unreadable */
int  stats_merge(int n, char **files);


/* ---- wsloop.c ---- */

/* set by SIGTERM or SIGINT (stop) and SIGUSR1 (go), read as events */
extern int  ws_stop_sig, ws_go_sig;

/* ws_epfd, with the signals above as its events; dies if it cannot */
void ws_loop_init(void);
/* serve events until done() holds, the deadline (0: none) passes, or (when
 * stoppable) a stop signal came; tick() runs before every wait and returns
 * the ns until it wants to run again (-1: only when events come) */
void ws_run(int (*done)(void), int64_t (*tick)(uint64_t), uint64_t deadline,
    int stoppable);


/* ---- wsload.c ---- */

uint64_t now_ns(void);
void     die(const char *fmt, ...);

#endif
