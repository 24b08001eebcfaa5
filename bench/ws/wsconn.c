/*
 * wsload: the client side of RFC 6455 on non-blocking sockets.
 *
 * Written from the RFC, independently of the server's frame codec
 * (ngx_famcall_ws_frame.c), so that the two check each other instead of
 * sharing a misreading. Memory per socket is kept small because a process
 * holds ~17,000 of them: a connection keeps only the bytes that did not make
 * a whole frame (reads land in one shared buffer) and whatever the kernel
 * would not take yet.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "wsload.h"


#define WS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define FRAME_MAX   (1 << 20)     /* a bigger server frame is refused here */
#define HEAD_MAX    8192          /* the 101 response's headers */
#define REPORT_MAX  3             /* refusals and errors printed in full */

int         ws_epfd = -1;
uint64_t    ws_rx_ns;
handlers_t  ws_handlers;

/* every read lands here first: room for the largest frame we accept plus
 * the leftover of the previous read */
static unsigned char  rbuf[FRAME_MAX + 65536];
static int            reported;


static void
report(const char *what, const char *detail, size_t n)
{
    if (reported++ < REPORT_MAX) {
        fprintf(stderr, "wsload: %s: %.*s\n", what, (int) (n > 300 ? 300 : n),
                detail);
    }
}


/* drop c counting why (counter may be NULL) */
static void
lost(conn_t *c, uint64_t *counter)
{
    if (counter) {
        (*counter)++;
    }
    ws_drop(c);
}


void
ws_drop(conn_t *c)
{
    if (c->state == ST_FREE) {
        return;
    }

    close(c->fd);       /* also leaves the epoll set */
    c->fd = -1;
    free(c->in);
    free(c->out);
    free(c->msg);
    c->in = c->out = c->msg = NULL;
    c->inlen = c->outlen = c->msglen = 0;
    c->state = ST_FREE;
    ws_handlers.gone(c);
}


static void
want_out(conn_t *c, int on)
{
    struct epoll_event  ev;

    if (c->epollout == on) {
        return;
    }

    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ws_epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->epollout = (uint8_t) on;
}


/* write p now if nothing waits before it; queue what the kernel refuses.
 * -1: the connection is broken (the caller drops it) */
static int
out_write(conn_t *c, const unsigned char *p, size_t n)
{
    ssize_t         w;
    unsigned char  *o;

    if (c->outlen == 0 && c->state != ST_CONNECTING) {
        w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN) {
                return -1;
            }
            w = 0;
        }
        p += w;
        n -= (size_t) w;
        if (n == 0) {
            return 0;
        }
    }

    o = realloc(c->out, c->outlen + n);
    if (o == NULL) {
        die("out of memory");
    }
    memcpy(o + c->outlen, p, n);
    c->out = o;
    c->outlen += (uint32_t) n;
    want_out(c, 1);
    return 0;
}


static int
out_flush(conn_t *c)
{
    ssize_t  w;

    while (c->outlen) {
        w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        if (w < 0) {
            return errno == EAGAIN ? 0 : -1;
        }
        memmove(c->out, c->out + w, c->outlen - (size_t) w);
        c->outlen -= (uint32_t) w;
    }

    /* an idle socket keeps no buffer */
    free(c->out);
    c->out = NULL;
    want_out(c, 0);
    return 0;
}


uint64_t
ws_random(void)
{
    static uint64_t  x;

    while (x == 0) {
        if (RAND_bytes((unsigned char *) &x, sizeof(x)) != 1) {
            die("RAND_bytes failed");
        }
    }

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;

    return x * 0x2545F4914F6CDD1DULL;
}


/* one frame, masked with a fresh key (RFC 6455 5.3; ws_random) */
static int
send_frame(conn_t *c, int op, const void *payload, size_t n)
{
    size_t          h, i;
    unsigned char   stack[4096], *f, *mask;
    const unsigned char *p = payload;
    uint64_t        r;
    int             rc;

    f = n + 14 <= sizeof(stack) ? stack : malloc(n + 14);
    if (f == NULL) {
        die("out of memory");
    }

    f[0] = (unsigned char) (0x80 | op);
    if (n < 126) {
        f[1] = (unsigned char) (0x80 | n);
        h = 2;
    } else if (n < 65536) {
        f[1] = 0x80 | 126;
        f[2] = (unsigned char) (n >> 8);
        f[3] = (unsigned char) n;
        h = 4;
    } else {
        f[1] = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            f[2 + i] = (unsigned char) ((uint64_t) n >> (56 - 8 * i));
        }
        h = 10;
    }

    mask = f + h;
    r = ws_random();
    memcpy(mask, &r, 4);
    h += 4;
    for (i = 0; i < n; i++) {
        f[h + i] = p[i] ^ mask[i & 3];
    }

    rc = out_write(c, f, h + n);
    if (f != stack) {
        free(f);
    }
    return rc;
}


