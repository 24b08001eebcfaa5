/*
 * famcall: decoding the events clients send (see ngx_famcall_event.h).
 */

#include <string.h>

#include "ngx_famcall_event.h"


static int ngx_famcall_event_fail(ngx_famcall_verror_t *err,
    const char *code, const char *message);


int
ngx_famcall_event_decode(const char *buf, size_t len,
    const ngx_famcall_event_type_t *types, size_t ntypes,
    ngx_famcall_event_t *ev, ngx_famcall_verror_t *err)
{
    size_t       i;
    json_t      *type, *ref;
    const char  *name;

    memset(ev, 0, sizeof(ngx_famcall_event_t));

    ev->root = ngx_famcall_json_parse(buf, len, err);
    if (ev->root == NULL) {
        err->message = "an event must be one JSON object";
        return -1;
    }

    /* the ref first: every later error is answered with it */
    ref = json_object_get(ev->root, "ref");
    if (ref != NULL && !json_is_null(ref)) {
        if (!json_is_string(ref) || json_string_length(ref) == 0
            || json_string_length(ref) > NGX_FAMCALL_EVENT_REF_MAX)
        {
            return ngx_famcall_event_fail(err, "bad_event",
                       "\"ref\" must be a string of 1 to 64 bytes");
        }

        ev->ref = json_string_value(ref);
    }

    type = json_object_get(ev->root, "type");
    if (!json_is_string(type)) {
        return ngx_famcall_event_fail(err, "bad_event",
                                      "\"type\" must be a string");
    }

    name = json_string_value(type);

    /* a dozen types: a hash would not pay for itself */
    for (i = 0; i < ntypes; i++) {
        if (strcmp(name, types[i].name) == 0) {
            break;
        }
    }

    if (i == ntypes) {
        return ngx_famcall_event_fail(err, "unknown_type",
                                      "no such event type");
    }

    ev->type = i;

    ev->data = json_object_get(ev->root, "data");
    if (ev->data == NULL || json_is_null(ev->data)) {
        ev->data = json_object();
        if (ev->data == NULL
            || json_object_set_new(ev->root, "data", ev->data) != 0)
        {
            return ngx_famcall_event_fail(err, "internal", "out of memory");
        }

    } else if (!json_is_object(ev->data)) {
        return ngx_famcall_event_fail(err, "bad_event",
                                      "\"data\" must be an object");
    }

    return ngx_famcall_json_validate(ev->data, types[i].fields, err);
}


void
ngx_famcall_event_free(ngx_famcall_event_t *ev)
{
    if (ev->root != NULL) {
        json_decref(ev->root);
    }

    memset(ev, 0, sizeof(ngx_famcall_event_t));
}


long long
ngx_famcall_event_int(json_t *data, const char *name, long long dflt)
{
    json_t  *v;

    v = json_object_get(data, name);

    return json_is_integer(v) ? (long long) json_integer_value(v) : dflt;
}


static int
ngx_famcall_event_fail(ngx_famcall_verror_t *err, const char *code,
    const char *message)
{
    err->code = code;
    err->message = message;
    err->field = NULL;

    return -1;
}
