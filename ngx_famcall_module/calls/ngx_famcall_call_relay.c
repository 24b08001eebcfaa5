/*
 * famcall: WebRTC signaling relayed between a call's two bound devices
 * (docs/websocket.md, "Relay"): webrtc:offer, webrtc:answer, webrtc:ice.
 * Nothing is stored.  One statement (sql/020_call_relay.sql) authorises
 * the relay from the calls row (a participant, from its bound device, of
 * an accepted call) and either hands the event back to this node, when
 * the peer's device is on one of its workers (the node delivers it,
 * ngx_famcall_gw_deliver.h), or puts it on the bus for the peer's node,
 * in a transaction that does not wait for the WAL flush.
 *
 * The sizes are checked by the event's fields, before anything is copied:
 * an SDP up to 64 KB, a candidate up to 1 KB (ngx_famcall_call_fields.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_calls.h"
#include "ngx_famcall_gateway.h"
#include "ngx_famcall_gw_deliver.h"
#include "ngx_famcall_call_fields.h"


static void ngx_famcall_call_offer(void *owner, json_t *data);
static void ngx_famcall_call_answer(void *owner, json_t *data);
static void ngx_famcall_call_ice(void *owner, json_t *data);
static void ngx_famcall_call_relay(ngx_famcall_gw_op_t *op, json_t *data,
    const char *type);


static const ngx_famcall_gw_event_t  ngx_famcall_call_relay_events[] = {
    { "webrtc:offer", ngx_famcall_call_sdp_fields, ngx_famcall_call_offer },
    { "webrtc:answer", ngx_famcall_call_sdp_fields,
      ngx_famcall_call_answer },
    { "webrtc:ice", ngx_famcall_call_ice_fields, ngx_famcall_call_ice },
    { NULL, NULL, NULL }
};


ngx_int_t
ngx_famcall_call_relay_init(ngx_conf_t *cf)
{
    return ngx_famcall_gw_events_add(cf, ngx_famcall_call_relay_events);
}


static void
ngx_famcall_call_offer(void *owner, json_t *data)
{
    ngx_famcall_call_relay(owner, data, "webrtc:offer");
}


static void
ngx_famcall_call_answer(void *owner, json_t *data)
{
    ngx_famcall_call_relay(owner, data, "webrtc:answer");
}


static void
ngx_famcall_call_ice(void *owner, json_t *data)
{
    ngx_famcall_call_relay(owner, data, "webrtc:ice");
}


static void
ngx_famcall_call_relay(ngx_famcall_gw_op_t *op, json_t *data,
    const char *type)
{
    char                       user[NGX_FAMCALL_ID_LEN + 1];
    char                       src[NGX_FAMCALL_CALL_SRC_LEN + 1];
    char                       here[NGX_FAMCALL_GW_HERE_LEN];
    u_char                     index[NGX_INT_T_LEN + 1];
    json_t                    *mline;
    const char                *params[9];
    ngx_famcall_gw_conf_t     *gwcf;
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_famcall_calls_conf();
    gwcf = ngx_http_cycle_get_module_main_conf((ngx_cycle_t *) ngx_cycle,
                                               ngx_http_famcall_gateway_module);

    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);

    /* this node's workers: a peer on one of them gets it from us */
    ngx_famcall_gw_node_here(gwcf->gw, here);

    mline = json_object_get(data, "sdp_mline_index");
    if (json_is_integer(mline)) {
        ngx_snprintf(index, sizeof(index), "%i%Z",
                     (ngx_int_t) json_integer_value(mline));
    }

    params[0] = user;
    params[1] = ngx_famcall_json_string(data, "call_id");
    params[2] = type;
    params[3] = ngx_famcall_json_string(data, "sdp");
    params[4] = ngx_famcall_json_string(data, "candidate");
    params[5] = ngx_famcall_json_string(data, "sdp_mid");
    params[6] = json_is_integer(mline) ? (const char *) index : NULL;
    params[7] = src;
    params[8] = here;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "famcall call: %s on %s from %s", type, params[1], src);

    ngx_famcall_gw_query(op, ccf->sql + NGX_FAMCALL_CALL_SQL_RELAY, 9,
                         params);
}
