/*
 * famcall: the push module, ngx_http_famcall_push_module: the devices
 * routes and famcall_push_preview.
 *
 * What a message push says is decided where the push row is written, in
 * the send's own transaction (sql/023_push.sql), which cannot read
 * nginx.conf: so the first worker tells the database the setting as it
 * starts (famcall_push_configure), and tries again every few seconds
 * until the database has heard it.  Until then, and in a database that
 * never heard it, pushes show no preview.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_push.h"


#define NGX_FAMCALL_PUSH_CONFIGURE_RETRY  5000


static ngx_int_t ngx_famcall_push_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_push_create_conf(ngx_conf_t *cf);
static char *ngx_famcall_push_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_famcall_push_init_process(ngx_cycle_t *cycle);
static void ngx_famcall_push_exit(void *data);
static void ngx_famcall_push_configure(ngx_event_t *ev);
static void ngx_famcall_push_configured(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);


static ngx_command_t  ngx_famcall_push_commands[] = {

    { ngx_string("famcall_push_preview"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_famcall_push_conf_t, preview), NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_push_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_push_postconfiguration,    /* postconfiguration */

    ngx_famcall_push_create_conf,          /* create main configuration */
    ngx_famcall_push_init_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_push_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_push_module_ctx,     /* module context */
    ngx_famcall_push_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_famcall_push_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static const ngx_famcall_route_t  ngx_famcall_push_routes[] = {

    { NGX_HTTP_POST,   "/v1/devices", ngx_famcall_devices_register, 1, 1 },
    { NGX_HTTP_GET,    "/v1/devices", ngx_famcall_devices_list, 1, 0 },
    { NGX_HTTP_DELETE, "/v1/devices/{}", ngx_famcall_devices_remove, 1, 0 },

    { 0, NULL, NULL, 0, 0 }
};


/* sql/023_push.sql */
static const ngx_famcall_stmt_t
    ngx_famcall_push_statements[NGX_FAMCALL_PUSH_SQL_COUNT] =
{

    [NGX_FAMCALL_PUSH_SQL_REGISTER] = { "famcall_device_register",
      NGX_FAMCALL_SQL_FN("famcall_device_register",
          "$1::uuid, $2::uuid, $3::text, $4::text, $5::text, $6::text"), 6 },

    [NGX_FAMCALL_PUSH_SQL_LIST] = { "famcall_devices_list",
      NGX_FAMCALL_SQL_FN("famcall_devices_list", "$1::uuid"), 1 },

    [NGX_FAMCALL_PUSH_SQL_REMOVE] = { "famcall_device_remove",
      NGX_FAMCALL_SQL_FN("famcall_device_remove", "$1::uuid, $2::uuid"), 2 },

    [NGX_FAMCALL_PUSH_SQL_CONFIGURE] = { "famcall_push_configure",
      NGX_FAMCALL_SQL_FN("famcall_push_configure", "$1::boolean"), 1 },
};


static ngx_int_t
ngx_famcall_push_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_push_conf_t  *pcf;

    pcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_famcall_push_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_push_statements,
                                      NGX_FAMCALL_PUSH_SQL_COUNT, &pcf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_push_routes);
}


static void *
ngx_famcall_push_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_push_conf_t  *pcf;

    /* set by ngx_pcalloc(): sql = 0, fmcf = NULL, query = NULL, retry */
    pcf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_push_conf_t));
    if (pcf == NULL) {
        return NULL;
    }

    pcf->preview = NGX_CONF_UNSET;

    return pcf;
}


static char *
ngx_famcall_push_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_famcall_push_conf_t  *pcf = conf;

    /* the sender's name and words on a lock screen are the family's call */
    ngx_conf_init_value(pcf->preview, 1);

    return NGX_CONF_OK;
}


/* after the core's (config lists it first): the pool is there */
static ngx_int_t
ngx_famcall_push_init_process(ngx_cycle_t *cycle)
{
    ngx_famcall_push_conf_t       *pcf;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_famcall_core_conf(cycle);

    /* one worker per node says it; every node says the same */
    if (fmcf == NULL || ngx_worker != 0) {
        return NGX_OK;
    }

    pcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_famcall_push_module);

    pcf->fmcf = fmcf;
    pcf->retry.handler = ngx_famcall_push_configure;
    pcf->retry.data = pcf;
    pcf->retry.log = cycle->log;
    pcf->retry.cancelable = 1;

    ngx_famcall_push_configure(&pcf->retry);

    return ngx_famcall_exit_add(cycle, fmcf, ngx_famcall_push_exit, pcf);
}


static void
ngx_famcall_push_exit(void *data)
{
    ngx_famcall_push_conf_t  *pcf = data;

    if (pcf->retry.timer_set) {
        ngx_del_timer(&pcf->retry);
    }

    if (pcf->query != NULL) {
        ngx_famcall_pg_detach(pcf->query);
        pcf->query = NULL;
    }

    pcf->fmcf = NULL;
}


static void
ngx_famcall_push_configure(ngx_event_t *ev)
{
    ngx_famcall_push_conf_t  *pcf = ev->data;

    const char  *params[1];

    if (pcf->fmcf == NULL || pcf->query != NULL
        || ngx_exiting || ngx_quit || ngx_terminate)
    {
        return;
    }

    params[0] = pcf->preview ? "true" : "false";

    pcf->query = ngx_famcall_pg_send(pcf->fmcf->pg,
                                     pcf->sql
                                     + NGX_FAMCALL_PUSH_SQL_CONFIGURE,
                                     1, params, ngx_famcall_push_configured,
                                     pcf);

    if (pcf->query == NULL) {
        ngx_add_timer(&pcf->retry, NGX_FAMCALL_PUSH_CONFIGURE_RETRY);
    }
}


/* owned by the worker's conf: the exit handler detaches it first */
static void
ngx_famcall_push_configured(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_push_conf_t  *pcf = data;

    pcf->query = NULL;

    if (status == NGX_FAMCALL_PG_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pcf->retry.log, 0,
                       "famcall push: preview %s told to the database",
                       pcf->preview ? "on" : "off");
        return;
    }

    if (pcf->fmcf != NULL && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&pcf->retry, NGX_FAMCALL_PUSH_CONFIGURE_RETRY);
    }
}
