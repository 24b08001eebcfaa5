/*
 * famcall: people and the relations between them
 * (ngx_http_famcall_users_module): the caller's profile
 * (ngx_famcall_me.c), search, contacts, blocks and reports
 * (ngx_famcall_contacts.c).
 */

#ifndef _NGX_FAMCALL_USERS_H_INCLUDED_
#define _NGX_FAMCALL_USERS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"


/* the feature's statements: its conf's sql + these */
typedef enum {
    NGX_FAMCALL_USERS_SQL_ME = 0,
    NGX_FAMCALL_USERS_SQL_ME_UPDATE,
    NGX_FAMCALL_USERS_SQL_SEARCH,
    NGX_FAMCALL_USERS_SQL_CONTACTS_LIST,
    NGX_FAMCALL_USERS_SQL_CONTACT_REQUEST,
    NGX_FAMCALL_USERS_SQL_CONTACT_ACCEPT,
    NGX_FAMCALL_USERS_SQL_CONTACT_REMOVE,
    NGX_FAMCALL_USERS_SQL_BLOCKS_LIST,
    NGX_FAMCALL_USERS_SQL_BLOCK,
    NGX_FAMCALL_USERS_SQL_UNBLOCK,
    NGX_FAMCALL_USERS_SQL_REPORT,
    NGX_FAMCALL_USERS_SQL_COUNT
} ngx_famcall_users_sql_e;


typedef struct {
    ngx_uint_t                 sql;         /* its first statement */
} ngx_famcall_users_conf_t;


extern ngx_module_t  ngx_http_famcall_users_module;

/* statement s of the feature, as ngx_famcall_query() takes it */
#define ngx_famcall_users_sql(ctx, s)                                        \
    (((ngx_famcall_users_conf_t *) ngx_http_get_module_main_conf(            \
          (ctx)->request, ngx_http_famcall_users_module))->sql + (s))


/* routes */
ngx_int_t ngx_famcall_me_get(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_me_patch(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_users_search(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_add(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_accept(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_remove(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_blocks_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_blocks_add(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_blocks_remove(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_reports_add(ngx_famcall_ctx_t *ctx);


#endif /* _NGX_FAMCALL_USERS_H_INCLUDED_ */
