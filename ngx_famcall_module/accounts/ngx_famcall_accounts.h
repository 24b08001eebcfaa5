/*
 * famcall: accounts for real life (ngx_http_famcall_accounts_module):
 * invites by SMS (ngx_famcall_invites.c), deleting one's account
 * (ngx_famcall_account_delete.c), exporting one's data
 * (ngx_famcall_export.c), the privacy policy and terms
 * (ngx_famcall_legal.c).  The rules are in sql/031 to sql/033.
 *
 * It comes after the auth module in the .so's list: SMS go through auth's
 * driver (famcall_otp_sms) and a password is checked on auth's thread pool.
 */

#ifndef _NGX_FAMCALL_ACCOUNTS_H_INCLUDED_
#define _NGX_FAMCALL_ACCOUNTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"


/* the feature's statements: its conf's sql + these */
typedef enum {
    NGX_FAMCALL_ACCOUNTS_SQL_INVITE = 0,
    NGX_FAMCALL_ACCOUNTS_SQL_INVITES_LIST,
    NGX_FAMCALL_ACCOUNTS_SQL_INVITE_DELETE,
    NGX_FAMCALL_ACCOUNTS_SQL_PROOF,
    NGX_FAMCALL_ACCOUNTS_SQL_DELETE,
    NGX_FAMCALL_ACCOUNTS_SQL_EXPORT_REQUEST,
    NGX_FAMCALL_ACCOUNTS_SQL_EXPORT_PAGE,
    NGX_FAMCALL_ACCOUNTS_SQL_LEGAL_ACCEPT,
    NGX_FAMCALL_ACCOUNTS_SQL_COUNT
} ngx_famcall_accounts_sql_e;


typedef struct {
    ngx_str_t                  invite_link;
    ngx_uint_t                 invite_user_max;
    time_t                     invite_user_window;
    time_t                     invite_phone_interval;

    time_t                     export_interval;
    time_t                     export_ttl;
    ngx_uint_t                 export_page;

    ngx_str_t                  privacy_url;
    ngx_str_t                  terms_url;
    ngx_str_t                  legal_version;  /* empty: none configured */

    ngx_uint_t                 sql;            /* its first statement */
} ngx_famcall_accounts_conf_t;


extern ngx_module_t  ngx_http_famcall_accounts_module;

#define ngx_famcall_accounts_conf(ctx)                                       \
    ((ngx_famcall_accounts_conf_t *) ngx_http_get_module_main_conf(          \
                                         (ctx)->request,                     \
                                         ngx_http_famcall_accounts_module))

#define ngx_famcall_accounts_sql(ctx, s)                                     \
    (ngx_famcall_accounts_conf(ctx)->sql + (s))


/* routes */
ngx_int_t ngx_famcall_invite_create(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_invites_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_invite_delete(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_account_delete(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_export_request(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_export_get(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_legal_get(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_legal_accept(ngx_famcall_ctx_t *ctx);

/*
 * The version of the policy and terms this deployment shows, as an SQL
 * parameter: NULL when none is configured (also for the auth and users
 * modules: sign-up records it, GET /v1/me compares with it).  *error is
 * set when it could not be copied.
 */
const char *ngx_famcall_legal_version(ngx_http_request_t *r,
    ngx_uint_t *error);

/* a 429 answer's Retry-After from its body's error.retry_after */
ngx_int_t ngx_famcall_retry_after(ngx_famcall_ctx_t *ctx, u_char *body,
    size_t len);


#endif /* _NGX_FAMCALL_ACCOUNTS_H_INCLUDED_ */
