/*
 * famcall: socket events as a table of handlers.  What a feature needs to
 * serve events of its own on the WebSocket without editing the gateway:
 *
 *     static const ngx_famcall_gw_event_t  ngx_famcall_call_events[] = {
 *         { "call:invite", ngx_famcall_call_invite_fields,
 *           ngx_famcall_call_invite },
 *         { NULL, NULL, NULL }
 *     };
 *
 *     ngx_famcall_gw_events_add(cf, ngx_famcall_call_events);
 *
 * while the configuration is read (a module's postconfiguration).  The
 * gateway decodes every message against the registered table
 * (ngx_famcall_event.c: the fields are checked, so a handler trusts its
 * data) and calls the event's handler with an operation, op, standing for
 * the event's answer.  A handler answers op exactly once: at once
 * (ngx_famcall_gw_answer(), ngx_famcall_gw_fail()), after relaying to
 * other sockets with no database at all, or later through a query
 * (ngx_famcall_gw_query(): its row is the answer) or a batched send (its
 * callback answers, op->entry).  When the socket goes first, those two are
 * detached and op freed; a handler waits for nothing else.  data is freed
 * when the handler returns: copy what outlives it.
 */

#ifndef _NGX_FAMCALL_GW_EVENTS_H_INCLUDED_
#define _NGX_FAMCALL_GW_EVENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_famcall_gateway.h"
#include "ngx_famcall_event.h"


/* { name, fields, handler }; the handler's owner is an ngx_famcall_gw_op_t */
typedef ngx_famcall_event_type_t  ngx_famcall_gw_event_t;

typedef struct ngx_famcall_gw_op_s  ngx_famcall_gw_op_t;


/* events: up to a NULL name; a name registered twice is an error */
ngx_int_t ngx_famcall_gw_events_add(ngx_conf_t *cf,
    const ngx_famcall_gw_event_t *events);

/* the socket's user, as text (NGX_FAMCALL_ID_LEN + 1) */
void ngx_famcall_gw_op_user(ngx_famcall_gw_op_t *op, char *out);

/* "<worker instance>.<socket id>": the event's socket, for the bus */
void ngx_famcall_gw_op_src(ngx_famcall_gw_op_t *op, char *out);

/*
 * one statement whose (status, body) row answers op: stmt is an index in
 * the pool's list, a feature's base + its own enum
 * (ngx_famcall_pg_statements_add())
 */
void ngx_famcall_gw_query(ngx_famcall_gw_op_t *op, ngx_uint_t stmt,
    ngx_uint_t n, const char *const *params);

/*
 * As ngx_famcall_gw_query(), and done(data, res) runs once op is answered
 * (res: the statement's result, with columns of the feature's own after
 * the third; NULL when it failed), but not when the socket went first
 * (then nothing runs: a feature that keeps something for the socket hears
 * of its close, ngx_famcall_gw_deliver.h).  NGX_OK: the query is on its
 * way; NGX_ERROR: op is answered already (unavailable) and done will not
 * run.
 */
typedef void (*ngx_famcall_gw_done_pt)(void *data, PGresult *res);

ngx_int_t ngx_famcall_gw_query_then(ngx_famcall_gw_op_t *op, ngx_uint_t stmt,
    ngx_uint_t n, const char *const *params, ngx_famcall_gw_done_pt done,
    void *data);

/*
 * ack (2xx: body, or {}, as its data) or error (body: {"error": {...}},
 * from sql/'s famcall_err; none: unavailable or internal).  Frees op.
 */
void ngx_famcall_gw_answer(ngx_famcall_gw_op_t *op, ngx_int_t status,
    u_char *body, size_t len);

/* an error of the handler's own (docs/websocket.md's codes).  Frees op. */
void ngx_famcall_gw_fail(ngx_famcall_gw_op_t *op, const char *code,
    const char *message, const char *field);


#endif /* _NGX_FAMCALL_GW_EVENTS_H_INCLUDED_ */
