/*
 * Unit tests: ngx_famcall_event.c, the events clients send on the WebSocket
 * (docs/websocket.md), with the checks of ngx_famcall_json.c and
 * ngx_famcall_validate.c it relies on.
 *
 * Events are written with ' for " (q() swaps them back).  Every event is
 * decoded from a copy of its exact size, without a terminating NUL, into an
 * ngx_famcall_event_t and an error filled with garbage first, and freed.
 * An accepted event's data is compared as compact JSON with sorted keys, so
 * the normalised values are checked too.
 */

#include <stdlib.h>

#include "tap.h"
#include "ngx_famcall_event.h"
#include "ngx_famcall_event_fields.h"


#define CONV     "'7c9e6679-7425-40de-944b-e07fc1f90ae7'"
#define CONV_UC  "'7C9E6679-7425-40DE-944B-E07FC1F90AE7'"
#define CONV_MIX "'7c9E6679-7425-40De-944b-E07fc1F90aE7'"
#define CLID     "'1b4e28ba-2fa1-41d2-883f-0016d3cca427'"
#define CLID_UC  "'1B4E28BA-2FA1-41D2-883F-0016D3CCA427'"

#define SEND_DATA  "'conversation_id':" CONV ",'client_id':" CLID \
                   ",'body':'hi'"
#define SEND_OUT   "{'body':'hi','client_id':" CLID ",'conversation_id':" \
                   CONV "}"

#define EV(type, data)        "{'type':'" type "','data':{" data "}}"
#define EV_REF(type, data)    "{'type':'" type "','ref':'r1','data':{" data "}}"

#define SEQ_MAX  9007199254740991LL   /* 2^53 - 1 */

#define EV_COUNT  (sizeof(types) / sizeof(types[0]))
#define IN_MAX   (64 * 1024)          /* room for the events built here */



/*
 * The table the gateway builds from the events it registers itself
 * (ngx_famcall_gw_events.c), in an order of the test's own: the decoder
 * is given it, and knows no event of its own.
 */
enum {
    EV_MESSAGE_SEND = 0,
    EV_MESSAGE_DELIVERED,
    EV_MESSAGE_READ,
    EV_TYPING,
    EV_SYNC,
    EV_AUTH
};

static const ngx_famcall_event_type_t  types[] = {
    { "message:send", ngx_famcall_ev_send_fields, NULL },
    { "message:delivered", ngx_famcall_ev_receipt_fields, NULL },
    { "message:read", ngx_famcall_ev_receipt_fields, NULL },
    { "typing", ngx_famcall_ev_typing_fields, NULL },
    { "sync", ngx_famcall_ev_sync_fields, NULL },
    { "auth", ngx_famcall_ev_auth_fields, NULL }
};


typedef struct {
    const char  *name;
    const char  *in;       /* the event, ' for " */
    const char  *code;     /* NULL: decoded */
    const char  *field;    /* err.field */
    int          type;     /* when decoded */
    const char  *ref;      /* ev.ref, decoded or not (NULL: none) */
    const char  *data;     /* when decoded: ev.data, sorted, ' for " */
} event_case_t;