int
ws_send_text(conn_t *c, const char *p, size_t n)
{
    if (c->state != ST_OPEN) {
        return -1;
    }
    if (send_frame(c, 0x1, p, n) < 0) {
        lost(c, &st.dropped);
        return -1;
    }
    return 0;
}


static void
send_close(conn_t *c, unsigned code)
{
    unsigned char  b[2] = { (unsigned char) (code >> 8), (unsigned char) code };

    c->state = ST_CLOSING;
    if (send_frame(c, 0x8, b, 2) < 0) {
        lost(c, &st.dropped);
    }
}


void
ws_close(conn_t *c)
{
    if (c->state == ST_OPEN) {
        send_close(c, 1000);
    } else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
        ws_drop(c);
    }
}


int
ws_open(conn_t *c, uint32_t src, uint32_t dst, uint16_t port,
    const char *path, const char *token)
{
    int                 fd, one = 1, n;
    char                key[25], cat[64], req[4096];
    unsigned char       raw[16], md[SHA_DIGEST_LENGTH];
    struct sockaddr_in  sa;
    struct epoll_event  ev;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }

    /* the local port is then chosen by connect() for this destination, not
     * by bind() for the address alone: each 127.x source address serves a
     * full ephemeral range per server port, which is how one machine opens
     * more than 64k connections to one port */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    /* small frames whose latency is measured: no Nagle delay */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(src);
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        goto fail;
    }

    sa.sin_addr.s_addr = htonl(dst);
    sa.sin_port = htons(port);
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0
        && errno != EINPROGRESS)
    {
        goto fail;
    }

    /* Sec-WebSocket-Key: 16 random bytes; the answer we expect is
     * base64(SHA-1(key + GUID)) (RFC 6455 4.1, 4.2.2) */
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        die("RAND_bytes failed");
    }
    EVP_EncodeBlock((unsigned char *) key, raw, sizeof(raw));
    n = snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    SHA1((unsigned char *) cat, (size_t) n, md);
    EVP_EncodeBlock((unsigned char *) c->accept, md, sizeof(md));

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\n"
                 "Host: %u.%u.%u.%u:%u\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "%s%s%s"
                 "\r\n",
                 path, dst >> 24, (dst >> 16) & 255, (dst >> 8) & 255,
                 dst & 255, port, key,
                 token ? "Sec-WebSocket-Protocol: famcall.v1, access_token."
                       : "",
                 token ? token : "", token ? "\r\n" : "");
    if (n < 0 || (size_t) n >= sizeof(req)) {
        errno = E2BIG;
        goto fail;
    }

    c->fd = fd;
    c->state = ST_CONNECTING;
    c->hello = c->close_rcvd = c->frag_op = 0;
    c->plain = token == NULL;
    c->epollout = 1;
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(ws_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        goto fail;
    }

    /* queued: written once the connect completes */
    out_write(c, (unsigned char *) req, (size_t) n);
    return 0;

fail:
    n = errno;
    close(fd);
    c->fd = -1;
    c->state = ST_FREE;
    errno = n;
    return -1;
}


/* the 101 and its headers in p; the header length, 0 if incomplete, -1 if
 * the connection was dropped */
