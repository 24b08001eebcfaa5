/*
 * famcall: checks and normalisation of single input values (see the header).
 */

#include <string.h>

#include "ngx_famcall_validate.h"


#define EMAIL_MAX         254
#define EMAIL_LOCAL_MAX   64
#define PASSWORD_MIN      8
#define PASSWORD_MAX      128
#define NAME_MAX_CHARS    64
#define USERNAME_MIN      3
#define USERNAME_MAX      32
#define URL_MAX           2048
#define REFRESH_LEN       43
#define BODY_MAX_CHARS    4000
#define REPORT_MAX_CHARS  2000


static void trim(const char **s, size_t *len);
static int lower_username(const char *in, size_t len, char *out);
static int is_space(char c);
static int is_ctl(unsigned char c);
static int is_b64url(char c);


size_t
ngx_famcall_utf8_length(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;
    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


const char *
ngx_famcall_check_email(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t       i, at, dot;
    const char  *s = in;

    trim(&s, &len);

    if (len < 3 || len > EMAIL_MAX) {
        return "must be an email address of at most 254 characters";
    }

    at = len;
    dot = 0;

    for (i = 0; i < len; i++) {
        unsigned char  c = (unsigned char) s[i];

        if (is_space((char) c) || is_ctl(c)) {
            return "must be an email address, without spaces";
        }

        if (c == '@') {
            if (at != len) {
                return "must be an email address with one @";
            }
            at = i;

        } else if (c == '.' && at != len) {
            dot = i;
        }

        out[i] = (c >= 'A' && c <= 'Z') ? (char) (c + 32) : (char) c;
    }

    if (at == len || at == 0 || at > EMAIL_LOCAL_MAX) {
        return "must be an email address such as name@example.com";
    }

    /* a dot inside the domain, neither first nor last */
    if (dot == 0 || dot == at + 1 || dot == len - 1) {
        return "must be an email address such as name@example.com";
    }

    out[len] = '\0';
    *outlen = len;

    return NULL;
}


const char *
ngx_famcall_check_password(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  n;

    n = ngx_famcall_utf8_length(in, len);

    if (n < PASSWORD_MIN) {
        return "must be at least 8 characters long";
    }

    if (n > PASSWORD_MAX) {
        return "must be at most 128 characters long";
    }

    if (memchr(in, '\0', len) != NULL) {
        return "must not contain NUL characters";
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


const char *
ngx_famcall_check_display_name(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t       i, n;
    const char  *s = in;

    trim(&s, &len);

    if (len == 0) {
        return "must not be empty";
    }

    n = ngx_famcall_utf8_length(s, len);
    if (n > NAME_MAX_CHARS) {
        return "must be at most 64 characters long";
    }

    for (i = 0; i < len; i++) {
        if (is_ctl((unsigned char) s[i])) {
            return "must not contain control characters";
        }
    }

    memcpy(out, s, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


const char *
ngx_famcall_check_username(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (len < USERNAME_MIN || lower_username(in, len, out) != 0) {
        return "must be 3 to 32 characters of a-z, 0-9, _ and .";
    }

    *outlen = len;
    return NULL;
}


/* E.164: a plus, a non-zero digit, 7 to 15 digits in all */
const char *
ngx_famcall_check_phone(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    if (len < 8 || len > 16 || in[0] != '+' || in[1] < '1' || in[1] > '9') {
        return "must be a phone number in E.164 form, such as +14155550123";
    }

    for (i = 1; i < len; i++) {
        if (in[i] < '0' || in[i] > '9') {
            return "must be a phone number in E.164 form, such as +14155550123";
        }
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


const char *
ngx_famcall_check_url(const char *in, size_t len, char *out, size_t *outlen)
{
    size_t  i, scheme;

    if (len > URL_MAX) {
        return "must be at most 2048 characters long";
    }

    if (len > 8 && strncmp(in, "https://", 8) == 0) {
        scheme = 8;

    } else if (len > 7 && strncmp(in, "http://", 7) == 0) {
        scheme = 7;

    } else {
        return "must be an http:// or https:// URL";
    }

    for (i = 0; i < len; i++) {
        if (is_space(in[i]) || is_ctl((unsigned char) in[i])) {
            return "must be a URL without spaces";
        }
    }

    if (in[scheme] == '/' || in[scheme] == '?' || in[scheme] == '#') {
        return "must be a URL with a host";
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


const char *
ngx_famcall_check_otp_code(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    if (len != 6) {
        return "must be the 6-digit code";
    }

    for (i = 0; i < len; i++) {
        if (in[i] < '0' || in[i] > '9') {
            return "must be the 6-digit code";
        }
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


const char *
ngx_famcall_check_refresh_token(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    if (len != REFRESH_LEN) {
        return "must be a refresh token issued by this server";
    }

    for (i = 0; i < len; i++) {
        if (!is_b64url(in[i])) {
            return "must be a refresh token issued by this server";
        }
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


/* lowercased, so equal ids compare equal as text */
const char *
ngx_famcall_check_uuid(const char *in, size_t len, char *out, size_t *outlen)
{
    unsigned char  id[16];

    if (ngx_famcall_uuid_parse(in, len, id) != 0) {
        return "must be a UUID";
    }

    ngx_famcall_uuid_format(id, out);
    *outlen = NGX_FAMCALL_UUID_LEN;

    return NULL;
}


/*
 * A table, not a conversion per digit: the bus parses two UUIDs per event
 * in every worker (ngx_hextoi() per digit was a tenth of a worker's CPU at
 * 10,000 events/s on 8 workers).  0xff: not a hex digit.
 */
static const unsigned char  hex_value[256] = {
#define X4 0xff, 0xff, 0xff, 0xff
#define X16 X4, X4, X4, X4
    X16, X16, X16,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 10, 11, 12, 13, 14, 15, 0xff, X4, X4,       /* 'A'.. */
    X16,
    0xff, 10, 11, 12, 13, 14, 15, 0xff, X4, X4,       /* 'a'.. */
    X16,
    X16, X16, X16, X16, X16, X16, X16, X16
#undef X16
#undef X4
};


int
ngx_famcall_uuid_parse(const char *in, size_t len, unsigned char *out)
{
    size_t         i, n;
    unsigned char  hi, lo;

    if (len != NGX_FAMCALL_UUID_LEN) {
        return -1;
    }

    for (i = 0, n = 0; i < NGX_FAMCALL_UUID_LEN; /* void */) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (in[i] != '-') {
                return -1;
            }

            i++;
            continue;
        }

        hi = hex_value[(unsigned char) in[i]];
        lo = hex_value[(unsigned char) in[i + 1]];

        if ((hi | lo) == 0xff) {
            return -1;
        }

        out[n++] = (unsigned char) (hi << 4 | lo);
        i += 2;
    }

    return 0;
}


void
ngx_famcall_uuid_format(const unsigned char *id, char *out)
{
    size_t  i;

    static const char  hex[] = "0123456789abcdef";

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *out++ = '-';
        }

        *out++ = hex[id[i] >> 4];
        *out++ = hex[id[i] & 0xf];
    }

    *out = '\0';
}


/* kept as sent (spacing is the sender's), but never blank */
const char *
ngx_famcall_check_message_body(const char *in, size_t len, char *out,
    size_t *outlen)
{
    const char  *s = in;
    size_t       n = len;

    trim(&s, &n);

    if (n == 0) {
        return "must not be empty";
    }

    if (ngx_famcall_utf8_length(in, len) > BODY_MAX_CHARS) {
        return "must be at most 4000 characters long";
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


const char *
ngx_famcall_check_report_reason(const char *in, size_t len, char *out,
    size_t *outlen)
{
    static const char  *reasons[] = {
        "spam", "harassment", "inappropriate", "impersonation", "other", NULL
    };

    const char  **r;

    for (r = reasons; *r; r++) {
        if (strlen(*r) == len && memcmp(*r, in, len) == 0) {
            memcpy(out, in, len);
            out[len] = '\0';
            *outlen = len;
            return NULL;
        }
    }

    return "must be one of spam, harassment, inappropriate, impersonation, "
           "other";
}


const char *
ngx_famcall_check_report_text(const char *in, size_t len, char *out,
    size_t *outlen)
{
    const char  *s = in;

    trim(&s, &len);

    if (ngx_famcall_utf8_length(s, len) > REPORT_MAX_CHARS) {
        return "must be at most 2000 characters long";
    }

    memcpy(out, s, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


/* a username prefix to search for: 2 to 32 of [a-z0-9_.], lowercased */
const char *
ngx_famcall_check_search_prefix(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (len < 2 || lower_username(in, len, out) != 0) {
        return "must be at least 2 characters of a username (a-z, 0-9, _ "
               "and .), or a phone number in E.164 form";
    }

    *outlen = len;
    return NULL;
}


static void
trim(const char **s, size_t *len)
{
    while (*len > 0 && is_space(**s)) {
        (*s)++;
        (*len)--;
    }

    while (*len > 0 && is_space((*s)[*len - 1])) {
        (*len)--;
    }
}


static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


static int
is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}


static int
is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '_';
}


/* in, lowercased, into out when it is at most 32 of [a-z0-9_.]; else -1 */
static int
lower_username(const char *in, size_t len, char *out)
{
    size_t  i;
    char    c;

    if (len > USERNAME_MAX) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        c = in[i];

        if (c >= 'A' && c <= 'Z') {
            c = (char) (c + 32);
        }

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.'))
        {
            return -1;
        }

        out[i] = c;
    }

    out[len] = '\0';
    return 0;
}