#define OK(name, in, type, ref, data)                                         \
    { name, in, NULL, NULL, EV_##type, ref, data }
#define BAD(name, in, code, field, ref)                                       \
    { name, in, code, field, -1, ref, NULL }
/* not JSON, duplicate keys, too deep, or not an object: no ref is read */
#define NOT_EVENT(name, in)                                                   \
    { name, in, "invalid_json", NULL, -1, NULL, NULL }


static const event_case_t  cases[] = {

    /* every type, with valid data */

    OK("message:send", EV_REF("message:send", SEND_DATA), MESSAGE_SEND, "r1",
       SEND_OUT),
    OK("message:delivered",
       EV_REF("message:delivered", "'conversation_id':" CONV ",'up_to_seq':7"),
       MESSAGE_DELIVERED, "r1", "{'conversation_id':" CONV ",'up_to_seq':7}"),
    OK("message:read",
       EV_REF("message:read", "'conversation_id':" CONV ",'up_to_seq':7"),
       MESSAGE_READ, "r1", "{'conversation_id':" CONV ",'up_to_seq':7}"),
    OK("typing start",
       EV_REF("typing", "'conversation_id':" CONV ",'state':'start'"),
       TYPING, "r1", "{'conversation_id':" CONV ",'state':'start'}"),
    OK("typing stop",
       EV_REF("typing", "'conversation_id':" CONV ",'state':'stop'"),
       TYPING, "r1", "{'conversation_id':" CONV ",'state':'stop'}"),
    OK("sync with since and limit",
       EV_REF("sync", "'since':'0123456789abcdef:,~-','limit':200"), SYNC,
       "r1", "{'limit':200,'since':'0123456789abcdef:,~-'}"),
    OK("sync with empty data", EV_REF("sync", ""), SYNC, "r1", "{}"),
    OK("auth", EV_REF("auth", "'access_token':'eyJ.a.b'"), AUTH, "r1",
       "{'access_token':'eyJ.a.b'}"),

    /* normalisation and what is kept as sent */

    OK("message:send: UUIDs lowercased",
       EV("message:send", "'conversation_id':" CONV_UC ",'client_id':" CLID_UC
          ",'body':'hi'"), MESSAGE_SEND, NULL, SEND_OUT),
    OK("message:send: mixed-case UUID lowercased",
       EV("message:send", "'conversation_id':" CONV_MIX ",'client_id':" CLID
          ",'body':'hi'"), MESSAGE_SEND, NULL, SEND_OUT),
    OK("message:read: UUID lowercased",
       EV("message:read", "'conversation_id':" CONV_UC ",'up_to_seq':1"),
       MESSAGE_READ, NULL, "{'conversation_id':" CONV ",'up_to_seq':1}"),
    OK("typing: UUID lowercased",
       EV("typing", "'conversation_id':" CONV_UC ",'state':'stop'"),
       TYPING, NULL, "{'conversation_id':" CONV ",'state':'stop'}"),
    OK("message:send: body kept as sent, spaces and all",
       EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
          ",'body':'  hi \\n there\\t '"), MESSAGE_SEND, NULL,
       "{'body':'  hi \\n there\\t ','client_id':" CLID
       ",'conversation_id':" CONV "}"),
    OK("message:send: a non-ASCII space is not blank",
       EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
          ",'body':'\\u00a0'"), MESSAGE_SEND, NULL,
       "{'body':'\xc2\xa0','client_id':" CLID ",'conversation_id':" CONV "}"),
    OK("message:send: escaped emoji body",
       EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
          ",'body':'\\ud83d\\udc4b'"), MESSAGE_SEND, NULL,
       "{'body':'\xf0\x9f\x91\x8b','client_id':" CLID
       ",'conversation_id':" CONV "}"),
    OK("unknown data members ignored and kept",
       EV("typing", "'conversation_id':" CONV ",'state':'start','x':[1,{}]"),
       TYPING, NULL, "{'conversation_id':" CONV ",'state':'start','x':[1,{}]}"),
    OK("unknown top-level members ignored",
       "{'type':'sync','extra':{'a':1},'data':{}}", SYNC, NULL, "{}"),
    OK("members in any order",
       "{'data':{'state':'stop','conversation_id':" CONV "},'ref':'z',"
       "'type':'typing'}", TYPING, "z",
       "{'conversation_id':" CONV ",'state':'stop'}"),
    OK("whitespace around the event", " \n\t{'type':'sync'}\r\n ", SYNC, NULL,
       "{}"),

    /* ref */

    OK("ref absent", "{'type':'sync'}", SYNC, NULL, "{}"),
    OK("ref null is no ref", "{'type':'sync','ref':null}", SYNC, NULL, "{}"),
    OK("ref of one byte", "{'type':'sync','ref':'a'}", SYNC, "a", "{}"),
    OK("ref with any characters", "{'type':'sync','ref':'a b\\\"\\u00e9'}",
       SYNC, "a b\"\xc3\xa9", "{}"),
    BAD("ref empty", "{'type':'sync','ref':''}", "bad_event", NULL, NULL),
    BAD("ref a number", "{'type':'sync','ref':1}", "bad_event", NULL, NULL),
    BAD("ref true", "{'type':'sync','ref':true}", "bad_event", NULL, NULL),
    BAD("ref an array", "{'type':'sync','ref':['r1']}", "bad_event", NULL,
        NULL),
    BAD("ref an object", "{'type':'sync','ref':{}}", "bad_event", NULL, NULL),
    BAD("bad ref wins over a bad type", "{'type':1,'ref':2}", "bad_event",
        NULL, NULL),

    /* not an event */

    NOT_EVENT("not JSON", "hello"),
    NOT_EVENT("empty message", ""),
    NOT_EVENT("truncated JSON", "{'type':'sync'"),
    NOT_EVENT("trailing garbage", "{'type':'sync'} x"),
    NOT_EVENT("two objects", "{'type':'sync'}{'type':'sync'}"),
    NOT_EVENT("unquoted key", "{type:'sync'}"),
    NOT_EVENT("escaped NUL in type", "{'type':'sync\\u0000'}"),
    NOT_EVENT("escaped NUL in ref", "{'type':'sync','ref':'a\\u0000b'}"),
    NOT_EVENT("lone surrogate escape", "{'type':'sync','ref':'\\ud800'}"),
    NOT_EVENT("integer beyond 64 bits",
              "{'type':'sync','data':{'limit':99999999999999999999}}"),
    NOT_EVENT("duplicate top-level key", "{'type':'sync','type':'auth'}"),
    NOT_EVENT("duplicate ref", "{'type':'sync','ref':'a','ref':'b'}"),
    NOT_EVENT("duplicate data", "{'type':'sync','data':{},'data':{}}"),
    NOT_EVENT("duplicate key inside data",
              "{'type':'sync','data':{'limit':1,'limit':2}}"),
    NOT_EVENT("an array", "[{'type':'sync'}]"),
    NOT_EVENT("a string", "'sync'"),
    NOT_EVENT("a number", "42"),
    NOT_EVENT("null", "null"),
    NOT_EVENT("true", "true"),

    /* type */

    BAD("empty object", "{}", "bad_event", NULL, NULL),
    BAD("type missing", "{'ref':'r1','data':{}}", "bad_event", NULL, "r1"),
    BAD("type null", "{'type':null,'ref':'r1'}", "bad_event", NULL, "r1"),
    BAD("type a number", "{'type':1,'ref':'r1'}", "bad_event", NULL, "r1"),
    BAD("type an array", "{'type':['sync'],'ref':'r1'}", "bad_event", NULL,
        "r1"),
    BAD("type an object", "{'type':{},'ref':'r1'}", "bad_event", NULL, "r1"),
    BAD("type unknown", "{'type':'message:delete','ref':'r1'}",
        "unknown_type", NULL, "r1"),
    BAD("type empty", "{'type':'','ref':'r1'}", "unknown_type", NULL, "r1"),
    BAD("type in capitals", "{'type':'SYNC','ref':'r1'}", "unknown_type",
        NULL, "r1"),
    BAD("type with a space", "{'type':'sync ','ref':'r1'}", "unknown_type",
        NULL, "r1"),
    BAD("type a prefix of one", "{'type':'message','ref':'r1'}",
        "unknown_type", NULL, "r1"),
    BAD("server-only type", "{'type':'message:new','ref':'r1'}",
        "unknown_type", NULL, "r1"),
    BAD("server-only type ack", "{'type':'ack','ref':'r1'}", "unknown_type",
        NULL, "r1"),

    /* data */

    BAD("data absent: message:send needs its fields",
        "{'type':'message:send','ref':'r1'}", "missing_field",
        "conversation_id", "r1"),
    BAD("data absent: message:read", "{'type':'message:read'}",
        "missing_field", "conversation_id", NULL),
    BAD("data absent: typing", "{'type':'typing'}", "missing_field",
        "conversation_id", NULL),
    BAD("data absent: auth", "{'type':'auth','ref':'a'}", "missing_field",
        "access_token", "a"),
    OK("data absent: sync needs none", "{'type':'sync','ref':'r1'}", SYNC,
       "r1", "{}"),
    OK("data null is no data: sync", "{'type':'sync','data':null}", SYNC,
       NULL, "{}"),
    BAD("data null is no data: auth", "{'type':'auth','data':null}",
        "missing_field", "access_token", NULL),
    BAD("data an array", "{'type':'sync','ref':'r1','data':[]}", "bad_event",
        NULL, "r1"),
    BAD("data a string", "{'type':'sync','ref':'r1','data':'x'}", "bad_event",
        NULL, "r1"),
    BAD("data a number", "{'type':'sync','ref':'r1','data':0}", "bad_event",
        NULL, "r1"),
    BAD("data false", "{'type':'sync','ref':'r1','data':false}", "bad_event",
        NULL, "r1"),
    BAD("unknown type wins over bad data",
        "{'type':'nope','ref':'r1','data':[]}", "unknown_type", NULL, "r1"),

    /* message:send fields */

    BAD("send: conversation_id missing",
        EV_REF("message:send", "'client_id':" CLID ",'body':'hi'"),
        "missing_field", "conversation_id", "r1"),
    BAD("send: client_id missing",
        EV_REF("message:send", "'conversation_id':" CONV ",'body':'hi'"),
        "missing_field", "client_id", "r1"),
    BAD("send: body missing",
        EV_REF("message:send", "'conversation_id':" CONV ",'client_id':" CLID),
        "missing_field", "body", "r1"),
    BAD("send: conversation_id null",
        EV("message:send", "'conversation_id':null,'client_id':" CLID
           ",'body':'hi'"), "missing_field", "conversation_id", NULL),
    BAD("send: body null",
        EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
           ",'body':null"), "missing_field", "body", NULL),
    BAD("send: conversation_id a number",
        EV("message:send", "'conversation_id':1,'client_id':" CLID
           ",'body':'hi'"), "invalid_field", "conversation_id", NULL),
    BAD("send: conversation_id not a UUID",
        EV("message:send", "'conversation_id':'general','client_id':" CLID
           ",'body':'hi'"), "invalid_field", "conversation_id", NULL),
    BAD("send: conversation_id without hyphens",
        EV("message:send",
           "'conversation_id':'7c9e6679742540de944be07fc1f90ae7',"
           "'client_id':" CLID ",'body':'hi'"),
        "invalid_field", "conversation_id", NULL),
    BAD("send: conversation_id in braces",
        EV("message:send",
           "'conversation_id':'{7c9e6679-7425-40de-944b-e07fc1f90ae7}',"
           "'client_id':" CLID ",'body':'hi'"),
        "invalid_field", "conversation_id", NULL),
    BAD("send: conversation_id with a g",
        EV("message:send",
           "'conversation_id':'7c9e6679-7425-40de-944b-e07fc1f90aeg',"
           "'client_id':" CLID ",'body':'hi'"),
        "invalid_field", "conversation_id", NULL),
    BAD("send: conversation_id with a space",
        EV("message:send",
           "'conversation_id':' 7c9e6679-7425-40de-944b-e07fc1f90ae7',"
           "'client_id':" CLID ",'body':'hi'"),
        "invalid_field", "conversation_id", NULL),
    BAD("send: client_id an object",
        EV("message:send", "'conversation_id':" CONV ",'client_id':{}"
           ",'body':'hi'"), "invalid_field", "client_id", NULL),
    BAD("send: client_id not a UUID",
        EV("message:send", "'conversation_id':" CONV ",'client_id':'c-1'"
           ",'body':'hi'"), "invalid_field", "client_id", NULL),
    BAD("send: body a number",
        EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
           ",'body':5"), "invalid_field", "body", NULL),
    BAD("send: body an array",
        EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
           ",'body':['hi']"), "invalid_field", "body", NULL),
    BAD("send: body empty",
        EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
           ",'body':''"), "invalid_field", "body", NULL),
    BAD("send: body blank",
        EV("message:send", "'conversation_id':" CONV ",'client_id':" CLID
           ",'body':' \\t\\r\\n '"), "invalid_field", "body", NULL),
    BAD("send: the first bad field is reported",
        EV("message:send", "'conversation_id':'x','client_id':'y','body':''"),
        "invalid_field", "conversation_id", NULL),

    /* receipts */

    OK("read: up_to_seq 0", EV("message:read", "'conversation_id':" CONV
       ",'up_to_seq':0"), MESSAGE_READ, NULL,
       "{'conversation_id':" CONV ",'up_to_seq':0}"),
    OK("delivered: up_to_seq 2^53-1", EV("message:delivered",
       "'conversation_id':" CONV ",'up_to_seq':9007199254740991"),
       MESSAGE_DELIVERED, NULL,
       "{'conversation_id':" CONV ",'up_to_seq':9007199254740991}"),
    BAD("delivered: up_to_seq 2^53", EV("message:delivered",
        "'conversation_id':" CONV ",'up_to_seq':9007199254740992"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq 2^63-1", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':9223372036854775807"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq -1", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':-1"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq -2^63", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':-9223372036854775808"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq a string", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':'5'"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq a real", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':5.0"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq in exponent form", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':5e0"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq true", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':true"),
        "invalid_field", "up_to_seq", NULL),
    BAD("read: up_to_seq null", EV("message:read",
        "'conversation_id':" CONV ",'up_to_seq':null"),
        "missing_field", "up_to_seq", NULL),
    BAD("read: up_to_seq missing", EV_REF("message:read",
        "'conversation_id':" CONV), "missing_field", "up_to_seq", "r1"),
    BAD("delivered: conversation_id missing", EV_REF("message:delivered",
        "'up_to_seq':3"), "missing_field", "conversation_id", "r1"),
    BAD("delivered: conversation_id not a UUID", EV("message:delivered",
        "'conversation_id':'abc','up_to_seq':3"), "invalid_field",
        "conversation_id", NULL),

    /* typing */

    BAD("typing: state missing", EV_REF("typing", "'conversation_id':" CONV),
        "missing_field", "state", "r1"),
    BAD("typing: state null", EV("typing", "'conversation_id':" CONV
        ",'state':null"), "missing_field", "state", NULL),
    BAD("typing: state a number", EV("typing", "'conversation_id':" CONV
        ",'state':1"), "invalid_field", "state", NULL),
    BAD("typing: state true", EV("typing", "'conversation_id':" CONV
        ",'state':true"), "invalid_field", "state", NULL),
    BAD("typing: state paused", EV("typing", "'conversation_id':" CONV
        ",'state':'paused'"), "invalid_field", "state", NULL),
    BAD("typing: state Start", EV("typing", "'conversation_id':" CONV
        ",'state':'Start'"), "invalid_field", "state", NULL),
    BAD("typing: state empty", EV("typing", "'conversation_id':" CONV
        ",'state':''"), "invalid_field", "state", NULL),
    BAD("typing: state 'start '", EV("typing", "'conversation_id':" CONV
        ",'state':'start '"), "invalid_field", "state", NULL),
    BAD("typing: state 'sto'", EV("typing", "'conversation_id':" CONV
        ",'state':'sto'"), "invalid_field", "state", NULL),
    BAD("typing: state 'stopp'", EV("typing", "'conversation_id':" CONV
        ",'state':'stopp'"), "invalid_field", "state", NULL),
    BAD("typing: conversation_id missing", EV("typing", "'state':'start'"),
        "missing_field", "conversation_id", NULL),
    BAD("typing: conversation_id an array", EV("typing",
        "'conversation_id':[],'state':'start'"), "invalid_field",
        "conversation_id", NULL),

    /* sync */

    OK("sync: since null", EV("sync", "'since':null"), SYNC, NULL,
       "{'since':null}"),
    OK("sync: limit null", EV("sync", "'limit':null"), SYNC, NULL,
       "{'limit':null}"),
    OK("sync: limit 1", EV("sync", "'limit':1"), SYNC, NULL, "{'limit':1}"),
    OK("sync: limit 500", EV("sync", "'limit':500"), SYNC, NULL,
       "{'limit':500}"),
    OK("sync: a one-character cursor", EV("sync", "'since':'~'"), SYNC, NULL,
       "{'since':'~'}"),
    BAD("sync: limit 0", EV_REF("sync", "'limit':0"), "invalid_field",
        "limit", "r1"),
    BAD("sync: limit 501", EV("sync", "'limit':501"), "invalid_field",
        "limit", NULL),
    BAD("sync: limit -1", EV("sync", "'limit':-1"), "invalid_field",
        "limit", NULL),
    BAD("sync: limit 10.5", EV("sync", "'limit':10.5"), "invalid_field",
        "limit", NULL),
    BAD("sync: limit 10.0", EV("sync", "'limit':10.0"), "invalid_field",
        "limit", NULL),
    BAD("sync: limit 1e2", EV("sync", "'limit':1e2"), "invalid_field",
        "limit", NULL),
    BAD("sync: limit a string", EV("sync", "'limit':'10'"), "invalid_field",
        "limit", NULL),
    BAD("sync: limit false", EV("sync", "'limit':false"), "invalid_field",
        "limit", NULL),
    BAD("sync: limit an array", EV("sync", "'limit':[10]"), "invalid_field",
        "limit", NULL),
    BAD("sync: since a number", EV("sync", "'since':5"), "invalid_field",
        "since", NULL),
    BAD("sync: since an object", EV("sync", "'since':{}"), "invalid_field",
        "since", NULL),
    BAD("sync: since empty", EV("sync", "'since':''"), "invalid_field",
        "since", NULL),
    BAD("sync: since in capitals", EV("sync", "'since':'ABC:1'"),
        "invalid_field", "since", NULL),
    BAD("sync: since with a g", EV("sync", "'since':'12g'"),
        "invalid_field", "since", NULL),
    BAD("sync: since with a space", EV("sync", "'since':'1 2'"),
        "invalid_field", "since", NULL),
    BAD("sync: since with a quote", EV("sync", "'since':'1\\\"'"),
        "invalid_field", "since", NULL),
    BAD("sync: since with a semicolon", EV("sync", "'since':'1;drop'"),
        "invalid_field", "since", NULL),
    BAD("sync: since with a newline", EV("sync", "'since':'1\\n'"),
        "invalid_field", "since", NULL),
    BAD("sync: since non-ASCII", EV("sync", "'since':'1\\u00e9'"),
        "invalid_field", "since", NULL),
    BAD("sync: since checked before limit", EV("sync",
        "'since':'x','limit':0"), "invalid_field", "since", NULL),

    /* auth */

    BAD("auth: access_token missing", EV_REF("auth", ""), "missing_field",
        "access_token", "r1"),
    BAD("auth: access_token null", EV("auth", "'access_token':null"),
        "missing_field", "access_token", NULL),
    BAD("auth: access_token empty", EV("auth", "'access_token':''"),
        "invalid_field", "access_token", NULL),
    BAD("auth: access_token a number", EV("auth", "'access_token':1"),
        "invalid_field", "access_token", NULL),
    BAD("auth: access_token an array", EV("auth", "'access_token':['a']"),
        "invalid_field", "access_token", NULL),

    { NULL, NULL, NULL, NULL, -1, NULL, NULL }
};


