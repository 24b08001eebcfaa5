/*
 * famcall-pushd: APNs, token-based, over HTTP/2 (APNs speaks nothing
 * else).  The provider token is an ES256 JWT (key id, team id, issued
 * at), signed again every apns_token_ttl: APNs refuses one older than an
 * hour and one renewed more often than every twenty minutes.  Messages are
 * alert pushes to the device token; calls and their cancels to a VoIP
 * token are voip pushes (topic <apns_topic>.voip), which wake the app to
 * ring through CallKit; a cancel to a device without one is a background
 * push.  410, and 400 BadDeviceToken, remove the token.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pushd.h"


static const char *pushd_apns_jwt(pushd_t *d);
static void pushd_apns_sent(pushd_req_t *req);


int
pushd_apns_init(pushd_t *d)
{
    if (d->conf.apns_key_id == NULL || d->conf.apns_team_id == NULL
        || d->conf.apns_topic == NULL)
    {
        pushd_log(d, "error", "apns_key_file needs apns_key_id, "
                  "apns_team_id and apns_topic");
        return -1;
    }

    d->apns.key = pushd_key_file(d->conf.apns_key_file);
    if (d->apns.key == NULL || EVP_PKEY_base_id(d->apns.key) != EVP_PKEY_EC) {
        pushd_log(d, "error", "apns_key_file %s: not an EC private key "
                  "(the .p8 file)", d->conf.apns_key_file);
        return -1;
    }

    return 0;
}


static const char *
pushd_apns_jwt(pushd_t *d)
{
    char    *jwt;
    time_t   now = time(NULL);
    json_t  *header, *claims;

    if (d->apns.jwt != NULL && now - d->apns.jwt_at < d->conf.apns_token_ttl) {
        return d->apns.jwt;
    }

    header = json_pack("{s:s, s:s}", "alg", "ES256",
                       "kid", d->conf.apns_key_id);
    claims = json_pack("{s:s, s:I}", "iss", d->conf.apns_team_id,
                       "iat", (json_int_t) now);

    jwt = (header && claims) ? pushd_jwt_sign(d->apns.key, 1, header, claims)
                             : NULL;
    json_decref(header);
    json_decref(claims);

    if (jwt != NULL) {
        free(d->apns.jwt);
        d->apns.jwt = jwt;
        d->apns.jwt_at = now;
        pushd_log(d, "debug", "apns: a new provider token");
    }

    return d->apns.jwt;
}


void
pushd_apns_send(pushd_t *d, pushd_row_t *row)
{
    char         *body, url[1024];
    json_t       *msg, *aps, *v;
    const char   *type, *jwt, *token, *k, *push_type;
    pushd_req_t  *req;

    type = pushd_str(row->payload, "type");
    if (type == NULL) {
        type = "";
    }

    jwt = pushd_apns_jwt(d);
    if (jwt == NULL) {
        pushd_retry(d, row, -1, "apns: cannot sign the provider token");
        return;
    }

    msg = json_object();
    aps = json_object();
    if (msg == NULL || aps == NULL) {
        json_decref(msg);
        json_decref(aps);
        pushd_retry(d, row, -1, "apns: out of memory");
        return;
    }

    /* the app's fields beside aps, as the other providers have them */
    json_object_foreach(row->payload, k, v) {
        if (strcmp(k, "title") != 0 && strcmp(k, "body") != 0
            && strcmp(k, "badge") != 0)
        {
            json_object_set(msg, k, v);
        }
    }

    json_object_set_new(msg, "push_id", json_integer(row->id));

    if (row->voip) {
        push_type = "voip";
        token = row->voip_token;

    } else if (strcmp(type, "call_cancel") == 0) {
        push_type = "background";
        token = row->token;
        json_object_set_new(aps, "content-available", json_integer(1));

    } else {
        push_type = "alert";
        token = row->token;
        json_object_set_new(aps, "alert", json_pack("{s:O?, s:O?}",
            "title", json_object_get(row->payload, "title"),
            "body", json_object_get(row->payload, "body")));
        json_object_set_new(aps, "sound", json_string("default"));

        if (strcmp(type, "message") == 0) {
            v = json_object_get(row->payload, "badge");
            if (json_is_integer(v)) {
                json_object_set(aps, "badge", v);
            }
            v = json_object_get(row->payload, "conversation_id");
            if (json_is_string(v)) {
                json_object_set(aps, "thread-id", v);
            }

        } else {
            json_object_set_new(aps, "category", json_string("CALL"));
        }
    }

    json_object_set_new(msg, "aps", aps);
    body = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);

    snprintf(url, sizeof(url), "%s/3/device/%s", d->conf.apns_url, token);

    req = body ? pushd_req_new(d, url, pushd_apns_sent, NULL) : NULL;

    if (req == NULL
        || pushd_req_header(req, "Content-Type: application/json") != 0
        || pushd_req_header(req, "authorization: bearer %s", jwt) != 0
        || pushd_req_header(req, "apns-push-type: %s", push_type) != 0
        || pushd_req_header(req, "apns-topic: %s%s", d->conf.apns_topic,
                            row->voip ? ".voip" : "") != 0
        || pushd_req_header(req, "apns-priority: %s",
                            strcmp(push_type, "background") == 0 ? "5"
                                                                 : "10") != 0
        || pushd_req_header(req, "apns-expiration: %lld",
                            (long long) row->expires_at) != 0
        || (row->collapse_key
            && pushd_req_header(req, "apns-collapse-id: %s",
                                row->collapse_key) != 0))
    {
        free(body);
        pushd_req_free(req);
        pushd_retry(d, row, -1, "apns: out of memory");
        return;
    }

    pushd_req_send_row(req, row, body, 1, "apns");
}


static void
pushd_apns_sent(pushd_req_t *req)
{
    json_t       *answer;
    pushd_t      *d = req->d;
    const char   *reason;
    pushd_row_t  *row = req->rows;

    if (pushd_req_failed_retry(req, "apns")) {
        return;
    }

    req->rows = NULL;

    if (req->status == 200) {
        pushd_stat(d, PUSHD_APNS, row);
        pushd_done(d, row, PUSHD_OK, "apns", "%s", "");
        return;
    }

    answer = json_loadb(req->resp ? req->resp : "", req->resp_len, 0, NULL);
    reason = pushd_str(answer, "reason");
    if (reason == NULL) {
        reason = "";
    }

    if (req->status == 410
        || (req->status == 400
            && (strcmp(reason, "BadDeviceToken") == 0
                || strcmp(reason, "DeviceTokenNotForTopic") == 0)))
    {
        pushd_done(d, row, row->voip ? PUSHD_DEAD_VOIP : PUSHD_DEAD, NULL,
                   "apns: %ld %s", req->status, reason);

    } else {
        if (req->status == 403 && strstr(reason, "ProviderToken") != NULL) {
            /* sign a new one for the next try */
            free(d->apns.jwt);
            d->apns.jwt = NULL;
        }

        pushd_retry(d, row, req->retry_after, "apns: %ld %s", req->status,
                    reason);
    }

    json_decref(answer);
}
