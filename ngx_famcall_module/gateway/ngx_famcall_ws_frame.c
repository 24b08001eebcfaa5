/*
 * famcall: WebSocket frames, RFC 6455 section 5 (see the header).
 */

#include <string.h>

#include "ngx_famcall_ws_frame.h"


/* where the reader is in a frame: each state consumes one byte but PAYLOAD */
enum {
    WS_HEAD = 0,        /* FIN, RSV1-3, opcode */
    WS_LEN,             /* MASK bit, 7-bit length */
    WS_LEN_EXT,         /* 2 or 8 bytes of length, network order */
    WS_MASK,            /* 4 bytes of masking key */
    WS_PAYLOAD,
    WS_FAILED
};


/*
 * A UTF-8 checker state inside a character: the continuation bytes still
 * due, and the range the next one must fall in.  The range is narrower than
 * 80-BF only after the lead bytes E0, ED, F0 and F4, which is how overlong
 * forms, surrogates and code points above U+10FFFF are refused.
 */
#define utf8_state(need, lo, hi)  ((uint32_t) (need) | (lo) << 8 | (hi) << 16)


static int ws_length_known(ngx_famcall_ws_parser_t *p, int control);
static uint32_t utf8_lead(unsigned c);


void
ngx_famcall_ws_parser_init(ngx_famcall_ws_parser_t *p, unsigned char *msg,
    size_t msg_max)
{
    memset(p, 0, sizeof(ngx_famcall_ws_parser_t));

    p->msg = msg;
    p->msg_max = msg_max;
    p->state = WS_HEAD;
}