/* s with ' for ", malloc'd */
static char *
q(const char *s)
{
    char  *r, *p;

    r = strdup(s);

    for (p = r; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }

    return r;
}


/* s repeated n times, malloc'd */
static char *
rep(const char *s, size_t n)
{
    char    *r;
    size_t   i, len;

    len = strlen(s);
    r = malloc(len * n + 1);

    for (i = 0; i < n; i++) {
        memcpy(r + i * len, s, len);
    }

    r[len * n] = '\0';

    return r;
}


static int
same(const char *a, const char *b)
{
    return (a == NULL && b == NULL)
           || (a != NULL && b != NULL && strcmp(a, b) == 0);
}


/*
 * decodes in (a C string with ' for ") from a copy of its exact size; the
 * caller frees ev
 */
static int
decode(const char *in, ngx_famcall_event_t *ev, ngx_famcall_verror_t *err)
{
    int     rc;
    char   *json, *buf;
    size_t  len;

    json = q(in);
    len = strlen(json);

    buf = malloc(len ? len : 1);
    memcpy(buf, json, len);

    memset(ev, 0xa5, sizeof(ngx_famcall_event_t));
    memset(err, 0xa5, sizeof(ngx_famcall_verror_t));

    rc = ngx_famcall_event_decode(buf, len, types, EV_COUNT, ev, err);

    free(buf);
    free(json);

    return rc;
}


