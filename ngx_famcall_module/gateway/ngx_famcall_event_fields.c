/*
 * famcall: the fields of the events the gateway serves itself (see
 * ngx_famcall_event_fields.h).
 */

#include <string.h>

#include "ngx_famcall_event_fields.h"
#include "ngx_famcall_validate.h"


#define NGX_FAMCALL_CURSOR_MAX    2048
#define NGX_FAMCALL_TOKEN_MAX     4096


static const char *ngx_famcall_check_typing_state(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_cursor(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_token(const char *in, size_t len,
    char *out, size_t *outlen);


const ngx_famcall_field_t  ngx_famcall_ev_send_fields[] = {
    { "conversation_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "client_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "body", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_message_body,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

const ngx_famcall_field_t  ngx_famcall_ev_receipt_fields[] = {
    { "conversation_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "up_to_seq", NGX_FAMCALL_F_INTEGER, 1, 0, NULL, 0,
      NGX_FAMCALL_SEQ_MAX, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

const ngx_famcall_field_t  ngx_famcall_ev_typing_fields[] = {
    { "conversation_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "state", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_typing_state,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

const ngx_famcall_field_t  ngx_famcall_ev_sync_fields[] = {
    { "since", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_cursor,
      0, 0, NULL },
    { "limit", NGX_FAMCALL_F_INTEGER, 0, 1, NULL, 1, 500, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

const ngx_famcall_field_t  ngx_famcall_ev_auth_fields[] = {
    { "access_token", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_token,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


static const char *
ngx_famcall_check_typing_state(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (!((len == 5 && memcmp(in, "start", 5) == 0)
          || (len == 4 && memcmp(in, "stop", 4) == 0)))
    {
        return "must be \"start\" or \"stop\"";
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}


/* opaque to clients; sql/008's famcall_sync checks what is inside */
static const char *
ngx_famcall_check_cursor(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    if (len == 0 || len > NGX_FAMCALL_CURSOR_MAX) {
        return "not a cursor from sync";
    }

    for (i = 0; i < len; i++) {
        if (!((in[i] >= '0' && in[i] <= '9') || (in[i] >= 'a' && in[i] <= 'f')
              || in[i] == ':' || in[i] == ',' || in[i] == '~'
              || in[i] == '-'))
        {
            return "not a cursor from sync";
        }
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}


static const char *
ngx_famcall_check_token(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (len == 0 || len > NGX_FAMCALL_TOKEN_MAX) {
        return "must be an access token";
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}
