/*
 * famcall: sign-in by phone with a one-time code (POST /v1/auth/otp/...).
 *
 * The code comes from a CSPRNG and is stored only as an HMAC keyed with
 * the server's secret, so a copy of the database does not reveal live
 * codes.  Send limits, attempt counting and account creation are one SQL
 * call each (sql/002_accounts.sql).  Delivery: the `log` driver appends
 * "<phone> <code>" to a file once the code is committed; the `webhook`
 * driver queues an outbox row in the same transaction for the dispatcher.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_auth.h"
#include "ngx_famcall_accounts.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


typedef struct {
    char    code[7];
    char    refresh[NGX_FAMCALL_REFRESH_LEN + 1];
} ngx_famcall_otp_state_t;


static ngx_famcall_otp_state_t *ngx_famcall_otp_state(ngx_famcall_ctx_t *ctx);
static void ngx_famcall_otp_hash(ngx_famcall_ctx_t *ctx, const char *phone,
    const char *code, char *out);
static char *ngx_famcall_otp_outbox(ngx_famcall_ctx_t *ctx, const char *phone,
    const char *code);
static ngx_int_t ngx_famcall_otp_requested(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);
static ngx_int_t ngx_famcall_otp_verified(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);


static const ngx_famcall_field_t  ngx_famcall_otp_request_fields[] = {
    { "phone", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_phone,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  ngx_famcall_otp_verify_fields[] = {
    { "phone", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_phone,
      0, 0, NULL },
    { "code", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_otp_code,
      0, 0, NULL },
    { "display_name", NGX_FAMCALL_F_STRING, 0, 0,
      ngx_famcall_check_display_name, 0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_otp_request(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t                 rc;
    const char               *params[9], *phone;
    char                      hash[NGX_FAMCALL_HEX256_LEN + 1];
    ngx_famcall_otp_state_t  *st;
    ngx_famcall_auth_conf_t  *acf = ngx_famcall_auth_conf(ctx);

    rc = ngx_famcall_check_body(ctx, ngx_famcall_otp_request_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    st = ngx_famcall_otp_state(ctx);
    if (st == NULL) {
        return NGX_ERROR;
    }

    phone = ngx_famcall_json_string(ctx->body, "phone");
    ngx_famcall_otp_hash(ctx, phone, st->code, hash);

    params[0] = phone;
    params[1] = ngx_famcall_cstr(ctx, &ctx->request->connection->addr_text);
    params[2] = hash;
    params[3] = ngx_famcall_num(ctx, acf->otp_ttl);
    params[4] = ngx_famcall_num(ctx, acf->otp_phone_max);
    params[5] = ngx_famcall_num(ctx, acf->otp_phone_window);
    params[6] = ngx_famcall_num(ctx, acf->otp_ip_max);
    params[7] = ngx_famcall_num(ctx, acf->otp_ip_window);

    /* an SQL NULL limit is no limit: out of memory must not lift them */
    if (ngx_famcall_params_null(params, 8)) {
        return NGX_ERROR;
    }

    params[8] = NULL;

    if (acf->otp_driver == NGX_FAMCALL_SMS_WEBHOOK) {
        params[8] = ngx_famcall_otp_outbox(ctx, phone, st->code);
        if (params[8] == NULL) {
            return NGX_ERROR;
        }
    }

    return ngx_famcall_query(ctx, acf->sql + NGX_FAMCALL_AUTH_SQL_OTP_REQUEST,
                             9, params, ngx_famcall_otp_requested);
}


static ngx_int_t
ngx_famcall_otp_requested(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    u_char                    line[64], *p;
    json_t                   *answer, *retry;
    ngx_table_elt_t          *h;
    ngx_famcall_otp_state_t  *st = ctx->data;
    ngx_http_request_t       *r = ctx->request;
    ngx_famcall_auth_conf_t  *acf = ngx_famcall_auth_conf(ctx);

    if (status == NGX_HTTP_ACCEPTED
        && acf->otp_driver == NGX_FAMCALL_SMS_LOG)
    {
        p = ngx_snprintf(line, sizeof(line), "%s %s\n",
                         ngx_famcall_json_string(ctx->body, "phone"),
                         st->code);

        if (ngx_write_fd(acf->otp_log->fd, line, p - line) != p - line) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                          "famcall: writing the one-time code to \"%V\" "
                          "failed", &acf->otp_log->name);
        }
    }

    if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        answer = json_loadb((char *) body, len, 0, NULL);
        retry = json_object_get(json_object_get(answer, "error"),
                                "retry_after");

        if (json_is_integer(retry)) {
            p = (u_char *) ngx_famcall_num(ctx, json_integer_value(retry));
            h = p ? ngx_list_push(&r->headers_out.headers) : NULL;

            if (h == NULL) {
                json_decref(answer);
                return NGX_ERROR;
            }

            h->hash = 1;
            ngx_str_set(&h->key, "Retry-After");
            h->value.data = p;
            h->value.len = ngx_strlen(p);
        }

        json_decref(answer);
    }

    return ngx_famcall_send_answer(ctx, status, body, len);
}


