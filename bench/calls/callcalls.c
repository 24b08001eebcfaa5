/*
 * callload: calls set up and ended the way clients do (invite, accept when
 * it rings, end when accepted), for the relay's calls and as the setup
 * mode's measured work. The server's answers arrive on either side in any
 * order (an invite's ack, the callee's ring, the caller's call:accept), so
 * a pair keeps what it has heard as bits and moves on once it has all of
 * a step's.
 */

#define _GNU_SOURCE

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../ws/wsload.h"
#include "calljson.h"
#include "callload.h"


/* calls being set up or ended outside the measured part */
uint32_t         next_call, calls_open;
uint64_t         t_calls0;

/* setup: idle pairs, first in first out, and the pairs in a setup */
static uint32_t  idle_head = UINT32_MAX, idle_tail = UINT32_MAX, in_cycle;

/*
 * A call:end refused for want of room (unavailable, rate_limited: the
 * server is still busy with a backlog of relays) is sent again, as a client
 * would, END_RETRY_NS later, up to END_TRIES times; the pairs waiting are a
 * FIFO (one delay for all keeps it in order of due time).
 */
#define END_RETRY_NS  250000000ull
#define END_TRIES     60

static uint32_t  *retry_pair, retry_head, retry_n;
static uint64_t  *retry_due;

static void call_end_send(uint32_t i);


void
send_event(conn_t *c, const char *fmt, ...)
{
    va_list  ap;
    char     buf[1024];
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= sizeof(buf)) {
        die("an event too long for its buffer");
    }
    if (ws_send_text(c, buf, (size_t) n) < 0) {
        st.skipped++;
    }
}


static void
call_invite(uint32_t i, uint64_t now)
{
    pair_t  *p = &pairs[i];

    p->state = C_INVITED;
    p->got = 0;
    p->call[0] = '\0';
    p->t_invite = now;
    send_event(&conns[2 * i],
               "{\"type\":\"call:invite\",\"ref\":\"i%u\",\"data\":"
               "{\"to_user_id\":\"%s\",\"media\":\"audio\"}}", i, p->b);
}


static void
call_failed(uint32_t i, const char *what, const char *detail)
{
    pair_t  *p = &pairs[i];

    complain(st.calls_failed++, "pair %u: %s%s%s", i, what,
             detail ? ": " : "", detail ? detail : "");
    if (p->state == C_INVITED || p->state == C_ENDING) {
        calls_open--;               /* a step we waited for is over */
    }
    if (mode == M_SETUP && p->state != C_IDLE && p->state != C_FAILED) {
        in_cycle--;
    }
    p->state = C_FAILED;
}


static void
idle_push(uint32_t i)
{
    pairs[i].next_idle = UINT32_MAX;
    if (idle_tail == UINT32_MAX) {
        idle_head = i;
    } else {
        pairs[idle_tail].next_idle = i;
    }
    idle_tail = i;
}


static uint32_t
idle_pop(void)
{
    uint32_t  i = idle_head;

    if (i != UINT32_MAX) {
        idle_head = pairs[i].next_idle;
        if (idle_head == UINT32_MAX) {
            idle_tail = UINT32_MAX;
        }
    }
    return i;
}


/* the call's id as one side heard it: the first sets it, the others must
 * agree */
static int
same_call(pair_t *p, const char *id)
{
    if (id == NULL || strlen(id) != ID_LEN) {
        return 0;
    }
    if (p->call[0] == '\0') {
        memcpy(p->call, id, ID_LEN + 1);
        return 1;
    }
    return strcmp(p->call, id) == 0;
}


static void
call_end(uint32_t i)
{
    pairs[i].state = C_ENDING;
    pairs[i].tries = 0;
    call_end_send(i);
}


static void
call_end_send(uint32_t i)
{
    send_event(&conns[2 * i],
               "{\"type\":\"call:end\",\"ref\":\"e%u\",\"data\":"
               "{\"call_id\":\"%s\",\"reason\":\"hangup\"}}", i,
               pairs[i].call);
}


static void
call_progress(uint32_t i, int bit)
{
    pair_t    *p = &pairs[i];
    uint64_t   now = now_ns();

    p->got |= (uint8_t) bit;
    if (p->state == C_INVITED && (p->got & G_UP) == G_UP) {
        p->state = C_UP;
        st.calls_ready++;
        if (mode == M_SETUP) {
            call_end(i);
        } else {
            calls_open--;
        }

    } else if (p->state == C_ENDING && (p->got & G_DONE) == G_DONE) {
        p->state = C_IDLE;
        st.calls_ended++;
        calls_open--;
        if (mode == M_SETUP) {
            in_cycle--;
            if (p->t_invite >= t_measure) {
                hist_add(&st.cycle, (now - p->t_invite) / 1000);
            }
            st.setups++;
            if (now <= t_send_end) {
                st.setups_window++;
            }
            idle_push(i);
        }
    }
}


