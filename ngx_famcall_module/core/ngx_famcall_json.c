/*
 * famcall: table-driven checks of JSON request bodies (see the header).
 */

#include <stdlib.h>
#include <string.h>

#include "ngx_famcall_json.h"


#define JSON_MAX_DEPTH  16


static int check_string(json_t *obj, const ngx_famcall_field_t *f,
    json_t *v, ngx_famcall_verror_t *err);
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
    json_t                     *v;
    json_int_t                  n;
    const ngx_famcall_field_t  *f;

    for (f = fields; f->name != NULL; f++) {
        err->field = f->name;

        v = json_object_get(obj, f->name);

        if (v == NULL) {
            if (!f->required) {
                continue;
            }

            err->code = "missing_field";
            err->message = "a required field is missing";
            return -1;
        }

        if (json_is_null(v) && !f->nullable) {
            err->code = f->required ? "missing_field" : "invalid_field";
            err->message = f->required ? "a required field is missing"
                                       : "must not be null";
            return -1;
        }

        if (json_is_null(v)) {
            continue;
        }

        switch (f->type) {

        case NGX_FAMCALL_F_STRING:
            if (!json_is_string(v)) {
                err->code = "invalid_field";
                err->message = "must be a string";
                return -1;
            }

            if (check_string(obj, f, v, err) != 0) {
                return -1;
            }

            break;

        case NGX_FAMCALL_F_INTEGER:
            if (!json_is_integer(v)) {
                err->code = "invalid_field";
                err->message = "must be an integer";
                return -1;
            }

            n = json_integer_value(v);
            if (n < f->min || n > f->max) {
                err->code = "invalid_field";
                err->message = "is out of range";
                return -1;
            }

            break;
        }
    }

    err->field = NULL;
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
check_string(json_t *obj, const ngx_famcall_field_t *f, json_t *v,
    ngx_famcall_verror_t *err)
{
    char        *out;
    size_t       len, outlen;
    const char  *msg;

    if (f->check == NULL) {
        return 0;
    }

    len = json_string_length(v);

    out = malloc(len + 1);
    if (out == NULL) {
        err->code = "internal";
        err->message = "out of memory";
        return -1;
    }

    msg = f->check(json_string_value(v), len, out, &outlen);

    if (msg != NULL) {
        free(out);
        err->code = "invalid_field";
        err->message = msg;
        return -1;
    }

    if (outlen != len || memcmp(out, json_string_value(v), len) != 0) {
        json_object_set_new(obj, f->name, json_stringn(out, outlen));
    }

    free(out);
    return 0;
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
