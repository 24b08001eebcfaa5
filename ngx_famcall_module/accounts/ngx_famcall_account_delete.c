/*
 * famcall: DELETE /v1/me, with a fresh proof: the account's password
 * (Argon2id, checked on auth's thread pool) or a one-time code sent to the
 * account's phone (POST /v1/auth/otp/request first; checked and counted in
 * the deleting transaction, as a sign-in counts it).
 *
 * Three steps: what the proof is checked against (famcall_account_proof),
 * the password's check when it is one, then famcall_account_delete
 * (sql/032), which ends the calls, tells every socket of the user on every
 * node to close (session:revoked on the bus, then close code 4003), and
 * removes or hands to a tombstone everything of theirs.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_accounts.h"
#include "ngx_famcall_auth.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


static ngx_int_t ngx_famcall_delete_proof(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);
static ngx_int_t ngx_famcall_delete_verified(ngx_famcall_ctx_t *ctx,
    ngx_int_t rc, const char *unused);
static ngx_int_t ngx_famcall_delete_run(ngx_famcall_ctx_t *ctx,
    const char *code_hash);


static const ngx_famcall_field_t  ngx_famcall_delete_fields[] = {
    { "password", NGX_FAMCALL_F_STRING, 0, 0, NULL, 1, 1024, NULL },
    { "code", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_otp_code,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_account_delete(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t    rc;
    ngx_uint_t   n;
    const char  *params[1];

    rc = ngx_famcall_check_body(ctx, ngx_famcall_delete_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    n = (ngx_famcall_json_string(ctx->body, "password") != NULL)
        + (ngx_famcall_json_string(ctx->body, "code") != NULL);

    if (n != 1) {
        return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                      n ? "invalid_field" : "missing_field",
                                      "prove it is you: send exactly one of "
                                      "password, code", n ? NULL : "password");
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    if (params[0] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_accounts_sql(ctx, NGX_FAMCALL_ACCOUNTS_SQL_PROOF),
               1, params, ngx_famcall_delete_proof);
}


static ngx_int_t
ngx_famcall_delete_proof(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    u_char       buf[48], *p;
    json_t      *found;
    ngx_int_t    rc;
    const char  *hash, *phone, *password, *code;
    char         code_hash[NGX_FAMCALL_HEX256_LEN + 1];

    if (status != NGX_HTTP_OK) {
        return ngx_famcall_send_answer(ctx, status, body, len);
    }

    found = json_loadb((char *) body, len, 0, NULL);
    if (found == NULL) {
        return NGX_ERROR;
    }

    hash = ngx_famcall_json_string(found, "password_hash");
    phone = ngx_famcall_json_string(found, "phone");
    password = ngx_famcall_json_string(ctx->body, "password");
    code = ngx_famcall_json_string(ctx->body, "code");

    if (password != NULL) {
        if (hash == NULL) {
            json_decref(found);
            return ngx_famcall_send_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                          "invalid_credentials",
                                          "this account has no password: "
                                          "prove it with a one-time code",
                                          "password");
        }

        /* the task copies the hash */
        rc = ngx_famcall_password_verify(ctx, password, hash,
                                         ngx_famcall_delete_verified);
        json_decref(found);

        return rc;
    }

    if (phone == NULL || ngx_strlen(phone) > 16) {
        json_decref(found);
        return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                      "invalid_field",
                                      "this account has no phone: prove it "
                                      "with its password", "code");
    }

    /* the code's HMAC as famcall_otp_request stored it */
    p = ngx_snprintf(buf, sizeof(buf), "%s:%s", phone, code);
    json_decref(found);

    ngx_famcall_hmac_sha256_hex(ctx->fmcf->jwt_secret.data,
                                ctx->fmcf->jwt_secret.len, buf, p - buf,
                                code_hash);

    return ngx_famcall_delete_run(ctx, code_hash);
}


static ngx_int_t
ngx_famcall_delete_verified(ngx_famcall_ctx_t *ctx, ngx_int_t rc,
    const char *unused)
{
    if (rc == NGX_DECLINED) {
        return ngx_famcall_send_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                      "invalid_credentials",
                                      "wrong password", "password");
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_famcall_delete_run(ctx, NULL);
}


static ngx_int_t
ngx_famcall_delete_run(ngx_famcall_ctx_t *ctx, const char *code_hash)
{
    const char               *params[3];
    ngx_famcall_auth_conf_t  *auth;

    auth = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_famcall_auth_module);

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[2] = ngx_famcall_num(ctx, auth->otp_max_attempts);

    if (params[0] == NULL || params[2] == NULL) {
        return NGX_ERROR;
    }

    /* NULL: the password was the proof */
    params[1] = code_hash;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "famcall: deleting account %V", &ctx->user_id);

    return ngx_famcall_query(ctx,
               ngx_famcall_accounts_sql(ctx, NGX_FAMCALL_ACCOUNTS_SQL_DELETE),
               3, params, ngx_famcall_send_answer);
}
