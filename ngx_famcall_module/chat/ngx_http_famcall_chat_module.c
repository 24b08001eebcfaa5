/*
 * famcall: the chat module, ngx_http_famcall_chat_module: the send
 * batcher's directives and its shared zone, the /v1/conversations routes
 * and their statements (ngx_famcall_chat.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_chat.h"


static ngx_int_t ngx_famcall_chat_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_chat_create_conf(ngx_conf_t *cf);
static char *ngx_famcall_chat_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_famcall_chat_init_process(ngx_cycle_t *cycle);
static void ngx_famcall_chat_exit(void *data);


static ngx_conf_num_bounds_t  ngx_famcall_send_streams_bounds = {
    ngx_famcall_conf_check_bounds, 1, 64
};


#define famcall_off(f)  offsetof(ngx_famcall_chat_conf_t, f)

static ngx_command_t  ngx_famcall_chat_commands[] = {

    { ngx_string("famcall_send_streams"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(send_streams), &ngx_famcall_send_streams_bounds },

    { ngx_string("famcall_send_turns"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_flag_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(send_turns), NULL },

    { ngx_string("famcall_send_queue_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(send_queue_size), NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_chat_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_chat_postconfiguration,    /* postconfiguration */

    ngx_famcall_chat_create_conf,          /* create main configuration */
    ngx_famcall_chat_init_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_chat_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_chat_module_ctx,     /* module context */
    ngx_famcall_chat_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_famcall_chat_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static const ngx_famcall_route_t  ngx_famcall_chat_routes[] = {

    { NGX_HTTP_GET,  "/v1/conversations", ngx_famcall_conversations_list,
      1, 0 },
    { NGX_HTTP_POST, "/v1/conversations", ngx_famcall_conversations_open,
      1, 1 },
    { NGX_HTTP_GET,  "/v1/conversations/{}/messages",
      ngx_famcall_messages_list, 1, 0 },
    { NGX_HTTP_POST, "/v1/conversations/{}/messages",
      ngx_famcall_messages_send, 1, 1 },
    { NGX_HTTP_POST, "/v1/conversations/{}/read",
      ngx_famcall_conversations_read, 1, 1 },

    { 0, NULL, NULL, 0, 0 }
};


/* membership, blocks, idempotent sends: sql/003 and sql/013 */
static const ngx_famcall_stmt_t
    ngx_famcall_chat_sql[NGX_FAMCALL_CHAT_SQL_COUNT] =
{

    [NGX_FAMCALL_CHAT_SQL_CONVERSATIONS_LIST] = { "famcall_conversations_list",
      NGX_FAMCALL_SQL_FN("famcall_conversations_list", "$1::uuid"), 1 },

    [NGX_FAMCALL_CHAT_SQL_CONVERSATION_OPEN] = { "famcall_conversation_open",
      NGX_FAMCALL_SQL_FN("famcall_conversation_open", "$1::uuid, $2::uuid"),
      2 },

    [NGX_FAMCALL_CHAT_SQL_MESSAGES_LIST] = { "famcall_messages_list",
      NGX_FAMCALL_SQL_FN("famcall_messages_list",
          "$1::uuid, $2::uuid, $3::bigint, $4::bigint, $5::int"), 5 },

    [NGX_FAMCALL_CHAT_SQL_CONVERSATION_READ] = { "famcall_conversation_read",
      NGX_FAMCALL_SQL_FN("famcall_conversation_read",
                         "$1::uuid, $2::uuid, $3::bigint"), 3 },

    /* group commit: one row (i, status, body) per item of the arrays */
    [NGX_FAMCALL_CHAT_SQL_SEND_BATCH] = { "famcall_message_send_batch",
      "SELECT i, status, body FROM famcall_message_send_batch($1::uuid[], "
      "$2::uuid[], $3::uuid[], $4::text[], $5::text[])",
      NGX_FAMCALL_SEND_FIELDS },
};


static const char *const  ngx_famcall_empty_batch[] = {
    "{}", "{}", "{}", "{}", "{}"
};


