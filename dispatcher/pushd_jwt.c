/*
 * famcall-pushd: the two provider tokens, signed JWTs.  FCM's OAuth2
 * exchange takes a service account's RS256 assertion; APNs takes an ES256
 * provider token.  ES256 signatures go in a JWT as r || s, 32 bytes each,
 * where OpenSSL writes DER.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pushd.h"


static char *
pushd_b64url(const unsigned char *in, size_t len)
{
    static const char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    char    *out, *p;
    size_t   i;

    out = malloc(len / 3 * 4 + 5);
    if (out == NULL) {
        return NULL;
    }

    p = out;

    for (i = 0; i + 2 < len; i += 3) {
        *p++ = tab[in[i] >> 2];
        *p++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *p++ = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *p++ = tab[in[i + 2] & 63];
    }

    if (len - i == 1) {
        *p++ = tab[in[i] >> 2];
        *p++ = tab[(in[i] & 3) << 4];

    } else if (len - i == 2) {
        *p++ = tab[in[i] >> 2];
        *p++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *p++ = tab[(in[i + 1] & 15) << 2];
    }

    *p = '\0';

    return out;
}


static char *
pushd_b64url_json(json_t *v)
{
    char  *s, *out;

    s = json_dumps(v, JSON_COMPACT);
    if (s == NULL) {
        return NULL;
    }

    out = pushd_b64url((unsigned char *) s, strlen(s));
    free(s);

    return out;
}


EVP_PKEY *
pushd_key_read(const char *pem, size_t len)
{
    BIO       *bio;
    EVP_PKEY  *key;

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        return NULL;
    }

    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    return key;
}


EVP_PKEY *
pushd_key_file(const char *path)
{
    FILE      *f;
    EVP_PKEY  *key;

    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }

    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);

    return key;
}


/* header.claims.signature, malloc'd; NULL on failure */
char *
pushd_jwt_sign(EVP_PKEY *key, int es256, json_t *header, json_t *claims)
{
    char            *h, *c, *sig, *in = NULL, *jwt = NULL;
    size_t           siglen, inlen;
    EVP_MD_CTX      *md;
    ECDSA_SIG       *ec;
    const BIGNUM    *r, *s;
    unsigned char   *der = NULL, raw[64];
    const unsigned char  *p;

    h = pushd_b64url_json(header);
    c = pushd_b64url_json(claims);
    md = EVP_MD_CTX_new();

    if (h == NULL || c == NULL || md == NULL) {
        goto failed;
    }

    inlen = strlen(h) + 1 + strlen(c);
    in = malloc(inlen + 1);
    if (in == NULL) {
        goto failed;
    }

    sprintf(in, "%s.%s", h, c);

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSign(md, NULL, &siglen, (unsigned char *) in, inlen)
           != 1)
    {
        goto failed;
    }

    der = malloc(siglen);
    if (der == NULL
        || EVP_DigestSign(md, der, &siglen, (unsigned char *) in, inlen)
           != 1)
    {
        goto failed;
    }

    if (es256) {
        p = der;
        ec = d2i_ECDSA_SIG(NULL, &p, (long) siglen);
        if (ec == NULL) {
            goto failed;
        }

        ECDSA_SIG_get0(ec, &r, &s);
        if (BN_bn2binpad(r, raw, 32) != 32
            || BN_bn2binpad(s, raw + 32, 32) != 32)
        {
            ECDSA_SIG_free(ec);
            goto failed;
        }

        ECDSA_SIG_free(ec);
        sig = pushd_b64url(raw, 64);

    } else {
        sig = pushd_b64url(der, siglen);
    }

    if (sig == NULL) {
        goto failed;
    }

    jwt = malloc(inlen + 1 + strlen(sig) + 1);
    if (jwt == NULL) {
        free(sig);
        goto failed;
    }

    sprintf(jwt, "%s.%s", in, sig);
    free(sig);

    free(in);
    free(der);
    free(h);
    free(c);
    EVP_MD_CTX_free(md);

    return jwt;

failed:

    free(in);
    free(der);
    free(h);
    free(c);
    EVP_MD_CTX_free(md);

    return NULL;
}
