/*
 * The event loop wsload and callload both run: their sockets
 * (wsconn.c) and their signals on one epoll set.  SIGUSR1 says go (a
 * generator that waits for the others before it sends), SIGTERM and
 * SIGINT stop; they arrive as events, so a signal never interrupts a
 * socket's write halfway.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/signalfd.h>

#include "wsload.h"


int         ws_stop_sig, ws_go_sig;

static int  ws_sigfd = -1;


void
ws_loop_init(void)
{
    sigset_t            mask;
    struct epoll_event  ev;

    ws_epfd = epoll_create1(EPOLL_CLOEXEC);

    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    ws_sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    if (ws_epfd < 0 || ws_sigfd < 0) {
        die("setup: %s", strerror(errno));
    }

    ev.events = EPOLLIN;
    ev.data.ptr = NULL;             /* NULL: the signals, not a socket */
    if (epoll_ctl(ws_epfd, EPOLL_CTL_ADD, ws_sigfd, &ev) < 0) {
        die("setup: %s", strerror(errno));
    }
}


static void
ws_on_signal(void)
{
    struct signalfd_siginfo  si;

    while (read(ws_sigfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGUSR1) {
            ws_go_sig = 1;
        } else {
            ws_stop_sig = 1;
        }
    }
}


void
ws_run(int (*done)(void), int64_t (*tick)(uint64_t), uint64_t deadline,
    int stoppable)
{
    struct epoll_event  ev[512];
    uint64_t            now;
    int64_t             wait;
    int                 n, i, ms;

    for (;;) {
        now = now_ns();
        wait = tick ? tick(now) : -1;
        if (done() || (stoppable && ws_stop_sig)
            || (deadline && now >= deadline))
        {
            return;
        }
        if (deadline && (wait < 0 || (uint64_t) wait > deadline - now)) {
            wait = (int64_t) (deadline - now);
        }
        ms = wait < 0 ? -1 : (int) ((wait + 999999) / 1000000);

        n = epoll_wait(ws_epfd, ev, 512, ms);
        if (n < 0 && errno != EINTR) {
            die("epoll_wait: %s", strerror(errno));
        }
        for (i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL) {
                ws_on_signal();
            } else {
                ws_event(ev[i].data.ptr, ev[i].events);
            }
        }
    }
}