static ssize_t
handshake(conn_t *c, const unsigned char *p, size_t n)
{
    char        head[HEAD_MAX + 1], *line, *save, *v, *e;
    const char  *end;
    size_t      hlen;
    int         upgrade = 0, connection = 0, accept = 0, proto = 0;

    end = memmem(p, n, "\r\n\r\n", 4);
    if (end == NULL) {
        if (n > HEAD_MAX) {
            report("response headers too long", (const char *) p, 80);
            lost(c, &st.bad_handshake);
            return -1;
        }
        return 0;
    }

    hlen = (size_t) (end - (const char *) p) + 4;
    if (hlen > HEAD_MAX) {
        lost(c, &st.bad_handshake);
        return -1;
    }
    memcpy(head, p, hlen);
    head[hlen] = '\0';

    if (strncmp(head, "HTTP/1.1 101 ", 13) != 0) {
        /* a refusal: its status line, and the body if it came along */
        report("refused", head, strcspn(head, "\r\n"));
        report("refused, body", (const char *) p + hlen, n - hlen);
        reported--;
        lost(c, &st.refused);
        return -1;
    }

    line = strtok_r(head, "\r\n", &save);        /* the status line */
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        v = strchr(line, ':');
        if (v == NULL) {
            continue;
        }
        *v++ = '\0';
        v += strspn(v, " \t");
        for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--) {
            e[-1] = '\0';
        }

        if (strcasecmp(line, "Upgrade") == 0) {
            upgrade = strcasecmp(v, "websocket") == 0;
        } else if (strcasecmp(line, "Connection") == 0) {
            connection = strcasestr(v, "upgrade") != NULL;
        } else if (strcasecmp(line, "Sec-WebSocket-Accept") == 0) {
            accept = strcmp(v, c->accept) == 0;
        } else if (strcasecmp(line, "Sec-WebSocket-Protocol") == 0) {
            /* the server must pick famcall.v1 and never echo the token */
            proto = strcmp(v, "famcall.v1") == 0 ? 1 : -100;
        } else if (strcasecmp(line, "Sec-WebSocket-Extensions") == 0) {
            proto = -100;       /* none offered, so none may be answered */
        }
    }

    /* a plain socket offered no subprotocol: none may be answered */
    if (!(upgrade && connection && accept
          && (c->plain ? proto == 0 : proto > 0)))
    {
        report("bad 101 (upgrade/connection/accept/protocol)",
               (const char *) p, hlen);
        lost(c, &st.bad_handshake);
        return -1;
    }

    c->state = ST_OPEN;
    return (ssize_t) hlen;
}


static void
deliver(conn_t *c, int op, const unsigned char *p, size_t n)
{
    if (op == 0x1) {
        ws_handlers.text(c, p, n);
    } else {
        st.events_other++;      /* the protocol is text only */
    }
}


/* one whole frame; -1 if the connection was dropped */
static int
frame(conn_t *c, int fin, int op, const unsigned char *p, size_t n)
{
    unsigned        code;
    unsigned char  *m;

    switch (op) {

    case 0x9:                                   /* ping: answer it */
        if (!fin || n > 125) {
            goto bad;
        }
        st.pings++;
        if (c->state == ST_OPEN && send_frame(c, 0xA, p, n) < 0) {
            lost(c, &st.dropped);
            return -1;
        }
        return 0;

    case 0xA:                                   /* unsolicited pong */
        return 0;

    case 0x8:
        if (!fin || n > 125 || n == 1) {
            goto bad;
        }
        code = n >= 2 ? (unsigned) (p[0] << 8 | p[1]) : 1005;
        if (c->state == ST_CLOSING) {
            /* the answer to ours; the server closes TCP first (7.1.1) */
            c->close_rcvd = 1;
            return 0;
        }
        st.server_closed++;
        switch (code) {
        case 1000: st.close_1000++; break;
        case 1001: st.close_1001++; break;
        case 4000: st.close_4000++; break;
        case 4001: st.close_4001++; break;
        default:   st.close_other++; break;
        }
        c->close_rcvd = 2;
        send_close(c, code == 1005 ? 1000 : code);
        return c->state == ST_FREE ? -1 : 0;

    case 0x1:
    case 0x2:
        if (c->frag_op) {
            goto bad;
        }
        if (fin) {
            deliver(c, op, p, n);
            return c->state == ST_FREE ? -1 : 0;
        }
        c->frag_op = (uint8_t) op;
        /* fall through: the first fragment is appended like the others */
        /* FALLTHROUGH */

    case 0x0:
        if (!c->frag_op || c->msglen + n > FRAME_MAX) {
            goto bad;
        }
        m = realloc(c->msg, c->msglen + n + 1);
        if (m == NULL) {
            die("out of memory");
        }
        memcpy(m + c->msglen, p, n);
        c->msg = m;
        c->msglen += (uint32_t) n;
        if (fin) {
            deliver(c, c->frag_op, c->msg, c->msglen);
            if (c->state == ST_FREE) {
                return -1;
            }
            free(c->msg);
            c->msg = NULL;
            c->msglen = 0;
            c->frag_op = 0;
        }
        return 0;
    }

bad:
    report("protocol error from the server", "(frame)", 7);
    lost(c, &st.protocol_errors);
    return -1;
}


