/*
 * famcall: tokens and hashes (see the header).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ngx_famcall_token.h"
#include "ngx_famcall_validate.h"


#define JWT_MAX_LEN  2048


static void hex(const unsigned char *in, size_t len, char *out);


int
ngx_famcall_jwt_issue(const unsigned char *key, size_t keylen,
    const char *sub, const char *sid, time_t now, time_t ttl, char **out)
{
    jwt_t  *jwt;
    char   *s;

    *out = NULL;

    if (jwt_new(&jwt) != 0) {
        return -1;
    }

    if (jwt_add_grant(jwt, "iss", NGX_FAMCALL_JWT_ISSUER) != 0
        || jwt_add_grant(jwt, "sub", sub) != 0
        || (sid != NULL && sid[0] && jwt_add_grant(jwt, "sid", sid) != 0)
        || jwt_add_grant_int(jwt, "iat", (long) now) != 0
        || jwt_add_grant_int(jwt, "exp", (long) (now + ttl)) != 0
        || jwt_set_alg(jwt, JWT_ALG_HS256, key, (int) keylen) != 0)
    {
        jwt_free(jwt);
        return -1;
    }

    s = jwt_encode_str(jwt);
    jwt_free(jwt);

    if (s == NULL) {
        return -1;
    }

    *out = s;
    return 0;
}


int
ngx_famcall_jwt_verify(const unsigned char *key, size_t keylen,
    const char *token, size_t len, time_t now,
    ngx_famcall_jwt_claims_t *claims)
{
    int            rc;
    long           exp;
    char           buf[JWT_MAX_LEN + 1];
    jwt_t         *jwt;
    const char    *iss, *sub, *sid;
    unsigned char  id[16];

    if (len == 0 || len > JWT_MAX_LEN || memchr(token, '\0', len)) {
        return -1;
    }

    memcpy(buf, token, len);
    buf[len] = '\0';

    jwt = NULL;
    if (jwt_decode(&jwt, buf, key, (int) keylen) != 0 || jwt == NULL) {
        return -1;
    }

    rc = -1;

    /* pinned: a token naming any other algorithm is refused */
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        goto done;
    }

    iss = jwt_get_grant(jwt, "iss");
    if (iss == NULL || strcmp(iss, NGX_FAMCALL_JWT_ISSUER) != 0) {
        goto done;
    }

    errno = 0;
    exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || exp <= (long) now) {
        goto done;
    }

    sub = jwt_get_grant(jwt, "sub");
    if (sub == NULL
        || ngx_famcall_uuid_parse(sub, strlen(sub), claims->user) != 0)
    {
        goto done;
    }

    ngx_famcall_uuid_format(claims->user, claims->sub);

    claims->sid[0] = '\0';
    sid = jwt_get_grant(jwt, "sid");
    if (sid != NULL) {
        if (ngx_famcall_uuid_parse(sid, strlen(sid), id) != 0) {
            goto done;
        }

        ngx_famcall_uuid_format(id, claims->sid);
    }

    claims->exp = (time_t) exp;
    rc = 0;

done:

    jwt_free(jwt);
    return rc;
}


int
ngx_famcall_random_token(char out[NGX_FAMCALL_REFRESH_LEN + 1])
{
    size_t         i;
    unsigned char  raw[32];
    char           b64[48];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return -1;
    }

    /* 32 bytes -> 44 characters with one '=' of padding */
    EVP_EncodeBlock((unsigned char *) b64, raw, sizeof(raw));

    for (i = 0; i < NGX_FAMCALL_REFRESH_LEN; i++) {
        out[i] = b64[i] == '+' ? '-' : (b64[i] == '/' ? '_' : b64[i]);
    }

    out[NGX_FAMCALL_REFRESH_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));

    return 0;
}


int
ngx_famcall_random_code(char out[7])
{
    uint32_t  v;
    int       i;

    /* rejection sampling: no digit more likely than another */
    do {
        if (RAND_bytes((unsigned char *) &v, sizeof(v)) != 1) {
            return -1;
        }
    } while (v >= 4294000000u);

    v %= 1000000;

    for (i = 5; i >= 0; i--) {
        out[i] = (char) ('0' + v % 10);
        v /= 10;
    }

    out[6] = '\0';
    return 0;
}


void
ngx_famcall_sha256_hex(const void *data, size_t len,
    char out[NGX_FAMCALL_HEX256_LEN + 1])
{
    unsigned char  md[SHA256_DIGEST_LENGTH];

    SHA256(data, len, md);
    hex(md, sizeof(md), out);
}


void
ngx_famcall_hmac_sha256_hex(const void *key, size_t keylen, const void *data,
    size_t len, char out[NGX_FAMCALL_HEX256_LEN + 1])
{
    unsigned int   mdlen;
    unsigned char  md[EVP_MAX_MD_SIZE];

    mdlen = 0;
    HMAC(EVP_sha256(), key, (int) keylen, data, len, md, &mdlen);
    hex(md, mdlen, out);
}


static void
hex(const unsigned char *in, size_t len, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }

    out[2 * len] = '\0';
}
