/*
 * famcall: the people module, ngx_http_famcall_users_module: the routes of
 * /v1/me, /v1/users, /v1/contacts, /v1/blocks and /v1/reports and their
 * statements (ngx_famcall_users.h).  It has no directives of its own.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_users.h"


static ngx_int_t ngx_famcall_users_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_users_create_conf(ngx_conf_t *cf);


static ngx_http_module_t  ngx_http_famcall_users_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_users_postconfiguration,   /* postconfiguration */

    ngx_famcall_users_create_conf,         /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_users_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_users_module_ctx,    /* module context */
    NULL,                                  /* module directives */
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


static const ngx_famcall_route_t  ngx_famcall_users_routes[] = {

    { NGX_HTTP_GET,    "/v1/me", ngx_famcall_me_get, 1, 0 },
    { NGX_HTTP_PATCH,  "/v1/me", ngx_famcall_me_patch, 1, 1 },

    { NGX_HTTP_GET,    "/v1/users/search", ngx_famcall_users_search, 1, 0 },

    { NGX_HTTP_GET,    "/v1/contacts", ngx_famcall_contacts_list, 1, 0 },
    { NGX_HTTP_POST,   "/v1/contacts", ngx_famcall_contacts_add, 1, 1 },
    { NGX_HTTP_POST,   "/v1/contacts/{}/accept",
      ngx_famcall_contacts_accept, 1, 0 },
    { NGX_HTTP_DELETE, "/v1/contacts/{}", ngx_famcall_contacts_remove, 1, 0 },

    { NGX_HTTP_GET,    "/v1/blocks", ngx_famcall_blocks_list, 1, 0 },
    { NGX_HTTP_POST,   "/v1/blocks", ngx_famcall_blocks_add, 1, 1 },
    { NGX_HTTP_DELETE, "/v1/blocks/{}", ngx_famcall_blocks_remove, 1, 0 },

    { NGX_HTTP_POST,   "/v1/reports", ngx_famcall_reports_add, 1, 1 },

    { 0, NULL, NULL, 0, 0 }
};


/* who may see whom, blocks both ways: sql/003_contacts_chat.sql */
static const ngx_famcall_stmt_t
    ngx_famcall_users_statements[NGX_FAMCALL_USERS_SQL_COUNT] =
{

    /* with the version of the policy and terms shown (sql/031) */
    [NGX_FAMCALL_USERS_SQL_ME] = { "famcall_me",
      NGX_FAMCALL_SQL_FN("famcall_me", "$1::uuid, $2::text"), 2 },

    [NGX_FAMCALL_USERS_SQL_ME_UPDATE] = { "famcall_me_update",
      NGX_FAMCALL_SQL_FN("famcall_me_update", "$1::uuid, $2::jsonb"), 2 },

    [NGX_FAMCALL_USERS_SQL_SEARCH] = { "famcall_user_search",
      NGX_FAMCALL_SQL_FN("famcall_user_search", "$1::uuid, $2::text"), 2 },

    [NGX_FAMCALL_USERS_SQL_CONTACTS_LIST] = { "famcall_contacts_list",
      NGX_FAMCALL_SQL_FN("famcall_contacts_list", "$1::uuid"), 1 },

    [NGX_FAMCALL_USERS_SQL_CONTACT_REQUEST] = { "famcall_contact_request",
      NGX_FAMCALL_SQL_FN("famcall_contact_request",
                         "$1::uuid, $2::uuid, $3::text, $4::text"), 4 },

    [NGX_FAMCALL_USERS_SQL_CONTACT_ACCEPT] = { "famcall_contact_accept",
      NGX_FAMCALL_SQL_FN("famcall_contact_accept", "$1::uuid, $2::uuid"), 2 },

    [NGX_FAMCALL_USERS_SQL_CONTACT_REMOVE] = { "famcall_contact_remove",
      NGX_FAMCALL_SQL_FN("famcall_contact_remove", "$1::uuid, $2::uuid"), 2 },

    [NGX_FAMCALL_USERS_SQL_BLOCKS_LIST] = { "famcall_blocks_list",
      NGX_FAMCALL_SQL_FN("famcall_blocks_list", "$1::uuid"), 1 },

    [NGX_FAMCALL_USERS_SQL_BLOCK] = { "famcall_block",
      NGX_FAMCALL_SQL_FN("famcall_block", "$1::uuid, $2::uuid"), 2 },

    [NGX_FAMCALL_USERS_SQL_UNBLOCK] = { "famcall_unblock",
      NGX_FAMCALL_SQL_FN("famcall_unblock", "$1::uuid, $2::uuid"), 2 },

    [NGX_FAMCALL_USERS_SQL_REPORT] = { "famcall_report",
      NGX_FAMCALL_SQL_FN("famcall_report",
                         "$1::uuid, $2::uuid, $3::text, $4::text, $5::uuid"),
      5 },
};


static ngx_int_t
ngx_famcall_users_postconfiguration(ngx_conf_t *cf)
{
    ngx_famcall_users_conf_t  *ucf;

    ucf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_famcall_users_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_users_statements,
                                      NGX_FAMCALL_USERS_SQL_COUNT, &ucf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_users_routes);
}


static void *
ngx_famcall_users_create_conf(ngx_conf_t *cf)
{
    /* set by ngx_pcalloc(): sql = 0, until postconfiguration */
    return ngx_pcalloc(cf->pool, sizeof(ngx_famcall_users_conf_t));
}
