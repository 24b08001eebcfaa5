/*
 * famcall: the realtime gateway as a module, ngx_http_famcall_gateway_module
 * (ngx_http_famcall_gateway_module.c): its directives (famcall_ws_*), its
 * route (GET /v1/ws), its statements and the node's shared zone; and what
 * the rest of the gateway offers the module and the transport.
 */

#ifndef _NGX_FAMCALL_GATEWAY_H_INCLUDED_
#define _NGX_FAMCALL_GATEWAY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"
#include "ngx_famcall_chat.h"
#include "ngx_famcall_ws.h"


/* the gateway's statements: its conf's sql + these */
typedef enum {
    NGX_FAMCALL_GW_SQL_LISTEN = 0,
    NGX_FAMCALL_GW_SQL_MESSAGE_GET,
    NGX_FAMCALL_GW_SQL_RECEIPT,
    NGX_FAMCALL_GW_SQL_TYPING,
    NGX_FAMCALL_GW_SQL_SYNC,
    NGX_FAMCALL_GW_SQL_PRESENCE_BATCH,
    NGX_FAMCALL_GW_SQL_INSTANCE_REGISTER,
    NGX_FAMCALL_GW_SQL_INSTANCE_SWEEP,
    NGX_FAMCALL_GW_SQL_COUNT
} ngx_famcall_gw_sql_e;


typedef struct ngx_famcall_gw_s  ngx_famcall_gw_t;


typedef struct {
    ngx_famcall_ws_conf_t      ws;          /* famcall_ws_*: the transport */

    ngx_shm_zone_t            *node_zone;   /* the node's workers, bus */
    ngx_uint_t                 sql;         /* its first statement */
    ngx_famcall_gw_t          *gw;          /* this worker's gateway */
    ngx_array_t               *events;      /* ngx_famcall_gw_event_t */
    ngx_array_t               *hooks;       /* ngx_famcall_gw_hooks_t */
} ngx_famcall_gw_conf_t;


extern ngx_module_t  ngx_http_famcall_gateway_module;


/* ngx_famcall_gateway.c: the route handler of GET /v1/ws */
ngx_int_t ngx_famcall_gw_ws_open(ngx_famcall_ctx_t *ctx);

/* ngx_famcall_gateway.c: the worker's gateway (registry, bus, events) */
ngx_int_t ngx_famcall_gw_init(ngx_cycle_t *cycle,
    ngx_http_famcall_main_conf_t *fmcf, ngx_famcall_gw_conf_t *gwcf);
void ngx_famcall_gw_exit(ngx_famcall_gw_conf_t *gwcf);
ngx_int_t ngx_famcall_gw_events_init(ngx_conf_t *cf);
ngx_shm_zone_t *ngx_famcall_node_zone(ngx_conf_t *cf, void *tag);

/* ngx_famcall_gw_registry.c: user's (16 bytes) sockets in this worker */
ngx_uint_t ngx_famcall_gw_user_sockets(ngx_famcall_gw_t *gw,
    const u_char *user);


#endif /* _NGX_FAMCALL_GATEWAY_H_INCLUDED_ */
