/*
 * famcall: the gateway module, ngx_http_famcall_gateway_module: the
 * famcall_ws_* directives, the node's shared zone, the GET /v1/ws route,
 * the gateway's statements, and a worker's gateway started and stopped
 * (ngx_famcall_gateway.h).  The gateway itself is in the other files here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_gateway.h"


static ngx_int_t ngx_famcall_gw_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_gw_create_conf(ngx_conf_t *cf);
static char *ngx_famcall_gw_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_famcall_gw_init_process(ngx_cycle_t *cycle);
static void ngx_famcall_gw_exit_handler(void *data);


#define famcall_off(f)  offsetof(ngx_famcall_gw_conf_t, f)

static ngx_command_t  ngx_famcall_gw_commands[] = {

    { ngx_string("famcall_ws_max_message"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(ws.max_message), NULL },

    { ngx_string("famcall_ws_max_queue"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(ws.max_queue), NULL },

    { ngx_string("famcall_ws_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(ws.ping_interval), NULL },

    { ngx_string("famcall_ws_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(ws.idle_timeout), NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_gateway_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_gw_postconfiguration,      /* postconfiguration */

    ngx_famcall_gw_create_conf,            /* create main configuration */
    ngx_famcall_gw_init_conf,              /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_gateway_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_gateway_module_ctx,  /* module context */
    ngx_famcall_gw_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_famcall_gw_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static const ngx_famcall_route_t  ngx_famcall_gw_routes[] = {
    /* authenticates itself: the token may come as a subprotocol */
    { NGX_HTTP_GET, "/v1/ws", ngx_famcall_gw_ws_open, 0, 0 },
    { 0, NULL, NULL, 0, 0 }
};


/* the realtime gateway: sql/008_realtime.sql, sql/014_presence_batch.sql */
static const ngx_famcall_stmt_t
    ngx_famcall_gw_sql[NGX_FAMCALL_GW_SQL_COUNT] =
{

    [NGX_FAMCALL_GW_SQL_LISTEN] = { "famcall_listen", "LISTEN famcall", 0 },

    [NGX_FAMCALL_GW_SQL_MESSAGE_GET] = { "famcall_message_get",
      NGX_FAMCALL_SQL_FN("famcall_message_get", "$1::uuid"), 1 },

    [NGX_FAMCALL_GW_SQL_RECEIPT] = { "famcall_receipt",
      NGX_FAMCALL_SQL_FN("famcall_receipt",
          "$1::uuid, $2::uuid, $3::text, $4::bigint, $5::text"), 5 },

    /* a third column: the bus line for this node to deliver itself */
    [NGX_FAMCALL_GW_SQL_TYPING] = { "famcall_typing",
      "SELECT status, body, local FROM famcall_typing("
      "$1::uuid, $2::uuid, $3::text, $4::text, $5::uuid[])", 5 },

    [NGX_FAMCALL_GW_SQL_SYNC] = { "famcall_sync",
      NGX_FAMCALL_SQL_FN("famcall_sync", "$1::uuid, $2::text, $3::int"), 3 },

    [NGX_FAMCALL_GW_SQL_PRESENCE_BATCH] = { "famcall_presence_batch",
      NGX_FAMCALL_SQL_FN("famcall_presence_batch",
                         "$1::uuid, $2::uuid[], $3::boolean[]"), 3 },

    [NGX_FAMCALL_GW_SQL_INSTANCE_REGISTER] = { "famcall_instance_register",
      NGX_FAMCALL_SQL_FN("famcall_instance_register",
                         "$1::uuid, $2::text, $3::int"), 3 },

    [NGX_FAMCALL_GW_SQL_INSTANCE_SWEEP] = { "famcall_instance_sweep",
      NGX_FAMCALL_SQL_FN("famcall_instance_sweep", "$1::uuid"), 1 },
};


static ngx_int_t
ngx_famcall_gw_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_gw_conf_t  *gwcf;

    gwcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_famcall_gateway_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_gw_sql,
                                      NGX_FAMCALL_GW_SQL_COUNT, &gwcf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* its own socket events, registered like any feature's */
    if (ngx_famcall_gw_events_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_gw_routes);
}


static void *
ngx_famcall_gw_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_gw_conf_t  *gwcf;

    gwcf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_gw_conf_t));
    if (gwcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     gwcf->node_zone = NULL;
     *     gwcf->sql = 0;
     *     gwcf->gw = NULL;
     *     gwcf->events = NULL;
     *     gwcf->hooks = NULL;
     */

    gwcf->ws.max_message = NGX_CONF_UNSET_SIZE;
    gwcf->ws.max_queue = NGX_CONF_UNSET_SIZE;
    gwcf->ws.ping_interval = NGX_CONF_UNSET_MSEC;
    gwcf->ws.idle_timeout = NGX_CONF_UNSET_MSEC;

    return gwcf;
}


static char *
ngx_famcall_gw_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_famcall_gw_conf_t  *gwcf = conf;

    ngx_http_famcall_main_conf_t  *fmcf;

    ngx_conf_init_size_value(gwcf->ws.max_message, 128 * 1024);
    ngx_conf_init_size_value(gwcf->ws.max_queue, 256 * 1024);
    ngx_conf_init_msec_value(gwcf->ws.ping_interval, 30000);
    ngx_conf_init_msec_value(gwcf->ws.idle_timeout, 75000);

    /* the core's init ran first (config lists it first): api_used is set */
    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);

    if (!fmcf->api_used) {
        return NGX_CONF_OK;
    }

    if (gwcf->ws.max_message < 1024 || gwcf->ws.max_queue < 4096
        || gwcf->ws.ping_interval < 1000
        || gwcf->ws.idle_timeout <= gwcf->ws.ping_interval)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_ws_max_message\" must be at least 1k, "
                           "\"famcall_ws_max_queue\" at least 4k, "
                           "\"famcall_ws_ping_interval\" at least 1s and "
                           "\"famcall_ws_idle_timeout\" longer than it");
        return NGX_CONF_ERROR;
    }

    gwcf->node_zone = ngx_famcall_node_zone(cf,
                                            &ngx_http_famcall_gateway_module);
    if (gwcf->node_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* after the core's and the chat's (config order): pool and batcher exist */
static ngx_int_t
ngx_famcall_gw_init_process(ngx_cycle_t *cycle)
{
    ngx_famcall_gw_conf_t         *gwcf;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_famcall_core_conf(cycle);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    gwcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_famcall_gateway_module);

    /* first out as the worker exits: sockets go before the batcher, pool */
    if (ngx_famcall_exit_add(cycle, fmcf, ngx_famcall_gw_exit_handler, gwcf)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_gw_init(cycle, fmcf, gwcf);
}


static void
ngx_famcall_gw_exit_handler(void *data)
{
    ngx_famcall_gw_exit(data);
}
