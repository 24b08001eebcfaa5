/*
 * famcall: conversations and messages (ngx_http_famcall_chat_module):
 * the /v1/conversations routes (ngx_famcall_chat.c) and the node's send
 * batcher, which the gateway's message:send shares.
 */

#ifndef _NGX_FAMCALL_CHAT_H_INCLUDED_
#define _NGX_FAMCALL_CHAT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"
#include "ngx_famcall_batch.h"


/* the feature's statements: its conf's sql + these */
typedef enum {
    NGX_FAMCALL_CHAT_SQL_CONVERSATIONS_LIST = 0,
    NGX_FAMCALL_CHAT_SQL_CONVERSATION_OPEN,
    NGX_FAMCALL_CHAT_SQL_MESSAGES_LIST,
    NGX_FAMCALL_CHAT_SQL_CONVERSATION_READ,
    NGX_FAMCALL_CHAT_SQL_SEND_BATCH,
    NGX_FAMCALL_CHAT_SQL_COUNT
} ngx_famcall_chat_sql_e;


typedef struct {
    ngx_uint_t                 send_streams;
    ngx_flag_t                 send_turns;
    size_t                     send_queue_size;
    ngx_shm_zone_t            *send_zone;   /* the node's send streams */

    ngx_uint_t                 sql;         /* its first statement */
    ngx_famcall_batcher_t     *batcher;     /* this worker's */
} ngx_famcall_chat_conf_t;


extern ngx_module_t  ngx_http_famcall_chat_module;

#define ngx_famcall_chat_conf(ctx)                                           \
    ((ngx_famcall_chat_conf_t *) ngx_http_get_module_main_conf(              \
                                     (ctx)->request,                         \
                                     ngx_http_famcall_chat_module))


/* routes */
ngx_int_t ngx_famcall_conversations_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_conversations_open(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_messages_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_messages_send(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_conversations_read(ngx_famcall_ctx_t *ctx);

/*
 * A send as the batcher's item (sql/013: me, conversation, client_id,
 * body, src), for the HTTP route and the socket's message:send alike.
 * client_id and body: checked strings; src: the sending socket, or NULL.
 */
#define NGX_FAMCALL_SEND_FIELDS  5
void ngx_famcall_send_item(ngx_str_t *item, ngx_str_t *me, ngx_str_t *conv,
    json_t *client_id, json_t *body, const char *src);

/* the worker's send batcher, NULL outside a worker with famcall_api */
ngx_famcall_batcher_t *ngx_famcall_chat_batcher(ngx_cycle_t *cycle);


#endif /* _NGX_FAMCALL_CHAT_H_INCLUDED_ */
