/*
 * famcall: the accounts module, ngx_http_famcall_auth_module: the
 * directives of tokens, passwords and one-time codes, the /v1/auth routes
 * and their statements (ngx_famcall_auth.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "ngx_famcall_auth.h"


static ngx_int_t ngx_famcall_auth_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_auth_create_conf(ngx_conf_t *cf);
static char *ngx_famcall_auth_init_conf(ngx_conf_t *cf, void *conf);
static char *ngx_famcall_otp_sms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_famcall_otp_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_num_bounds_t  ngx_famcall_opslimit_bounds = {
    ngx_famcall_conf_check_bounds, 1, 32
};

static ngx_conf_num_bounds_t  ngx_famcall_attempts_bounds = {
    ngx_famcall_conf_check_bounds, 1, 100
};


#define FAMCALL_MAIN  NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1
#define FAMCALL_MCF   NGX_HTTP_MAIN_CONF_OFFSET
#define famcall_off(f)  offsetof(ngx_famcall_auth_conf_t, f)

static ngx_command_t  ngx_famcall_auth_commands[] = {

    { ngx_string("famcall_jwt_ttl"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(jwt_ttl), NULL },

    { ngx_string("famcall_refresh_ttl"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(refresh_ttl), NULL },

    { ngx_string("famcall_refresh_grace"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(refresh_grace), NULL },

    { ngx_string("famcall_password_thread_pool"), FAMCALL_MAIN,
      ngx_conf_set_str_slot, FAMCALL_MCF, famcall_off(password_tp_name),
      NULL },

    { ngx_string("famcall_password_opslimit"), FAMCALL_MAIN,
      ngx_conf_set_num_slot, FAMCALL_MCF, famcall_off(password_opslimit),
      &ngx_famcall_opslimit_bounds },

    { ngx_string("famcall_password_memlimit"), FAMCALL_MAIN,
      ngx_conf_set_size_slot, FAMCALL_MCF, famcall_off(password_memlimit),
      NULL },

    { ngx_string("famcall_otp_sms"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_famcall_otp_sms, FAMCALL_MCF, 0, NULL },

    { ngx_string("famcall_otp_ttl"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(otp_ttl), NULL },

    { ngx_string("famcall_otp_max_attempts"), FAMCALL_MAIN,
      ngx_conf_set_num_slot, FAMCALL_MCF, famcall_off(otp_max_attempts),
      &ngx_famcall_attempts_bounds },

    { ngx_string("famcall_otp_limit_phone"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_famcall_otp_limit, FAMCALL_MCF, famcall_off(otp_phone_max), NULL },

    { ngx_string("famcall_otp_limit_ip"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_famcall_otp_limit, FAMCALL_MCF, famcall_off(otp_ip_max), NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_auth_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_auth_postconfiguration,    /* postconfiguration */

    ngx_famcall_auth_create_conf,          /* create main configuration */
    ngx_famcall_auth_init_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_auth_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_auth_module_ctx,     /* module context */
    ngx_famcall_auth_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static const ngx_famcall_route_t  ngx_famcall_auth_routes[] = {
    { NGX_HTTP_POST, "/v1/auth/signup", ngx_famcall_auth_signup, 0, 1 },
    { NGX_HTTP_POST, "/v1/auth/login", ngx_famcall_auth_login, 0, 1 },
    { NGX_HTTP_POST, "/v1/auth/refresh", ngx_famcall_auth_refresh, 0, 1 },
    { NGX_HTTP_POST, "/v1/auth/logout", ngx_famcall_auth_logout, 0, 1 },
    { NGX_HTTP_POST, "/v1/auth/otp/request", ngx_famcall_otp_request, 0, 1 },
    { NGX_HTTP_POST, "/v1/auth/otp/verify", ngx_famcall_otp_verify, 0, 1 },
    { 0, NULL, NULL, 0, 0 }
};


