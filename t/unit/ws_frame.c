/*
 * Unit tests: ngx_famcall_ws_frame.c (WebSocket frame reader, UTF-8 and
 * close checks, frame header writer).
 *
 * Every stream is fed whole, one byte at a time and in random pieces, and
 * must read the same each time; feed() describes what came out as a string:
 *
 *     "1[Hel] 9F[pi] 0F[lo]=[Hello] E1002"
 *
 * a frame is its opcode, F when final, [payload] (or (length) when long);
 * "=[...]" follows a frame that completes a message; E<code> is an error.
 */

#include <stdlib.h>

#include "tap.h"
#include "ngx_famcall_ws_frame.h"


#define MAX        (100 * 1024)
#define RANDOM     ((size_t) -1)
#define B(s)       (const unsigned char *) (s), sizeof(s) - 1


static unsigned char   stream[MAX + 1024];
static size_t          stream_len;
static unsigned char   last[MAX];        /* the last complete message */
static size_t          last_size;
static int             last_close;       /* close_code of the last close */
static unsigned long   seed = 12345;


static unsigned
rnd(void)
{
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    return (unsigned) (seed >> 33);
}


/* a client frame: minimal length form unless form is 126 or 127 */
static void
put_frame(int b0, const void *payload, size_t len, int form)
{
    size_t                i;
    unsigned char        *o = stream + stream_len;
    const unsigned char  *in = payload;
    static unsigned char  key[4] = { 0x37, 0xfa, 0x21, 0x3d };

    *o++ = (unsigned char) b0;

    if (form == 0) {
        form = len < 126 ? (int) len : len <= 0xffff ? 126 : 127;
    }

    *o++ = (unsigned char) (0x80 | form);

    if (form == 126) {
        *o++ = (unsigned char) (len >> 8);
        *o++ = (unsigned char) len;

    } else if (form == 127) {
        for (i = 0; i < 8; i++) {
            *o++ = (unsigned char) ((uint64_t) len >> (56 - 8 * i));
        }
    }

    key[0]++;                       /* a different key for every frame */
    memcpy(o, key, 4);
    o += 4;

    for (i = 0; i < len; i++) {
        *o++ = in[i] ^ key[i & 3];
    }

    stream_len = o - stream;
}


static void
put_raw(const unsigned char *bytes, size_t len)
{
    memcpy(stream + stream_len, bytes, len);
    stream_len += len;
}


static char *
describe(char *d, const unsigned char *s, size_t len)
{
    size_t  i;

    if (len > 40) {
        return d + sprintf(d, "(%zu)", len);
    }

    *d++ = '[';

    for (i = 0; i < len; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            *d++ = (char) s[i];

        } else {
            d += sprintf(d, "\\x%02x", s[i]);
        }
    }

    *d++ = ']';
    *d = '\0';

    return d;
}


