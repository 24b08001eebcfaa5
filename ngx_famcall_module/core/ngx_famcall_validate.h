/*
 * famcall: checks and normalisation of single input values.
 * Pure C (no nginx headers), so t/unit/ tests it directly.
 *
 * Every check has the same shape: it reads len bytes of in (valid UTF-8,
 * as jansson guarantees), writes the normalised value into out (room for
 * len + 1 bytes; normalising never grows a value), and returns NULL when
 * the value is acceptable or a message saying what is wrong.
 */

#ifndef _NGX_FAMCALL_VALIDATE_H_INCLUDED_
#define _NGX_FAMCALL_VALIDATE_H_INCLUDED_


#include <stddef.h>


/* the largest sequence number: 2^53 - 1, exact in every JSON client */
#define NGX_FAMCALL_SEQ_MAX   9007199254740991LL

#define NGX_FAMCALL_UUID_LEN  36     /* in text, without the NUL */


typedef const char *(*ngx_famcall_check_pt)(const char *in, size_t len,
    char *out, size_t *outlen);


const char *ngx_famcall_check_email(const char *in, size_t len, char *out,
    size_t *outlen);
const char *ngx_famcall_check_password(const char *in, size_t len, char *out,
    size_t *outlen);
const char *ngx_famcall_check_display_name(const char *in, size_t len,
    char *out, size_t *outlen);
const char *ngx_famcall_check_username(const char *in, size_t len, char *out,
    size_t *outlen);
const char *ngx_famcall_check_phone(const char *in, size_t len, char *out,
    size_t *outlen);
const char *ngx_famcall_check_url(const char *in, size_t len, char *out,
    size_t *outlen);
const char *ngx_famcall_check_otp_code(const char *in, size_t len, char *out,
    size_t *outlen);
const char *ngx_famcall_check_refresh_token(const char *in, size_t len,
    char *out, size_t *outlen);
const char *ngx_famcall_check_uuid(const char *in, size_t len, char *out,
    size_t *outlen);

const char *ngx_famcall_check_message_body(const char *in, size_t len,
    char *out, size_t *outlen);
const char *ngx_famcall_check_report_reason(const char *in, size_t len,
    char *out, size_t *outlen);
const char *ngx_famcall_check_report_text(const char *in, size_t len,
    char *out, size_t *outlen);
const char *ngx_famcall_check_search_prefix(const char *in, size_t len,
    char *out, size_t *outlen);

/*
 * The one UUID parser: 36 characters (hex digits, either case, and dashes
 * at 8, 13, 18 and 23) into 16 bytes; 0, or -1 when in is not a UUID.
 * Fast enough for the bus, which parses two per event in every worker.
 */
int ngx_famcall_uuid_parse(const char *in, size_t len, unsigned char *out);

/* 16 bytes as a lowercase UUID, NUL-terminated (NGX_FAMCALL_UUID_LEN + 1) */
void ngx_famcall_uuid_format(const unsigned char *id, char *out);

/* UTF-8 code points in a valid UTF-8 string */
size_t ngx_famcall_utf8_length(const char *s, size_t len);


#endif /* _NGX_FAMCALL_VALIDATE_H_INCLUDED_ */
