/*
 * Unit tests: ngx_famcall_token.c (JWT issue/verify, refresh tokens,
 * one-time codes, hashes).
 */

#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tap.h"
#include "ngx_famcall_token.h"


static const unsigned char  key[] = "0123456789abcdef0123456789abcdef";
static const unsigned char  other[] = "fedcba9876543210fedcba9876543210";

#define SUB  "0b6e5b2c-1d3a-4c5e-9f00-1234567890ab"
#define SID  "11111111-2222-4333-8444-555555555555"


static void b64url(const unsigned char *in, size_t len, char *out);
static char *forge(const char *header, const char *payload,
    const EVP_MD *md, const unsigned char *k);


static void
test_jwt(void)
{
    char                      *tok, *t, *p;
    time_t                     now = 1800000000;
    ngx_famcall_jwt_claims_t   c;

    ok(ngx_famcall_jwt_issue(key, 32, SUB, SID, now, 900, &tok) == 0,
       "issue a token");
    ok(ngx_famcall_jwt_verify(key, 32, tok, strlen(tok), now + 10, &c) == 0,
       "it verifies");
    is_str(c.sub, SUB, "sub round-trips");
    is_str(c.sid, SID, "sid round-trips");
    ok(c.exp == now + 900, "exp is now + ttl");

    ok(ngx_famcall_jwt_verify(key, 32, tok, strlen(tok), now + 900, &c) != 0,
       "refused at expiry");
    ok(ngx_famcall_jwt_verify(other, 32, tok, strlen(tok), now, &c) != 0,
       "refused with another key");
    ok(ngx_famcall_jwt_verify(key, 32, tok, strlen(tok) - 1, now, &c) != 0,
       "refused when truncated");

    /* flip a character of the payload */
    t = strdup(tok);
    p = strchr(t, '.') + 5;
    *p = (*p == 'A') ? 'B' : 'A';
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) != 0,
       "refused when the payload is tampered with");
    free(t);
    free(tok);

    t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}",
              "{\"iss\":\"famcall\",\"sub\":\"" SUB "\",\"exp\":1900000000}",
              NULL, NULL);
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) != 0,
       "alg none refused");
    free(t);

    t = forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
              "{\"iss\":\"famcall\",\"sub\":\"" SUB "\",\"exp\":1900000000}",
              EVP_sha512(), key);
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) != 0,
       "HS512 with the right key refused: the algorithm is pinned");
    free(t);

    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
              "{\"iss\":\"famcall\",\"sub\":\"" SUB "\",\"exp\":1900000000}",
              EVP_sha256(), key);
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) == 0,
       "a hand-made HS256 token verifies (the forge helper is right)");
    free(t);

    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
              "{\"iss\":\"other\",\"sub\":\"" SUB "\",\"exp\":1900000000}",
              EVP_sha256(), key);
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) != 0,
       "another issuer refused");
    free(t);

    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
              "{\"iss\":\"famcall\",\"exp\":1900000000}", EVP_sha256(), key);
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) != 0,
       "no sub refused");
    free(t);

    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
              "{\"iss\":\"famcall\",\"sub\":\"admin\",\"exp\":1900000000}",
              EVP_sha256(), key);
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) != 0,
       "a sub that is not a UUID refused");
    free(t);

    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
              "{\"iss\":\"famcall\",\"sub\":\"" SUB "\"}", EVP_sha256(), key);
    ok(ngx_famcall_jwt_verify(key, 32, t, strlen(t), now, &c) != 0,
       "no exp refused");
    free(t);

    ok(ngx_famcall_jwt_verify(key, 32, "", 0, now, &c) != 0, "empty refused");
    ok(ngx_famcall_jwt_verify(key, 32, "a.b.c", 5, now, &c) != 0,
       "garbage refused");
}


static void
test_random(void)
{
    int     i, counts[10] = { 0 }, all_digits = 1;
    char    a[NGX_FAMCALL_REFRESH_LEN + 1], b[NGX_FAMCALL_REFRESH_LEN + 1];
    char    code[7];
    size_t  j;

    ok(ngx_famcall_random_token(a) == 0 && ngx_famcall_random_token(b) == 0,
       "refresh tokens made");
    ok(strlen(a) == NGX_FAMCALL_REFRESH_LEN && strcmp(a, b) != 0,
       "43 characters, and different each time");
    ok(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                 "0123456789-_") == NGX_FAMCALL_REFRESH_LEN,
       "base64url alphabet");

    for (i = 0; i < 2000; i++) {
        ngx_famcall_random_code(code);
        if (strlen(code) != 6 || strspn(code, "0123456789") != 6) {
            all_digits = 0;
        }
        for (j = 0; j < 6; j++) {
            counts[code[j] - '0']++;
        }
    }

    ok(all_digits, "codes are 6 digits");

    /* 12000 digits: each should appear ~1200 times */
    for (i = 0; i < 10; i++) {
        if (counts[i] < 900 || counts[i] > 1500) {
            break;
        }
    }
    ok(i == 10, "every digit appears about as often as the others");
}


static void
test_hashes(void)
{
    char  out[NGX_FAMCALL_HEX256_LEN + 1];

    ngx_famcall_sha256_hex("abc", 3, out);
    is_str(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "sha256(abc)");

    /* RFC 4231 test case 2 */
    ngx_famcall_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28,
                                out);
    is_str(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
           "hmac-sha256 (RFC 4231 case 2)");
}


int
main(void)
{
    test_jwt();
    test_random();
    test_hashes();

    return done_testing();
}


static void
b64url(const unsigned char *in, size_t len, char *out)
{
    int     n, i;

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);

    for (i = 0; i < n; i++) {
        if (out[i] == '+') {
            out[i] = '-';
        } else if (out[i] == '/') {
            out[i] = '_';
        } else if (out[i] == '=') {
            out[i] = '\0';
            break;
        }
    }

    out[n] = '\0';
}


/* a JWT built by hand, signed with md/k, or unsigned when md is NULL */
static char *
forge(const char *header, const char *payload, const EVP_MD *md,
    const unsigned char *k)
{
    char           *t, sig[200];
    unsigned int    mdlen;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    size_t          n;

    t = calloc(1, 2048);
    b64url((const unsigned char *) header, strlen(header), t);
    strcat(t, ".");
    n = strlen(t);
    b64url((const unsigned char *) payload, strlen(payload), t + n);
    strcat(t, ".");

    if (md != NULL) {
        HMAC(md, k, 32, (unsigned char *) t, strlen(t) - 1, mac, &mdlen);
        b64url(mac, mdlen, sig);
        strcat(t, sig);
    }

    return t;
}