static const char *
feed(const unsigned char *s, size_t n, size_t max, size_t step)
{
    int                       rc;
    char                     *d;
    size_t                    off, pos, chunk, used;
    unsigned char            *buf, *piece;
    ngx_famcall_ws_frame_t    f;
    ngx_famcall_ws_parser_t   p;
    static char               desc[16384];

    /* exact sizes, so that AddressSanitizer sees a byte too far */
    buf = malloc(max ? max : 1);
    ngx_famcall_ws_parser_init(&p, buf, max);

    d = desc;
    *d = '\0';
    rc = NGX_FAMCALL_WS_AGAIN;

    for (off = 0; off < n && rc != NGX_FAMCALL_WS_ERROR; off += chunk) {
        chunk = step == 0 ? n : step == RANDOM
                ? 1 + rnd() % ((rnd() & 1) ? 7 : 3000) : step;

        if (chunk > n - off) {
            chunk = n - off;
        }

        piece = malloc(chunk);
        memcpy(piece, s + off, chunk);

        for (pos = 0; pos < chunk; pos += used) {
            rc = ngx_famcall_ws_parse(&p, piece + pos, chunk - pos, &used, &f);

            if (used > chunk - pos
                || (rc == NGX_FAMCALL_WS_AGAIN && used != chunk - pos)
                || (rc == NGX_FAMCALL_WS_FRAME && used == 0))
            {
                d += sprintf(d, "!consumed ");
                rc = NGX_FAMCALL_WS_ERROR;
            }

            if (rc == NGX_FAMCALL_WS_ERROR) {
                d += sprintf(d, "E%d", f.close_code);
                break;
            }

            if (rc == NGX_FAMCALL_WS_AGAIN) {
                continue;
            }

            d += sprintf(d, "%x%s", f.opcode, f.fin ? "F" : "");
            d = describe(d, f.payload, f.len);

            if (f.opcode == NGX_FAMCALL_WS_OP_CLOSE) {
                last_close = f.close_code;
            }

            if (!NGX_FAMCALL_WS_IS_CONTROL(f.opcode)) {
                if (f.data != buf || f.payload + f.len != f.data + f.size) {
                    d += sprintf(d, "!payload");
                }
            }

            if (f.message) {
                *d++ = '=';
                d = describe(d, f.data, f.size);
                memcpy(last, f.data, f.size);
                last_size = f.size;
            }

            *d++ = ' ';
            *d = '\0';
        }

        free(piece);
    }

    free(buf);

    /* trailing spaces make tables harder to read */
    while (d > desc && d[-1] == ' ') {
        *--d = '\0';
    }

    return desc;
}


/* the same stream, whole, byte by byte and in random pieces */
static void
expect(const char *name, size_t max, const char *want)
{
    int          i;
    char         what[64];
    const char  *got = NULL;

    is_str(feed(stream, stream_len, max, 0), want, name);

    snprintf(what, sizeof(what), "%s, byte by byte", name);
    is_str(feed(stream, stream_len, max, 1), want, what);

    for (i = 0; i < 20; i++) {
        got = feed(stream, stream_len, max, RANDOM);
        if (strcmp(got, want) != 0) {
            break;
        }
    }

    snprintf(what, sizeof(what), "%s, in random pieces", name);
    is_str(got, want, what);

    stream_len = 0;
}


static void
test_frames(void)
{
    size_t          i;
    unsigned char  *big;

    put_frame(0x81, "Hello", 5, 0);
    expect("small text frame", MAX, "1F[Hello]=[Hello]");

    put_frame(0x81, "", 0, 0);
    expect("empty text frame", MAX, "1F[]=[]");

    put_frame(0x82, "\x00\xff", 2, 0);
    expect("binary frame", MAX, "2F[\\x00\\xff]=[\\x00\\xff]");

    put_frame(0x81, "Hello", 5, 126);
    put_frame(0x81, "Hello", 5, 127);
    expect("longer length forms than needed", MAX,
           "1F[Hello]=[Hello] 1F[Hello]=[Hello]");

    big = malloc(MAX);
    for (i = 0; i < MAX; i++) {
        big[i] = (unsigned char) ('a' + i % 26);
    }

    put_frame(0x81, big, 126, 0);
    ok(stream[1] == (0x80 | 126), "126 bytes take the 16-bit length");
    expect("126-byte frame", MAX, "1F(126)=(126)");
    ok(last_size == 126 && memcmp(last, big, 126) == 0, "126 bytes unmasked");

    for (i = 0; i < 70000; i++) {
        big[i] = (unsigned char) (i * 7);
    }

    put_frame(0x82, big, 70000, 0);
    ok(stream[1] == (0x80 | 127), "70000 bytes take the 64-bit length");
    expect("70000-byte frame", MAX, "2F(70000)=(70000)");
    ok(last_size == 70000 && memcmp(last, big, 70000) == 0,
       "70000 bytes unmasked");

    put_frame(0x89, "ping", 4, 0);
    put_frame(0x8a, "", 0, 0);
    put_frame(0x89, big, 125, 0);
    expect("ping, empty pong, 125-byte ping", MAX, "9F[ping] aF[] 9F(125)");

    put_frame(0x88, "\x03\xe8" "bye", 5, 0);
    expect("close frame", MAX, "8F[\\x03\\xe8bye]");
    ok(last_close == 1000, "close frame carries 1000");

    put_frame(0x88, "", 0, 0);
    expect("empty close frame", MAX, "8F[]");
    ok(last_close == 1005, "empty close frame reads as 1005");

    /* fragments with control frames between them */
    put_frame(0x01, "Hel", 3, 0);
    put_frame(0x89, "pi", 2, 0);
    put_frame(0x00, "lo ", 3, 0);
    put_frame(0x8a, "", 0, 0);
    put_frame(0x80, "world", 5, 0);
    put_frame(0x82, "next", 4, 0);
    expect("fragments with a ping and a pong between", MAX,
           "1[Hel] 9F[pi] 0[lo ] aF[] 0F[world]=[Hello world] "
           "2F[next]=[next]");

    put_frame(0x02, "", 0, 0);
    put_frame(0x00, "", 0, 0);
    put_frame(0x80, "x", 1, 0);
    expect("empty fragments", MAX, "2[] 0[] 0F[x]=[x]");

    /* the message limit counts the whole message, not one frame */
    put_frame(0x01, "abcdef", 6, 0);
    put_frame(0x80, "ghij", 4, 0);
    put_frame(0x81, "0123456789", 10, 0);
    expect("messages of exactly the limit", 10,
           "1[abcdef] 0F[ghij]=[abcdefghij] 1F[0123456789]=[0123456789]");

    put_frame(0x01, "abcdef", 6, 0);
    put_frame(0x89, "a ping is not counted", 21, 0);
    put_frame(0x80, "ghijk", 5, 0);
    expect("fragments above the limit: 1009", 10,
           "1[abcdef] 9F[a ping is not counted] E1009");

    put_frame(0x82, big, 11, 0);
    expect("one frame above the limit: 1009", 10, "E1009");

    put_raw(B("\x82\xff\x00\x00\x00\x01\x00\x00\x00\x00"));
    expect("a 4 GiB frame: 1009 before its payload", MAX, "E1009");

    free(big);
}