/* a refused call:end: 1 if it will be sent again, or if the refusal was
 * wrong (an earlier try that was refused ended the call after all) */
static int
end_refused(uint32_t i, const char *code)
{
    pair_t  *p = &pairs[i];

    if (code != NULL && p->tries < END_TRIES
        && (strcmp(code, "unavailable") == 0
            || strcmp(code, "rate_limited") == 0))
    {
        if (retry_pair == NULL) {
            retry_pair = calloc(npairs, sizeof(*retry_pair));
            retry_due = calloc(npairs, sizeof(*retry_due));
            if (retry_pair == NULL || retry_due == NULL) {
                die("out of memory");
            }
        }
        p->tries++;
        retry_pair[(retry_head + retry_n) % npairs] = i;
        retry_due[(retry_head + retry_n) % npairs] = now_ns() + END_RETRY_NS;
        retry_n++;
        return 1;
    }
    if (code != NULL && p->tries > 0 && strcmp(code, "wrong_state") == 0) {
        complain(st.refused_done++, "pair %u: a call:end refused for want "
                 "of room ended the call all the same", i);
        call_progress(i, G_END_ACK);
        return 1;
    }
    return 0;
}


/* the refused ends due by now sent again; ns until the next is due, or -1 */
static int64_t
end_retries(uint64_t now)
{
    uint32_t  i;

    while (retry_n && retry_due[retry_head] <= now) {
        i = retry_pair[retry_head];
        retry_head = (retry_head + 1) % npairs;
        retry_n--;
        if (pairs[i].state == C_ENDING && !(pairs[i].got & G_END_ACK)) {
            call_end_send(i);
        }
    }
    return retry_n ? (int64_t) (retry_due[retry_head] - now) : -1;
}


static int64_t
sooner(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}


/* an ack or error whose ref names a call step ("i7", "a7", "e7") */
int
call_answer(conn_t *c, const char **f, int ok)
{
    const char  *ref = f[J_REF];
    char        *end;
    unsigned long i;
    pair_t      *p;
    int          caller = !(c->user & 1);

    if (ref == NULL || (ref[0] != 'i' && ref[0] != 'a' && ref[0] != 'e')) {
        return 0;
    }
    i = strtoul(ref + 1, &end, 10);
    if (*end || i != c->user / 2) {
        return 0;
    }
    p = &pairs[i];
    if (!ok) {
        if (ref[0] == 'e' && caller && p->state == C_ENDING
            && !(p->got & G_END_ACK) && end_refused((uint32_t) i, f[J_CODE]))
        {
            return 1;
        }
        call_failed((uint32_t) i, ref[0] == 'i' ? "invite refused"
                    : ref[0] == 'a' ? "accept refused" : "end refused",
                    f[J_CODE]);
        return 1;
    }

    switch (ref[0]) {
    case 'i':
        if (!caller || p->state != C_INVITED || (p->got & G_INVITE_ACK)) {
            return 0;
        }
        if (f[J_STATUS] == NULL || strcmp(f[J_STATUS], "ringing") != 0) {
            call_failed((uint32_t) i, "invite acked", f[J_STATUS]);
        } else if (!same_call(p, f[J_CALL_ID])) {
            call_failed((uint32_t) i, "invite acked another call", NULL);
        } else {
            call_progress((uint32_t) i, G_INVITE_ACK);
        }
        return 1;
    case 'a':
        if (caller || p->state != C_INVITED || (p->got & G_ACCEPT_ACK)) {
            return 0;
        }
        if (f[J_STATUS] == NULL || strcmp(f[J_STATUS], "accepted") != 0
            || !same_call(p, f[J_CALL_ID]))
        {
            call_failed((uint32_t) i, "accept acked", f[J_STATUS]);
        } else {
            call_progress((uint32_t) i, G_ACCEPT_ACK);
        }
        return 1;
    default:
        if (!caller || p->state != C_ENDING || (p->got & G_END_ACK)) {
            return 0;
        }
        call_progress((uint32_t) i, G_END_ACK);
        return 1;
    }
}