/* parse what p holds; bytes used, or -1 if the connection was dropped */
static ssize_t
consume(conn_t *c, const unsigned char *p, size_t n)
{
    size_t    off = 0, h, len, i;
    ssize_t   r;

    if (c->state == ST_HANDSHAKE) {
        r = handshake(c, p, n);
        if (r <= 0) {
            return r;
        }
        off = (size_t) r;
    }

    while (n - off >= 2) {
        const unsigned char *f = p + off;

        /* no extension was negotiated (RSV must be 0); server frames are
         * never masked (RFC 6455 5.1) */
        if ((f[0] & 0x70) || (f[1] & 0x80)) {
            report("protocol error from the server", "(RSV or mask bit)", 17);
            lost(c, &st.protocol_errors);
            return -1;
        }

        len = f[1] & 0x7f;
        h = 2;
        if (len == 126) {
            if (n - off < 4) {
                break;
            }
            len = (size_t) f[2] << 8 | f[3];
            h = 4;
        } else if (len == 127) {
            if (n - off < 10) {
                break;
            }
            len = 0;
            for (i = 0; i < 8; i++) {
                len = len << 8 | f[2 + i];
            }
            h = 10;
        }

        if (len > FRAME_MAX) {
            report("protocol error from the server", "(frame too big)", 15);
            lost(c, &st.protocol_errors);
            return -1;
        }
        if (n - off < h + len) {
            break;
        }

        if (frame(c, f[0] & 0x80, f[0] & 0x0f, f + h, len) < 0) {
            return -1;
        }
        off += h + len;
    }

    return (ssize_t) off;
}


/* the peer closed TCP */
static void
eof(conn_t *c)
{
    if (c->state == ST_CLOSING && c->close_rcvd == 1) {
        lost(c, &st.closed_clean);
    } else if (c->state == ST_CLOSING && c->close_rcvd == 2) {
        lost(c, NULL);                  /* counted as server_closed */
    } else if (c->state == ST_HANDSHAKE) {
        report("connection closed before the 101", "", 0);
        lost(c, &st.connect_failed);
    } else {
        lost(c, &st.dropped);
    }
}


/* recv() that also sets ws_rx_ns: when the kernel queued the last of these
 * bytes on the socket (SO_TIMESTAMPNS, CLOCK_REALTIME, taken to
 * CLOCK_MONOTONIC here), or 0 if it gave no timestamp */
static ssize_t
recv_stamped(int fd, unsigned char *p, size_t n)
{
    union {
        char            buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr  align;
    } cm;
    struct iovec     iov = { p, n };
    struct msghdr    mh = { 0 };
    struct cmsghdr  *h;
    struct timespec  ts, rt;
    ssize_t          got;

    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    got = recvmsg(fd, &mh, 0);
    ws_rx_ns = 0;
    for (h = got > 0 ? CMSG_FIRSTHDR(&mh) : NULL; h; h = CMSG_NXTHDR(&mh, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_TIMESTAMPNS) {
            memcpy(&ts, CMSG_DATA(h), sizeof(ts));
            clock_gettime(CLOCK_REALTIME, &rt);
            ws_rx_ns = now_ns() - ((uint64_t) rt.tv_sec * 1000000000u
                                   + (uint64_t) rt.tv_nsec
                                   - (uint64_t) ts.tv_sec * 1000000000u
                                   - (uint64_t) ts.tv_nsec);
        }
    }
    return got;
}


static void
read_some(conn_t *c)
{
    size_t          have = c->inlen;
    ssize_t         n, used;
    unsigned char  *keep;

    if (have) {
        memcpy(rbuf, c->in, have);
    }

    n = recv_stamped(c->fd, rbuf + have, sizeof(rbuf) - have);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        lost(c, c->state == ST_HANDSHAKE ? &st.connect_failed : &st.dropped);
        return;
    }
    if (n == 0) {
        eof(c);
        return;
    }

    have += (size_t) n;
    used = consume(c, rbuf, have);
    if (used < 0) {
        return;                         /* dropped: its buffers are gone */
    }

    /* keep only an unfinished frame */
    have -= (size_t) used;
    if (have == 0) {
        free(c->in);
        c->in = NULL;
    } else {
        keep = realloc(c->in, have);
        if (keep == NULL) {
            die("out of memory");
        }
        memmove(keep, rbuf + used, have);
        c->in = keep;
    }
    c->inlen = (uint32_t) have;
}


void
ws_event(conn_t *c, uint32_t events)
{
    int        err = 0;
    socklen_t  len = sizeof(err);

    if (c->state == ST_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            report("connect", strerror(err), strlen(strerror(err)));
            lost(c, &st.connect_failed);
            return;
        }
        c->state = ST_HANDSHAKE;
    }

    if ((events & EPOLLOUT) && out_flush(c) < 0) {
        lost(c, c->state == ST_HANDSHAKE ? &st.connect_failed : &st.dropped);
        return;
    }

    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        read_some(c);
    }
}