static void
run(const event_case_t *c)
{
    int                    rc;
    char                  *got, *want;
    json_t                *ref;
    ngx_famcall_event_t    ev;
    ngx_famcall_verror_t   err;

    rc = decode(c->in, &ev, &err);

    if (c->code == NULL) {
        ok(rc == 0 && (int) ev.type == c->type, "%s: decoded as %s", c->name,
           types[c->type].name);

        if (rc != 0) {
            printf("#   got: %s %s (%s)\n", err.code,
                   err.field ? err.field : "", err.message);
        }

        got = NULL;
        if (rc == 0 && json_is_object(ev.data)
            && ev.data == json_object_get(ev.root, "data"))
        {
            got = json_dumps(ev.data, JSON_COMPACT | JSON_SORT_KEYS);
        }

        want = q(c->data);
        is_str(got, want, "  data, normalised");
        free(want);
        free(got);

    } else {
        ok(rc == -1 && err.code != NULL && strcmp(err.code, c->code) == 0
           && same(err.field, c->field), "%s: %s %s", c->name, c->code,
           c->field ? c->field : "");

        if (rc != -1 || err.code == NULL || strcmp(err.code, c->code) != 0
            || !same(err.field, c->field))
        {
            printf("#   got: rc %d, %s %s\n", rc, rc ? err.code : "",
                   rc && err.field ? err.field : "");
        }
    }

    /* the ref: the event's own string, or none */
    ref = json_object_get(ev.root, "ref");

    ok(same(ev.ref, c->ref)
       && (ev.ref == NULL || ev.ref == json_string_value(ref)),
       "  ref %s", c->ref ? c->ref : "none");

    if (!same(ev.ref, c->ref)) {
        printf("#   got: %s\n", ev.ref ? ev.ref : "(none)");
    }

    ngx_famcall_event_free(&ev);
}