ngx_int_t
ngx_famcall_otp_verify(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_uint_t                error;
    const char               *params[7], *phone, *code;
    char                      hash[NGX_FAMCALL_HEX256_LEN + 1];
    char                      refresh_hash[NGX_FAMCALL_HEX256_LEN + 1];
    ngx_famcall_otp_state_t  *st;
    ngx_famcall_auth_conf_t  *acf = ngx_famcall_auth_conf(ctx);

    rc = ngx_famcall_check_body(ctx, ngx_famcall_otp_verify_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    st = ngx_famcall_otp_state(ctx);
    if (st == NULL) {
        return NGX_ERROR;
    }

    phone = ngx_famcall_json_string(ctx->body, "phone");
    code = ngx_famcall_json_string(ctx->body, "code");

    ngx_famcall_otp_hash(ctx, phone, code, hash);
    ngx_famcall_sha256_hex(st->refresh, NGX_FAMCALL_REFRESH_LEN,
                           refresh_hash);

    params[0] = phone;
    params[1] = hash;
    params[2] = ngx_famcall_json_string(ctx->body, "display_name");
    params[3] = refresh_hash;
    params[4] = ngx_famcall_num(ctx, acf->refresh_ttl);
    params[5] = ngx_famcall_num(ctx, acf->otp_max_attempts);

    /* the policy and terms a new account accepts: NULL when none */
    error = 0;
    params[6] = ngx_famcall_legal_version(ctx->request, &error);

    if (params[4] == NULL || params[5] == NULL || error) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx, acf->sql + NGX_FAMCALL_AUTH_SQL_OTP_VERIFY,
                             7, params, ngx_famcall_otp_verified);
}


static ngx_int_t
ngx_famcall_otp_verified(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    ngx_famcall_otp_state_t  *st = ctx->data;

    if (status != NGX_HTTP_OK) {
        return ngx_famcall_send_answer(ctx, status, body, len);
    }

    return ngx_famcall_auth_send_tokens(ctx, NGX_HTTP_OK, st->refresh, body,
                                        len);
}


/* a fresh code (for a request) and refresh token (for a verify) */
static ngx_famcall_otp_state_t *
ngx_famcall_otp_state(ngx_famcall_ctx_t *ctx)
{
    ngx_famcall_otp_state_t  *st;

    st = ngx_pcalloc(ctx->request->pool, sizeof(ngx_famcall_otp_state_t));

    if (st == NULL
        || ngx_famcall_random_code(st->code) != 0
        || ngx_famcall_random_token(st->refresh) != 0)
    {
        return NULL;
    }

    ctx->data = st;

    return st;
}


/* HMAC-SHA256(secret, "<phone>:<code>") in hex */
static void
ngx_famcall_otp_hash(ngx_famcall_ctx_t *ctx, const char *phone,
    const char *code, char *out)
{
    u_char  buf[32], *p;

    p = ngx_snprintf(buf, sizeof(buf), "%s:%s", phone, code);

    ngx_famcall_hmac_sha256_hex(ctx->fmcf->jwt_secret.data,
                                ctx->fmcf->jwt_secret.len, buf, p - buf, out);
}


static char *
ngx_famcall_otp_outbox(ngx_famcall_ctx_t *ctx, const char *phone,
    const char *code)
{
    char                     *s, *copy;
    json_t                   *payload;
    u_char                    text[64], *p;
    ngx_str_t                 dumped;
    ngx_famcall_auth_conf_t  *acf = ngx_famcall_auth_conf(ctx);

    p = ngx_snprintf(text, sizeof(text) - 1, "Your famcall code is %s", code);
    *p = '\0';

    payload = json_pack("{s:s, s:s, s:s%}", "to", phone, "body", (char *) text,
                        "webhook", (char *) acf->otp_webhook.data,
                        acf->otp_webhook.len);
    if (payload == NULL) {
        return NULL;
    }

    s = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);

    if (s == NULL) {
        return NULL;
    }

    dumped.data = (u_char *) s;
    dumped.len = ngx_strlen(s);
    copy = ngx_famcall_cstr(ctx, &dumped);
    free(s);

    return copy;
}
