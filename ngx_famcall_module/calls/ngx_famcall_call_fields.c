/*
 * famcall: the fields of the calls module's events and bodies (see
 * ngx_famcall_call_fields.h).
 */

#include <string.h>

#include "ngx_famcall_call_fields.h"
#include "ngx_famcall_validate.h"


static const char *ngx_famcall_check_call_media(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_call_reason(const char *in, size_t len,
    char *out, size_t *outlen);
static const char *ngx_famcall_check_candidate_type(const char *in,
    size_t len, char *out, size_t *outlen);


const ngx_famcall_field_t  ngx_famcall_call_invite_fields[] = {
    { "to_user_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "media", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_call_media,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

const ngx_famcall_field_t  ngx_famcall_call_id_fields[] = {
    { "call_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

const ngx_famcall_field_t  ngx_famcall_call_no_fields[] = {
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

const ngx_famcall_field_t  ngx_famcall_call_end_fields[] = {
    { "call_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "reason", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_call_reason,
      1, NGX_FAMCALL_CALL_REASON_MAX, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


const ngx_famcall_field_t  ngx_famcall_call_sdp_fields[] = {
    { "call_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "sdp", NGX_FAMCALL_F_STRING, 1, 0, NULL,
      1, NGX_FAMCALL_CALL_SDP_MAX, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

/* an empty candidate is the end of candidates (RTCPeerConnection) */
const ngx_famcall_field_t  ngx_famcall_call_ice_fields[] = {
    { "call_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "candidate", NGX_FAMCALL_F_STRING, 1, 0, NULL,
      0, NGX_FAMCALL_CALL_CANDIDATE_MAX, NULL },
    { "sdp_mid", NGX_FAMCALL_F_STRING, 0, 1, NULL,
      0, NGX_FAMCALL_CALL_MID_MAX, NULL },
    { "sdp_mline_index", NGX_FAMCALL_F_INTEGER, 0, 1, NULL, 0, 1023, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


static const ngx_famcall_field_t  ngx_famcall_call_pair_fields[] = {
    { "local_type", NGX_FAMCALL_F_STRING, 1, 0,
      ngx_famcall_check_candidate_type, 0, 0, NULL },
    { "remote_type", NGX_FAMCALL_F_STRING, 1, 0,
      ngx_famcall_check_candidate_type, 0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

/* times in milliseconds from the invite (ringing) and from the accept */
static const ngx_famcall_field_t  ngx_famcall_call_setup_fields[] = {
    { "ringing", NGX_FAMCALL_F_INTEGER, 0, 0, NULL, 0, 600000, NULL },
    { "ice_connected", NGX_FAMCALL_F_INTEGER, 0, 0, NULL, 0, 600000, NULL },
    { "first_frame", NGX_FAMCALL_F_INTEGER, 0, 0, NULL, 0, 600000, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

/* packet_loss, a number from 0 to 1, is checked by the database */
const ngx_famcall_field_t  ngx_famcall_call_stats_fields[] = {
    { "selected_pair", NGX_FAMCALL_F_OBJECT, 0, 0, NULL, 0, 0,
      ngx_famcall_call_pair_fields },
    { "rtt_ms", NGX_FAMCALL_F_INTEGER, 0, 0, NULL, 0, 60000, NULL },
    { "bitrate_in", NGX_FAMCALL_F_INTEGER, 0, 0, NULL, 0, 1000000000, NULL },
    { "bitrate_out", NGX_FAMCALL_F_INTEGER, 0, 0, NULL, 0, 1000000000,
      NULL },
    { "setup_ms", NGX_FAMCALL_F_OBJECT, 0, 0, NULL, 0, 0,
      ngx_famcall_call_setup_fields },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


static const char *
ngx_famcall_check_call_media(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (!((len == 5 && memcmp(in, "video", 5) == 0)
          || (len == 5 && memcmp(in, "audio", 5) == 0)))
    {
        return "must be \"video\" or \"audio\"";
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}


/* a word the history shows: "hangup", "failed", "connection_lost" */
static const char *
ngx_famcall_check_call_reason(const char *in, size_t len, char *out,
    size_t *outlen)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (!((in[i] >= 'a' && in[i] <= 'z') || in[i] == '_')) {
            return "must be 1 to 32 of a-z and _";
        }
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}


static const char *
ngx_famcall_check_candidate_type(const char *in, size_t len, char *out,
    size_t *outlen)
{
    if (!((len == 4 && memcmp(in, "host", 4) == 0)
          || (len == 5 && memcmp(in, "srflx", 5) == 0)
          || (len == 5 && memcmp(in, "prflx", 5) == 0)
          || (len == 5 && memcmp(in, "relay", 5) == 0)))
    {
        return "must be host, srflx, prflx or relay";
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}
