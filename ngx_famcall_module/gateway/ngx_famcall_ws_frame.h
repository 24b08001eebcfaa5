/*
 * famcall: WebSocket frames (RFC 6455), read from clients and written to
 * them.  Pure C (no nginx headers, no allocation), so t/unit/ tests it and
 * t/fuzz/ fuzzes it directly.
 *
 * The reader is a step machine that can stop after any byte: feed it
 * whatever a read returned, as often as needed.
 *
 *     ngx_famcall_ws_parser_init(&p, buf, max);     (buf: max bytes)
 *
 *     while (len) {
 *         rc = ngx_famcall_ws_parse(&p, in, len, &n, &f);
 *         in += n; len -= n;
 *
 *         if (rc == NGX_FAMCALL_WS_AGAIN)  read more
 *         if (rc == NGX_FAMCALL_WS_ERROR)  send close f.close_code, stop
 *         if (f.opcode is a control)       answer f.payload/f.len
 *         if (f.message)                   f.message_opcode, f.data/f.size
 *     }
 *
 * Data payloads are unmasked into the caller's message buffer, appended
 * fragment after fragment; control payloads (at most 125 bytes) into the
 * parser itself, so a ping between two fragments leaves the message alone.
 * Pointers in a frame stay valid until the next call.
 *
 * Every protocol error is reported once and then sticks: 1002 (framing),
 * 1007 (text or close reason not UTF-8, checked as bytes arrive, so a bad
 * message fails before it is complete), 1009 (message above max).
 * Binary messages are accepted: refusing them (1003) is the caller's call.
 */

#ifndef _NGX_FAMCALL_WS_FRAME_H_INCLUDED_
#define _NGX_FAMCALL_WS_FRAME_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_FAMCALL_WS_OP_CONT        0x0
#define NGX_FAMCALL_WS_OP_TEXT        0x1
#define NGX_FAMCALL_WS_OP_BINARY      0x2
#define NGX_FAMCALL_WS_OP_CLOSE       0x8
#define NGX_FAMCALL_WS_OP_PING        0x9
#define NGX_FAMCALL_WS_OP_PONG        0xa

#define NGX_FAMCALL_WS_IS_CONTROL(op) (((op) & 0x8) != 0)

/* the values of NGX_OK, NGX_ERROR and NGX_AGAIN */
#define NGX_FAMCALL_WS_FRAME          0
#define NGX_FAMCALL_WS_ERROR         -1
#define NGX_FAMCALL_WS_AGAIN         -2

#define NGX_FAMCALL_WS_CLOSE_NORMAL     1000
#define NGX_FAMCALL_WS_CLOSE_GOING_AWAY 1001
#define NGX_FAMCALL_WS_CLOSE_PROTOCOL   1002
#define NGX_FAMCALL_WS_CLOSE_DATA       1003
#define NGX_FAMCALL_WS_CLOSE_NO_STATUS  1005
#define NGX_FAMCALL_WS_CLOSE_BAD_UTF8   1007
#define NGX_FAMCALL_WS_CLOSE_POLICY     1008
#define NGX_FAMCALL_WS_CLOSE_TOO_BIG    1009
#define NGX_FAMCALL_WS_CLOSE_INTERNAL   1011

#define NGX_FAMCALL_WS_CONTROL_MAX    125
#define NGX_FAMCALL_WS_HEADER_MAX     10     /* server frames: no mask */

/* UTF-8 checker states: anything else is "inside a character" */
#define NGX_FAMCALL_WS_UTF8_ACCEPT    0
#define NGX_FAMCALL_WS_UTF8_REJECT    0xffffffff


typedef struct {
    int                    opcode;     /* as sent: CONT for continuations */
    int                    fin;
    const unsigned char   *payload;    /* this frame's payload, unmasked */
    size_t                 len;

    /* data frames: the message assembled so far, this frame included */
    int                    message_opcode;   /* TEXT or BINARY */
    const unsigned char   *data;
    size_t                 size;
    int                    message;    /* fin: the message is complete */

    /*
     * ERROR: the close code to send;
     * a close frame: the code it carries (1005 when it carries none)
     */
    int                    close_code;
} ngx_famcall_ws_frame_t;


typedef struct {
    unsigned char         *msg;        /* the caller's message buffer */
    size_t                 msg_max;
    size_t                 msg_len;
    int                    msg_opcode; /* 0: no message in progress */
    uint32_t               utf8;       /* checker state of a text message */

    int                    state;
    int                    error;      /* close code once failed */
    int                    opcode;     /* of the frame being read */
    int                    fin;
    unsigned               need;       /* length or mask bytes to come */
    uint64_t               len;        /* payload length */
    uint64_t               done;       /* payload bytes read */
    size_t                 start;      /* where the payload goes in msg */
    unsigned char          mask[4];
    unsigned char          ctl[NGX_FAMCALL_WS_CONTROL_MAX];
} ngx_famcall_ws_parser_t;


void ngx_famcall_ws_parser_init(ngx_famcall_ws_parser_t *p,
    unsigned char *msg, size_t msg_max);

/*
 * FRAME: *consumed bytes made a frame complete (at least one byte);
 * AGAIN: all len bytes consumed, no frame complete yet (frame untouched);
 * ERROR: frame->close_code says why (and again on every later call).
 */
int ngx_famcall_ws_parse(ngx_famcall_ws_parser_t *p, const unsigned char *buf,
    size_t len, size_t *consumed, ngx_famcall_ws_frame_t *frame);

/* the checker's state after len more bytes, from ACCEPT at the start */
uint32_t ngx_famcall_ws_utf8(uint32_t state, const unsigned char *s,
    size_t len);

/* 0 when a close payload is valid, else the close code to answer with */
int ngx_famcall_ws_close_check(const unsigned char *payload, size_t len);

/* writes 2, 4 or 10 bytes of an unmasked frame header; returns the count */
size_t ngx_famcall_ws_frame_header(unsigned char *out, int opcode, int fin,
    uint64_t len);

/*
 * a close payload into out (room for 125 bytes): the code, then as much of
 * reason as fits (123 bytes) without cutting a character; returns its length
 */
size_t ngx_famcall_ws_close_payload(unsigned char *out, int code,
    const char *reason, size_t len);


#endif /* _NGX_FAMCALL_WS_FRAME_H_INCLUDED_ */