/* call:* events a side hears; 0 if it is not one */
int
call_event(conn_t *c, const char **f)
{
    const char  *type = f[J_TYPE];
    uint32_t     i = c->user / 2;
    pair_t      *p = &pairs[i];
    int          caller = !(c->user & 1);

    if (strncmp(type, "call:", 5) != 0) {
        return 0;
    }
    type += 5;

    if (strcmp(type, "ringing") == 0 && caller) {
        st.ringing++;               /* it may come after the ack, or later */

    } else if (strcmp(type, "invite") == 0 && !caller
               && p->state == C_INVITED && !(p->got & G_RANG)
               && f[J_FROM_ID] && strcmp(f[J_FROM_ID], p->a) == 0)
    {
        if (!same_call(p, f[J_CALL_ID])) {
            call_failed(i, "rang with another call", f[J_CALL_ID]);
            return 1;
        }
        p->got |= G_RANG;
        send_event(c, "{\"type\":\"call:accept\",\"ref\":\"a%u\",\"data\":"
                   "{\"call_id\":\"%s\"}}", i, p->call);

    } else if (strcmp(type, "accept") == 0 && caller && p->state == C_INVITED
               && !(p->got & G_ACCEPTED) && same_call(p, f[J_CALL_ID]))
    {
        if (p->t_invite >= t_measure) {
            hist_add(&st.setup, (now_ns() - p->t_invite) / 1000);
        }
        call_progress(i, G_ACCEPTED);

    } else if (strcmp(type, "end") == 0 && !caller && p->state == C_ENDING
               && !(p->got & G_ENDED) && same_call(p, f[J_CALL_ID]))
    {
        call_progress(i, G_ENDED);

    } else {
        /* anything else (a timeout, a busy, an end before we ended it)
         * breaks the pair's call */
        complain(st.foreign++, "pair %u, %s: call:%s unexpected", i,
                 caller ? "caller" : "callee", type);
        if (p->state != C_FAILED && p->state != C_IDLE) {
            call_failed(i, "unexpected event", type);
        }
    }
    return 1;
}


/* set up (or end) the call of every pair, --setup-rate a second, at most
 * --inflight at once */
int
calls_settled(void)
{
    return next_call == npairs && calls_open == 0;
}


static int64_t
tick_calls(uint64_t now, int end)
{
    uint64_t  allowed;

    allowed = (uint64_t) ((double) (now - t_calls0) * o_setup_rate / 1e9)
              + 1;
    while (next_call < npairs && next_call < allowed
           && calls_open < o_inflight)
    {
        if (end ? pairs[next_call].state == C_UP
                : pairs[next_call].state == C_IDLE)
        {
            calls_open++;
            if (end) {
                call_end(next_call);
            } else {
                call_invite(next_call, now);
            }
        }
        next_call++;
    }
    if (next_call == npairs || calls_open >= o_inflight) {
        return end_retries(now);
    }
    return sooner(end_retries(now), (int64_t) (t_calls0
                      + (uint64_t) (next_call * 1e9 / o_setup_rate))
                  - (int64_t) now);
}


int64_t
tick_invite(uint64_t now)
{
    return tick_calls(now, 0);
}


int64_t
tick_hangup(uint64_t now)
{
    return tick_calls(now, 1);
}


/* ---- setup ---- */

static int
offered_all(void)
{
    return nsent == nmsgs;
}


static int
setups_done(void)
{
    return in_cycle == 0;
}


static int64_t
tick_setup(uint64_t now)
{
    uint64_t   due;
    uint32_t   i;

    due = now >= t_send_end ? nmsgs
          : (uint64_t) ((double) (now - t_send0) * o_rate / 1e9) + 1;
    if (due > nmsgs) {
        due = nmsgs;
    }
    for (; nsent < due; nsent++) {
        i = idle_pop();
        if (i == UINT32_MAX) {
            st.skipped++;           /* offered, but every pair is busy */
            continue;
        }
        in_cycle++;
        calls_open++;
        st.sent++;
        call_invite(i, now);
    }
    if (nsent == nmsgs) {
        return end_retries(now);
    }
    return sooner(end_retries(now), (int64_t) (t_send0
                      + (uint64_t) ((double) nsent * 1e9 / o_rate))
                  - (int64_t) now);
}


/* setup: the measured setups, then the wait for the last ones */
void
setup_run(void)
{
    uint32_t  i;

    for (i = 0; i < npairs; i++) {
        idle_push(i);
    }
    nmsgs = (uint64_t) (o_rate * o_seconds + 0.5);
    t_send0 = now_ns();
    t_send_end = t_send0 + (uint64_t) (o_seconds * 1e9);
    t_measure = t_send0 + (uint64_t) (o_warmup * 1e9);
    st.warmup_ms = (uint64_t) (o_warmup * 1000);
    ws_run(offered_all, tick_setup, 0, 1);
    st.send_ms = (now_ns() - t_send0) / 1000000;
    ws_run(setups_done, end_retries,
           now_ns() + (uint64_t) (o_drain * 1e9), 1);
    /* setups offered that did not finish */
    st.not_delivered = st.sent - st.setups;
}
