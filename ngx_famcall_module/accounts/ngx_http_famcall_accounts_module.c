/*
 * famcall: the accounts module, ngx_http_famcall_accounts_module: the
 * directives of invites, exports and the legal documents, the routes of
 * /v1/invites, DELETE /v1/me, /v1/me/export, /v1/legal and /v1/me/legal,
 * and their statements (ngx_famcall_accounts.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_accounts.h"


static ngx_int_t ngx_famcall_accounts_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_accounts_create_conf(ngx_conf_t *cf);
static char *ngx_famcall_accounts_init_conf(ngx_conf_t *cf, void *conf);
static char *ngx_famcall_invite_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_num_bounds_t  ngx_famcall_export_page_bounds = {
    ngx_famcall_conf_check_bounds, 10, 10000
};


#define FAMCALL_MAIN  NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1
#define FAMCALL_MCF   NGX_HTTP_MAIN_CONF_OFFSET
#define famcall_off(f)  offsetof(ngx_famcall_accounts_conf_t, f)

static ngx_command_t  ngx_famcall_accounts_commands[] = {

    { ngx_string("famcall_invite_link"), FAMCALL_MAIN,
      ngx_conf_set_str_slot, FAMCALL_MCF, famcall_off(invite_link), NULL },

    { ngx_string("famcall_invite_limit_user"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_famcall_invite_limit, FAMCALL_MCF, 0, NULL },

    { ngx_string("famcall_invite_phone_interval"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(invite_phone_interval),
      NULL },

    { ngx_string("famcall_export_interval"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(export_interval),
      NULL },

    { ngx_string("famcall_export_ttl"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(export_ttl), NULL },

    { ngx_string("famcall_export_page"), FAMCALL_MAIN,
      ngx_conf_set_num_slot, FAMCALL_MCF, famcall_off(export_page),
      &ngx_famcall_export_page_bounds },

    { ngx_string("famcall_legal_privacy_url"), FAMCALL_MAIN,
      ngx_conf_set_str_slot, FAMCALL_MCF, famcall_off(privacy_url), NULL },

    { ngx_string("famcall_legal_terms_url"), FAMCALL_MAIN,
      ngx_conf_set_str_slot, FAMCALL_MCF, famcall_off(terms_url), NULL },

    { ngx_string("famcall_legal_version"), FAMCALL_MAIN,
      ngx_conf_set_str_slot, FAMCALL_MCF, famcall_off(legal_version), NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_accounts_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_accounts_postconfiguration, /* postconfiguration */

    ngx_famcall_accounts_create_conf,      /* create main configuration */
    ngx_famcall_accounts_init_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_accounts_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_accounts_module_ctx, /* module context */
    ngx_famcall_accounts_commands,         /* module directives */
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


static const ngx_famcall_route_t  ngx_famcall_accounts_routes[] = {

    { NGX_HTTP_POST,   "/v1/invites", ngx_famcall_invite_create, 1, 1 },
    { NGX_HTTP_GET,    "/v1/invites", ngx_famcall_invites_list, 1, 0 },
    { NGX_HTTP_DELETE, "/v1/invites/{}", ngx_famcall_invite_delete, 1, 0 },

    { NGX_HTTP_DELETE, "/v1/me", ngx_famcall_account_delete, 1, 1 },

    { NGX_HTTP_POST,   "/v1/me/export", ngx_famcall_export_request, 1, 0 },
    { NGX_HTTP_GET,    "/v1/me/export", ngx_famcall_export_get, 1, 0 },

    { NGX_HTTP_GET,    "/v1/legal", ngx_famcall_legal_get, 0, 0 },
    { NGX_HTTP_POST,   "/v1/me/legal", ngx_famcall_legal_accept, 1, 1 },

    { 0, NULL, NULL, 0, 0 }
};


/* the rules: sql/031_accounts.sql, 032_account_delete, 033_account_export */
static const ngx_famcall_stmt_t
    ngx_famcall_accounts_statements[NGX_FAMCALL_ACCOUNTS_SQL_COUNT] =
{

    [NGX_FAMCALL_ACCOUNTS_SQL_INVITE] = { "famcall_invite_create",
      NGX_FAMCALL_SQL_FN("famcall_invite_create",
          "$1::uuid, $2::text, $3::text, $4::int, $5::int, $6::int,"
          " $7::text, $8::text"), 8 },

    [NGX_FAMCALL_ACCOUNTS_SQL_INVITES_LIST] = { "famcall_invites_list",
      NGX_FAMCALL_SQL_FN("famcall_invites_list", "$1::uuid"), 1 },

    [NGX_FAMCALL_ACCOUNTS_SQL_INVITE_DELETE] = { "famcall_invite_delete",
      NGX_FAMCALL_SQL_FN("famcall_invite_delete", "$1::uuid, $2::uuid"), 2 },

    [NGX_FAMCALL_ACCOUNTS_SQL_PROOF] = { "famcall_account_proof",
      NGX_FAMCALL_SQL_FN("famcall_account_proof", "$1::uuid"), 1 },

    [NGX_FAMCALL_ACCOUNTS_SQL_DELETE] = { "famcall_account_delete",
      NGX_FAMCALL_SQL_FN("famcall_account_delete",
                         "$1::uuid, $2::text, $3::int"), 3 },

    [NGX_FAMCALL_ACCOUNTS_SQL_EXPORT_REQUEST] = { "famcall_export_request",
      NGX_FAMCALL_SQL_FN("famcall_export_request",
                         "$1::uuid, $2::int, $3::int"), 3 },

    [NGX_FAMCALL_ACCOUNTS_SQL_EXPORT_PAGE] = { "famcall_export_page",
      NGX_FAMCALL_SQL_FN("famcall_export_page",
                         "$1::uuid, $2::text, $3::int, $4::int"), 4 },

    [NGX_FAMCALL_ACCOUNTS_SQL_LEGAL_ACCEPT] = { "famcall_legal_accept",
      NGX_FAMCALL_SQL_FN("famcall_legal_accept",
                         "$1::uuid, $2::text, $3::text"), 3 },
};