static void
test_table(void)
{
    const event_case_t  *c;

    for (c = cases; c->name; c++) {
        run(c);
    }
}


/* events with long values, built here */
static void
test_lengths(void)
{
    int                  i;
    char                *s, *t, *in;
    const char          *wide;
    event_case_t         c;
    ngx_famcall_event_t  ev;
    ngx_famcall_verror_t err;

    in = malloc(IN_MAX);
    memset(&c, 0, sizeof(event_case_t));
    c.in = in;

    /* ref: 64 bytes, not characters */
    s = rep("r", 64);
    snprintf(in, IN_MAX, "{'type':'sync','ref':'%s'}", s);
    c.name = "ref of 64 bytes"; c.code = NULL; c.field = NULL;
    c.type = EV_SYNC; c.ref = s; c.data = "{}";
    run(&c);
    free(s);

    s = rep("r", 65);
    snprintf(in, IN_MAX, "{'type':'sync','ref':'%s'}", s);
    c.name = "ref of 65 bytes"; c.code = "bad_event"; c.ref = NULL;
    run(&c);
    free(s);

    s = rep("\xc3\xa9", 32);
    snprintf(in, IN_MAX, "{'type':'sync','ref':'%s'}", s);
    c.name = "ref of 32 two-byte characters (64 bytes)"; c.code = NULL;
    c.ref = s;
    run(&c);
    free(s);

    s = rep("\\u00e9", 33);
    snprintf(in, IN_MAX, "{'type':'sync','ref':'%s'}", s);
    c.name = "ref of 33 two-byte characters (66 bytes)"; c.code = "bad_event";
    c.ref = NULL;
    run(&c);
    free(s);

    /* message bodies: at most 4000 characters, counted as sent */
    c.type = EV_MESSAGE_SEND;
    c.ref = NULL;

    for (i = 0; i < 8; i++) {
        static const struct {
            const char  *unit;     /* as written in the event */
            const char  *stored;   /* as stored */
            size_t       n;
            const char  *pad;      /* around the body */
            const char  *name;
        } bodies[8] = {
            { "x", "x", 4000, "", "body of 4000 ASCII characters" },
            { "x", "x", 4001, "", "body of 4001 ASCII characters" },
            { "\xc3\xa9", "\xc3\xa9", 4000, "",
              "body of 4000 two-byte characters" },
            { "\xc3\xa9", "\xc3\xa9", 4001, "",
              "body of 4001 two-byte characters" },
            { "\\ud83d\\udc4b", "\xf0\x9f\x91\x8b", 4000, "",
              "body of 4000 four-byte characters" },
            { "\\ud83d\\udc4b", "\xf0\x9f\x91\x8b", 4001, "",
              "body of 4001 four-byte characters" },
            { "x", "x", 3998, " ",
              "body of 3998 characters and 2 spaces" },
            { "x", "x", 3999, " ",
              "body of 3999 characters and 2 spaces (spaces count)" },
        };

        s = rep(bodies[i].unit, bodies[i].n);
        snprintf(in, IN_MAX, EV("message:send", "'conversation_id':" CONV
                 ",'client_id':" CLID ",'body':'%s%s%s'"), bodies[i].pad, s,
                 bodies[i].pad);
        free(s);

        c.name = bodies[i].name;

        if (ngx_famcall_utf8_length(bodies[i].stored, strlen(bodies[i].stored))
            * bodies[i].n + 2 * strlen(bodies[i].pad) <= 4000)
        {
            s = rep(bodies[i].stored, bodies[i].n);
            t = malloc(strlen(s) + 200);
            sprintf(t, "{'body':'%s%s%s','client_id':" CLID
                    ",'conversation_id':" CONV "}", bodies[i].pad, s,
                    bodies[i].pad);
            c.code = NULL; c.field = NULL; c.data = t;
            run(&c);
            free(t);
            free(s);

        } else {
            c.code = "invalid_field"; c.field = "body"; c.data = NULL;
            run(&c);
        }
    }

    /* sync cursors: at most 2048 bytes */
    c.type = EV_SYNC;

    s = rep("0123456789abcdef", 128);
    snprintf(in, IN_MAX, EV("sync", "'since':'%s'"), s);
    t = malloc(3000);
    snprintf(t, 3000, "{'since':'%s'}", s);
    c.name = "sync: since of 2048 bytes"; c.code = NULL; c.field = NULL;
    c.data = t;
    run(&c);
    free(t);
    free(s);

    s = rep("0123456789abcdef", 128);
    snprintf(in, IN_MAX, EV("sync", "'since':'%s0'"), s);
    c.name = "sync: since of 2049 bytes"; c.code = "invalid_field";
    c.field = "since"; c.data = NULL;
    run(&c);
    free(s);

    /* access tokens: at most 4096 bytes */
    c.type = EV_AUTH;

    s = rep("A", 4096);
    snprintf(in, IN_MAX, EV("auth", "'access_token':'%s'"), s);
    t = malloc(5000);
    snprintf(t, 5000, "{'access_token':'%s'}", s);
    c.name = "auth: access_token of 4096 bytes"; c.code = NULL;
    c.field = NULL; c.data = t;
    run(&c);
    free(t);
    free(s);

    s = rep("A", 4097);
    snprintf(in, IN_MAX, EV("auth", "'access_token':'%s'"), s);
    c.name = "auth: access_token of 4097 bytes"; c.code = "invalid_field";
    c.field = "access_token"; c.data = NULL;
    run(&c);
    free(s);

    /* the length given is what is read */
    wide = "{\"type\":\"sync\"}{\"type\":\"auth\"}";
    ok(ngx_famcall_event_decode(wide, 15, types, EV_COUNT, &ev, &err) == 0
       && ev.type == EV_SYNC, "only len bytes are read");
    ngx_famcall_event_free(&ev);

    ok(ngx_famcall_event_decode(wide, 14, types, EV_COUNT, &ev, &err) == -1
       && ev.ref == NULL, "a short len cuts the event");
    ngx_famcall_event_free(&ev);

    free(in);
}