typedef struct {
    const char            *name;
    const unsigned char   *bytes;
    size_t                 len;
    const char            *want;
} stream_case_t;


/* hand-written frames; the masking key 00000000 leaves payloads readable */
static const stream_case_t  errors[] = {
    { "RSV1 set", B("\xc1\x80\0\0\0\0"), "E1002" },
    { "RSV2 set", B("\xa1\x80\0\0\0\0"), "E1002" },
    { "RSV3 set", B("\x91\x80\0\0\0\0"), "E1002" },
    { "opcode 3", B("\x83\x80\0\0\0\0"), "E1002" },
    { "opcode 7", B("\x87\x80\0\0\0\0"), "E1002" },
    { "opcode B", B("\x8b\x80\0\0\0\0"), "E1002" },
    { "opcode F", B("\x8f\x80\0\0\0\0"), "E1002" },
    { "unmasked frame", B("\x81\x05Hello"), "E1002" },
    { "fragmented ping", B("\x09\x80\0\0\0\0"), "E1002" },
    { "fragmented close", B("\x08\x80\0\0\0\0"), "E1002" },
    { "ping of 126 bytes", B("\x89\xfe\x00\x7e"), "E1002" },
    { "pong of 126 (7-bit form)", B("\x8a\xfe"), "E1002" },
    { "close of 127 form", B("\x88\xff"), "E1002" },
    { "continuation first", B("\x80\x81\0\0\0\0x"), "E1002" },
    { "continuation after a message",
      B("\x81\x81\0\0\0\0x\x80\x81\0\0\0\0y"), "1F[x]=[x] E1002" },
    { "text inside a message",
      B("\x01\x81\0\0\0\0a\x81\x81\0\0\0\0b"), "1[a] E1002" },
    { "binary inside a message",
      B("\x01\x81\0\0\0\0a\x89\x80\0\0\0\0\x02\x81\0\0\0\0b"),
      "1[a] 9F[] E1002" },
    { "64-bit length, top bit set",
      B("\x82\xff\x80\0\0\0\0\0\0\0"), "E1002" },
    { "close of 1 byte", B("\x88\x81\0\0\0\0\x03"), "E1002" },
    { "close 999", B("\x88\x82\0\0\0\0\x03\xe7"), "E1002" },
    { "close 1005", B("\x88\x82\0\0\0\0\x03\xed"), "E1002" },
    { "close 1000, reason not UTF-8",
      B("\x88\x83\0\0\0\0\x03\xe8\xff"), "E1007" },
    { "overlong /", B("\x81\x82\0\0\0\0\xc0\xaf"), "E1007" },
    { "overlong 3 bytes", B("\x81\x83\0\0\0\0\xe0\x80\xaf"), "E1007" },
    { "surrogate", B("\x81\x83\0\0\0\0\xed\xa0\x80"), "E1007" },
    { "above U+10FFFF", B("\x81\x84\0\0\0\0\xf4\x90\x80\x80"), "E1007" },
    { "F5 lead byte", B("\x81\x84\0\0\0\0\xf5\x80\x80\x80"), "E1007" },
    { "truncated at message end", B("\x81\x82\0\0\0\0\xe2\x82"), "E1007" },
    { "truncated across fragments",
      B("\x01\x82\0\0\0\0a\xe2\x80\x81\0\0\0\0\x82"), "1[a\\xe2] E1007" },
    { "bad byte fails before the frame ends",
      B("\x81\x85\0\0\0\0ab\xff"), "E1007" },
    { "binary is not UTF-8 checked",
      B("\x82\x82\0\0\0\0\xc0\xaf"), "2F[\\xc0\\xaf]=[\\xc0\\xaf]" },
    { "ping is not UTF-8 checked",
      B("\x89\x81\0\0\0\0\xff"), "9F[\\xff]" },
    { NULL, NULL, 0, NULL }
};


