/*
 * famcall: the events clients send on the WebSocket (docs/websocket.md),
 * decoded and checked.  Pure C over jansson (no nginx headers), so t/unit/
 * tests it and t/fuzz/ fuzzes it directly.
 *
 *     {"type": "message:send", "ref": "r1", "data": {...}}
 *
 * A decoded event has a known type, a ref (or none) and its data object
 * with every field checked against the type's table (and normalised in
 * place), so the gateway acts on it without further checks.
 */

#ifndef _NGX_FAMCALL_EVENT_H_INCLUDED_
#define _NGX_FAMCALL_EVENT_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_famcall_json.h"


#define NGX_FAMCALL_EVENT_REF_MAX  64


typedef enum {
    NGX_FAMCALL_EV_MESSAGE_SEND = 0,
    NGX_FAMCALL_EV_MESSAGE_DELIVERED,
    NGX_FAMCALL_EV_MESSAGE_READ,
    NGX_FAMCALL_EV_TYPING,
    NGX_FAMCALL_EV_SYNC,
    NGX_FAMCALL_EV_AUTH,
    NGX_FAMCALL_EV_COUNT
} ngx_famcall_event_type_e;


typedef struct {
    ngx_famcall_event_type_e   type;
    json_t                    *root;   /* owned: ngx_famcall_event_free() */
    json_t                    *data;   /* the data object, in root */
    const char                *ref;    /* in root, or NULL */
} ngx_famcall_event_t;


/*
 * 0: ev is filled in.  -1: err says why; ev->ref is the event's ref when
 * it could be read (to answer with), so free ev either way.
 */
int ngx_famcall_event_decode(const char *buf, size_t len,
    ngx_famcall_event_t *ev, ngx_famcall_verror_t *err);

void ngx_famcall_event_free(ngx_famcall_event_t *ev);

/* the wire name of a type ("message:send") */
const char *ngx_famcall_event_name(ngx_famcall_event_type_e type);

/* data's integer member name, or dflt when it is absent or null */
long long ngx_famcall_event_int(json_t *data, const char *name,
    long long dflt);


#endif /* _NGX_FAMCALL_EVENT_H_INCLUDED_ */