/* nesting: 16 levels below the event object at most */
static void
test_nesting(void)
{
    int            depth;
    char          *open, *close, *in;
    event_case_t   c;

    in = malloc(IN_MAX);
    memset(&c, 0, sizeof(event_case_t));
    c.in = in;
    c.type = EV_SYNC;
    c.ref = NULL;

    /* data is level 1, x 2, and each array one more: the 1 is at depth + 2 */
    for (depth = 13; depth <= 15; depth++) {
        open = rep("[", depth);
        close = rep("]", depth);
        snprintf(in, IN_MAX, "{'type':'sync','data':{'x':%s1%s}}",
                 open, close);

        if (depth + 2 <= 16) {
            char  data[200];

            snprintf(data, sizeof(data), "{'x':%s1%s}", open, close);
            c.name = depth == 14 ? "nesting: 16 levels" : "nesting: 15 levels";
            c.code = NULL; c.data = data;
            run(&c);

        } else {
            c.name = "nesting: 17 levels";
            c.code = "invalid_json";
            run(&c);
        }

        free(open);
        free(close);
    }

    /* ref is not read from an event refused for its depth */
    open = rep("[", 17);
    close = rep("]", 17);
    snprintf(in, IN_MAX, "{'type':'sync','ref':'r1','x':%s%s}", open, close);
    free(open);
    free(close);
    c.name = "nesting: 17 levels outside data"; c.code = "invalid_json";
    run(&c);

    /* far deeper than jansson's own limit: refused, no stack overflow */
    open = rep("{'a':", 5000);
    close = rep("}", 5000);
    snprintf(in, IN_MAX, "{'type':'sync','data':%s1%s}", open, close);
    c.name = "nesting: 5000 levels";
    run(&c);
    free(open);
    free(close);

    open = rep("[", 100000);
    c.in = open;
    c.name = "nesting: 100000 unclosed arrays";
    run(&c);
    free(open);

    free(in);
}


