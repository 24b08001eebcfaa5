/*
 * famcall: the fields of the events the gateway serves itself (message:*,
 * typing, sync, auth; docs/websocket.md).  Their handlers are in
 * ngx_famcall_gw_events.c; the tables are here, pure C, so t/unit/ and
 * t/fuzz/ check them without nginx.  Another feature keeps its events'
 * fields in its own folder the same way.
 */

#ifndef _NGX_FAMCALL_EVENT_FIELDS_H_INCLUDED_
#define _NGX_FAMCALL_EVENT_FIELDS_H_INCLUDED_


#include "ngx_famcall_json.h"


/* message:send */
extern const ngx_famcall_field_t  ngx_famcall_ev_send_fields[];
/* message:delivered, message:read */
extern const ngx_famcall_field_t  ngx_famcall_ev_receipt_fields[];
extern const ngx_famcall_field_t  ngx_famcall_ev_typing_fields[];
extern const ngx_famcall_field_t  ngx_famcall_ev_sync_fields[];
extern const ngx_famcall_field_t  ngx_famcall_ev_auth_fields[];


#endif /* _NGX_FAMCALL_EVENT_FIELDS_H_INCLUDED_ */
