/*
 * libFuzzer harness: the client event decoder (ngx_famcall_event.c, with
 * ngx_famcall_json.c and ngx_famcall_validate.c under it), given the table
 * of the gateway's own events.
 *
 * Input: one WebSocket text message, decoded as is.  Every result must keep
 * the decoder's promises (ngx_famcall_event.h, docs/websocket.md):
 *
 * Besides the gateway's own events, the calls module's (call:* and
 * webrtc:*, from calls/ngx_famcall_call_fields.c: the very tables the
 * module registers) are decoded the same way, and one of the harness's
 * (t:nested) has objects and arrays in its data, so that the nested checks
 * and the paths they report are fuzzed too.
 *
 *   decoded: a known type, named by the event's "type"; data an object in
 *            the root; ref none (absent or null) or the event's own string
 *            of 1 to 64 bytes; every field of the type as its table says,
 *            re-checked here independently; and the event written back out
 *            decodes to the same event (normalising is idempotent).
 *   refused: a known error code and a message; a field exactly for
 *            missing_field / invalid_field, and one of the type's; the ref
 *            when the event has a good one and was read at all.
 *
 * The event and the error are filled with garbage before decoding, and the
 * event is freed either way (LeakSanitizer reports what is not).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_famcall_event.h"
#include "ngx_famcall_event_fields.h"
#include "ngx_famcall_call_fields.h"


#define check(cond)  do { if (!(cond)) { __builtin_trap(); } } while (0)

#define EV_COUNT  (sizeof(types) / sizeof(types[0]))


/*
 * the gateway's own events, as it registers them (ngx_famcall_gw_events.c),
 * then the calls module's (ngx_famcall_call_events.c, _call_relay.c)
 */
enum {
    EV_MESSAGE_SEND = 0,
    EV_MESSAGE_DELIVERED,
    EV_MESSAGE_READ,
    EV_TYPING,
    EV_SYNC,
    EV_AUTH,
    EV_CALL_INVITE,
    EV_CALL_ACCEPT,
    EV_CALL_REJECT,
    EV_CALL_CANCEL,
    EV_CALL_END,
    EV_CALL_RESUME,
    EV_CALL_ACTIVE,
    EV_WEBRTC_OFFER,
    EV_WEBRTC_ANSWER,
    EV_WEBRTC_ICE,
    EV_NESTED
};


