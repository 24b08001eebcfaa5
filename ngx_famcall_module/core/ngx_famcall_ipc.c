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


typedef struct {
    ngx_famcall_ipc_handler_pt   handler;
    void                        *data;
} ngx_famcall_ipc_on_t;


struct ngx_famcall_ipc_s {
    ngx_connection_t            *conn;        /* NULL once closed */
    ngx_queue_t                  held;        /* waiting for a full queue */
    ngx_event_t                  retry;
    ngx_log_t                   *log;
    ngx_famcall_ipc_on_t         on[NGX_FAMCALL_IPC_NTYPES];
    time_t                       ignored_logged;
    ngx_uint_t                   ignored;     /* since the last log line */
    u_char                      *buf;         /* 1 + NGX_FAMCALL_IPC_MAX */
};


static void ngx_famcall_ipc_read(ngx_event_t *rev);
static void ngx_famcall_ipc_retry(ngx_event_t *ev);
static ngx_int_t ngx_famcall_ipc_sendto(ngx_famcall_ipc_t *ipc, ngx_pid_t pid,
    const u_char *type, const u_char *data, size_t len);
static ngx_uint_t ngx_famcall_ipc_ours(struct msghdr *msg, ngx_pid_t *pid,
    uid_t *uid);
static ngx_uint_t ngx_famcall_ipc_sibling(ngx_pid_t pid);
static void ngx_famcall_ipc_ignored(ngx_famcall_ipc_t *ipc, ngx_pid_t pid,
    uid_t uid);
static socklen_t ngx_famcall_ipc_addr(ngx_pid_t pid, struct sockaddr_un *sa);


ngx_famcall_ipc_t *
ngx_famcall_ipc_init(ngx_cycle_t *cycle)
{
    int                  fd, on;
    socklen_t            salen;
    ngx_connection_t    *c;
    ngx_famcall_ipc_t   *ipc;
    struct sockaddr_un   sa;

    ipc = ngx_pcalloc(cycle->pool, sizeof(ngx_famcall_ipc_t));
    if (ipc == NULL) {
        return NULL;
    }

    ipc->buf = ngx_palloc(cycle->pool, 1 + NGX_FAMCALL_IPC_MAX);
    if (ipc->buf == NULL) {
        return NULL;
    }

    ipc->log = cycle->log;
    ngx_queue_init(&ipc->held);

    ipc->retry.handler = ngx_famcall_ipc_retry;
    ipc->retry.data = ipc;
    ipc->retry.log = cycle->log;
    ipc->retry.cancelable = 1;

    on = 1;
    fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "famcall: socket(AF_UNIX) for the workers' messages "
                      "failed");
        return NULL;
    }

    salen = ngx_famcall_ipc_addr(ngx_pid, &sa);

    if (bind(fd, (struct sockaddr *) &sa, salen) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "famcall: bind() of the workers' message address "
                      "\"@famcall.%P\" failed", ngx_pid);
        (void) close(fd);
        return NULL;
    }

    /* the kernel tells who sent each datagram: only nginx's are heard */
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(int)) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "famcall: setsockopt(SO_PASSCRED) failed");
        (void) close(fd);
        return NULL;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        (void) close(fd);
        return NULL;
    }

    c->data = ipc;
    c->read->handler = ngx_famcall_ipc_read;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_close_connection(c);
        return NULL;
    }

    ipc->conn = c;

    return ipc;
}


void
ngx_famcall_ipc_exit(ngx_famcall_ipc_t *ipc)
{
    ngx_queue_t             *q;
    ngx_famcall_ipc_held_t  *h;

    if (ipc == NULL || ipc->conn == NULL) {
        return;
    }

    ngx_close_connection(ipc->conn);
    ipc->conn = NULL;

    if (ipc->retry.timer_set) {
        ngx_del_timer(&ipc->retry);
    }

    if (!ngx_queue_empty(&ipc->held)) {
        ngx_log_debug0(NGX_LOG_DEBUG_CORE, ipc->log, 0,
                       "famcall ipc: exit drops the messages held back");
    }

    while (!ngx_queue_empty(&ipc->held)) {
        q = ngx_queue_head(&ipc->held);
        ngx_queue_remove(q);
        h = ngx_queue_data(q, ngx_famcall_ipc_held_t, queue);
        ngx_free(h);
    }
}