/* the rules live in the sql/002_accounts.sql functions these call */
static const ngx_famcall_stmt_t
    ngx_famcall_auth_sql[NGX_FAMCALL_AUTH_SQL_COUNT] =
{

    [NGX_FAMCALL_AUTH_SQL_SIGNUP] = { "famcall_signup",
      NGX_FAMCALL_SQL_FN("famcall_signup",
          "$1::text, $2::text, $3::text, $4::text, $5::text, $6::int,"
          " $7::text"), 7 },

    [NGX_FAMCALL_AUTH_SQL_LOGIN_LOOKUP] = { "famcall_login_lookup",
      NGX_FAMCALL_SQL_FN("famcall_login_lookup", "$1::text"), 1 },

    [NGX_FAMCALL_AUTH_SQL_SESSION_CREATE] = { "famcall_session_create",
      NGX_FAMCALL_SQL_FN("famcall_session_create",
                         "$1::uuid, $2::text, $3::int"), 3 },

    [NGX_FAMCALL_AUTH_SQL_REFRESH] = { "famcall_refresh",
      NGX_FAMCALL_SQL_FN("famcall_refresh",
                         "$1::text, $2::text, $3::int, $4::int"), 4 },

    [NGX_FAMCALL_AUTH_SQL_LOGOUT] = { "famcall_logout",
      NGX_FAMCALL_SQL_FN("famcall_logout", "$1::text"), 1 },

    [NGX_FAMCALL_AUTH_SQL_OTP_REQUEST] = { "famcall_otp_request",
      NGX_FAMCALL_SQL_FN("famcall_otp_request",
          "$1::text, $2::text, $3::text, $4::int, $5::int, $6::int,"
          " $7::int, $8::int, $9::jsonb"), 9 },

    [NGX_FAMCALL_AUTH_SQL_OTP_VERIFY] = { "famcall_otp_verify",
      NGX_FAMCALL_SQL_FN("famcall_otp_verify",
          "$1::text, $2::text, $3::text, $4::text, $5::int, $6::int,"
          " $7::text"), 7 },
};


static ngx_int_t
ngx_famcall_auth_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_auth_conf_t  *acf;

    acf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_auth_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_auth_sql,
                                      NGX_FAMCALL_AUTH_SQL_COUNT, &acf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_auth_routes);
}


static void *
ngx_famcall_auth_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_auth_conf_t  *acf;

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_auth_conf_t));
    if (acf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     acf->password_tp_name = { 0, NULL };
     *     acf->password_tp = NULL;
     *     acf->otp_webhook = { 0, NULL };
     *     acf->otp_log = NULL;
     *     acf->sql = 0;
     */

    acf->jwt_ttl = NGX_CONF_UNSET;
    acf->refresh_ttl = NGX_CONF_UNSET;
    acf->refresh_grace = NGX_CONF_UNSET;
    acf->password_opslimit = NGX_CONF_UNSET_UINT;
    acf->password_memlimit = NGX_CONF_UNSET_SIZE;
    acf->otp_driver = NGX_CONF_UNSET_UINT;
    acf->otp_ttl = NGX_CONF_UNSET;
    acf->otp_max_attempts = NGX_CONF_UNSET_UINT;
    acf->otp_phone_max = NGX_CONF_UNSET_UINT;
    acf->otp_phone_window = NGX_CONF_UNSET;
    acf->otp_ip_max = NGX_CONF_UNSET_UINT;
    acf->otp_ip_window = NGX_CONF_UNSET;

    return acf;
}


