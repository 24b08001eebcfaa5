/*
 * famcall: the node's bindings of accepted calls (ngx_famcall_call_bind.c).
 *
 * A binding is what the node knows of an accepted call whose two bound
 * sockets are both on it: call id -> (caller, its socket's src), (callee,
 * its socket's src).  With it, a webrtc:* relay between the two goes from
 * worker to worker without the database (ngx_famcall_call_relay.c).  The
 * calls row stays the truth: a binding is filled only from what the row
 * said, either when it committed (a "node:call-bind" bus line, sql/025)
 * or to a relay's statement when nothing was dropped meanwhile; it is
 * dropped when the row stops saying it ("node:call-unbind"), and whenever
 * the node cannot be sure (a socket of this node ends or resumes the call,
 * a bound socket closes, the bus had a gap); without a binding the relay
 * asks the row.
 */

#ifndef _NGX_FAMCALL_CALL_BIND_H_INCLUDED_
#define _NGX_FAMCALL_CALL_BIND_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_famcall_calls.h"
#include "ngx_famcall_gateway.h"


/* the zone; its slab pool holds the bindings, the oldest go when full */
#define NGX_FAMCALL_CALL_BIND_ZONE   (16 * 1024 * 1024)


/* while the configuration is read: the zone, the gateway's hooks */
ngx_int_t ngx_famcall_call_bind_init(ngx_conf_t *cf,
    ngx_famcall_calls_conf_t *ccf);

/*
 * The other side of call (16 bytes) for user (16 bytes) relaying from its
 * socket src: NGX_OK, and peer (16 bytes) and psrc (its src, at least
 * NGX_FAMCALL_CALL_SRC_LEN + 1 bytes, NUL-terminated) are set, when the
 * node has the call bound with that socket on one side; NGX_DECLINED
 * otherwise (ask the row).
 */
ngx_int_t ngx_famcall_call_bind_peer(ngx_famcall_calls_conf_t *ccf,
    const u_char *call, const u_char *user, ngx_str_t *src, u_char *peer,
    u_char *psrc);

/* the node forgets call (16 bytes): it cannot be sure of it any more */
void ngx_famcall_call_unbind(ngx_famcall_calls_conf_t *ccf,
    const u_char *call);

/*
 * A binding from a relay's statement, which read the row: data as a
 * node:call-bind line's.  Kept only if nothing dropped anything of the
 * call since the statement was sent, when ngx_famcall_call_bind_epoch()
 * said epoch (an unbind it may not have seen), and if the node has no
 * binding of the call already (the row's own line is newer).
 */
ngx_uint_t ngx_famcall_call_bind_epoch(ngx_famcall_calls_conf_t *ccf,
    const u_char *call);
void ngx_famcall_call_bind_fill(ngx_famcall_calls_conf_t *ccf,
    ngx_famcall_gw_t *gw, ngx_uint_t epoch, ngx_str_t *data);


#endif /* _NGX_FAMCALL_CALL_BIND_H_INCLUDED_ */
