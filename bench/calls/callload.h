/*
 * callload: what its files share. callload.c: options, sockets, the event
 * loop, frames, main; callcalls.c: calls set up and ended, and the setup
 * mode; callrelay.c: the measured relays.
 */

#ifndef CALLLOAD_H
#define CALLLOAD_H

#include <stdint.h>

#include "../ws/wsload.h"


#define ID_LEN  36

enum { M_RELAY, M_PEERJS, M_SETUP };

/* a pair's call, as its two sides have heard of it */
enum { C_IDLE, C_INVITED, C_UP, C_ENDING, C_FAILED };
enum {
    G_INVITE_ACK = 1,       /* the caller's invite acked "ringing" */
    G_RANG = 2,             /* the callee heard call:invite, accepted */
    G_ACCEPT_ACK = 4,       /* the callee's accept acked "accepted" */
    G_ACCEPTED = 8,         /* the caller heard call:accept */
    G_END_ACK = 16,         /* the caller's end acked */
    G_ENDED = 32            /* the callee heard call:end */
};
#define G_UP    (G_INVITE_ACK | G_RANG | G_ACCEPT_ACK | G_ACCEPTED)
#define G_DONE  (G_UP | G_END_ACK | G_ENDED)

typedef struct {
    char      a[ID_LEN + 1], sa[ID_LEN + 1], b[ID_LEN + 1], sb[ID_LEN + 1];
    char      call[ID_LEN + 1];     /* "" until one side heard its id */
    uint8_t   state, got;
    uint8_t   tries;                /* call:end sent again after a refusal */
    uint64_t  t_invite;
    uint32_t  next_idle;            /* the idle FIFO (setup), or -1 */
} pair_t;


/* ---- callload.c ---- */

extern const char  *o_pairs, *o_secret;
extern double       o_seconds, o_rate, o_setup_rate, o_drain, o_warmup;
extern long         o_inflight;
extern int          mode;

extern pair_t      *pairs;
extern conn_t      *conns;        /* conns[2p] is pair p's a, [2p+1] its b */
extern uint32_t     npairs, nconns;
/* the measured part: relays or setups offered (nsent of nmsgs), when it
 * began and ends, and from when latencies count */
extern uint64_t     nmsgs, nsent, t_send0, t_send_end, t_measure;

/* a complaint on stderr, the first five of its kind (n: how many so far) */
void complain(uint64_t n, const char *fmt, ...);
/* the server's greeting (famcall's hello, PeerJS's OPEN) settles a socket */
void greeted(conn_t *c, const char *user_id);


/* ---- callcalls.c ---- */

extern uint32_t     next_call, calls_open;
extern uint64_t     t_calls0;

/* one event of ours on c (a dropped socket counts as skipped) */
void send_event(conn_t *c, const char *fmt, ...);
/* an ack (ok) or error answering a call step ("i7", "a7", "e7"): 1 if it
 * was one */
int call_answer(conn_t *c, const char **f, int ok);
/* a call:* event: 1 if it was one */
int call_event(conn_t *c, const char **f);
/* every pair's call set up (tick_invite) or ended (tick_hangup) */
int calls_settled(void);
int64_t tick_invite(uint64_t now);
int64_t tick_hangup(uint64_t now);
void setup_run(void);


/* ---- callrelay.c ---- */

/* an ack: 1 if it was a relay's, counted */
int relay_acked(const char **f);
/* an error: 1 if it refused a relay of ours */
int relay_refused(const char **f);
/* a candidate on side c; from_peer: it came from the pair's other side,
 * on its call */
void relay_delivered(conn_t *c, const char *cand, int from_peer);
void relay_run(void);

#endif