static char *
ngx_famcall_auth_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_famcall_auth_conf_t  *acf = conf;

    ngx_str_t                      sms_log = ngx_string("logs/sms.log");
    ngx_http_famcall_main_conf_t  *fmcf;

    ngx_conf_init_value(acf->jwt_ttl, 15 * 60);
    ngx_conf_init_value(acf->refresh_ttl, 30 * 24 * 60 * 60);
    ngx_conf_init_value(acf->refresh_grace, 10);
    ngx_conf_init_uint_value(acf->password_opslimit, 2);
    ngx_conf_init_size_value(acf->password_memlimit, 64 * 1024 * 1024);
    ngx_conf_init_uint_value(acf->otp_driver, NGX_FAMCALL_SMS_LOG);
    ngx_conf_init_value(acf->otp_ttl, 5 * 60);
    ngx_conf_init_uint_value(acf->otp_max_attempts, 5);
    ngx_conf_init_uint_value(acf->otp_phone_max, 3);
    ngx_conf_init_value(acf->otp_phone_window, 10 * 60);
    ngx_conf_init_uint_value(acf->otp_ip_max, 20);
    ngx_conf_init_value(acf->otp_ip_window, 60 * 60);

    if (acf->password_tp_name.len == 0) {
        ngx_str_set(&acf->password_tp_name, "default");
    }

    /* the core's init ran first (config lists it first): api_used is set */
    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);

    if (!fmcf->api_used) {
        return NGX_CONF_OK;
    }

    if (acf->password_memlimit < crypto_pwhash_MEMLIMIT_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_password_memlimit\" must be at least "
                           "%uz bytes", (size_t) crypto_pwhash_MEMLIMIT_MIN);
        return NGX_CONF_ERROR;
    }

    if (acf->jwt_ttl < 1 || acf->refresh_ttl < acf->jwt_ttl) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_jwt_ttl\" must be at least 1s and "
                           "\"famcall_refresh_ttl\" at least as long");
        return NGX_CONF_ERROR;
    }

    if (acf->otp_ttl < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_otp_ttl\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (acf->otp_driver == NGX_FAMCALL_SMS_LOG && acf->otp_log == NULL) {
        acf->otp_log = ngx_conf_open_file(cf->cycle, &sms_log);
        if (acf->otp_log == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    acf->password_tp = ngx_thread_pool_add(cf, &acf->password_tp_name);
    if (acf->password_tp == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* famcall_otp_sms log <path> | webhook <http(s) url> */
static char *
ngx_famcall_otp_sms(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_famcall_auth_conf_t  *acf = conf;

    ngx_str_t  *value;

    if (acf->otp_driver != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "log") == 0) {
        acf->otp_driver = NGX_FAMCALL_SMS_LOG;
        acf->otp_log = ngx_conf_open_file(cf->cycle, &value[2]);

        return acf->otp_log ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[1].data, "webhook") == 0) {
        if (ngx_strncmp(value[2].data, "http://", 7) != 0
            && ngx_strncmp(value[2].data, "https://", 8) != 0)
        {
            return "webhook needs an http:// or https:// URL";
        }

        acf->otp_driver = NGX_FAMCALL_SMS_WEBHOOK;
        acf->otp_webhook = value[2];

        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown \"famcall_otp_sms\" driver \"%V\", "
                       "use \"log\" or \"webhook\"", &value[1]);
    return NGX_CONF_ERROR;
}


/* famcall_otp_limit_{phone,ip} <count> <window> */
static char *
ngx_famcall_otp_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_famcall_auth_conf_t  *acf = conf;

    time_t       t, *window;
    ngx_int_t    n;
    ngx_uint_t  *max;
    ngx_str_t   *value;

    if (cmd->offset == offsetof(ngx_famcall_auth_conf_t, otp_phone_max)) {
        max = &acf->otp_phone_max;
        window = &acf->otp_phone_window;

    } else {
        max = &acf->otp_ip_max;
        window = &acf->otp_ip_window;
    }

    if (*max != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1) {
        return "needs a count of at least 1";
    }

    t = ngx_parse_time(&value[2], 1);
    if (t == (time_t) NGX_ERROR || t < 1) {
        return "needs a time window such as 10m";
    }

    *max = (ngx_uint_t) n;
    *window = t;

    return NGX_CONF_OK;
}