static void
test_names(void)
{
    int                   t;
    char                 *in;
    ngx_famcall_event_t   ev;
    ngx_famcall_verror_t  err;

    static const char  *names[EV_COUNT] = {
        "message:send", "message:delivered", "message:read", "typing",
        "sync", "auth"
    };

    /* valid data for every type, to decode each name back to its type */
    static const char  *data[EV_COUNT] = {
        SEND_DATA,
        "'conversation_id':" CONV ",'up_to_seq':1",
        "'conversation_id':" CONV ",'up_to_seq':1",
        "'conversation_id':" CONV ",'state':'start'",
        "",
        "'access_token':'t'"
    };

    for (t = 0; t < (int) EV_COUNT; t++) {
        is_str(types[t].name, names[t], names[t]);

        in = malloc(strlen(data[t]) + 100);
        sprintf(in, "{'type':'%s','data':{%s}}", types[t].name, data[t]);
        ok(decode(in, &ev, &err) == 0 && (int) ev.type == t,
           "  the name decodes back to its type");
        ngx_famcall_event_free(&ev);
        free(in);
    }

    /* the same names in a table of one: every other is unknown */
    ok(ngx_famcall_event_decode("{\"type\":\"sync\"}", 15, types + EV_SYNC,
                                1, &ev, &err) == 0 && ev.type == 0,
       "a table of one: its type is 0");
    ngx_famcall_event_free(&ev);

    ok(ngx_famcall_event_decode("{\"type\":\"auth\"}", 15, types + EV_SYNC,
                                1, &ev, &err) == -1
       && strcmp(err.code, "unknown_type") == 0,
       "a table of one: another name is unknown_type");
    ngx_famcall_event_free(&ev);

    ok(ngx_famcall_event_decode("{\"type\":\"sync\"}", 15, types, 0, &ev,
                                &err) == -1
       && strcmp(err.code, "unknown_type") == 0,
       "an empty table: every name is unknown_type");
    ngx_famcall_event_free(&ev);
}


static void
test_int(void)
{
    json_t               *data;
    ngx_famcall_event_t   ev;
    ngx_famcall_verror_t  err;

    ok(decode(EV("sync", "'limit':20,'since':null"), &ev, &err) == 0,
       "int: sync decoded");
    ok(ngx_famcall_event_int(ev.data, "limit", 200) == 20, "int: limit 20");
    ok(ngx_famcall_event_int(ev.data, "since", 7) == 7,
       "int: null member gives the default");
    ok(ngx_famcall_event_int(ev.data, "nope", -1) == -1,
       "int: absent member gives the default");
    ngx_famcall_event_free(&ev);

    ok(decode(EV("sync", "'limit':null"), &ev, &err) == 0
       && ngx_famcall_event_int(ev.data, "limit", 200) == 200,
       "int: limit null gives the default");
    ngx_famcall_event_free(&ev);

    ok(decode("{'type':'sync'}", &ev, &err) == 0
       && ngx_famcall_event_int(ev.data, "limit", 200) == 200,
       "int: no data gives the default");
    ngx_famcall_event_free(&ev);

    ok(decode(EV("message:read", "'conversation_id':" CONV
                 ",'up_to_seq':9007199254740991"), &ev, &err) == 0
       && ngx_famcall_event_int(ev.data, "up_to_seq", 0) == SEQ_MAX,
       "int: up_to_seq 2^53-1");
    ok(ngx_famcall_event_int(ev.data, "conversation_id", 5) == 5,
       "int: a string member gives the default");
    ngx_famcall_event_free(&ev);

    ok(decode(EV("message:delivered", "'conversation_id':" CONV
                 ",'up_to_seq':0"), &ev, &err) == 0
       && ngx_famcall_event_int(ev.data, "up_to_seq", 9) == 0,
       "int: up_to_seq 0 is 0, not the default");
    ngx_famcall_event_free(&ev);

    data = json_pack("{s:f, s:b, s:I}", "real", 2.0, "bool", 1,
                     "neg", (json_int_t) -5);
    ok(ngx_famcall_event_int(data, "real", 3) == 3,
       "int: a real gives the default");
    ok(ngx_famcall_event_int(data, "bool", 3) == 3,
       "int: a boolean gives the default");
    ok(ngx_famcall_event_int(data, "neg", 3) == -5, "int: a negative integer");
    json_decref(data);

    ok(ngx_famcall_event_int(NULL, "limit", 4) == 4,
       "int: no data object gives the default");
}


