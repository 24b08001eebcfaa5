/*
 * callload: the measured relays (webrtc:ice through famcall, CANDIDATE
 * through PeerJS) at a fixed offered rate, and what came back of each: its
 * ack or error, its one delivery to the other side of its pair.
 */

#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "../ws/wsload.h"
#include "calljson.h"
#include "callload.h"


/* per relay its send time, and what came back: R_* bits */
#define R_ACKED      1
#define R_DELIVERED  2
#define R_REFUSED    4
static uint64_t  *sent_at, answered;
static uint8_t   *seen;

static int64_t relay_answer(const char **f, int bit);
static void relay_tally(void);


static int
sent_all(void)
{
    return nsent == nmsgs;
}


static int
drained(void)
{
    return (mode == M_PEERJS || answered == st.sent)
           && st.delivered + st.foreign >= st.sent - st.errors;
}


/* relay k is due at t0 + k/rate, from pair k % npairs, the sending side
 * alternating from pair to pair and from round to round (as wsload's
 * chat: with two nodes, both send all the time) */
static int64_t
tick_relay(uint64_t now)
{
    uint64_t   due, k, sched, t;
    uint32_t   i;
    char       buf[768];
    conn_t    *c;
    pair_t    *p;
    int        n, side;

    due = now >= t_send_end ? nmsgs
          : (uint64_t) ((double) (now - t_send0) * o_rate / 1e9) + 1;
    if (due > nmsgs) {
        due = nmsgs;
    }

    for (; nsent < due; nsent++) {
        k = nsent;
        i = (uint32_t) (k % npairs);
        side = (int) ((i + k / npairs) & 1);
        c = &conns[2 * i + side];
        p = &pairs[i];

        sched = t_send0 + (uint64_t) ((double) k * 1e9 / o_rate);
        if (now > sched && (now - sched) / 1000 > st.behind_max_us) {
            st.behind_max_us = (now - sched) / 1000;
        }
        if (c->state != ST_OPEN || !c->hello
            || (mode == M_RELAY && p->state != C_UP))
        {
            st.skipped++;
            continue;
        }

        /* a host candidate as browsers write them; the foundation is the
         * send time, the priority the relay's number */
        t = now_ns();
        if (mode == M_RELAY) {
            n = snprintf(buf, sizeof(buf),
                "{\"type\":\"webrtc:ice\",\"ref\":\"%llu\",\"data\":"
                "{\"call_id\":\"%s\",\"candidate\":\"candidate:%llu 1 udp "
                "%llu 192.0.2.%u %u typ host generation 0 ufrag wsld "
                "network-id 1\",\"sdp_mid\":\"0\",\"sdp_mline_index\":0}}",
                (unsigned long long) k, p->call, (unsigned long long) t,
                (unsigned long long) k, 1 + i % 250, 50000 + side);
        } else {
            n = snprintf(buf, sizeof(buf),
                "{\"type\":\"CANDIDATE\",\"dst\":\"%s\",\"payload\":"
                "{\"candidate\":{\"candidate\":\"candidate:%llu 1 udp "
                "%llu 192.0.2.%u %u typ host generation 0 ufrag wsld "
                "network-id 1\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,"
                "\"usernameFragment\":\"wsld\"},\"type\":\"media\","
                "\"connectionId\":\"mc_%u\"}}",
                side ? p->a : p->b, (unsigned long long) t,
                (unsigned long long) k, 1 + i % 250, 50000 + side, i);
        }
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


/* a relay's ack (R_ACKED) or error (R_REFUSED): its number, or -1 if it
 * is not an answer to one of ours not yet answered */
static int64_t
relay_answer(const char **f, int bit)
{
    char      *end;
    uint64_t   k;

    if (f[J_REF] == NULL || f[J_REF][0] < '0' || f[J_REF][0] > '9') {
        return -1;
    }
    k = strtoull(f[J_REF], &end, 10);
    if (*end || k >= nsent || sent_at[k] == 0
        || (seen[k] & (R_ACKED | R_REFUSED)))
    {
        return -1;
    }
    seen[k] |= (uint8_t) bit;
    answered++;
    return (int64_t) k;
}


int
relay_acked(const char **f)
{
    int64_t   k = relay_answer(f, R_ACKED);
    uint64_t  now = now_ns();

    if (k < 0) {
        return 0;
    }
    st.acked++;
    if (now <= t_send_end) {
        st.acked_window++;
    }
    if (sent_at[k] >= t_measure) {
        hist_add(&st.ack, (now - sent_at[k]) / 1000);
    }
    return 1;
}


int
relay_refused(const char **f)
{
    return relay_answer(f, R_REFUSED) >= 0;
}


/* a relayed candidate on side c: from its pair's other side, on its call,
 * sent by us and not delivered before */
void
relay_delivered(conn_t *c, const char *cand, int from_peer)
{
    uint64_t   now = now_ns(), ts, k;
    char      *end;
    uint32_t   i = c->user / 2;
    int        side = (int) (c->user & 1);

    if (!from_peer || cand == NULL
        || strncmp(cand, "candidate:", 10) != 0)
    {
        complain(st.foreign++, "a candidate from elsewhere on pair %u", i);
        return;
    }
    ts = strtoull(cand + 10, &end, 10);
    k = strncmp(end, " 1 udp ", 7) == 0 ? strtoull(end + 7, NULL, 10)
                                         : UINT64_MAX;
    if (k >= nsent || sent_at[k] != ts || k % npairs != i
        || (int) ((i + k / npairs) & 1) == side)
    {
        complain(st.foreign++, "candidate %llu on pair %u side %d: not ours",
                 (unsigned long long) k, i, side);
        return;
    }
    if (seen[k] & R_DELIVERED) {
        st.duplicated++;
        return;
    }
    seen[k] |= R_DELIVERED;

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
}


/* relay and peerjs: the measured relays, then the drain */
void
relay_run(void)
{
    nmsgs = (uint64_t) (o_rate * o_seconds + 0.5);
    sent_at = calloc(nmsgs + 1, sizeof(*sent_at));
    seen = calloc(nmsgs + 1, 1);
    if (sent_at == NULL || seen == NULL) {
        die("out of memory");
    }
    t_send0 = now_ns();
    t_send_end = t_send0 + (uint64_t) (o_seconds * 1e9);
    t_measure = t_send0 + (uint64_t) (o_warmup * 1e9);
    st.warmup_ms = (uint64_t) (o_warmup * 1000);
    ws_run(sent_all, tick_relay, 0, 1);
    st.send_ms = (now_ns() - t_send0) / 1000000;
    ws_run(drained, NULL, now_ns() + (uint64_t) (o_drain * 1e9), 1);
    relay_tally();
}


/*
 * What became of each relay sent: famcall answers every one, so one not
 * answered after the drain is still queued somewhere (not_acked: an
 * overloaded server), one acked but not delivered is lost, or late behind
 * such a queue (not_delivered: the script tells which by whether the run
 * was overloaded), and one refused but delivered was relayed although its
 * sender was told it was not (refused_done). PeerJS answers none: one not
 * delivered after the drain is not_delivered.
 */
static void
relay_tally(void)
{
    uint64_t  k;
    uint8_t   b;

    for (k = 0; k < nsent; k++) {
        if (sent_at[k] == 0) {
            continue;                   /* not sent: counted as skipped */
        }
        b = seen[k];
        if (mode == M_PEERJS) {
            st.not_delivered += !(b & R_DELIVERED);
        } else if (!(b & (R_ACKED | R_REFUSED))) {
            st.not_acked++;
        } else if ((b & R_ACKED) && !(b & R_DELIVERED)) {
            complain(st.not_delivered++, "relay %llu acked, never delivered",
                     (unsigned long long) k);
        } else if ((b & R_REFUSED) && (b & R_DELIVERED)) {
            complain(st.refused_done++, "relay %llu refused, yet delivered",
                     (unsigned long long) k);
        }
    }
}
