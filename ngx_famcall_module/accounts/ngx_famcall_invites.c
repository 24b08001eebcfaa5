/*
 * famcall: invite a relative by SMS (POST/GET /v1/invites,
 * DELETE /v1/invites/{id}).
 *
 * The SMS leaves as a one-time code does, through auth's driver
 * (famcall_otp_sms): with `webhook` the statement queues an outbox row in
 * its own transaction; with `log` it hands the text back and the line is
 * appended to the file once the invite is committed.  Who is texted, and
 * the limits, are decided by famcall_invite_create (sql/031); the answer
 * never says whether an SMS went out, so it does not tell a number on the
 * STOP list, or one a user who blocked the caller has, from any other.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_accounts.h"
#include "ngx_famcall_auth.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


static ngx_int_t ngx_famcall_invite_created(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);
static void ngx_famcall_invite_sms_log(ngx_famcall_ctx_t *ctx,
    const char *phone, const char *text);


static const ngx_famcall_field_t  ngx_famcall_invite_fields[] = {
    { "phone", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_phone,
      0, 0, NULL },
    { "name", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_display_name,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_invite_create(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t                     rc;
    const char                   *params[8];
    ngx_famcall_auth_conf_t      *auth;
    ngx_famcall_accounts_conf_t  *acf = ngx_famcall_accounts_conf(ctx);

    rc = ngx_famcall_check_body(ctx, ngx_famcall_invite_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    auth = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_famcall_auth_module);

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_json_string(ctx->body, "phone");
    params[3] = ngx_famcall_num(ctx, acf->invite_user_max);
    params[4] = ngx_famcall_num(ctx, acf->invite_user_window);
    params[5] = ngx_famcall_num(ctx, acf->invite_phone_interval);
    params[6] = ngx_famcall_cstr(ctx, &acf->invite_link);
    params[7] = "";

    if (auth->otp_driver == NGX_FAMCALL_SMS_WEBHOOK) {
        params[7] = ngx_famcall_cstr(ctx, &auth->otp_webhook);
    }

    /* an SQL NULL limit is no limit: out of memory must not lift them */
    if (ngx_famcall_params_null(params, 2)
        || ngx_famcall_params_null(params + 3, 5))
    {
        return NGX_ERROR;
    }

    /* the two that may be NULL: no name, no webhook */
    params[2] = ngx_famcall_json_string(ctx->body, "name");

    if (auth->otp_driver != NGX_FAMCALL_SMS_WEBHOOK) {
        params[7] = NULL;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_accounts_sql(ctx, NGX_FAMCALL_ACCOUNTS_SQL_INVITE),
               8, params, ngx_famcall_invite_created);
}


/* the log driver's line, then the answer without the SMS in it */
static ngx_int_t
ngx_famcall_invite_created(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    json_t      *answer;
    const char  *sms;

    if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        if (ngx_famcall_retry_after(ctx, body, len) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (status != NGX_HTTP_CREATED) {
        return ngx_famcall_send_answer(ctx, status, body, len);
    }

    answer = json_loadb((char *) body, len, 0, NULL);
    if (answer == NULL) {
        return NGX_ERROR;
    }

    sms = ngx_famcall_json_string(answer, "sms");
    if (sms != NULL) {
        ngx_famcall_invite_sms_log(ctx,
            ngx_famcall_json_string(ctx->body, "phone"), sms);
    }

    (void) json_object_del(answer, "sms");

    return ngx_famcall_send_json(ctx, NGX_HTTP_CREATED, answer);
}


/* "<phone> <text>", the text on one line whatever the inviter's name holds */
static void
ngx_famcall_invite_sms_log(ngx_famcall_ctx_t *ctx, const char *phone,
    const char *text)
{
    u_char                   *line, *p;
    size_t                    len;
    ngx_famcall_auth_conf_t  *auth;

    auth = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_famcall_auth_module);

    if (auth->otp_log == NULL) {
        return;
    }

    len = ngx_strlen(phone) + 1 + ngx_strlen(text) + 1;

    line = ngx_pnalloc(ctx->request->pool, len);
    if (line == NULL) {
        return;
    }

    (void) ngx_sprintf(line, "%s %s", phone, text);

    for (p = line; p < line + len - 1; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }

    *p = '\n';

    if (ngx_write_fd(auth->otp_log->fd, line, len) != (ssize_t) len) {
        ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log, ngx_errno,
                      "famcall: writing the invite SMS to \"%V\" failed",
                      &auth->otp_log->name);
    }
}


ngx_int_t
ngx_famcall_invites_list(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me(ctx,
               ngx_famcall_accounts_sql(ctx,
                                        NGX_FAMCALL_ACCOUNTS_SQL_INVITES_LIST));
}


ngx_int_t
ngx_famcall_invite_delete(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me_id(ctx,
               ngx_famcall_accounts_sql(ctx,
                   NGX_FAMCALL_ACCOUNTS_SQL_INVITE_DELETE));
}
