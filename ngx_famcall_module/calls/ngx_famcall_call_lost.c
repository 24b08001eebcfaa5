/*
 * famcall: a call's bound socket that closes while its user keeps another
 * socket on the same worker (docs/websocket.md, "Reconnect grace").
 *
 * The sweeper tells a side is lost by its user's presence row on the bound
 * socket's worker (sql/021).  When the user's last socket there closes, the
 * row goes and the sweeper sees it; when another stays (a second device on
 * the same worker), the row stays, so this worker tells the database that
 * the socket closed (sql/026), which remembers it only if it is an
 * accepted call's bound socket.  One statement per such close, none for
 * the common close of a user's only socket.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_calls.h"
#include "ngx_famcall_gateway.h"
#include "ngx_famcall_gw_deliver.h"


static void ngx_famcall_call_socket_closed(ngx_famcall_gw_t *gw,
    const u_char *user, ngx_str_t *src);
static void ngx_famcall_call_closed_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);


static const ngx_famcall_gw_hooks_t  ngx_famcall_call_lost_hooks = {
    NULL, NULL, ngx_famcall_call_socket_closed, NULL
};


ngx_int_t
ngx_famcall_call_lost_init(ngx_conf_t *cf)
{
    return ngx_famcall_gw_hooks_add(cf, &ngx_famcall_call_lost_hooks);
}


/* the gateway calls it before it forgets the socket: it is still counted */
static void
ngx_famcall_call_socket_closed(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *src)
{
    char                       id[NGX_FAMCALL_ID_LEN + 1];
    char                       s[NGX_FAMCALL_CALL_SRC_LEN + 1];
    const char                *params[2];
    ngx_famcall_calls_conf_t  *ccf;

    /* a worker that exits sweeps all its presence rows (sql/008) */
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (ngx_famcall_gw_user_sockets(gw, user) < 2) {
        return;
    }

    ccf = ngx_famcall_calls_conf();

    if (ccf->fmcf == NULL || src->len > NGX_FAMCALL_CALL_SRC_LEN) {
        return;
    }

    ngx_famcall_uuid_format(user, id);
    ngx_memcpy(s, src->data, src->len);
    s[src->len] = '\0';

    params[0] = id;
    params[1] = s;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "famcall call: socket %s of %s closed, the user stays",
                   s, id);

    /* no owner to outlive: the answer only says whether it was stored */
    if (ngx_famcall_pg_send(ccf->fmcf->pg,
                            ccf->sql + NGX_FAMCALL_CALL_SQL_CLOSED, 2,
                            params, ngx_famcall_call_closed_done, NULL)
        == NULL)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "famcall call: the database is down: a closed socket "
                      "of a call may keep it going until its user leaves "
                      "the worker");
    }
}


static void
ngx_famcall_call_closed_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    if (status != NGX_FAMCALL_PG_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "famcall call: a closed socket was not stored: its "
                      "call may go on until its user leaves the worker");
    }
}