int
ngx_famcall_ws_parse(ngx_famcall_ws_parser_t *p, const unsigned char *buf,
    size_t len, size_t *consumed, ngx_famcall_ws_frame_t *frame)
{
    int             code, control;
    size_t          i, n, k;
    uint64_t        left;
    unsigned char   c, *dst;

    i = 0;

    if (p->state == WS_FAILED) {
        code = p->error;
        goto failed;
    }

    control = NGX_FAMCALL_WS_IS_CONTROL(p->opcode);

    while (i < len) {

        switch (p->state) {

        case WS_HEAD:
            c = buf[i++];

            /* no extension is ever negotiated, so RSV1-3 must be 0 */
            if (c & 0x70) {
                code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                goto failed;
            }

            p->fin = c >> 7;
            p->opcode = c & 0x0f;
            control = NGX_FAMCALL_WS_IS_CONTROL(p->opcode);

            switch (p->opcode) {

            case NGX_FAMCALL_WS_OP_CONT:
                if (p->msg_opcode == 0) {
                    code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                    goto failed;
                }
                break;

            case NGX_FAMCALL_WS_OP_TEXT:
            case NGX_FAMCALL_WS_OP_BINARY:
                if (p->msg_opcode != 0) {
                    /* a fragmented message is still in progress */
                    code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                    goto failed;
                }

                p->msg_opcode = p->opcode;
                p->msg_len = 0;
                p->utf8 = NGX_FAMCALL_WS_UTF8_ACCEPT;
                break;

            case NGX_FAMCALL_WS_OP_CLOSE:
            case NGX_FAMCALL_WS_OP_PING:
            case NGX_FAMCALL_WS_OP_PONG:
                if (!p->fin) {
                    code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                    goto failed;
                }
                break;

            default:
                code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                goto failed;
            }

            p->state = WS_LEN;
            break;

        case WS_LEN:
            c = buf[i++];

            /* a client masks every frame (section 5.1) */
            if (!(c & 0x80)) {
                code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                goto failed;
            }

            c &= 0x7f;

            if (control && c > NGX_FAMCALL_WS_CONTROL_MAX) {
                code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                goto failed;
            }

            p->len = 0;
            p->done = 0;

            if (c == 126 || c == 127) {
                p->need = (c == 126) ? 2 : 8;
                p->state = WS_LEN_EXT;
                break;
            }

            p->len = c;

            code = ws_length_known(p, control);
            if (code) {
                goto failed;
            }

            break;

        case WS_LEN_EXT:
            p->len = p->len << 8 | buf[i++];

            if (--p->need) {
                break;
            }

            /* longer encodings than needed are accepted, as most servers do */

            if (p->len >> 63) {
                code = NGX_FAMCALL_WS_CLOSE_PROTOCOL;
                goto failed;
            }

            code = ws_length_known(p, control);
            if (code) {
                goto failed;
            }

            break;

        case WS_MASK:
            p->mask[4 - p->need] = buf[i++];

            if (--p->need) {
                break;
            }

            if (p->len == 0) {
                goto complete;
            }

            p->state = WS_PAYLOAD;
            break;

        default: /* WS_PAYLOAD */
            n = len - i;
            left = p->len - p->done;

            if (n > left) {
                n = (size_t) left;
            }

            dst = control ? p->ctl + p->done : p->msg + p->start + p->done;

            /* the key position follows the payload offset, across reads */
            for (k = 0; k < n; k++) {
                dst[k] = buf[i + k] ^ p->mask[(p->done + k) & 3];
            }

            i += n;
            p->done += n;

            if (!control) {
                p->msg_len += n;

                /* check text as it comes: a bad message fails early */
                if (p->msg_opcode == NGX_FAMCALL_WS_OP_TEXT) {
                    p->utf8 = ngx_famcall_ws_utf8(p->utf8, dst, n);

                    if (p->utf8 == NGX_FAMCALL_WS_UTF8_REJECT) {
                        code = NGX_FAMCALL_WS_CLOSE_BAD_UTF8;
                        goto failed;
                    }
                }
            }

            if (p->done == p->len) {
                goto complete;
            }

            break;
        }
    }

    *consumed = i;

    return NGX_FAMCALL_WS_AGAIN;

complete:

    *consumed = i;
    p->state = WS_HEAD;

    memset(frame, 0, sizeof(ngx_famcall_ws_frame_t));
    frame->opcode = p->opcode;
    frame->fin = p->fin;
    frame->len = (size_t) p->len;

    if (control) {
        frame->payload = p->ctl;

        if (p->opcode == NGX_FAMCALL_WS_OP_CLOSE) {
            code = ngx_famcall_ws_close_check(p->ctl, frame->len);
            if (code) {
                goto failed;
            }

            frame->close_code = frame->len ? (p->ctl[0] << 8 | p->ctl[1])
                                           : NGX_FAMCALL_WS_CLOSE_NO_STATUS;
        }

        return NGX_FAMCALL_WS_FRAME;
    }

    frame->payload = p->msg + p->start;
    frame->message_opcode = p->msg_opcode;
    frame->data = p->msg;
    frame->size = p->msg_len;

    if (p->fin) {
        /* a text message must not end inside a character */
        if (p->msg_opcode == NGX_FAMCALL_WS_OP_TEXT
            && p->utf8 != NGX_FAMCALL_WS_UTF8_ACCEPT)
        {
            code = NGX_FAMCALL_WS_CLOSE_BAD_UTF8;
            goto failed;
        }

        frame->message = 1;

        /* the buffer is reused from the next call on */
        p->msg_opcode = 0;
        p->msg_len = 0;
    }

    return NGX_FAMCALL_WS_FRAME;

failed:

    *consumed = i;
    p->state = WS_FAILED;
    p->error = code;
    frame->close_code = code;

    return NGX_FAMCALL_WS_ERROR;
}


/* 0, or the close code when the frame cannot be taken */
static int
ws_length_known(ngx_famcall_ws_parser_t *p, int control)
{
    /* refuse a message too big before reading any of it */
    if (!control) {
        if (p->len > p->msg_max - p->msg_len) {
            return NGX_FAMCALL_WS_CLOSE_TOO_BIG;
        }

        p->start = p->msg_len;
    }

    p->need = 4;
    p->state = WS_MASK;

    return 0;
}


