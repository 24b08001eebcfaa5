/*
 * famcall: table-driven checks of JSON request bodies (see the header).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_famcall_json.h"


#define JSON_MAX_DEPTH  16


static int check_object(json_t *obj, const ngx_famcall_field_t *fields,
    ngx_famcall_verror_t *err, size_t plen);
static int check_value(json_t *obj, size_t i, json_t *v,
    const ngx_famcall_field_t *f, ngx_famcall_verror_t *err, size_t plen);
static int check_array(json_t *arr, const ngx_famcall_field_t *f,
    ngx_famcall_verror_t *err, size_t plen);
static int check_string(json_t *obj, size_t i, const ngx_famcall_field_t *f,
    json_t *v, ngx_famcall_verror_t *err);
static size_t path_add(ngx_famcall_verror_t *err, size_t plen,
    const char *fmt, ...);
static int fail(ngx_famcall_verror_t *err, const char *code,
    const char *message);
static int json_depth(json_t *v, int depth);


json_t *
ngx_famcall_json_parse(const char *buf, size_t len, ngx_famcall_verror_t *err)
{
    json_t        *doc;
    json_error_t   jerr;

    doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);

    if (doc == NULL) {
        err->code = "invalid_json";
        err->message = "the request body is not valid JSON";
        err->field = NULL;
        return NULL;
    }

    if (!json_is_object(doc)) {
        json_decref(doc);
        err->code = "invalid_json";
        err->message = "the request body must be a JSON object";
        err->field = NULL;
        return NULL;
    }

    if (json_depth(doc, 0) > JSON_MAX_DEPTH) {
        json_decref(doc);
        err->code = "invalid_json";
        err->message = "the request body is nested too deeply";
        err->field = NULL;
        return NULL;
    }

    return doc;
}


int
ngx_famcall_json_validate(json_t *obj, const ngx_famcall_field_t *fields,
    ngx_famcall_verror_t *err)
{
    err->path[0] = '\0';

    return check_object(obj, fields, err, 0);
}


/*
 * The members of obj against fields.  plen: the length of obj's path in
 * err->path, 0 at the top (where errors name the field as the table does).
 */
static int
check_object(json_t *obj, const ngx_famcall_field_t *fields,
    ngx_famcall_verror_t *err, size_t plen)
{
    size_t                      len;
    json_t                     *v;
    const ngx_famcall_field_t  *f;

    for (f = fields; f->name != NULL; f++) {

        if (plen == 0) {
            err->field = f->name;
            len = 0;

        } else {
            len = path_add(err, plen, ".%s", f->name);
            err->field = err->path;
        }

        v = json_object_get(obj, f->name);

        if (v == NULL) {
            if (!f->required) {
                continue;
            }

            return fail(err, "missing_field", "a required field is missing");
        }

        if (check_value(obj, 0, v, f, err, len) != 0) {
            return -1;
        }
    }

    err->field = NULL;
    return 0;
}


/*
 * One value v, obj's member f->name or (obj an array) its element i,
 * against f; err->field names it already.
 */
static int
check_value(json_t *obj, size_t i, json_t *v, const ngx_famcall_field_t *f,
    ngx_famcall_verror_t *err, size_t plen)
{
    json_int_t  n;

    if (json_is_null(v)) {
        if (f->nullable) {
            return 0;
        }

        return f->required ? fail(err, "missing_field",
                                  "a required field is missing")
                           : fail(err, "invalid_field", "must not be null");
    }

    switch (f->type) {

    case NGX_FAMCALL_F_STRING:
        if (!json_is_string(v)) {
            return fail(err, "invalid_field", "must be a string");
        }

        return check_string(obj, i, f, v, err);

    case NGX_FAMCALL_F_INTEGER:
        if (!json_is_integer(v)) {
            return fail(err, "invalid_field", "must be an integer");
        }

        n = json_integer_value(v);
        if (n < f->min || n > f->max) {
            return fail(err, "invalid_field", "is out of range");
        }

        return 0;

    case NGX_FAMCALL_F_BOOLEAN:
        if (!json_is_boolean(v)) {
            return fail(err, "invalid_field", "must be true or false");
        }

        return 0;

    case NGX_FAMCALL_F_OBJECT:
        if (!json_is_object(v)) {
            return fail(err, "invalid_field", "must be an object");
        }

        if (f->fields == NULL) {
            return 0;
        }

        if (plen == 0) {
            plen = path_add(err, 0, "%s", f->name);
        }

        return check_object(v, f->fields, err, plen);

    case NGX_FAMCALL_F_ARRAY:
        if (!json_is_array(v)) {
            return fail(err, "invalid_field", "must be an array");
        }

        return check_array(v, f, err, plen);
    }

    return fail(err, "internal", "a field of an unknown type");
}