static const stream_case_t  utf8_streams[] = {
    { "euro sign split across three fragments",
      B("\x01\x82\0\0\0\0a\xe2\x00\x81\0\0\0\0\x82\x80\x81\0\0\0\0\xac"),
      "1[a\\xe2] 0[\\x82] 0F[\\xac]=[a\\xe2\\x82\\xac]" },
    { "4-byte character split, a ping between",
      B("\x01\x81\0\0\0\0\xf0\x89\x80\0\0\0\0"
        "\x00\x82\0\0\0\0\x9f\x91\x80\x81\0\0\0\0\xb5"),
      "1[\\xf0] 9F[] 0[\\x9f\\x91] 0F[\\xb5]=[\\xf0\\x9f\\x91\\xb5]" },
    { "masked multibyte text",
      B("\x81\x85\x01\x02\x03\x04\xc3\xa1\xe1\x86\xad"),
      "1F[\\xc2\\xa3\\xe2\\x82\\xac]=[\\xc2\\xa3\\xe2\\x82\\xac]" },
    { NULL, NULL, 0, NULL }
};


static void
test_streams(const stream_case_t *c)
{
    for ( /* void */ ; c->name; c++) {
        put_raw(c->bytes, c->len);
        expect(c->name, MAX, c->want);
    }
}


static void
test_sticky(void)
{
    size_t                    used;
    unsigned char             buf[16];
    ngx_famcall_ws_frame_t    f;
    ngx_famcall_ws_parser_t   p;

    ngx_famcall_ws_parser_init(&p, buf, sizeof(buf));

    ok(ngx_famcall_ws_parse(&p, B("\x81\x05Hello"), &used, &f)
       == NGX_FAMCALL_WS_ERROR && used == 2 && f.close_code == 1002,
       "an unmasked frame fails at its second byte");

    f.close_code = 0;
    ok(ngx_famcall_ws_parse(&p, B("\x81\x80\0\0\0\0"), &used, &f)
       == NGX_FAMCALL_WS_ERROR && used == 0 && f.close_code == 1002,
       "and the reader stays failed");
}


typedef struct {
    const char            *name;
    const unsigned char   *s;
    size_t                 len;
    int                    want;   /* 1 valid, 0 invalid, -1 incomplete */
} utf8_case_t;


