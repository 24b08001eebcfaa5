/*
 * famcall: push notifications (ngx_http_famcall_push_module): the devices
 * a user registers (ngx_famcall_devices.c) and famcall_push_preview.
 *
 * Pushes themselves are not sent from here: the statements that store a
 * message or ring a call queue outbox rows in their own transaction
 * (sql/023_push.sql) and the dispatcher (dispatcher/) delivers them, so no
 * worker ever waits on a push provider.
 */

#ifndef _NGX_FAMCALL_PUSH_H_INCLUDED_
#define _NGX_FAMCALL_PUSH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"


typedef enum {
    NGX_FAMCALL_PUSH_SQL_REGISTER = 0,
    NGX_FAMCALL_PUSH_SQL_LIST,
    NGX_FAMCALL_PUSH_SQL_REMOVE,
    NGX_FAMCALL_PUSH_SQL_CONFIGURE,
    NGX_FAMCALL_PUSH_SQL_COUNT
} ngx_famcall_push_sql_e;


typedef struct {
    ngx_flag_t                     preview;    /* famcall_push_preview */
    ngx_uint_t                     sql;        /* its first statement */

    /* a worker's: telling the database the preview setting */
    ngx_http_famcall_main_conf_t  *fmcf;
    ngx_famcall_pg_query_t        *query;
    ngx_event_t                    retry;
} ngx_famcall_push_conf_t;


extern ngx_module_t  ngx_http_famcall_push_module;

#define ngx_famcall_push_sql(ctx, s)                                         \
    (((ngx_famcall_push_conf_t *) ngx_http_get_module_main_conf(             \
          (ctx)->request, ngx_http_famcall_push_module))->sql + (s))


ngx_int_t ngx_famcall_devices_register(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_devices_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_devices_remove(ngx_famcall_ctx_t *ctx);


#endif /* _NGX_FAMCALL_PUSH_H_INCLUDED_ */
