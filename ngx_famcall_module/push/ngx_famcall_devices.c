/*
 * famcall: the devices that get push notifications (POST, GET and DELETE
 * /v1/devices).  A device belongs to the session that registered it (the
 * access token's sid): logging that session out removes it
 * (sql/023_push.sql).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_famcall_push.h"
#include "ngx_famcall_json.h"


/* longer than any provider's token, short enough to index */
#define NGX_FAMCALL_PUSH_TOKEN_MAX  1024


static const char *ngx_famcall_check_platform(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_provider(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_push_token(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_voip_token(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_token_for(const char *provider,
    const char *token);


static const ngx_famcall_field_t  ngx_famcall_device_fields[] = {
    { "platform", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_platform,
      0, 0, NULL },
    { "provider", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_provider,
      0, 0, NULL },
    { "push_token", NGX_FAMCALL_F_STRING, 1, 0,
      ngx_famcall_check_push_token, 1, NGX_FAMCALL_PUSH_TOKEN_MAX, NULL },
    { "voip_token", NGX_FAMCALL_F_STRING, 0, 1,
      ngx_famcall_check_voip_token, 1, NGX_FAMCALL_PUSH_TOKEN_MAX, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


ngx_int_t
ngx_famcall_devices_register(ngx_famcall_ctx_t *ctx)
{
    ngx_int_t    rc;
    const char  *params[6], *msg;

    rc = ngx_famcall_check_body(ctx, ngx_famcall_device_fields);
    if (rc != NGX_OK) {
        return rc;
    }

    params[0] = ngx_famcall_cstr(ctx, &ctx->user_id);
    params[1] = ngx_famcall_cstr(ctx, &ctx->session_id);
    params[2] = ngx_famcall_json_string(ctx->body, "platform");
    params[3] = ngx_famcall_json_string(ctx->body, "provider");
    params[4] = ngx_famcall_json_string(ctx->body, "push_token");
    params[5] = ngx_famcall_json_string(ctx->body, "voip_token");

    if (ngx_famcall_params_null(params, 5)) {
        return NGX_ERROR;
    }

    /* each provider's tokens have a shape of their own */
    msg = ngx_famcall_check_token_for(params[3], params[4]);
    if (msg != NULL) {
        return ngx_famcall_send_error(ctx, NGX_FAMCALL_HTTP_UNPROCESSABLE,
                                      "invalid_field", msg, "push_token");
    }

    return ngx_famcall_query(ctx,
               ngx_famcall_push_sql(ctx, NGX_FAMCALL_PUSH_SQL_REGISTER),
               6, params, ngx_famcall_send_answer);
}


ngx_int_t
ngx_famcall_devices_list(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me(ctx,
               ngx_famcall_push_sql(ctx, NGX_FAMCALL_PUSH_SQL_LIST));
}


ngx_int_t
ngx_famcall_devices_remove(ngx_famcall_ctx_t *ctx)
{
    return ngx_famcall_query_me_id(ctx,
               ngx_famcall_push_sql(ctx, NGX_FAMCALL_PUSH_SQL_REMOVE));
}


static const char *
ngx_famcall_check_word(const char *in, size_t len, char *out, size_t *outlen,
    const char *const *words, const char *msg)
{
    for ( /* void */ ; *words; words++) {
        if (len == strlen(*words) && memcmp(in, *words, len) == 0) {
            memcpy(out, in, len);
            out[len] = '\0';
            *outlen = len;
            return NULL;
        }
    }

    return msg;
}


static const char *
ngx_famcall_check_platform(const char *in, size_t len, char *out,
    size_t *outlen)
{
    static const char *const  words[] = {
        "android", "ios", "web", "desktop", NULL
    };

    return ngx_famcall_check_word(in, len, out, outlen, words,
               "must be \"android\", \"ios\", \"web\" or \"desktop\"");
}


static const char *
ngx_famcall_check_provider(const char *in, size_t len, char *out,
    size_t *outlen)
{
    static const char *const  words[] = { "expo", "fcm", "apns", NULL };

    return ngx_famcall_check_word(in, len, out, outlen, words,
               "must be \"expo\", \"fcm\" or \"apns\"");
}


/*
 * Printable ASCII without spaces: a token goes into a URL path (APNs) and
 * into JSON as is, and no provider issues anything else.
 */
static const char *
ngx_famcall_check_push_token(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (in[i] <= ' ' || in[i] > '~' || in[i] == '"' || in[i] == '\\') {
            return "must be a push token: printable characters, no spaces";
        }
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


/* a PushKit token: hex, as APNs device tokens are */
static const char *
ngx_famcall_check_voip_token(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    if (len < 32 || len > 200) {
        return "must be an APNs VoIP token (hex)";
    }

    for (i = 0; i < len; i++) {
        if (!((in[i] >= '0' && in[i] <= '9') || (in[i] >= 'a' && in[i] <= 'f')
              || (in[i] >= 'A' && in[i] <= 'F')))
        {
            return "must be an APNs VoIP token (hex)";
        }
    }

    memcpy(out, in, len);
    out[len] = '\0';
    *outlen = len;

    return NULL;
}


static const char *
ngx_famcall_check_token_for(const char *provider, const char *token)
{
    size_t       len;
    const char  *p;

    len = strlen(token);

    if (strcmp(provider, "expo") == 0) {
        /* ExponentPushToken[...] or ExpoPushToken[...] */
        if ((strncmp(token, "ExponentPushToken[", 18) != 0
             && strncmp(token, "ExpoPushToken[", 14) != 0)
            || token[len - 1] != ']' || strchr(token, '[')[1] == ']')
        {
            return "must be an Expo push token, ExponentPushToken[...]";
        }

        return NULL;
    }

    if (strcmp(provider, "apns") == 0) {
        if (len < 32 || len > 200) {
            return "must be an APNs device token (hex)";
        }

        for (p = token; *p; p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
                  || (*p >= 'A' && *p <= 'F')))
            {
                return "must be an APNs device token (hex)";
            }
        }

        return NULL;
    }

    /* FCM registration tokens: URL-safe base64 and ':' */
    if (len < 16) {
        return "must be an FCM registration token";
    }

    for (p = token; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
              || (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'
              || *p == ':'))
        {
            return "must be an FCM registration token";
        }
    }

    return NULL;
}