static const utf8_case_t  utf8_cases[] = {
    { "empty", B(""), 1 },
    { "ASCII", B("hello"), 1 },
    { "U+0080", B("\xc2\x80"), 1 },
    { "U+07FF", B("\xdf\xbf"), 1 },
    { "U+0800", B("\xe0\xa0\x80"), 1 },
    { "U+D7FF", B("\xed\x9f\xbf"), 1 },
    { "U+E000", B("\xee\x80\x80"), 1 },
    { "U+FFFF", B("\xef\xbf\xbf"), 1 },
    { "U+10000", B("\xf0\x90\x80\x80"), 1 },
    { "U+10FFFF", B("\xf4\x8f\xbf\xbf"), 1 },
    { "Greek", B("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), 1 },
    { "lone continuation", B("\x80"), 0 },
    { "lone BF", B("a\xbf"), 0 },
    { "overlong NUL", B("\xc0\x80"), 0 },
    { "overlong C1", B("\xc1\xbf"), 0 },
    { "overlong 3 bytes", B("\xe0\x9f\xbf"), 0 },
    { "overlong 4 bytes", B("\xf0\x8f\xbf\xbf"), 0 },
    { "surrogate D800", B("\xed\xa0\x80"), 0 },
    { "surrogate DFFF", B("\xed\xbf\xbf"), 0 },
    { "U+110000", B("\xf4\x90\x80\x80"), 0 },
    { "F5", B("\xf5\x80\x80\x80"), 0 },
    { "FF", B("\xff"), 0 },
    { "ASCII where a continuation is due", B("\xc2\x41"), 0 },
    { "short 3-byte form", B("\xe2\x82\x41"), 0 },
    { "error then valid", B("\xc0\xafok"), 0 },
    { "incomplete 2 bytes", B("\xc2"), -1 },
    { "incomplete 3 bytes", B("\xe2\x82"), -1 },
    { "incomplete 4 bytes", B("\xf0\x9f\x91"), -1 },
    { NULL, NULL, 0, 0 }
};


static int
utf8_result(uint32_t state)
{
    return state == NGX_FAMCALL_WS_UTF8_ACCEPT ? 1
           : state == NGX_FAMCALL_WS_UTF8_REJECT ? 0 : -1;
}


static void
test_utf8(void)
{
    int                 same;
    size_t              k;
    uint32_t            st;
    const utf8_case_t  *c;

    for (c = utf8_cases; c->name; c++) {
        st = ngx_famcall_ws_utf8(NGX_FAMCALL_WS_UTF8_ACCEPT, c->s, c->len);

        /* any split point: the checker resumes where it stopped */
        same = 1;
        for (k = 0; k <= c->len; k++) {
            same &= ngx_famcall_ws_utf8(
                        ngx_famcall_ws_utf8(NGX_FAMCALL_WS_UTF8_ACCEPT,
                                            c->s, k),
                        c->s + k, c->len - k) == st;
        }

        ok(utf8_result(st) == c->want && same, "utf8: %s is %s", c->name,
           c->want == 1 ? "valid" : c->want == 0 ? "invalid" : "incomplete");
    }
}


typedef struct {
    const unsigned char   *s;
    size_t                 len;
    int                    want;
} close_case_t;


static const close_case_t  close_cases[] = {
    { B(""), 0 },
    { B("\x03"), 1002 },
    { B("\x03\xe8"), 0 },                       /* 1000 */
    { B("\x03\xe9"), 0 },                       /* 1001 */
    { B("\x03\xeb"), 0 },                       /* 1003 */
    { B("\x03\xec"), 1002 },                    /* 1004 */
    { B("\x03\xed"), 1002 },                    /* 1005 */
    { B("\x03\xee"), 1002 },                    /* 1006 */
    { B("\x03\xef"), 0 },                       /* 1007 */
    { B("\x03\xf3"), 0 },                       /* 1011 */
    { B("\x03\xf4"), 1002 },                    /* 1012 */
    { B("\x03\xf7"), 1002 },                    /* 1015 */
    { B("\x03\xe7"), 1002 },                    /* 999 */
    { B("\x00\x00"), 1002 },                    /* 0 */
    { B("\x0b\xb7"), 1002 },                    /* 2999 */
    { B("\x0b\xb8"), 0 },                       /* 3000 */
    { B("\x13\x87"), 0 },                       /* 4999 */
    { B("\x13\x88"), 1002 },                    /* 5000 */
    { B("\xff\xff"), 1002 },                    /* 65535 */
    { B("\x03\xe8" "bye"), 0 },
    { B("\x03\xe8" "\xce\xba\xe1\xbd\xb9"), 0 },
    { B("\x03\xe8" "\xce"), 1007 },
    { B("\x03\xe8" "\xed\xa0\x80"), 1007 },
    { NULL, 0, 0 }
};


static void
test_close(void)
{
    char                 reason[300];
    size_t               n, i;
    unsigned char        out[NGX_FAMCALL_WS_CONTROL_MAX];
    const close_case_t  *c;

    for (c = close_cases; c->s; c++) {
        ok(ngx_famcall_ws_close_check(c->s, c->len) == c->want,
           "close payload of %zu bytes, code %d: %d", c->len,
           c->len >= 2 ? c->s[0] << 8 | c->s[1] : -1, c->want);
    }

    n = ngx_famcall_ws_close_payload(out, 1000, "bye", 3);
    ok(n == 5 && memcmp(out, "\x03\xe8" "bye", 5) == 0,
       "close payload 1000 bye");

    n = ngx_famcall_ws_close_payload(out, 1011, NULL, 0);
    ok(n == 2 && memcmp(out, "\x03\xf3", 2) == 0, "close payload 1011");

    memset(reason, 'x', sizeof(reason));
    n = ngx_famcall_ws_close_payload(out, 1009, reason, 300);
    ok(n == 125 && ngx_famcall_ws_close_check(out, n) == 0,
       "a long reason is cut to 123 bytes");

    /* 150 two-byte characters: 123 would cut the 62nd in half */
    for (i = 0; i < 150; i++) {
        memcpy(reason + 2 * i, "\xc3\xa9", 2);
    }

    n = ngx_famcall_ws_close_payload(out, 1009, reason, 300);
    ok(n == 124 && ngx_famcall_ws_close_check(out, n) == 0,
       "and never inside a character");
}


typedef struct {
    int                    opcode;
    int                    fin;
    uint64_t               len;
    const unsigned char   *want;
    size_t                 want_len;
} header_case_t;


static const header_case_t  headers[] = {
    { NGX_FAMCALL_WS_OP_TEXT, 1, 0, B("\x81\x00") },
    { NGX_FAMCALL_WS_OP_TEXT, 1, 125, B("\x81\x7d") },
    { NGX_FAMCALL_WS_OP_BINARY, 1, 126, B("\x82\x7e\x00\x7e") },
    { NGX_FAMCALL_WS_OP_TEXT, 0, 65535, B("\x01\x7e\xff\xff") },
    { NGX_FAMCALL_WS_OP_CONT, 1, 65536,
      B("\x80\x7f\x00\x00\x00\x00\x00\x01\x00\x00") },
    { NGX_FAMCALL_WS_OP_BINARY, 1, 0x0102030405060708ULL,
      B("\x82\x7f\x01\x02\x03\x04\x05\x06\x07\x08") },
    { NGX_FAMCALL_WS_OP_CLOSE, 1, 2, B("\x88\x02") },
    { NGX_FAMCALL_WS_OP_PONG, 1, 4, B("\x8a\x04") },
    { 0, 0, 0, NULL, 0 }
};


static void
test_header(void)
{
    size_t                n;
    unsigned char         out[NGX_FAMCALL_WS_HEADER_MAX];
    const header_case_t  *c;

    for (c = headers; c->want; c++) {
        n = ngx_famcall_ws_frame_header(out, c->opcode, c->fin, c->len);
        ok(n == c->want_len && memcmp(out, c->want, n) == 0,
           "header: opcode %x fin %d length %llu", c->opcode, c->fin,
           (unsigned long long) c->len);
    }
}


int
main(void)
{
    test_frames();
    test_streams(errors);
    test_streams(utf8_streams);
    test_sticky();
    test_utf8();
    test_close();
    test_header();

    return done_testing();
}
