/*
 * famcall: the core module, ngx_http_famcall_module.
 *
 * The .so holds several nginx modules (config lists them, this one first):
 * the core owns the database (famcall_db*), the token secret, the request
 * body limit, the famcall_api and famcall_error_page locations and
 * $famcall_user_id; each feature module (auth/, users/, chat/, gateway/)
 * owns its directives and, at postconfiguration, adds its routes
 * (ngx_famcall_routes_add(), ngx_famcall_http.h) and its SQL statements
 * (ngx_famcall_pg_statements_add()) to the lists kept here.  A worker's
 * pool is created from that statement list, so a feature's statement is
 * its base (kept in its own conf) plus its own enum.
 *
 * The core's name is the .so's name (nginx names a dynamic module file
 * after the first module of config), so load_module lines stay as they were.
 */

#ifndef _NGX_FAMCALL_CORE_H_INCLUDED_
#define _NGX_FAMCALL_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_pg.h"
#include "ngx_famcall_ipc.h"


/* a statement calling an sql/ function that answers (status, body) */
#define NGX_FAMCALL_SQL_FN(fn, args)                                         \
    "SELECT status, body FROM " fn "(" args ")"


typedef void (*ngx_famcall_exit_pt)(void *data);

typedef struct ngx_famcall_exit_s  ngx_famcall_exit_t;


typedef struct {
    ngx_str_t                  conninfo;
    ngx_uint_t                 db_pool_size;
    ngx_uint_t                 db_pool_max;
    ngx_msec_t                 db_timeout;

    ngx_str_t                  jwt_secret;
    size_t                     max_body_size;

    ngx_flag_t                 api_used;    /* famcall_api appears */

    ngx_array_t                routes;      /* of ngx_famcall_route_t */
    ngx_array_t                statements;  /* of ngx_famcall_stmt_t */
    ngx_uint_t                 sql;         /* the core's: the ping */

    ngx_famcall_pg_pool_t     *pg;          /* this worker's pool */
    ngx_famcall_ipc_t         *ipc;         /* this worker's messages */
    ngx_famcall_exit_t        *exits;       /* this worker's, last first */
} ngx_http_famcall_main_conf_t;


extern ngx_module_t  ngx_http_famcall_module;


/*
 * Add n statements (a feature's table, indexed by its own enum) to the
 * pool's list; *base is the index of the first.  Called while the
 * configuration is read; every entry must be filled and every name unique.
 * A table is declared with the enum's count as its size and designated
 * initializers: an entry past the enum does not compile, and one the enum
 * has but the table lacks is a hole that `nginx -t` reports.
 */
ngx_int_t ngx_famcall_pg_statements_add(ngx_conf_t *cf,
    const ngx_famcall_stmt_t *stmts, ngx_uint_t n, ngx_uint_t *base);

/*
 * In a worker's init_process: run handler(data) as the worker exits,
 * before the pool goes and in the reverse order of the calls.  nginx runs
 * exit_process in module order, which would tear the core (first) down
 * under the features still using its pool.
 */
ngx_int_t ngx_famcall_exit_add(ngx_cycle_t *cycle,
    ngx_http_famcall_main_conf_t *fmcf, ngx_famcall_exit_pt handler,
    void *data);

/* ngx_conf_check_num_bounds that names the directive (a num_bounds post) */
char *ngx_famcall_conf_check_bounds(ngx_conf_t *cf, void *post, void *data);

/* the main conf of the core in a worker, or NULL when famcall_api is unused */
ngx_http_famcall_main_conf_t *ngx_famcall_core_conf(ngx_cycle_t *cycle);


#endif /* _NGX_FAMCALL_CORE_H_INCLUDED_ */
