/*
 * famcall: the fields of the calls module's events and bodies: call:*
 * (ngx_famcall_call_events.c), webrtc:* (ngx_famcall_call_relay.c) and the
 * quality report of POST /v1/calls/{id}/stats (ngx_famcall_call_http.c).
 * Pure C, no nginx header, so t/unit/ and t/fuzz/ check the same tables
 * the module serves.
 */

#ifndef _NGX_FAMCALL_CALL_FIELDS_H_INCLUDED_
#define _NGX_FAMCALL_CALL_FIELDS_H_INCLUDED_


#include "ngx_famcall_json.h"


/* sizes checked before anything is copied or relayed */
#define NGX_FAMCALL_CALL_REASON_MAX     32
#define NGX_FAMCALL_CALL_SDP_MAX        65536
#define NGX_FAMCALL_CALL_CANDIDATE_MAX  1024
#define NGX_FAMCALL_CALL_MID_MAX        64


/* call:invite */
extern const ngx_famcall_field_t  ngx_famcall_call_invite_fields[];
/* call:accept, call:reject, call:cancel, call:resume */
extern const ngx_famcall_field_t  ngx_famcall_call_id_fields[];
/* call:active */
extern const ngx_famcall_field_t  ngx_famcall_call_no_fields[];
/* call:end */
extern const ngx_famcall_field_t  ngx_famcall_call_end_fields[];

/* webrtc:offer, webrtc:answer */
extern const ngx_famcall_field_t  ngx_famcall_call_sdp_fields[];
/* webrtc:ice */
extern const ngx_famcall_field_t  ngx_famcall_call_ice_fields[];

/* POST /v1/calls/{id}/stats */
extern const ngx_famcall_field_t  ngx_famcall_call_stats_fields[];


#endif /* _NGX_FAMCALL_CALL_FIELDS_H_INCLUDED_ */
