/*
 * famcall: messages between the workers of one node (ngx_famcall_ipc.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/un.h>

#include "ngx_famcall_ipc.h"


/* datagrams read per event before the loop serves others (level-triggered) */
#define NGX_FAMCALL_IPC_READS  64


typedef struct {
    ngx_queue_t                  queue;
    ngx_pid_t                    pid;
    size_t                       len;
    u_char                       data[1];     /* type byte, payload */
} ngx_famcall_ipc_held_t;


static void ngx_famcall_ipc_read(ngx_event_t *rev);
static void ngx_famcall_ipc_retry(ngx_event_t *ev);
static ngx_int_t ngx_famcall_ipc_sendto(ngx_pid_t pid, const u_char *type,
    const u_char *data, size_t len);
static socklen_t ngx_famcall_ipc_addr(ngx_pid_t pid, struct sockaddr_un *sa);


static ngx_connection_t  *ngx_famcall_ipc_conn;
static ngx_queue_t        ngx_famcall_ipc_held;
static ngx_event_t        ngx_famcall_ipc_retry_ev;
static u_char             ngx_famcall_ipc_buf[1 + NGX_FAMCALL_IPC_MAX];

static ngx_famcall_ipc_handler_pt
    ngx_famcall_ipc_handlers[NGX_FAMCALL_IPC_NTYPES];


ngx_int_t
ngx_famcall_ipc_init(ngx_cycle_t *cycle)
{
    int                  fd, on;
    socklen_t            salen;
    ngx_connection_t    *c;
    struct sockaddr_un   sa;

    ngx_queue_init(&ngx_famcall_ipc_held);

    ngx_famcall_ipc_retry_ev.handler = ngx_famcall_ipc_retry;
    ngx_famcall_ipc_retry_ev.log = cycle->log;
    ngx_famcall_ipc_retry_ev.cancelable = 1;

    on = 1;
    fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "famcall: socket(AF_UNIX) for the workers' messages "
                      "failed");
        return NGX_ERROR;
    }

    salen = ngx_famcall_ipc_addr(ngx_pid, &sa);

    if (bind(fd, (struct sockaddr *) &sa, salen) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "famcall: bind() of the workers' message address "
                      "\"@famcall.%P\" failed", ngx_pid);
        (void) close(fd);
        return NGX_ERROR;
    }

    /* the kernel tells who sent each datagram: only our own user is heard */
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(int)) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "famcall: setsockopt(SO_PASSCRED) failed");
        (void) close(fd);
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        (void) close(fd);
        return NGX_ERROR;
    }

    c->read->handler = ngx_famcall_ipc_read;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    ngx_famcall_ipc_conn = c;

    return NGX_OK;
}


void
ngx_famcall_ipc_exit(void)
{
    ngx_queue_t             *q;
    ngx_famcall_ipc_held_t  *h;

    if (ngx_famcall_ipc_conn == NULL) {
        return;
    }

    ngx_close_connection(ngx_famcall_ipc_conn);
    ngx_famcall_ipc_conn = NULL;

    if (ngx_famcall_ipc_retry_ev.timer_set) {
        ngx_del_timer(&ngx_famcall_ipc_retry_ev);
    }

    while (!ngx_queue_empty(&ngx_famcall_ipc_held)) {
        q = ngx_queue_head(&ngx_famcall_ipc_held);
        ngx_queue_remove(q);
        h = ngx_queue_data(q, ngx_famcall_ipc_held_t, queue);
        ngx_free(h);
    }
}


void
ngx_famcall_ipc_on(ngx_uint_t type, ngx_famcall_ipc_handler_pt handler)
{
    if (type < NGX_FAMCALL_IPC_NTYPES) {
        ngx_famcall_ipc_handlers[type] = handler;
    }
}


ngx_int_t
ngx_famcall_ipc_send(ngx_pid_t pid, ngx_uint_t type, const u_char *data,
    size_t len)
{
    u_char                   t;
    ngx_int_t                rc;
    ngx_famcall_ipc_held_t  *h;

    if (ngx_famcall_ipc_conn == NULL || len > NGX_FAMCALL_IPC_MAX) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "famcall: a worker message of %uz bytes not sent", len);
        return NGX_ERROR;
    }

    t = (u_char) type;

    /* behind anything already waiting, so a receiver sees them in order */
    if (ngx_queue_empty(&ngx_famcall_ipc_held)) {
        rc = ngx_famcall_ipc_sendto(pid, &t, data, len);
        if (rc != NGX_AGAIN) {
            return rc;
        }
    }

    h = ngx_alloc(sizeof(ngx_famcall_ipc_held_t) + len, ngx_cycle->log);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->pid = pid;
    h->len = 1 + len;
    h->data[0] = t;
    ngx_memcpy(&h->data[1], data, len);
    ngx_queue_insert_tail(&ngx_famcall_ipc_held, &h->queue);

    if (!ngx_famcall_ipc_retry_ev.timer_set) {
        ngx_add_timer(&ngx_famcall_ipc_retry_ev, 1);
    }

    return NGX_OK;
}


