/*
 * famcall: access tokens (JWT, HS256 pinned, libjwt), opaque refresh tokens
 * and the hashes they are stored under (OpenSSL).
 * Pure C (no nginx headers), so t/unit/ tests it directly.
 */

#ifndef _NGX_FAMCALL_TOKEN_H_INCLUDED_
#define _NGX_FAMCALL_TOKEN_H_INCLUDED_


#include <stddef.h>
#include <time.h>


#define NGX_FAMCALL_JWT_ISSUER      "famcall"
#define NGX_FAMCALL_JWT_KEY_MIN     32
#define NGX_FAMCALL_ID_LEN          36     /* a UUID */
#define NGX_FAMCALL_REFRESH_LEN     43     /* 32 bytes, base64url */
#define NGX_FAMCALL_HEX256_LEN      64


typedef struct {
    unsigned char  user[16];                  /* the user, binary */
    char           sub[NGX_FAMCALL_ID_LEN + 1];   /* the same, lowercase */
    char           sid[NGX_FAMCALL_ID_LEN + 1];   /* refresh family, or "" */
    time_t         exp;
} ngx_famcall_jwt_claims_t;


/* a signed token in *out (free() it), or -1 */
int ngx_famcall_jwt_issue(const unsigned char *key, size_t keylen,
    const char *sub, const char *sid, time_t now, time_t ttl, char **out);

/*
 * The one place an access token is verified and its claims read (the HTTP
 * API's bearer tokens, the WebSocket handshake, the socket's auth event).
 * 0 and the claims when token (len bytes, not NUL-terminated) is an HS256
 * JWT signed with key, issued by us, unexpired at now, for a UUID subject;
 * -1 otherwise.
 */
int ngx_famcall_jwt_verify(const unsigned char *key, size_t keylen,
    const char *token, size_t len, time_t now,
    ngx_famcall_jwt_claims_t *claims);

/* 32 random bytes, base64url without padding, NUL-terminated */
int ngx_famcall_random_token(char out[NGX_FAMCALL_REFRESH_LEN + 1]);

/* 6 uniformly random digits, NUL-terminated */
int ngx_famcall_random_code(char out[7]);

void ngx_famcall_sha256_hex(const void *data, size_t len,
    char out[NGX_FAMCALL_HEX256_LEN + 1]);
void ngx_famcall_hmac_sha256_hex(const void *key, size_t keylen,
    const void *data, size_t len, char out[NGX_FAMCALL_HEX256_LEN + 1]);


#endif /* _NGX_FAMCALL_TOKEN_H_INCLUDED_ */