uint32_t
ngx_famcall_ws_utf8(uint32_t state, const unsigned char *s, size_t len)
{
    size_t    i;
    unsigned  c, need, lo, hi;

    for (i = 0; i < len && state != NGX_FAMCALL_WS_UTF8_REJECT; i++) {
        c = s[i];

        if (state == NGX_FAMCALL_WS_UTF8_ACCEPT) {
            if (c >= 0x80) {
                state = utf8_lead(c);
            }

            continue;
        }

        need = state & 0xff;
        lo = (state >> 8) & 0xff;
        hi = state >> 16;

        if (c < lo || c > hi) {
            state = NGX_FAMCALL_WS_UTF8_REJECT;

        } else if (need == 1) {
            state = NGX_FAMCALL_WS_UTF8_ACCEPT;

        } else {
            state = utf8_state(need - 1, 0x80, 0xbf);
        }
    }

    return state;
}


static uint32_t
utf8_lead(unsigned c)
{
    if (c >= 0xc2 && c <= 0xdf) {
        return utf8_state(1, 0x80, 0xbf);
    }

    if (c == 0xe0) {
        return utf8_state(2, 0xa0, 0xbf);       /* not overlong */
    }

    if (c == 0xed) {
        return utf8_state(2, 0x80, 0x9f);       /* not a surrogate */
    }

    if (c >= 0xe1 && c <= 0xef) {
        return utf8_state(2, 0x80, 0xbf);
    }

    if (c == 0xf0) {
        return utf8_state(3, 0x90, 0xbf);       /* not overlong */
    }

    if (c >= 0xf1 && c <= 0xf3) {
        return utf8_state(3, 0x80, 0xbf);
    }

    if (c == 0xf4) {
        return utf8_state(3, 0x80, 0x8f);       /* up to U+10FFFF */
    }

    /* 80-C1: a stray continuation or an overlong 2-byte form; F5-FF */
    return NGX_FAMCALL_WS_UTF8_REJECT;
}


int
ngx_famcall_ws_close_check(const unsigned char *payload, size_t len)
{
    unsigned  code;

    if (len == 0) {
        return 0;
    }

    if (len == 1 || len > NGX_FAMCALL_WS_CONTROL_MAX) {
        return NGX_FAMCALL_WS_CLOSE_PROTOCOL;
    }

    /*
     * codes a peer may send (section 7.4): 1004-1006 and 1015 are reserved
     * or for local use only, 1012-2999 are unassigned here
     */
    code = payload[0] << 8 | payload[1];

    if (!((code >= 1000 && code <= 1003)
          || (code >= 1007 && code <= 1011)
          || (code >= 3000 && code <= 4999)))
    {
        return NGX_FAMCALL_WS_CLOSE_PROTOCOL;
    }

    if (ngx_famcall_ws_utf8(NGX_FAMCALL_WS_UTF8_ACCEPT, payload + 2, len - 2)
        != NGX_FAMCALL_WS_UTF8_ACCEPT)
    {
        return NGX_FAMCALL_WS_CLOSE_BAD_UTF8;
    }

    return 0;
}


size_t
ngx_famcall_ws_frame_header(unsigned char *out, int opcode, int fin,
    uint64_t len)
{
    int  i;

    out[0] = (unsigned char) ((fin ? 0x80 : 0) | (opcode & 0x0f));

    if (len < 126) {
        out[1] = (unsigned char) len;
        return 2;
    }

    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char) (len >> 8);
        out[3] = (unsigned char) len;
        return 4;
    }

    out[1] = 127;

    for (i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char) (len >> (56 - 8 * i));
    }

    return 10;
}


size_t
ngx_famcall_ws_close_payload(unsigned char *out, int code,
    const char *reason, size_t len)
{
    if (len > NGX_FAMCALL_WS_CONTROL_MAX - 2) {
        len = NGX_FAMCALL_WS_CONTROL_MAX - 2;

        /* back off to the start of the character that would be cut */
        while (len && ((unsigned char) reason[len] & 0xc0) == 0x80) {
            len--;
        }
    }

    out[0] = (unsigned char) (code >> 8);
    out[1] = (unsigned char) code;

    if (len) {
        memcpy(out + 2, reason, len);
    }

    return len + 2;
}