static void
ngx_famcall_ipc_retry(ngx_event_t *ev)
{
    ngx_int_t                rc;
    ngx_queue_t             *q;
    ngx_famcall_ipc_held_t  *h;

    while (!ngx_queue_empty(&ngx_famcall_ipc_held)) {
        q = ngx_queue_head(&ngx_famcall_ipc_held);
        h = ngx_queue_data(q, ngx_famcall_ipc_held_t, queue);

        rc = ngx_famcall_ipc_sendto(h->pid, h->data, h->data + 1, h->len - 1);
        if (rc == NGX_AGAIN) {
            ngx_add_timer(ev, 1);
            return;
        }

        /* sent, or its receiver is gone: either way done with it */
        ngx_queue_remove(q);
        ngx_free(h);
    }
}


/* NGX_OK, NGX_AGAIN (the receiver's queue is full), NGX_DECLINED, NGX_ERROR */
static ngx_int_t
ngx_famcall_ipc_sendto(ngx_pid_t pid, const u_char *type, const u_char *data,
    size_t len)
{
    ssize_t              n;
    ngx_err_t            err;
    struct iovec         iov[2];
    struct msghdr        msg;
    struct sockaddr_un   sa;

    iov[0].iov_base = (void *) type;
    iov[0].iov_len = 1;
    iov[1].iov_base = (void *) data;
    iov[1].iov_len = len;

    ngx_memzero(&msg, sizeof(struct msghdr));
    msg.msg_name = &sa;
    msg.msg_namelen = ngx_famcall_ipc_addr(pid, &sa);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;

    for ( ;; ) {
        n = sendmsg(ngx_famcall_ipc_conn->fd, &msg, MSG_DONTWAIT|MSG_NOSIGNAL);
        if (n != -1) {
            return NGX_OK;
        }

        err = ngx_socket_errno;

        switch (err) {

        case NGX_EINTR:
            continue;

        case NGX_EAGAIN:
        case ENOBUFS:
            return NGX_AGAIN;

        case NGX_ECONNREFUSED:
        case NGX_ENOENT:
            return NGX_DECLINED;

        default:
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, err,
                          "famcall: sendmsg() to worker %P failed", pid);
            return NGX_ERROR;
        }
    }
}


static void
ngx_famcall_ipc_read(ngx_event_t *rev)
{
    ssize_t                      n;
    ngx_uint_t                   i, type;
    ngx_err_t                    err;
    struct iovec                 iov;
    struct msghdr                msg;
    struct cmsghdr              *cm;
    struct ucred                 cred;
    ngx_connection_t            *c = rev->data;
    ngx_famcall_ipc_handler_pt   h;
    union {
        struct cmsghdr           cm;
        u_char                   buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;

    for (i = 0; i < NGX_FAMCALL_IPC_READS; i++) {
        iov.iov_base = ngx_famcall_ipc_buf;
        iov.iov_len = sizeof(ngx_famcall_ipc_buf);

        ngx_memzero(&msg, sizeof(struct msghdr));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = &control;
        msg.msg_controllen = sizeof(control);

        n = recvmsg(c->fd, &msg, 0);

        if (n == -1) {
            err = ngx_socket_errno;
            if (err == NGX_EINTR) {
                continue;
            }
            if (err != NGX_EAGAIN) {
                ngx_log_error(NGX_LOG_ALERT, rev->log, err,
                              "famcall: recvmsg() of a worker message failed");
            }
            return;
        }

        cred.uid = (uid_t) -1;
        for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET
                && cm->cmsg_type == SCM_CREDENTIALS
                && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred)))
            {
                ngx_memcpy(&cred, CMSG_DATA(cm), sizeof(struct ucred));
            }
        }

        if (cred.uid != geteuid()) {
            ngx_log_error(NGX_LOG_WARN, rev->log, 0,
                          "famcall: a worker message from uid %d ignored",
                          (int) cred.uid);
            continue;
        }

        if (n < 1 || (msg.msg_flags & MSG_TRUNC)) {
            continue;
        }

        type = ngx_famcall_ipc_buf[0];
        h = (type < NGX_FAMCALL_IPC_NTYPES) ? ngx_famcall_ipc_handlers[type]
                                            : NULL;
        if (h != NULL) {
            h(ngx_famcall_ipc_buf + 1, n - 1);
        }

        if (ngx_famcall_ipc_conn == NULL) {
            return;     /* a handler ended the worker's messages */
        }
    }
}


static socklen_t
ngx_famcall_ipc_addr(ngx_pid_t pid, struct sockaddr_un *sa)
{
    u_char  *p;

    ngx_memzero(sa, sizeof(struct sockaddr_un));
    sa->sun_family = AF_UNIX;

    /* sun_path[0] == '\0': the abstract namespace */
    p = ngx_snprintf((u_char *) sa->sun_path + 1,
                     sizeof(sa->sun_path) - 1, "famcall.%P", pid);

    return offsetof(struct sockaddr_un, sun_path)
           + (p - (u_char *) sa->sun_path);
}
