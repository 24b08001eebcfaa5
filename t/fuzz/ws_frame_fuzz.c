/*
 * libFuzzer harness: the WebSocket frame reader (ngx_famcall_ws_frame.c).
 *
 * Input: byte 0 picks the message limit, byte 1 seeds the sizes of the
 * pieces the rest (the stream) is cut into.  The stream is read twice,
 * whole and in pieces; both must give the same frames (resumability), and
 * every result must keep the reader's promises.  Pieces and the message
 * buffer are allocated at their exact sizes, so AddressSanitizer catches a
 * byte read or written too far.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_famcall_ws_frame.h"


#define check(cond)  do { if (!(cond)) { __builtin_trap(); } } while (0)


static const size_t  limits[8] = { 0, 1, 5, 16, 125, 126, 1000, 65536 };


/* a UTF-8 check written differently from the reader's: decode and test */
static int
utf8_valid(const unsigned char *s, size_t len)
{
    size_t    i, n, k;
    uint32_t  cp, min;

    for (i = 0; i < len; i += n) {
        if (s[i] < 0x80) {
            n = 1; cp = s[i]; min = 0;
        } else if ((s[i] & 0xe0) == 0xc0) {
            n = 2; cp = s[i] & 0x1f; min = 0x80;
        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 3; cp = s[i] & 0x0f; min = 0x800;
        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 4; cp = s[i] & 0x07; min = 0x10000;
        } else {
            return 0;
        }

        if (n > len - i) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


static uint64_t
mix(uint64_t h, const void *p, size_t len)
{
    size_t                i;
    const unsigned char  *s = p;

    for (i = 0; i < len; i++) {
        h = (h ^ s[i]) * 0x100000001b3ULL;
    }

    return h;
}


/* checks one result; returns the running digest of everything read */
static uint64_t
record(uint64_t h, int rc, ngx_famcall_ws_frame_t *f,
    ngx_famcall_ws_parser_t *p, const unsigned char *msg, size_t max)
{
    size_t         n;
    unsigned char  out[NGX_FAMCALL_WS_CONTROL_MAX];

    h = mix(h, &rc, sizeof(int));

    if (rc == NGX_FAMCALL_WS_ERROR) {
        check(f->close_code == 1002 || f->close_code == 1007
              || f->close_code == 1009);
        return mix(h, &f->close_code, sizeof(int));
    }

    check(f->fin == 0 || f->fin == 1);

    if (NGX_FAMCALL_WS_IS_CONTROL(f->opcode)) {
        check(f->opcode >= NGX_FAMCALL_WS_OP_CLOSE
              && f->opcode <= NGX_FAMCALL_WS_OP_PONG);
        check(f->fin && f->len <= NGX_FAMCALL_WS_CONTROL_MAX);
        check(f->payload == p->ctl && f->message == 0);

        if (f->opcode == NGX_FAMCALL_WS_OP_CLOSE) {
            check(f->len != 1);
            check(f->len == 0 || utf8_valid(f->payload + 2, f->len - 2));
            check(f->len == 0
                  || f->close_code == (f->payload[0] << 8 | f->payload[1]));
            check(f->len || f->close_code == 1005);
        }

    } else {
        check(f->opcode <= NGX_FAMCALL_WS_OP_BINARY);
        check(f->message_opcode == NGX_FAMCALL_WS_OP_TEXT
              || f->message_opcode == NGX_FAMCALL_WS_OP_BINARY);
        check(f->data == msg && f->size <= max && f->len <= f->size);
        check(f->payload + f->len == f->data + f->size);
        check(f->message == f->fin);

        if (f->message && f->message_opcode == NGX_FAMCALL_WS_OP_TEXT) {
            check(utf8_valid(f->data, f->size));

            /* any valid text makes a valid close reason, cut or not */
            n = ngx_famcall_ws_close_payload(out, 1000, (const char *) f->data,
                                             f->size);
            check(n <= NGX_FAMCALL_WS_CONTROL_MAX);
            check(ngx_famcall_ws_close_check(out, n) == 0);
        }

        h = mix(h, &f->message_opcode, sizeof(int));
        h = mix(h, &f->size, sizeof(size_t));
        h = mix(h, f->data, f->size);
    }

    h = mix(h, &f->opcode, sizeof(int));
    h = mix(h, &f->fin, sizeof(int));
    h = mix(h, &f->close_code, sizeof(int));
    h = mix(h, &f->len, sizeof(size_t));

    return mix(h, f->payload, f->len);
}


/* reads the stream cut into pieces (whole when seed is 0) */
static uint64_t
run(const uint8_t *s, size_t len, size_t max, uint32_t seed)
{
    int                       rc;
    size_t                    off, pos, chunk, used;
    uint64_t                  h;
    unsigned char            *msg, *piece;
    ngx_famcall_ws_frame_t    f;
    ngx_famcall_ws_parser_t   p;

    msg = malloc(max);
    ngx_famcall_ws_parser_init(&p, msg, max);

    h = 0xcbf29ce484222325ULL;
    rc = NGX_FAMCALL_WS_AGAIN;

    for (off = 0; off < len && rc != NGX_FAMCALL_WS_ERROR; off += chunk) {
        chunk = len - off;

        if (seed) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            chunk = 1 + seed % ((seed & 0x100) ? 4 : 64);

            if (chunk > len - off) {
                chunk = len - off;
            }
        }

        piece = malloc(chunk);
        memcpy(piece, s + off, chunk);

        for (pos = 0; pos < chunk; pos += used) {
            used = (size_t) -1;
            rc = ngx_famcall_ws_parse(&p, piece + pos, chunk - pos, &used, &f);

            check(used <= chunk - pos);
            check(rc != NGX_FAMCALL_WS_AGAIN || used == chunk - pos);
            check(rc != NGX_FAMCALL_WS_FRAME || used > 0);

            if (rc == NGX_FAMCALL_WS_AGAIN) {
                continue;
            }

            h = record(h, rc, &f, &p, msg, max);

            if (rc == NGX_FAMCALL_WS_ERROR) {
                /* it stays failed, and consumes nothing more */
                rc = ngx_famcall_ws_parse(&p, piece, chunk, &used, &f);
                check(rc == NGX_FAMCALL_WS_ERROR && used == 0);
                break;
            }
        }

        free(piece);
    }

    free(msg);

    return h;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t         max, n;
    uint32_t       seed;
    uint64_t       len;
    unsigned char  hdr[NGX_FAMCALL_WS_HEADER_MAX];

    if (size < 2) {
        return 0;
    }

    max = limits[data[0] & 7] + (data[0] >> 3);
    seed = (uint32_t) data[1] << 8 | data[0] | 1;

    check(run(data + 2, size - 2, max, 0)
          == run(data + 2, size - 2, max, seed));

    /* the header writer: its length reads back */
    len = 0;
    memcpy(&len, data + 2, size - 2 < 8 ? size - 2 : 8);
    len >>= data[1] & 63;

    n = ngx_famcall_ws_frame_header(hdr, data[1] & 0x0f, data[1] >> 7, len);
    check(n == 2 || n == 4 || n == 10);
    check((hdr[0] & 0x0f) == (data[1] & 0x0f) && (hdr[0] >> 7) == data[1] >> 7);

    if (n == 2) {
        check(hdr[1] == len && len < 126);
    } else if (n == 4) {
        check(hdr[1] == 126 && (uint64_t) (hdr[2] << 8 | hdr[3]) == len
              && len >= 126);
    } else {
        check(hdr[1] == 127 && len > 0xffff);
    }

    return 0;
}