static void
test_free(void)
{
    ngx_famcall_event_t   ev;
    ngx_famcall_verror_t  err;

    memset(&ev, 0, sizeof(ngx_famcall_event_t));
    ngx_famcall_event_free(&ev);
    ok(ev.root == NULL, "free: a zeroed event");

    ok(decode(EV_REF("typing", "'conversation_id':" CONV_UC ",'state':'start'"),
              &ev, &err) == 0, "free: decoded");
    ngx_famcall_event_free(&ev);
    ok(ev.root == NULL && ev.data == NULL && ev.ref == NULL,
       "free: the event is cleared");
    ngx_famcall_event_free(&ev);
    ok(ev.root == NULL, "free: twice is harmless");

    ok(decode("[1]", &ev, &err) == -1 && ev.root == NULL && ev.ref == NULL,
       "free: a refused message holds nothing");
    ngx_famcall_event_free(&ev);

    /* the decoded event outlives the buffer, and is writable */
    ok(decode(EV_REF("sync", "'limit':3"), &ev, &err) == 0
       && json_object_set_new(ev.data, "limit", json_integer(4)) == 0
       && ngx_famcall_event_int(ev.data, "limit", 0) == 4
       && strcmp(ev.ref, "r1") == 0, "free: the event owns its data");
    ngx_famcall_event_free(&ev);
}


/*
 * The table's shape: a handler that relays to another socket with no
 * database at all, as call signaling will (webrtc:ice to the peer).  The
 * gateway dispatches exactly so (ngx_famcall_gw_events.c): decode against
 * the table, then types[ev.type].handler(op, ev.data).
 */
typedef struct {
    char  *sent;        /* what the peer socket got */
    int    answered;
} relay_socket_t;


static const ngx_famcall_field_t  relay_ice_fields[] = {
    { "to", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid, 0, 0, NULL },
    { "candidate", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, 1024, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


static void
relay_ice(void *owner, json_t *data)
{
    relay_socket_t  *peer = owner;

    peer->sent = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    peer->answered++;
}


static void
test_relay(void)
{
    int                       rc;
    char                     *want;
    relay_socket_t            peer;
    ngx_famcall_event_t       ev;
    ngx_famcall_verror_t      err;
    ngx_famcall_event_type_t  table[EV_COUNT + 1];

    /* the gateway's own events and one a later module registered */
    memcpy(table, types, sizeof(types));
    table[EV_COUNT].name = "webrtc:ice";
    table[EV_COUNT].fields = relay_ice_fields;
    table[EV_COUNT].handler = relay_ice;

    memset(&peer, 0, sizeof(relay_socket_t));

    rc = ngx_famcall_event_decode("{\"type\":\"webrtc:ice\",\"data\":"
                                  "{\"to\":\"7C9E6679-7425-40DE-944B-"
                                  "E07FC1F90AE7\",\"candidate\":\"c\"}}",
                                  90, table, EV_COUNT + 1, &ev, &err);
    ok(rc == 0 && ev.type == EV_COUNT, "relay: decoded as the added type");

    if (rc == 0) {
        table[ev.type].handler(&peer, ev.data);
    }

    ngx_famcall_event_free(&ev);

    want = q("{'candidate':'c','to':'7c9e6679-7425-40de-944b-e07fc1f90ae7'}");
    ok(peer.answered == 1 && peer.sent && strcmp(peer.sent, want) == 0,
       "relay: the handler relayed the checked data, no database");
    free(want);
    free(peer.sent);

    memset(&peer, 0, sizeof(relay_socket_t));
    rc = ngx_famcall_event_decode("{\"type\":\"webrtc:ice\",\"data\":"
                                  "{\"to\":\"x\",\"candidate\":\"c\"}}",
                                  55, table, EV_COUNT + 1, &ev, &err);
    ok(rc == -1 && strcmp(err.code, "invalid_field") == 0
       && strcmp(err.field, "to") == 0 && peer.answered == 0,
       "relay: bad data never reaches the handler");
    ngx_famcall_event_free(&ev);

    rc = ngx_famcall_event_decode("{\"type\":\"webrtc:ice\"}", 21, types,
                                  EV_COUNT, &ev, &err);
    ok(rc == -1 && strcmp(err.code, "unknown_type") == 0,
       "relay: unknown to a table without it");
    ngx_famcall_event_free(&ev);
}


int
main(void)
{
    test_table();
    test_lengths();
    test_nesting();
    test_names();
    test_int();
    test_free();
    test_relay();

    return done_testing();
}