void
ngx_famcall_ipc_on(ngx_famcall_ipc_t *ipc, ngx_uint_t type,
    ngx_famcall_ipc_handler_pt handler, void *data)
{
    if (type < NGX_FAMCALL_IPC_NTYPES) {
        ipc->on[type].handler = handler;
        ipc->on[type].data = data;
    }
}


void *
ngx_famcall_ipc_data(ngx_famcall_ipc_t *ipc, ngx_uint_t type)
{
    return (type < NGX_FAMCALL_IPC_NTYPES) ? ipc->on[type].data : NULL;
}


ngx_int_t
ngx_famcall_ipc_send(ngx_famcall_ipc_t *ipc, ngx_pid_t pid, ngx_uint_t type,
    const u_char *data, size_t len)
{
    u_char                   t;
    ngx_int_t                rc;
    ngx_famcall_ipc_held_t  *h;

    if (ipc == NULL || ipc->conn == NULL || len > NGX_FAMCALL_IPC_MAX) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "famcall: a worker message of %uz bytes not sent", len);
        return NGX_ERROR;
    }

    t = (u_char) type;

    /* behind anything already waiting, so a receiver sees them in order */
    if (ngx_queue_empty(&ipc->held)) {
        rc = ngx_famcall_ipc_sendto(ipc, pid, &t, data, len);
        if (rc != NGX_AGAIN) {
            return rc;
        }
    }

    h = ngx_alloc(sizeof(ngx_famcall_ipc_held_t) + len, ipc->log);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->pid = pid;
    h->len = 1 + len;
    h->data[0] = t;
    ngx_memcpy(&h->data[1], data, len);
    ngx_queue_insert_tail(&ipc->held, &h->queue);

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, ipc->log, 0,
                   "famcall ipc: message type %ui of %uz bytes to %P held "
                   "back (its queue is full, or others wait)", type, len, pid);

    if (!ipc->retry.timer_set) {
        ngx_add_timer(&ipc->retry, 1);
    }

    return NGX_OK;
}


static void
ngx_famcall_ipc_retry(ngx_event_t *ev)
{
    ngx_int_t                rc;
    ngx_queue_t             *q;
    ngx_famcall_ipc_t       *ipc = ev->data;
    ngx_famcall_ipc_held_t  *h;

    while (!ngx_queue_empty(&ipc->held)) {
        q = ngx_queue_head(&ipc->held);
        h = ngx_queue_data(q, ngx_famcall_ipc_held_t, queue);

        rc = ngx_famcall_ipc_sendto(ipc, h->pid, h->data, h->data + 1,
                                    h->len - 1);
        if (rc == NGX_AGAIN) {
            ngx_log_debug1(NGX_LOG_DEBUG_CORE, ipc->log, 0,
                           "famcall ipc: %P's queue still full, retry in 1 ms",
                           h->pid);
            ngx_add_timer(ev, 1);
            return;
        }

        /* sent, or its receiver is gone: either way done with it */
        ngx_log_debug3(NGX_LOG_DEBUG_CORE, ipc->log, 0,
                       "famcall ipc: held message type %d to %P retried: %i",
                       (int) h->data[0], h->pid, rc);

        ngx_queue_remove(q);
        ngx_free(h);
    }
}


/* NGX_OK, NGX_AGAIN (the receiver's queue is full), NGX_DECLINED, NGX_ERROR */
static ngx_int_t
ngx_famcall_ipc_sendto(ngx_famcall_ipc_t *ipc, ngx_pid_t pid,
    const u_char *type, const u_char *data, size_t len)
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
        n = sendmsg(ipc->conn->fd, &msg, MSG_DONTWAIT|MSG_NOSIGNAL);
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
    uid_t                        uid;
    ssize_t                      n;
    ngx_pid_t                    pid;
    ngx_uint_t                   i, type;
    ngx_err_t                    err;
    struct iovec                 iov;
    struct msghdr                msg;
    ngx_connection_t            *c = rev->data;
    ngx_famcall_ipc_t           *ipc = c->data;
    ngx_famcall_ipc_on_t        *on;
    union {
        struct cmsghdr           cm;
        u_char                   buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;

    for (i = 0; i < NGX_FAMCALL_IPC_READS; i++) {
        iov.iov_base = ipc->buf;
        iov.iov_len = 1 + NGX_FAMCALL_IPC_MAX;

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

        if (!ngx_famcall_ipc_ours(&msg, &pid, &uid)) {
            ngx_famcall_ipc_ignored(ipc, pid, uid);
            continue;
        }

        if (n < 1 || (msg.msg_flags & MSG_TRUNC)) {
            continue;
        }

        type = ipc->buf[0];
        on = (type < NGX_FAMCALL_IPC_NTYPES) ? &ipc->on[type] : NULL;

        if (on != NULL && on->handler != NULL) {
            on->handler(on->data, ipc->buf + 1, n - 1);
        }

        if (ipc->conn == NULL) {
            return;     /* a handler ended the worker's messages */
        }
    }
}


