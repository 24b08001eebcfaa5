/*
 * famcall: the events clients send on the WebSocket (docs/websocket.md),
 * decoded and checked.  Pure C over jansson (no nginx headers), so t/unit/
 * tests it and t/fuzz/ fuzzes it directly.
 *
 *     {"type": "message:send", "ref": "r1", "data": {...}}
 *
 * The decoder knows no event: it is given a table of types (a name, the
 * fields of its data and a handler), the one the gateway builds from what
 * every feature registered (ngx_famcall_gw_events_add()).  A decoded event
 * has a type from that table, a ref (or none) and its data object with
 * every field checked against the type's fields (and normalised in place),
 * so the handler acts on it without further checks.
 */

#ifndef _NGX_FAMCALL_EVENT_H_INCLUDED_
#define _NGX_FAMCALL_EVENT_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_famcall_json.h"


#define NGX_FAMCALL_EVENT_REF_MAX  64


/*
 * What the table's owner calls for a decoded event of the type: the
 * decoder never calls it.  owner: the owner's own (the gateway's: the
 * operation that answers the event, ngx_famcall_gw_events.h).
 */
typedef void (*ngx_famcall_event_handler_pt)(void *owner, json_t *data);


typedef struct {
    const char                    *name;      /* "message:send" */
    const ngx_famcall_field_t     *fields;    /* of its data */
    ngx_famcall_event_handler_pt   handler;
} ngx_famcall_event_type_t;


typedef struct {
    size_t                      type;      /* its index in the table */
    json_t                     *root;      /* owned: ngx_famcall_event_free() */
    json_t                     *data;      /* the data object, in root */
    const char                 *ref;       /* in root, or NULL */
} ngx_famcall_event_t;


/*
 * 0: ev is filled in.  -1: err says why; ev->ref is the event's ref when
 * it could be read (to answer with), so free ev either way.
 */
int ngx_famcall_event_decode(const char *buf, size_t len,
    const ngx_famcall_event_type_t *types, size_t ntypes,
    ngx_famcall_event_t *ev, ngx_famcall_verror_t *err);

void ngx_famcall_event_free(ngx_famcall_event_t *ev);

/* data's integer member name, or dflt when it is absent or null */
long long ngx_famcall_event_int(json_t *data, const char *name,
    long long dflt);


#endif /* _NGX_FAMCALL_EVENT_H_INCLUDED_ */
