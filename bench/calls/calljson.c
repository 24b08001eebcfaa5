/*
 * callload: a frame's fields by path, with yajl's event parser (a tree per
 * frame, 150,000 frames a second at the top rate, would cost the generator
 * a good share of the core it shares with the server it measures).
 *
 * The path of a string is its keys joined with dots ("data.call_id"); a
 * string inside an array has none. The handle parses on after a good
 * frame and is replaced after a bad one (yajl 2.1 has no reset).
 */

#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "calljson.h"
#include "../ws/wsload.h"


#define CJ_DEPTH  8
#define CJ_PATH   160

static const char  *cj_paths[J_N] = {
    [J_TYPE] = "type", [J_REF] = "ref", [J_CALL_ID] = "data.call_id",
    [J_CANDIDATE] = "data.candidate", [J_STATUS] = "data.status",
    [J_USER_ID] = "data.user_id", [J_FROM_ID] = "data.from.id",
    [J_CODE] = "error.code", [J_MESSAGE] = "error.message", [J_SRC] = "src",
    [J_P_CANDIDATE] = "payload.candidate.candidate",
    [J_P_MSG] = "payload.msg"
};

static struct {
    yajl_handle   h;
    const char   *f[J_N];
    char         *buf;              /* the copies: they fit in the frame */
    size_t        cap, used;
    char          path[CJ_PATH];    /* the keys down to the current value */
    size_t        plen;
    size_t        base[CJ_DEPTH];   /* plen where each open value began */
    unsigned char arr[CJ_DEPTH];    /* the open value is an array */
    int           depth, deep, values, end;
} cj;


static int
cj_open(int array)
{
    if (cj.depth == 0) {
        if (cj.values++ || array) {
            return 0;               /* not one object */
        }
    }
    if (cj.depth + 1 >= CJ_DEPTH) {
        cj.deep++;                  /* nothing that deep is read */
        return 1;
    }
    cj.depth++;
    cj.arr[cj.depth] = (unsigned char) array;
    cj.base[cj.depth] = cj.plen;
    return 1;
}


static int
cj_close(void)
{
    if (cj.deep) {
        cj.deep--;
        return 1;
    }
    cj.plen = cj.base[cj.depth];
    if (--cj.depth == 0) {
        cj.end = 1;
    }
    return 1;
}


static int
cj_start_map(void *ctx)
{
    (void) ctx;
    return cj_open(0);
}


static int
cj_start_array(void *ctx)
{
    (void) ctx;
    return cj_open(1);
}


static int
cj_end(void *ctx)
{
    (void) ctx;
    return cj_close();
}


static int
cj_key(void *ctx, const unsigned char *s, size_t len)
{
    size_t  at;

    (void) ctx;
    if (cj.deep) {
        return 1;
    }
    at = cj.base[cj.depth];
    if (at) {
        if (at + 1 < CJ_PATH) {
            cj.path[at] = '.';
        }
        at++;
    }
    if (at + len < CJ_PATH) {
        memcpy(cj.path + at, s, len);
    }
    cj.plen = at + len;             /* too long for the buffer: no match */
    return 1;
}


static int
cj_string(void *ctx, const unsigned char *s, size_t len)
{
    char    *d;
    size_t   i;

    (void) ctx;
    if (cj.depth == 0) {
        return 0;                   /* a bare string, not an object */
    }
    if (cj.deep || cj.arr[cj.depth] || cj.plen >= CJ_PATH) {
        return 1;
    }
    for (i = 0; i < J_N; i++) {
        if (strlen(cj_paths[i]) == cj.plen
            && memcmp(cj_paths[i], cj.path, cj.plen) == 0)
        {
            if (len >= cj.cap - cj.used) {
                return 0;
            }
            d = cj.buf + cj.used;
            memcpy(d, s, len);
            d[len] = '\0';
            cj.used += len + 1;
            cj.f[i] = d;
            break;
        }
    }
    return 1;
}


static int
cj_scalar(void)
{
    return cj.depth > 0;
}


static int
cj_null(void *ctx)
{
    (void) ctx;
    return cj_scalar();
}


static int
cj_bool(void *ctx, int b)
{
    (void) ctx;
    (void) b;
    return cj_scalar();
}


static int
cj_number(void *ctx, const char *s, size_t len)
{
    (void) ctx;
    (void) s;
    (void) len;
    return cj_scalar();
}


static const yajl_callbacks  cj_callbacks = {
    cj_null, cj_bool, NULL, NULL, cj_number, cj_string,
    cj_start_map, cj_key, cj_end, cj_start_array, cj_end
};


const char **
cj_parse(const unsigned char *p, size_t n)
{
    int  ok;

    memset(cj.f, 0, sizeof(cj.f));
    if (cj.h == NULL) {
        cj.h = yajl_alloc(&cj_callbacks, NULL, NULL);
        if (cj.h == NULL
            || !yajl_config(cj.h, yajl_allow_multiple_values, 1))
        {
            die("yajl_alloc failed");
        }
    }
    if (n >= cj.cap) {
        cj.cap = n + 1024;
        cj.buf = realloc(cj.buf, cj.cap);
        if (cj.buf == NULL) {
            die("out of memory");
        }
    }
    cj.used = cj.plen = 0;
    cj.depth = cj.deep = cj.values = cj.end = 0;

    ok = yajl_parse(cj.h, p, n) == yajl_status_ok && cj.end;
    if (!ok) {
        yajl_free(cj.h);
        cj.h = NULL;
        return NULL;
    }
    return cj.f;
}
