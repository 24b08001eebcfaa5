/*
 * famcall: accounts and sessions (ngx_http_famcall_auth_module): signup,
 * login, refresh and logout by email and password (ngx_famcall_auth.c),
 * sign-in by phone with a one-time code (ngx_famcall_otp.c), Argon2id on
 * a thread pool (ngx_famcall_password.c).
 */

#ifndef _NGX_FAMCALL_AUTH_H_INCLUDED_
#define _NGX_FAMCALL_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"


/* the feature's statements: its conf's sql + these */
typedef enum {
    NGX_FAMCALL_AUTH_SQL_SIGNUP = 0,
    NGX_FAMCALL_AUTH_SQL_LOGIN_LOOKUP,
    NGX_FAMCALL_AUTH_SQL_SESSION_CREATE,
    NGX_FAMCALL_AUTH_SQL_REFRESH,
    NGX_FAMCALL_AUTH_SQL_LOGOUT,
    NGX_FAMCALL_AUTH_SQL_OTP_REQUEST,
    NGX_FAMCALL_AUTH_SQL_OTP_VERIFY,
    NGX_FAMCALL_AUTH_SQL_COUNT
} ngx_famcall_auth_sql_e;


typedef enum {
    NGX_FAMCALL_SMS_LOG = 0,
    NGX_FAMCALL_SMS_WEBHOOK
} ngx_famcall_sms_driver_e;


typedef struct {
    time_t                     jwt_ttl;
    time_t                     refresh_ttl;
    time_t                     refresh_grace;

    ngx_str_t                  password_tp_name;
    ngx_thread_pool_t         *password_tp;
    ngx_uint_t                 password_opslimit;
    size_t                     password_memlimit;

    ngx_uint_t                 otp_driver;
    ngx_str_t                  otp_webhook;
    ngx_open_file_t           *otp_log;
    time_t                     otp_ttl;
    ngx_uint_t                 otp_max_attempts;
    ngx_uint_t                 otp_phone_max;
    time_t                     otp_phone_window;
    ngx_uint_t                 otp_ip_max;
    time_t                     otp_ip_window;

    ngx_uint_t                 sql;         /* its first statement */
} ngx_famcall_auth_conf_t;


extern ngx_module_t  ngx_http_famcall_auth_module;

#define ngx_famcall_auth_conf(ctx)                                           \
    ((ngx_famcall_auth_conf_t *) ngx_http_get_module_main_conf(              \
                                     (ctx)->request,                         \
                                     ngx_http_famcall_auth_module))


/* routes */
ngx_int_t ngx_famcall_auth_signup(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_auth_login(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_auth_refresh(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_auth_logout(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_otp_request(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_otp_verify(ngx_famcall_ctx_t *ctx);

/* the token answer of signup, login, refresh and OTP verify */
ngx_int_t ngx_famcall_auth_send_tokens(ngx_famcall_ctx_t *ctx,
    ngx_uint_t status, const char *refresh_token, u_char *body, size_t len);

/*
 * Argon2id in the thread pool.  done gets NGX_OK (hash: the new hash),
 * NGX_DECLINED (no match) or NGX_ERROR, and returns as a route does.
 */
typedef ngx_int_t (*ngx_famcall_password_pt)(ngx_famcall_ctx_t *ctx,
    ngx_int_t rc, const char *hash);
ngx_int_t ngx_famcall_password_hash(ngx_famcall_ctx_t *ctx,
    const char *password, ngx_famcall_password_pt done);
ngx_int_t ngx_famcall_password_verify(ngx_famcall_ctx_t *ctx,
    const char *password, const char *hash, ngx_famcall_password_pt done);


#endif /* _NGX_FAMCALL_AUTH_H_INCLUDED_ */
