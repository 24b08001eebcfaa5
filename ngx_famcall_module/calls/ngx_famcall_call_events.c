/*
 * famcall: the call:* socket events (docs/websocket.md, "Calls").  Each is
 * one statement of sql/019_calls.sql whose row answers the event; the
 * statement also tells the other sockets concerned on the bus, from the
 * same transaction, so what a device hears has committed.  The socket's
 * src goes with every state change: the row remembers the caller's device
 * (call:invite) and the callee's (call:accept), the two bound devices.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_calls.h"
#include "ngx_famcall_call_fields.h"


static void ngx_famcall_call_invite(void *owner, json_t *data);
static void ngx_famcall_call_accept(void *owner, json_t *data);
static void ngx_famcall_call_reject(void *owner, json_t *data);
static void ngx_famcall_call_cancel(void *owner, json_t *data);
static void ngx_famcall_call_on(ngx_famcall_gw_op_t *op, json_t *data,
    ngx_uint_t stmt, const char *what, ngx_uint_t nargs, const char *arg);
static void ngx_famcall_call_end(void *owner, json_t *data);
static void ngx_famcall_call_resume(void *owner, json_t *data);
static void ngx_famcall_call_active(void *owner, json_t *data);


static const ngx_famcall_gw_event_t  ngx_famcall_call_events[] = {
    { "call:invite", ngx_famcall_call_invite_fields,
      ngx_famcall_call_invite },
    { "call:accept", ngx_famcall_call_id_fields, ngx_famcall_call_accept },
    { "call:reject", ngx_famcall_call_id_fields, ngx_famcall_call_reject },
    { "call:cancel", ngx_famcall_call_id_fields, ngx_famcall_call_cancel },
    { "call:end", ngx_famcall_call_end_fields, ngx_famcall_call_end },
    { "call:resume", ngx_famcall_call_id_fields, ngx_famcall_call_resume },
    { "call:active", ngx_famcall_call_no_fields, ngx_famcall_call_active },
    { NULL, NULL, NULL }
};


ngx_int_t
ngx_famcall_call_events_init(ngx_conf_t *cf)
{
    return ngx_famcall_gw_events_add(cf, ngx_famcall_call_events);
}


/*
 * The database checks the contact, blocks, the rate and whether either
 * side is in a call already, stores the call and rings the callee's
 * sockets wherever they are.
 */
static void
ngx_famcall_call_invite(void *owner, json_t *data)
{
    ngx_famcall_gw_op_t  *op = owner;

    char                       user[NGX_FAMCALL_ID_LEN + 1];
    char                       src[NGX_FAMCALL_CALL_SRC_LEN + 1];
    u_char                     ring[NGX_INT_T_LEN + 1];
    u_char                     rate[NGX_INT_T_LEN + 1];
    const char                *params[6];
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_famcall_calls_conf();

    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);

    ngx_snprintf(ring, sizeof(ring), "%M%Z", ccf->ring_timeout);
    ngx_snprintf(rate, sizeof(rate), "%ui%Z", ccf->invite_rate);

    params[0] = user;
    params[1] = ngx_famcall_json_string(data, "to_user_id");
    params[2] = ngx_famcall_json_string(data, "media");
    params[3] = src;
    params[4] = (const char *) ring;
    params[5] = (const char *) rate;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "famcall call: invite from %s (%s) to %s",
                   user, src, params[1]);

    ngx_famcall_gw_query(op, ccf->sql + NGX_FAMCALL_CALL_SQL_INVITE, 6,
                         params);
}


/*
 * An event on one call by one of its sockets: the statement takes (me,
 * call_id, [arg,] src), arg when nargs is 4 (NULL is SQL NULL), and its
 * row answers the event.
 */
static void
ngx_famcall_call_on(ngx_famcall_gw_op_t *op, json_t *data, ngx_uint_t stmt,
    const char *what, ngx_uint_t nargs, const char *arg)
{
    char                       user[NGX_FAMCALL_ID_LEN + 1];
    char                       src[NGX_FAMCALL_CALL_SRC_LEN + 1];
    const char                *params[4];
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_famcall_calls_conf();

    ngx_famcall_gw_op_user(op, user);
    ngx_famcall_gw_op_src(op, src);

    params[0] = user;
    params[1] = ngx_famcall_json_string(data, "call_id");
    params[2] = arg;
    params[nargs - 1] = src;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "famcall call: %s %s from %s", what, params[1], src);

    ngx_famcall_gw_query(op, ccf->sql + stmt, nargs, params);
}


/* the first device to accept wins: a conditional update (sql/019) */
static void
ngx_famcall_call_accept(void *owner, json_t *data)
{
    ngx_famcall_call_on(owner, data, NGX_FAMCALL_CALL_SQL_ACCEPT, "accept",
                        3, NULL);
}


/* a ringing call ends before it was answered: the callee or the caller */
static void
ngx_famcall_call_reject(void *owner, json_t *data)
{
    ngx_famcall_call_on(owner, data, NGX_FAMCALL_CALL_SQL_STOP, "reject",
                        4, "reject");
}


static void
ngx_famcall_call_cancel(void *owner, json_t *data)
{
    ngx_famcall_call_on(owner, data, NGX_FAMCALL_CALL_SQL_STOP, "cancel",
                        4, "cancel");
}


/* either side of an accepted call; no reason: a hangup */
static void
ngx_famcall_call_end(void *owner, json_t *data)
{
    /* a relay from now on finds the row ended (ngx_famcall_call_bind.h) */
    ngx_famcall_call_unbind_id(ngx_famcall_json_string(data, "call_id"));

    ngx_famcall_call_on(owner, data, NGX_FAMCALL_CALL_SQL_END, "end", 4,
                        ngx_famcall_json_string(data, "reason"));
}


/*
 * a participant back after a reconnect (within the grace): this socket
 * becomes its side's bound device (sql/021)
 */
static void
ngx_famcall_call_resume(void *owner, json_t *data)
{
    ngx_famcall_call_unbind_id(ngx_famcall_json_string(data, "call_id"));

    ngx_famcall_call_on(owner, data, NGX_FAMCALL_CALL_SQL_RESUME, "resume",
                        3, NULL);
}


/*
 * the calls ringing or going on for this user: what a socket that has just
 * opened missed of them (sql/022)
 */
static void
ngx_famcall_call_active(void *owner, json_t *data)
{
    ngx_famcall_gw_op_t  *op = owner;

    char                       user[NGX_FAMCALL_ID_LEN + 1];
    const char                *params[1];
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_famcall_calls_conf();

    ngx_famcall_gw_op_user(op, user);
    params[0] = user;

    ngx_famcall_gw_query(op, ccf->sql + NGX_FAMCALL_CALL_SQL_ACTIVE, 1,
                         params);
}

