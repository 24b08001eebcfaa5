/*
 * famcall: email + password accounts and sessions: signup, login, refresh,
 * logout (POST /v1/auth/...).
 *
 * A session is a refresh-token family (sql/002_accounts.sql): signup, login
 * and OTP verification start one; each refresh spends the presented token
 * and issues the next; reuse of a spent token revokes the family.  Access
 * tokens are short JWTs carrying the user (sub) and the family (sid).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_auth.h"
#include "ngx_famcall_accounts.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_token.h"


typedef struct {
    char    refresh[NGX_FAMCALL_REFRESH_LEN + 1];
    char    refresh_hash[NGX_FAMCALL_HEX256_LEN + 1];
    char    user_id[NGX_FAMCALL_ID_LEN + 1];          /* login */
} ngx_famcall_auth_state_t;


static ngx_famcall_auth_state_t *ngx_famcall_auth_state(
    ngx_famcall_ctx_t *ctx);
static ngx_int_t ngx_famcall_signup_hashed(ngx_famcall_ctx_t *ctx,
    ngx_int_t rc, const char *hash);
static ngx_int_t ngx_famcall_signup_done(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);
static ngx_int_t ngx_famcall_login_found(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);
static ngx_int_t ngx_famcall_login_verified(ngx_famcall_ctx_t *ctx,
    ngx_int_t rc, const char *hash);
static ngx_int_t ngx_famcall_tokens_done(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);