static ngx_int_t
ngx_famcall_accounts_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_accounts_conf_t  *acf;

    acf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_famcall_accounts_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_accounts_statements,
                                      NGX_FAMCALL_ACCOUNTS_SQL_COUNT,
                                      &acf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_accounts_routes);
}


static void *
ngx_famcall_accounts_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_accounts_conf_t  *acf;

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_accounts_conf_t));
    if (acf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     acf->invite_link = { 0, NULL };
     *     acf->privacy_url = { 0, NULL };
     *     acf->terms_url = { 0, NULL };
     *     acf->legal_version = { 0, NULL };
     *     acf->sql = 0;
     */

    acf->invite_user_max = NGX_CONF_UNSET_UINT;
    acf->invite_user_window = NGX_CONF_UNSET;
    acf->invite_phone_interval = NGX_CONF_UNSET;
    acf->export_interval = NGX_CONF_UNSET;
    acf->export_ttl = NGX_CONF_UNSET;
    acf->export_page = NGX_CONF_UNSET_UINT;

    return acf;
}


static char *
ngx_famcall_accounts_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_famcall_accounts_conf_t  *acf = conf;

    if (acf->invite_link.len == 0) {
        ngx_str_set(&acf->invite_link, "https://famcall.example/get");
    }

    ngx_conf_init_uint_value(acf->invite_user_max, 10);
    ngx_conf_init_value(acf->invite_user_window, 24 * 60 * 60);
    ngx_conf_init_value(acf->invite_phone_interval, 24 * 60 * 60);
    ngx_conf_init_value(acf->export_interval, 24 * 60 * 60);
    ngx_conf_init_value(acf->export_ttl, 24 * 60 * 60);
    ngx_conf_init_uint_value(acf->export_page, 500);

    if (acf->invite_phone_interval < 1 || acf->export_ttl < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_invite_phone_interval\" and "
                           "\"famcall_export_ttl\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    /* one SMS line in the log driver's file, one JSON string in SQL */
    if (ngx_strlchr(acf->invite_link.data,
                    acf->invite_link.data + acf->invite_link.len, '\n')
        || acf->invite_link.len > 512)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_invite_link\" must be one line of at "
                           "most 512 bytes");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* famcall_invite_limit_user <count> <window> */
static char *
ngx_famcall_invite_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_famcall_accounts_conf_t  *acf = conf;

    time_t      t;
    ngx_int_t   n;
    ngx_str_t  *value;

    if (acf->invite_user_max != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1) {
        return "needs a count of at least 1";
    }

    t = ngx_parse_time(&value[2], 1);
    if (t == (time_t) NGX_ERROR || t < 1) {
        return "needs a time window such as 1d";
    }

    acf->invite_user_max = (ngx_uint_t) n;
    acf->invite_user_window = t;

    return NGX_CONF_OK;
}


const char *
ngx_famcall_legal_version(ngx_http_request_t *r, ngx_uint_t *error)
{
    u_char                       *p;
    ngx_famcall_accounts_conf_t  *acf;

    acf = ngx_http_get_module_main_conf(r, ngx_http_famcall_accounts_module);

    if (acf->legal_version.len == 0) {
        return NULL;
    }

    p = ngx_pnalloc(r->pool, acf->legal_version.len + 1);
    if (p == NULL) {
        *error = 1;
        return NULL;
    }

    *ngx_cpymem(p, acf->legal_version.data, acf->legal_version.len) = '\0';

    return (const char *) p;
}


ngx_int_t
ngx_famcall_retry_after(ngx_famcall_ctx_t *ctx, u_char *body, size_t len)
{
    u_char           *p;
    json_t           *answer, *retry;
    ngx_table_elt_t  *h;

    answer = json_loadb((char *) body, len, 0, NULL);
    retry = json_object_get(json_object_get(answer, "error"), "retry_after");

    if (!json_is_integer(retry)) {
        json_decref(answer);
        return NGX_OK;
    }

    p = (u_char *) ngx_famcall_num(ctx, json_integer_value(retry));
    json_decref(answer);

    h = p ? ngx_list_push(&ctx->request->headers_out.headers) : NULL;
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    h->value.data = p;
    h->value.len = ngx_strlen(p);

    return NGX_OK;
}