static ngx_int_t
ngx_famcall_chat_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_chat_conf_t  *ccf;

    ccf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_chat_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_chat_sql,
                                      NGX_FAMCALL_CHAT_SQL_COUNT, &ccf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_chat_routes);
}


static void *
ngx_famcall_chat_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_chat_conf_t  *ccf;

    ccf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_chat_conf_t));
    if (ccf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     ccf->send_zone = NULL;
     *     ccf->sql = 0;
     *     ccf->batcher = NULL;
     */

    ccf->send_streams = NGX_CONF_UNSET_UINT;
    ccf->send_turns = NGX_CONF_UNSET;
    ccf->send_queue_size = NGX_CONF_UNSET_SIZE;

    return ccf;
}


static char *
ngx_famcall_chat_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_famcall_chat_conf_t  *ccf = conf;

    ngx_str_t                      send_zone = ngx_string("famcall_send");
    ngx_http_famcall_main_conf_t  *fmcf;

    ngx_conf_init_uint_value(ccf->send_streams, 2);
    ngx_conf_init_value(ccf->send_turns, 0);
    ngx_conf_init_size_value(ccf->send_queue_size, 1024 * 1024);

    /* the core's init ran first (config lists it first): api_used is set */
    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);

    if (!fmcf->api_used) {
        return NGX_CONF_OK;
    }

    if (ccf->send_queue_size < 64 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_send_queue_size\" must be at least 64k");
        return NGX_CONF_ERROR;
    }

    ccf->send_zone = ngx_famcall_batch_zone(cf, &send_zone,
                                            ccf->send_streams,
                                            ccf->send_queue_size,
                                            &ngx_http_famcall_chat_module);
    if (ccf->send_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* after the core's (config lists it first): the pool is there */
static ngx_int_t
ngx_famcall_chat_init_process(ngx_cycle_t *cycle)
{
    ngx_famcall_chat_conf_t       *ccf;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_famcall_core_conf(cycle);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    ccf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_famcall_chat_module);

    /* a batch of no sends: each connection prepares and plans it at once */
    ngx_famcall_pg_warm(fmcf->pg, ccf->sql + NGX_FAMCALL_CHAT_SQL_SEND_BATCH,
                        NGX_FAMCALL_SEND_FIELDS, ngx_famcall_empty_batch);

    /*
     * One batch of sends in flight per stream, and famcall_send_streams
     * (2) streams per node, however many workers it has: what arrives
     * meanwhile waits and leaves as the next batch.  More batches side by
     * side make each smaller for the same wait, and every batch has a fixed
     * cost in PostgreSQL of about fifteen sends; with one stream per
     * worker, a node of 8 workers fell behind where 2 streams kept up
     * (docs/benchmarks.md).  With famcall_send_turns on, the streams take
     * turns (ngx_famcall_batch.c).  An item unanswered after twice the
     * database timeout (its runner died) gets 503.
     */
    ccf->batcher = ngx_famcall_batcher_create(cycle->pool, fmcf->pg,
                       fmcf->ipc, ccf->send_zone,
                       ccf->sql + NGX_FAMCALL_CHAT_SQL_SEND_BATCH,
                       NGX_FAMCALL_SEND_FIELDS, 1, 256, ccf->send_turns,
                       2 * fmcf->db_timeout + 1000, cycle->log);
    if (ccf->batcher == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_exit_add(cycle, fmcf, ngx_famcall_chat_exit, ccf);
}


static void
ngx_famcall_chat_exit(void *data)
{
    ngx_famcall_chat_conf_t  *ccf = data;

    ngx_famcall_batcher_exit(ccf->batcher);
    ccf->batcher = NULL;
}


ngx_famcall_batcher_t *
ngx_famcall_chat_batcher(ngx_cycle_t *cycle)
{
    ngx_famcall_chat_conf_t  *ccf;

    if (ngx_famcall_core_conf(cycle) == NULL) {
        return NULL;
    }

    ccf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_famcall_chat_module);

    return ccf->batcher;
}