static const ngx_famcall_field_t  nested_desc[] = {
    { "type", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, 8, NULL },
    { "sdp", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, 256, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  nested_cand[] = {
    { "c", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, 16, NULL },
    { "i", NGX_FAMCALL_F_INTEGER, 0, 1, NULL, 0, 9, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  nested_cands[] = {
    { "cand", NGX_FAMCALL_F_OBJECT, 0, 0, NULL, 0, 0, nested_cand },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  nested_id[] = {
    { "id", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_uuid, 0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  nested_fields[] = {
    { "to", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid, 0, 0, NULL },
    { "desc", NGX_FAMCALL_F_OBJECT, 1, 0, NULL, 0, 0, nested_desc },
    { "cands", NGX_FAMCALL_F_ARRAY, 0, 0, NULL, 0, 4, nested_cands },
    { "ids", NGX_FAMCALL_F_ARRAY, 0, 1, NULL, 1, 3, nested_id },
    { "v", NGX_FAMCALL_F_BOOLEAN, 0, 0, NULL, 0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_event_type_t  types[] = {
    { "message:send", ngx_famcall_ev_send_fields, NULL },
    { "message:delivered", ngx_famcall_ev_receipt_fields, NULL },
    { "message:read", ngx_famcall_ev_receipt_fields, NULL },
    { "typing", ngx_famcall_ev_typing_fields, NULL },
    { "sync", ngx_famcall_ev_sync_fields, NULL },
    { "auth", ngx_famcall_ev_auth_fields, NULL },
    { "call:invite", ngx_famcall_call_invite_fields, NULL },
    { "call:accept", ngx_famcall_call_id_fields, NULL },
    { "call:reject", ngx_famcall_call_id_fields, NULL },
    { "call:cancel", ngx_famcall_call_id_fields, NULL },
    { "call:end", ngx_famcall_call_end_fields, NULL },
    { "call:resume", ngx_famcall_call_id_fields, NULL },
    { "call:active", ngx_famcall_call_no_fields, NULL },
    { "webrtc:offer", ngx_famcall_call_sdp_fields, NULL },
    { "webrtc:answer", ngx_famcall_call_sdp_fields, NULL },
    { "webrtc:ice", ngx_famcall_call_ice_fields, NULL },
    { "t:nested", nested_fields, NULL }
};

#define SEQ_MAX  9007199254740991LL     /* 2^53 - 1 */


static int
is_uuid(json_t *v)
{
    size_t       i;
    const char  *s;

    if (!json_is_string(v) || json_string_length(v) != 36) {
        return 0;
    }

    s = json_string_value(v);

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

        } else if (strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0') {
            return 0;     /* lowercase: the decoder normalises */
        }
    }

    return 1;
}


/* a message body: some non-space, at most 4000 code points */
static int
is_body(json_t *v)
{
    size_t       i, len, n, blank;
    const char  *s;

    if (!json_is_string(v)) {
        return 0;
    }

    s = json_string_value(v);
    len = json_string_length(v);
    n = 0;
    blank = 1;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }

        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            blank = 0;
        }
    }

    return !blank && n <= 4000;
}


static int
is_int(json_t *v, long long min, long long max)
{
    return json_is_integer(v) && json_integer_value(v) >= min
           && json_integer_value(v) <= max;
}


static int
is_state(json_t *v)
{
    return json_is_string(v)
           && (strcmp(json_string_value(v), "start") == 0
               || strcmp(json_string_value(v), "stop") == 0);
}


static int
is_cursor(json_t *v)
{
    size_t  len;

    if (!json_is_string(v)) {
        return 0;
    }

    len = json_string_length(v);

    return len >= 1 && len <= 2048
           && strspn(json_string_value(v), "0123456789abcdef:,~-") == len;
}


/* a string of a-z and _ only, min to max bytes */
static int
is_word(json_t *v, size_t min, size_t max)
{
    size_t       i, len;
    const char  *s;

    if (!json_is_string(v)) {
        return 0;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) {
            return 0;
        }
    }

    return len >= min && len <= max;
}


static int is_len(json_t *v, size_t min, size_t max);
static void check_nested(json_t *d);


/* the data of a decoded event, field by field */
static void
check_data(size_t type, json_t *d)
{
    json_t  *v;

    switch (type) {

    case EV_MESSAGE_SEND:
        check(is_uuid(json_object_get(d, "conversation_id")));
        check(is_uuid(json_object_get(d, "client_id")));
        check(is_body(json_object_get(d, "body")));
        break;

    case EV_MESSAGE_DELIVERED:
    case EV_MESSAGE_READ:
        check(is_uuid(json_object_get(d, "conversation_id")));
        v = json_object_get(d, "up_to_seq");
        check(is_int(v, 0, SEQ_MAX));
        check(ngx_famcall_event_int(d, "up_to_seq", -1)
              == json_integer_value(v));
        break;

    case EV_TYPING:
        check(is_uuid(json_object_get(d, "conversation_id")));
        check(is_state(json_object_get(d, "state")));
        break;

    case EV_SYNC:
        v = json_object_get(d, "since");
        check(v == NULL || json_is_null(v) || is_cursor(v));
        v = json_object_get(d, "limit");
        check(v == NULL || json_is_null(v) || is_int(v, 1, 500));
        check(ngx_famcall_event_int(d, "limit", -1)
              == (json_is_integer(v) ? json_integer_value(v) : -1));
        break;

    case EV_AUTH:
        v = json_object_get(d, "access_token");
        check(json_is_string(v) && json_string_length(v) >= 1
              && json_string_length(v) <= 4096);
        break;

    case EV_CALL_INVITE:
        check(is_uuid(json_object_get(d, "to_user_id")));
        v = json_object_get(d, "media");
        check(json_is_string(v)
              && (strcmp(json_string_value(v), "video") == 0
                  || strcmp(json_string_value(v), "audio") == 0)
              && json_string_length(v) == 5);
        break;

    case EV_CALL_ACCEPT:
    case EV_CALL_REJECT:
    case EV_CALL_CANCEL:
    case EV_CALL_RESUME:
        check(is_uuid(json_object_get(d, "call_id")));
        break;

    case EV_CALL_END:
        check(is_uuid(json_object_get(d, "call_id")));
        v = json_object_get(d, "reason");
        check(v == NULL || json_is_null(v)
              || is_word(v, 1, NGX_FAMCALL_CALL_REASON_MAX));
        break;

    case EV_CALL_ACTIVE:
        break;

    case EV_WEBRTC_OFFER:
    case EV_WEBRTC_ANSWER:
        check(is_uuid(json_object_get(d, "call_id")));
        check(is_len(json_object_get(d, "sdp"), 1, NGX_FAMCALL_CALL_SDP_MAX));
        break;

    case EV_WEBRTC_ICE:
        check(is_uuid(json_object_get(d, "call_id")));
        /* an empty candidate is the end of candidates */
        check(is_len(json_object_get(d, "candidate"), 0,
                     NGX_FAMCALL_CALL_CANDIDATE_MAX));
        v = json_object_get(d, "sdp_mid");
        check(v == NULL || json_is_null(v)
              || is_len(v, 0, NGX_FAMCALL_CALL_MID_MAX));
        v = json_object_get(d, "sdp_mline_index");
        check(v == NULL || json_is_null(v) || is_int(v, 0, 1023));
        check(ngx_famcall_event_int(d, "sdp_mline_index", -1)
              == (json_is_integer(v) ? json_integer_value(v) : -1));
        break;

    case EV_NESTED:
        check_nested(d);
        break;

    default:
        check(0);
    }
}


static int
is_len(json_t *v, size_t min, size_t max)
{
    return json_is_string(v) && json_string_length(v) >= min
           && json_string_length(v) <= max;
}


static void
check_nested(json_t *d)
{
    size_t   i;
    json_t  *v, *e, *x;

    check(is_uuid(json_object_get(d, "to")));

    v = json_object_get(d, "desc");
    check(json_is_object(v));
    check(is_len(json_object_get(v, "type"), 1, 8));
    check(is_len(json_object_get(v, "sdp"), 1, 256));

    v = json_object_get(d, "cands");
    check(v == NULL || (json_is_array(v) && json_array_size(v) <= 4));

    json_array_foreach(v, i, e) {
        check(json_is_object(e));
        check(is_len(json_object_get(e, "c"), 1, 16));
        x = json_object_get(e, "i");
        check(x == NULL || json_is_null(x) || is_int(x, 0, 9));
    }

    v = json_object_get(d, "ids");
    check(v == NULL || json_is_null(v)
          || (json_is_array(v) && json_array_size(v) >= 1
              && json_array_size(v) <= 3));

    json_array_foreach(v, i, e) {
        check(is_uuid(e));     /* normalised in the array */
    }

    v = json_object_get(d, "v");
    check(v == NULL || json_is_boolean(v));
}


/* "name", or "name[<i>]" followed by rest ("" or ".member"), i < max */
static int
is_path(const char *field, const char *name, size_t max, const char **rest)
{
    size_t       len, i;
    const char  *p;

    len = strlen(name);

    if (strncmp(field, name, len) != 0) {
        return 0;
    }

    p = field + len;

    if (*p == '\0') {
        *rest = NULL;
        return 1;
    }

    if (*p++ != '[' || *p < '0' || *p > '9') {
        return 0;
    }

    for (i = 0; *p >= '0' && *p <= '9'; p++) {
        i = i * 10 + (size_t) (*p - '0');

        if (i >= max) {
            return 0;
        }
    }

    if (*p++ != ']') {
        return 0;
    }

    *rest = p;
    return 1;
}


/* a field t:nested may report: its members, or their paths */
static int
is_nested_field(const char *field)
{
    const char  *rest;

    if (strcmp(field, "to") == 0 || strcmp(field, "desc") == 0
        || strcmp(field, "desc.type") == 0 || strcmp(field, "desc.sdp") == 0
        || strcmp(field, "v") == 0)
    {
        return 1;
    }

    /* an array too long is refused before its elements are looked at */
    if (is_path(field, "cands", 4, &rest)) {
        return rest == NULL || *rest == '\0' || strcmp(rest, ".c") == 0
               || strcmp(rest, ".i") == 0;
    }

    if (is_path(field, "ids", 3, &rest)) {
        return rest == NULL || *rest == '\0';
    }

    return 0;
}


/* a field that may be reported for an event of this type */
static int
is_field_of(size_t type, const char *field)
{
    static const char  *fields[EV_COUNT - 1][4] = {
        { "conversation_id", "client_id", "body", NULL },
        { "conversation_id", "up_to_seq", NULL, NULL },
        { "conversation_id", "up_to_seq", NULL, NULL },
        { "conversation_id", "state", NULL, NULL },
        { "since", "limit", NULL, NULL },
        { "access_token", NULL, NULL, NULL },
        { "to_user_id", "media", NULL, NULL },
        { "call_id", NULL, NULL, NULL },
        { "call_id", NULL, NULL, NULL },
        { "call_id", NULL, NULL, NULL },
        { "call_id", "reason", NULL, NULL },
        { "call_id", NULL, NULL, NULL },
        { NULL, NULL, NULL, NULL },
        { "call_id", "sdp", NULL, NULL },
        { "call_id", "sdp", NULL, NULL },
        { "call_id", "candidate", "sdp_mid", "sdp_mline_index" }
    };

    int  i;

    if (type == EV_NESTED) {
        return is_nested_field(field);
    }

    for (i = 0; i < 4 && fields[type][i]; i++) {
        if (strcmp(fields[type][i], field) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the ref an event carries, when it is a good one */
static const char *
good_ref(json_t *root)
{
    json_t  *ref;

    ref = json_object_get(root, "ref");

    if (json_is_string(ref) && json_string_length(ref) >= 1
        && json_string_length(ref) <= NGX_FAMCALL_EVENT_REF_MAX)
    {
        return json_string_value(ref);
    }

    return NULL;
}


static void
decode(const char *buf, size_t len, ngx_famcall_event_t *ev,
    ngx_famcall_verror_t *err, int *rc)
{
    memset(ev, 0xa5, sizeof(ngx_famcall_event_t));
    memset(err, 0xa5, sizeof(ngx_famcall_verror_t));

    *rc = ngx_famcall_event_decode(buf, len, types, EV_COUNT, ev, err);

    check(*rc == 0 || *rc == -1);

    /* the ref, decoded or not: none, or the event's own good one */
    if (ev->ref != NULL) {
        check(ev->root != NULL);
        check(ev->ref == good_ref(ev->root));
        check(strlen(ev->ref) >= 1
              && strlen(ev->ref) <= NGX_FAMCALL_EVENT_REF_MAX);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc, rc2;
    char                  *out;
    json_t                *ref;
    ngx_famcall_event_t    ev, ev2;
    ngx_famcall_verror_t   err, err2;

    decode((const char *) data, size, &ev, &err, &rc);

    if (rc == 0) {
        check(ev.type < EV_COUNT);
        check(json_is_object(ev.root));
        check(json_is_object(ev.data));
        check(ev.data == json_object_get(ev.root, "data"));
        check(strcmp(json_string_value(json_object_get(ev.root, "type")),
                     types[ev.type].name) == 0);

        ref = json_object_get(ev.root, "ref");
        check(ev.ref != NULL || ref == NULL || json_is_null(ref));

        check_data(ev.type, ev.data);

        /* written back out, it decodes to the same event */
        out = json_dumps(ev.root, JSON_COMPACT);
        check(out != NULL);

        decode(out, strlen(out), &ev2, &err2, &rc2);
        check(rc2 == 0);
        check(ev2.type == ev.type);
        check(json_equal(ev2.data, ev.data));
        check((ev.ref == NULL && ev2.ref == NULL)
              || (ev.ref && ev2.ref && strcmp(ev.ref, ev2.ref) == 0));

        ngx_famcall_event_free(&ev2);
        free(out);

    } else {
        check(err.code != NULL && err.message != NULL);

        if (strcmp(err.code, "invalid_json") == 0) {
            check(ev.root == NULL && ev.ref == NULL && err.field == NULL);

        } else if (strcmp(err.code, "bad_event") == 0
                   || strcmp(err.code, "unknown_type") == 0
                   || strcmp(err.code, "internal") == 0)
        {
            check(err.field == NULL);

        } else if (strcmp(err.code, "missing_field") == 0
                   || strcmp(err.code, "invalid_field") == 0)
        {
            check(err.field != NULL);
            check(ev.type < EV_COUNT);
            check(is_field_of(ev.type, err.field));

        } else {
            check(0);    /* an unknown error code */
        }

        /* an event that was read is answered with its good ref */
        if (ev.root != NULL) {
            check(json_is_object(ev.root));
            check(ev.ref == good_ref(ev.root));
        }
    }

    ngx_famcall_event_free(&ev);
    check(ev.root == NULL && ev.data == NULL && ev.ref == NULL);

    return 0;
}