/* whether the datagram comes from a process of this nginx */
static ngx_uint_t
ngx_famcall_ipc_ours(struct msghdr *msg, ngx_pid_t *pid, uid_t *uid)
{
    struct ucred     cred;
    struct cmsghdr  *cm;

    cred.pid = 0;
    cred.uid = (uid_t) -1;

    for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET
            && cm->cmsg_type == SCM_CREDENTIALS
            && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred)))
        {
            ngx_memcpy(&cred, CMSG_DATA(cm), sizeof(struct ucred));
        }
    }

    *pid = cred.pid;
    *uid = cred.uid;

    /* pid 0: no credentials, or a sender that has exited since */
    return cred.pid > 0 && ngx_famcall_ipc_sibling(cred.pid);
}


/*
 * pid is this process, or another the master started (a worker of this
 * configuration or of an earlier one still finishing).  nginx's table of
 * processes: the master passes each new one to the others
 * (NGX_CMD_OPEN_CHANNEL) and closes the channel of each it reaped
 * (NGX_CMD_CLOSE_CHANNEL), before its pid can be reused.  A worker the
 * master started an instant ago may write before its channel is read
 * here: a pid not in the table is asked about its parent, once per such
 * datagram (a stranger's are few, and dropped).
 */
static ngx_uint_t
ngx_famcall_ipc_sibling(ngx_pid_t pid)
{
    int         fd;
    u_char     *p, *last;
    u_char      stat[512];
    ssize_t     n;
    ngx_int_t   i, ppid;

    if (pid == ngx_pid) {
        return 1;
    }

    for (i = 0; i < ngx_last_process; i++) {
        if (ngx_processes[i].pid == pid && ngx_processes[i].channel[0] != -1) {
            return 1;
        }
    }

    if (ngx_process != NGX_PROCESS_WORKER) {
        return 0;
    }

    p = ngx_snprintf(stat, sizeof(stat), "/proc/%P/stat%Z", pid);

    fd = open((char *) stat, O_RDONLY|O_CLOEXEC);
    if (fd == -1) {
        return 0;
    }

    n = read(fd, stat, sizeof(stat) - 1);
    (void) close(fd);

    if (n <= 0) {
        return 0;
    }

    /* "<pid> (<comm>) <state> <ppid> ...": comm may hold anything */
    last = stat + n;
    for (p = last; p > stat && p[-1] != ')'; p--) { /* void */ }

    if (p == stat || last - p < 4 || p[0] != ' ' || p[2] != ' ') {
        return 0;
    }

    p += 3;
    for (last = p; last < stat + n && *last >= '0' && *last <= '9'; last++) {
        /* void */
    }

    ppid = ngx_atoi(p, last - p);

    return ppid != NGX_ERROR && (ngx_pid_t) ppid == getppid();
}


/* a stranger's datagram: logged at most once a second, counted */
static void
ngx_famcall_ipc_ignored(ngx_famcall_ipc_t *ipc, ngx_pid_t pid, uid_t uid)
{
    ipc->ignored++;

    if (ipc->ignored_logged == ngx_time()) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ipc->log, 0,
                  "famcall: a worker message from pid %P, uid %d, ignored: "
                  "not a process of this nginx (%ui ignored)",
                  pid, (int) uid, ipc->ignored);

    ipc->ignored_logged = ngx_time();
    ipc->ignored = 0;
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