static const ngx_famcall_field_t  ngx_famcall_signup_fields[] = {
    { "email", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_email,
      0, 0, NULL },
    { "password", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_password,
      0, 0, NULL },
    { "display_name", NGX_FAMCALL_F_STRING, 1, 0,
      ngx_famcall_check_display_name, 0, 0, NULL },
    { "username", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_username,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  ngx_famcall_login_fields[] = {
    { "email", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_email,
      0, 0, NULL },
    { "password", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_password,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  ngx_famcall_refresh_fields[] = {
    { "refresh_token", NGX_FAMCALL_F_STRING, 1, 0,
      ngx_famcall_check_refresh_token, 0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_auth_signup(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_famcall_check_body(ctx, ngx_famcall_signup_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_famcall_password_hash(ctx,
               ngx_famcall_json_string(ctx->body, "password"),
               ngx_famcall_signup_hashed);
}


static ngx_int_t
ngx_famcall_signup_hashed(ngx_famcall_ctx_t *ctx, ngx_int_t rc,
    const char *hash)
{
    ngx_uint_t                 error;
    const char                *params[7];
    ngx_famcall_auth_conf_t   *acf = ngx_famcall_auth_conf(ctx);
    ngx_famcall_auth_state_t  *st;

    st = ngx_famcall_auth_state(ctx);

    if (rc != NGX_OK || st == NULL) {
        return NGX_ERROR;
    }

    params[0] = ngx_famcall_json_string(ctx->body, "email");
    params[1] = hash;
    params[2] = ngx_famcall_json_string(ctx->body, "display_name");
    params[3] = ngx_famcall_json_string(ctx->body, "username");
    params[4] = st->refresh_hash;
    params[5] = ngx_famcall_num(ctx, acf->refresh_ttl);

    /* the policy and terms shown at sign-up: NULL when none configured */
    error = 0;
    params[6] = ngx_famcall_legal_version(ctx->request, &error);

    if (params[5] == NULL || error) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx, acf->sql + NGX_FAMCALL_AUTH_SQL_SIGNUP, 7,
                             params, ngx_famcall_signup_done);
}


static ngx_int_t
ngx_famcall_signup_done(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    ngx_famcall_auth_state_t  *st = ctx->data;

    if (status != NGX_HTTP_CREATED) {
        return ngx_famcall_send_answer(ctx, status, body, len);
    }

    return ngx_famcall_auth_send_tokens(ctx, NGX_HTTP_CREATED, st->refresh,
                                        body, len);
}


ngx_int_t
ngx_famcall_auth_login(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t                 rc;
    const char               *params[1];
    ngx_famcall_auth_conf_t  *acf = ngx_famcall_auth_conf(ctx);

    rc = ngx_famcall_check_body(ctx, ngx_famcall_login_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_json_string(ctx->body, "email");

    return ngx_famcall_query(ctx, acf->sql + NGX_FAMCALL_AUTH_SQL_LOGIN_LOOKUP,
                             1, params, ngx_famcall_login_found);
}


static ngx_int_t
ngx_famcall_login_found(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    json_t                    *found;
    ngx_int_t                  rc;
    const char                *hash, *user_id, *password;
    ngx_famcall_auth_state_t  *st;

    password = ngx_famcall_json_string(ctx->body, "password");

    if (status == NGX_HTTP_NOT_FOUND) {
        /* no such account: spend the same Argon2 time before saying so */
        return ngx_famcall_password_verify(ctx, password, NULL,
                                           ngx_famcall_login_verified);
    }

    if (status != NGX_HTTP_OK) {
        return ngx_famcall_send_answer(ctx, status, body, len);
    }

    found = json_loadb((char *) body, len, 0, NULL);
    hash = ngx_famcall_json_string(found, "password_hash");
    user_id = ngx_famcall_json_string(found, "user_id");
    st = ngx_famcall_auth_state(ctx);

    if (hash == NULL || user_id == NULL || st == NULL
        || ngx_strlen(user_id) != NGX_FAMCALL_ID_LEN)
    {
        json_decref(found);
        return NGX_ERROR;
    }

    (void) ngx_cpystrn((u_char *) st->user_id, (u_char *) user_id,
                       sizeof(st->user_id));

    rc = ngx_famcall_password_verify(ctx, password, hash,
                                     ngx_famcall_login_verified);
    json_decref(found);

    return rc;
}


static ngx_int_t
ngx_famcall_login_verified(ngx_famcall_ctx_t *ctx, ngx_int_t rc,
    const char *unused)
{
    const char                *params[3];
    ngx_famcall_auth_conf_t   *acf = ngx_famcall_auth_conf(ctx);
    ngx_famcall_auth_state_t  *st;

    if (rc == NGX_DECLINED) {
        return ngx_famcall_send_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                      "invalid_credentials",
                                      "wrong email or password", NULL);
    }

    st = ctx->data;

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    params[0] = st->user_id;
    params[1] = st->refresh_hash;
    params[2] = ngx_famcall_num(ctx, acf->refresh_ttl);

    if (params[2] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx,
                             acf->sql + NGX_FAMCALL_AUTH_SQL_SESSION_CREATE,
                             3, params, ngx_famcall_tokens_done);
}


ngx_int_t
ngx_famcall_auth_refresh(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t                  rc;
    const char                *params[4], *old;
    ngx_famcall_auth_conf_t   *acf = ngx_famcall_auth_conf(ctx);
    ngx_famcall_auth_state_t  *st;
    char                       old_hash[NGX_FAMCALL_HEX256_LEN + 1];

    rc = ngx_famcall_check_body(ctx, ngx_famcall_refresh_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    st = ngx_famcall_auth_state(ctx);
    if (st == NULL) {
        return NGX_ERROR;
    }

    old = ngx_famcall_json_string(ctx->body, "refresh_token");
    ngx_famcall_sha256_hex(old, ngx_strlen(old), old_hash);

    params[0] = old_hash;
    params[1] = st->refresh_hash;
    params[2] = ngx_famcall_num(ctx, acf->refresh_ttl);
    params[3] = ngx_famcall_num(ctx, acf->refresh_grace);

    if (params[2] == NULL || params[3] == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_query(ctx, acf->sql + NGX_FAMCALL_AUTH_SQL_REFRESH, 4,
                             params, ngx_famcall_tokens_done);
}


ngx_int_t
ngx_famcall_auth_logout(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t                 rc;
    const char               *params[1], *token;
    ngx_famcall_auth_conf_t  *acf = ngx_famcall_auth_conf(ctx);
    char                      hash[NGX_FAMCALL_HEX256_LEN + 1];

    rc = ngx_famcall_check_body(ctx, ngx_famcall_refresh_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    token = ngx_famcall_json_string(ctx->body, "refresh_token");
    ngx_famcall_sha256_hex(token, ngx_strlen(token), hash);
    params[0] = hash;

    return ngx_famcall_query(ctx, acf->sql + NGX_FAMCALL_AUTH_SQL_LOGOUT, 1,
                             params, ngx_famcall_send_answer);
}


static ngx_int_t
ngx_famcall_tokens_done(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len)
{
    ngx_famcall_auth_state_t  *st = ctx->data;

    if (status != NGX_HTTP_OK) {
        return ngx_famcall_send_answer(ctx, status, body, len);
    }

    return ngx_famcall_auth_send_tokens(ctx, NGX_HTTP_OK, st->refresh, body,
                                        len);
}


/*
 * The token response from an sql/ answer {"user": {...}, "family_id": ...,
 * ["new_user": bool]}: a fresh access token for that user and session.
 */
ngx_int_t
ngx_famcall_auth_send_tokens(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    const char *refresh_token, u_char *body, size_t len)
{
    char                          *access;
    json_t                        *answer, *user, *out, *new_user;
    const char                    *user_id, *family;
    ngx_famcall_auth_conf_t       *acf = ngx_famcall_auth_conf(ctx);
    ngx_http_famcall_main_conf_t  *fmcf = ctx->fmcf;

    answer = json_loadb((char *) body, len, 0, NULL);
    user = json_object_get(answer, "user");
    user_id = ngx_famcall_json_string(user, "id");
    family = ngx_famcall_json_string(answer, "family_id");

    access = NULL;

    if (user_id == NULL
        || ngx_famcall_jwt_issue(fmcf->jwt_secret.data, fmcf->jwt_secret.len,
                                 user_id, family, ngx_time(), acf->jwt_ttl,
                                 &access)
           != 0)
    {
        json_decref(answer);
        return NGX_ERROR;
    }

    out = json_pack("{s:s, s:s, s:s, s:I, s:O}",
                    "access_token", access,
                    "refresh_token", refresh_token,
                    "token_type", "Bearer",
                    "expires_in", (json_int_t) acf->jwt_ttl,
                    "user", user);

    new_user = json_object_get(answer, "new_user");
    if (out != NULL && new_user != NULL) {
        json_object_set(out, "new_user", new_user);
    }

    free(access);
    json_decref(answer);

    if (out == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_send_json(ctx, status, out);
}


/* a new refresh token for this request, and the hash it is stored under */
static ngx_famcall_auth_state_t *
ngx_famcall_auth_state(ngx_famcall_ctx_t *ctx)
{
    ngx_famcall_auth_state_t  *st;

    st = ngx_pcalloc(ctx->request->pool, sizeof(ngx_famcall_auth_state_t));
    if (st == NULL || ngx_famcall_random_token(st->refresh) != 0) {
        return NULL;
    }

    ngx_famcall_sha256_hex(st->refresh, NGX_FAMCALL_REFRESH_LEN,
                           st->refresh_hash);
    ctx->data = st;

    return st;
}
