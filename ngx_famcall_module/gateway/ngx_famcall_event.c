/*
 * famcall: decoding the events clients send (see ngx_famcall_event.h).
 */

#include <string.h>

#include "ngx_famcall_event.h"
#include "ngx_famcall_validate.h"


#define NGX_FAMCALL_SEQ_MAX       9007199254740991LL     /* 2^53 - 1 */
#define NGX_FAMCALL_CURSOR_MAX    2048


static const char *ngx_famcall_check_typing_state(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_cursor(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_token(const char *in, size_t len,
    char *out, size_t *outlen);
static int ngx_famcall_event_fail(ngx_famcall_verror_t *err,
    const char *code, const char *message);


static const ngx_famcall_field_t  ngx_famcall_ev_send[] = {
    { "conversation_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0 },
    { "client_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid, 0, 0 },
    { "body", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_message_body,
      0, 0 },
    { NULL, 0, 0, 0, NULL, 0, 0 }
};

static const ngx_famcall_field_t  ngx_famcall_ev_receipt[] = {
    { "conversation_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0 },
    { "up_to_seq", NGX_FAMCALL_F_INTEGER, 1, 0, NULL, 0,
      NGX_FAMCALL_SEQ_MAX },
    { NULL, 0, 0, 0, NULL, 0, 0 }
};

static const ngx_famcall_field_t  ngx_famcall_ev_typing[] = {
    { "conversation_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0 },
    { "state", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_typing_state,
      0, 0 },
    { NULL, 0, 0, 0, NULL, 0, 0 }
};

static const ngx_famcall_field_t  ngx_famcall_ev_sync[] = {
    { "since", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_cursor, 0, 0 },
    { "limit", NGX_FAMCALL_F_INTEGER, 0, 1, NULL, 1, 500 },
    { NULL, 0, 0, 0, NULL, 0, 0 }
};

static const ngx_famcall_field_t  ngx_famcall_ev_auth[] = {
    { "access_token", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_token,
      0, 0 },
    { NULL, 0, 0, 0, NULL, 0, 0 }
};


static const struct {
    const char                 *name;
    const ngx_famcall_field_t  *fields;
} ngx_famcall_event_types[NGX_FAMCALL_EV_COUNT] = {
    { "message:send", ngx_famcall_ev_send },
    { "message:delivered", ngx_famcall_ev_receipt },
    { "message:read", ngx_famcall_ev_receipt },
    { "typing", ngx_famcall_ev_typing },
    { "sync", ngx_famcall_ev_sync },
    { "auth", ngx_famcall_ev_auth }
};


int
ngx_famcall_event_decode(const char *buf, size_t len, ngx_famcall_event_t *ev,
    ngx_famcall_verror_t *err)
{
    int          i;
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

    for (i = 0; i < NGX_FAMCALL_EV_COUNT; i++) {
        if (strcmp(name, ngx_famcall_event_types[i].name) == 0) {
            break;
        }
    }

    if (i == NGX_FAMCALL_EV_COUNT) {
        return ngx_famcall_event_fail(err, "unknown_type",
                                      "no such event type");
    }

    ev->type = (ngx_famcall_event_type_e) i;

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

    return ngx_famcall_json_validate(ev->data,
                                     ngx_famcall_event_types[i].fields, err);
}


void
ngx_famcall_event_free(ngx_famcall_event_t *ev)
{
    if (ev->root != NULL) {
        json_decref(ev->root);
    }

    memset(ev, 0, sizeof(ngx_famcall_event_t));
}


const char *
ngx_famcall_event_name(ngx_famcall_event_type_e type)
{
    return (type < NGX_FAMCALL_EV_COUNT) ? ngx_famcall_event_types[type].name
                                         : "";
}


long long
ngx_famcall_event_int(json_t *data, const char *name, long long dflt)
{
    json_t  *v;

    v = json_object_get(data, name);

    return json_is_integer(v) ? (long long) json_integer_value(v) : dflt;
}


static const char *
ngx_famcall_check_typing_state(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (!((len == 5 && memcmp(in, "start", 5) == 0)
          || (len == 4 && memcmp(in, "stop", 4) == 0)))
    {
        return "must be \"start\" or \"stop\"";
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}


/* opaque to clients; sql/008's famcall_sync checks what is inside */
static const char *
ngx_famcall_check_cursor(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    if (len == 0 || len > NGX_FAMCALL_CURSOR_MAX) {
        return "not a cursor from sync";
    }

    for (i = 0; i < len; i++) {
        if (!((in[i] >= '0' && in[i] <= '9') || (in[i] >= 'a' && in[i] <= 'f')
              || in[i] == ':' || in[i] == ',' || in[i] == '~'
              || in[i] == '-'))
        {
            return "not a cursor from sync";
        }
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}


static const char *
ngx_famcall_check_token(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (len == 0 || len > 4096) {
        return "must be an access token";
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
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
