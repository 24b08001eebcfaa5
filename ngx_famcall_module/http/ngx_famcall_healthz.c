/*
 * famcall: the health check (GET /healthz), the core's one route: 200 as
 * soon as the database answers a ping, or when it is connected but every
 * connection is busy; 503 when it cannot answer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_http.h"


enum {
    NGX_FAMCALL_HEALTHZ_SQL_PING = 0,
    NGX_FAMCALL_HEALTHZ_SQL_COUNT
};


static ngx_int_t ngx_famcall_healthz(ngx_famcall_ctx_t *ctx);
static ngx_int_t ngx_famcall_healthz_done(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);


static const ngx_famcall_stmt_t
    ngx_famcall_healthz_sql[NGX_FAMCALL_HEALTHZ_SQL_COUNT] =
{
    [NGX_FAMCALL_HEALTHZ_SQL_PING] = { "famcall_ping", "SELECT 1", 0 },
};

static const ngx_famcall_route_t  ngx_famcall_healthz_routes[] = {
    { NGX_HTTP_GET, "/healthz", ngx_famcall_healthz, 0, 0 },
    { 0, NULL, NULL, 0, 0 }
};


/* from the core's postconfiguration: its statement base is the ping's */
ngx_int_t
ngx_famcall_healthz_init(ngx_conf_t *cf)
{
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);

    if (ngx_famcall_pg_statements_add(cf, ngx_famcall_healthz_sql,
                                      NGX_FAMCALL_HEALTHZ_SQL_COUNT,
                                      &fmcf->sql)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_famcall_routes_add(cf, ngx_famcall_healthz_routes);
}


/*
 * A ping goes to a connection that is moving (or to a spare, or waits for
 * one coming up); down, it is refused at once: 503.  When every connection
 * is stuck and no spare can open, the ping would wait behind them: the
 * database is up but busy, and the pool's state answers.
 */
static ngx_int_t
ngx_famcall_healthz(ngx_famcall_ctx_t *ctx)
{
    if (ngx_famcall_pg_pool_state(ctx->fmcf->pg) == NGX_FAMCALL_PG_POOL_BUSY) {
        return ngx_famcall_healthz_done(ctx, NGX_HTTP_OK, NULL, 0);
    }

    return ngx_famcall_query(ctx,
                             ctx->fmcf->sql + NGX_FAMCALL_HEALTHZ_SQL_PING,
                             0, NULL, ngx_famcall_healthz_done);
}


static ngx_int_t
ngx_famcall_healthz_done(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    return ngx_famcall_send(ctx, NGX_HTTP_OK,
                            (u_char *) "{\"status\":\"ok\"}",
                            sizeof("{\"status\":\"ok\"}") - 1);
}