static int
check_array(json_t *arr, const ngx_famcall_field_t *f,
    ngx_famcall_verror_t *err, size_t plen)
{
    size_t   i, n, len;
    json_t  *v;

    n = json_array_size(arr);

    if ((long long) n < f->min) {
        return fail(err, "invalid_field", "has too few elements");
    }

    if (f->max > 0 && (long long) n > f->max) {
        return fail(err, "invalid_field", "has too many elements");
    }

    if (f->fields == NULL) {
        return 0;
    }

    if (plen == 0) {
        plen = path_add(err, 0, "%s", f->name);
    }

    for (i = 0; i < n; i++) {
        len = path_add(err, plen, "[%zu]", i);
        err->field = err->path;

        v = json_array_get(arr, i);

        if (check_value(arr, i, v, f->fields, err, len) != 0) {
            return -1;
        }
    }

    return 0;
}


const char *
ngx_famcall_json_string(json_t *obj, const char *name)
{
    json_t  *v;

    v = json_object_get(obj, name);

    return json_is_string(v) ? json_string_value(v) : NULL;
}


static int
check_string(json_t *obj, size_t i, const ngx_famcall_field_t *f, json_t *v,
    ngx_famcall_verror_t *err)
{
    int          rc;
    char        *out;
    size_t       len, outlen;
    json_t      *norm;
    const char  *msg;

    len = json_string_length(v);

    if ((long long) len < f->min) {
        return fail(err, "invalid_field", "is too short");
    }

    if (f->max > 0 && (long long) len > f->max) {
        return fail(err, "invalid_field", "is too long");
    }

    if (f->check == NULL) {
        return 0;
    }

    out = malloc(len + 1);
    if (out == NULL) {
        return fail(err, "internal", "out of memory");
    }

    msg = f->check(json_string_value(v), len, out, &outlen);

    if (msg != NULL) {
        free(out);
        return fail(err, "invalid_field", msg);
    }

    rc = 0;

    if (outlen != len || memcmp(out, json_string_value(v), len) != 0) {
        norm = json_stringn(out, outlen);

        if (norm == NULL
            || (json_is_array(obj) ? json_array_set_new(obj, i, norm)
                                   : json_object_set_new(obj, f->name, norm))
               != 0)
        {
            rc = fail(err, "internal", "out of memory");
        }
    }

    free(out);
    return rc;
}


/* err->path up to plen, then fmt: the new length (a long path is cut) */
static size_t
path_add(ngx_famcall_verror_t *err, size_t plen, const char *fmt, ...)
{
    int      n;
    va_list  args;

    if (plen >= sizeof(err->path) - 1) {
        return plen;
    }

    va_start(args, fmt);
    n = vsnprintf(err->path + plen, sizeof(err->path) - plen, fmt, args);
    va_end(args);

    if (n < 0) {
        err->path[plen] = '\0';
        return plen;
    }

    plen += (size_t) n;

    return plen < sizeof(err->path) ? plen : sizeof(err->path) - 1;
}


static int
fail(ngx_famcall_verror_t *err, const char *code, const char *message)
{
    err->code = code;
    err->message = message;

    return -1;
}


static int
json_depth(json_t *v, int depth)
{
    int          d, max;
    size_t       i;
    json_t      *item;
    const char  *key;

    if (depth > JSON_MAX_DEPTH) {
        return depth;
    }

    max = depth;

    if (json_is_object(v)) {
        json_object_foreach(v, key, item) {
            d = json_depth(item, depth + 1);
            max = d > max ? d : max;
        }

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            d = json_depth(item, depth + 1);
            max = d > max ? d : max;
        }
    }

    return max;
}
