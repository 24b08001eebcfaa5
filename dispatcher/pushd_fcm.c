/*
 * famcall-pushd: FCM HTTP v1.  The service account's key signs an RS256
 * assertion, exchanged at its token_uri (or fcm_token_url) for an OAuth2
 * access token, cached until a minute before it expires; rows that arrive
 * while it is fetched wait for it.  One request per message (v1 has no
 * batch), multiplexed over HTTP/2.  Calls and their cancels are
 * high-priority data messages, which wake the app; messages carry a
 * notification.  404 UNREGISTERED removes the device.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pushd.h"


#define PUSHD_FCM_SCOPE  "https://www.googleapis.com/auth/firebase.messaging"


static void pushd_fcm_fetch(pushd_t *d);
static void pushd_fcm_fetched(pushd_req_t *req);
static void pushd_fcm_start(pushd_t *d, pushd_row_t *row);
static void pushd_fcm_sent(pushd_req_t *req);


int
pushd_fcm_init(pushd_t *d)
{
    json_t       *sa;
    json_error_t  err;
    const char   *key;

    sa = json_load_file(d->conf.fcm_service_account, 0, &err);
    if (sa == NULL) {
        pushd_log(d, "error", "fcm_service_account %s: %s",
                  d->conf.fcm_service_account, err.text);
        return -1;
    }

    key = pushd_str(sa, "private_key");

    if (pushd_str(sa, "project_id") == NULL
        || pushd_str(sa, "client_email") == NULL || key == NULL
        || (pushd_str(sa, "token_uri") == NULL
            && d->conf.fcm_token_url == NULL))
    {
        pushd_log(d, "error", "fcm_service_account %s: project_id, "
                  "client_email, private_key and token_uri are needed",
                  d->conf.fcm_service_account);
        json_decref(sa);
        return -1;
    }

    d->fcm.key = pushd_key_read(key, strlen(key));
    d->fcm.project_id = strdup(pushd_str(sa, "project_id"));
    d->fcm.client_email = strdup(pushd_str(sa, "client_email"));
    d->fcm.token_uri = strdup(d->conf.fcm_token_url
                              ? d->conf.fcm_token_url
                              : pushd_str(sa, "token_uri"));
    json_decref(sa);

    if (d->fcm.key == NULL || EVP_PKEY_base_id(d->fcm.key) != EVP_PKEY_RSA) {
        pushd_log(d, "error", "fcm_service_account %s: private_key is not "
                  "an RSA key", d->conf.fcm_service_account);
        return -1;
    }

    return 0;
}


void
pushd_fcm_send(pushd_t *d, pushd_row_t *row)
{
    if (d->fcm.access_token != NULL && time(NULL) < d->fcm.access_expires) {
        pushd_fcm_start(d, row);
        return;
    }

    *d->fcm.waiting_tail = row;
    d->fcm.waiting_tail = &row->next;

    if (!d->fcm.fetching) {
        pushd_fcm_fetch(d);
    }
}


static void
pushd_fcm_fail_waiting(pushd_t *d, long retry_after, const char *why)
{
    pushd_row_t  *row, *next;

    for (row = d->fcm.waiting; row; row = next) {
        next = row->next;
        pushd_retry(d, row, retry_after, "fcm oauth: %s", why);
    }

    d->fcm.waiting = NULL;
    d->fcm.waiting_tail = &d->fcm.waiting;
}


static void
pushd_fcm_fetch(pushd_t *d)
{
    char         *jwt, *body;
    time_t        now = time(NULL);
    json_t       *header, *claims;
    pushd_req_t  *req;

    header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I}",
                       "iss", d->fcm.client_email, "scope", PUSHD_FCM_SCOPE,
                       "aud", d->fcm.token_uri, "iat", (json_int_t) now,
                       "exp", (json_int_t) now + 3600);

    jwt = (header && claims) ? pushd_jwt_sign(d->fcm.key, 0, header, claims)
                             : NULL;
    json_decref(header);
    json_decref(claims);

    body = jwt ? malloc(strlen(jwt) + 128) : NULL;
    if (body == NULL) {
        free(jwt);
        pushd_fcm_fail_waiting(d, -1, "cannot sign the assertion");
        return;
    }

    /* a JWT is base64url and dots: nothing to escape in a form */
    sprintf(body, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type"
            "%%3Ajwt-bearer&assertion=%s", jwt);
    free(jwt);

    req = pushd_req_new(d, d->fcm.token_uri, pushd_fcm_fetched, NULL);
    if (req == NULL
        || pushd_req_header(req, "Content-Type: "
                            "application/x-www-form-urlencoded") != 0
        || pushd_req_start(req, body, 0) != 0)
    {
        if (req == NULL || req->body == NULL) {
            free(body);
        }
        pushd_req_free(req);
        pushd_fcm_fail_waiting(d, -1, "cannot ask for a token");
        return;
    }

    d->fcm.fetching = 1;
    pushd_log(d, "debug", "fcm: fetching an access token");
}


static void
pushd_fcm_fetched(pushd_req_t *req)
{
    char          why[160];
    json_t       *answer;
    pushd_t      *d = req->d;
    const char   *token;
    json_int_t    ttl;
    pushd_row_t  *row, *next;

    d->fcm.fetching = 0;

    answer = json_loadb(req->resp ? req->resp : "", req->resp_len, 0, NULL);
    token = pushd_str(answer, "access_token");
    ttl = json_integer_value(json_object_get(answer, "expires_in"));

    if (req->rc != CURLE_OK || req->status != 200 || token == NULL
        || ttl <= 0)
    {
        snprintf(why, sizeof(why), "HTTP %ld %s", req->status,
                 req->rc != CURLE_OK ? curl_easy_strerror(req->rc)
                 : req->resp ? req->resp : "");
        json_decref(answer);
        pushd_log(d, "warn", "fcm oauth: %s", why);
        pushd_fcm_fail_waiting(d, req->retry_after, why);
        return;
    }

    free(d->fcm.access_token);
    d->fcm.access_token = strdup(token);
    d->fcm.access_expires = time(NULL) + (ttl > 120 ? ttl - 60 : ttl / 2);
    json_decref(answer);

    pushd_log(d, "debug", "fcm: access token for %lld s", (long long) ttl);

    row = d->fcm.waiting;
    d->fcm.waiting = NULL;
    d->fcm.waiting_tail = &d->fcm.waiting;

    for ( /* void */ ; row; row = next) {
        next = row->next;
        row->next = NULL;
        pushd_fcm_send(d, row);
    }
}


/* FCM's data values are strings */
static json_t *
pushd_fcm_data(pushd_row_t *row)
{
    char        *s, num[32];
    json_t      *data, *v;
    const char  *k;

    data = json_object();
    if (data == NULL) {
        return NULL;
    }

    json_object_foreach(row->payload, k, v) {
        if (json_is_string(v)) {
            json_object_set(data, k, v);

        } else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld",
                     (long long) json_integer_value(v));
            json_object_set_new(data, k, json_string(num));

        } else if (!json_is_null(v)) {
            s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (s != NULL) {
                json_object_set_new(data, k, json_string(s));
                free(s);
            }
        }
    }

    snprintf(num, sizeof(num), "%lld", row->id);
    json_object_set_new(data, "push_id", json_string(num));

    return data;
}


static void
pushd_fcm_start(pushd_t *d, pushd_row_t *row)
{
    char         *body, url[1024], ttl[32];
    long          secs;
    json_t       *msg, *android, *data, *badge, *top;
    const char   *type;
    pushd_req_t  *req;

    type = pushd_str(row->payload, "type");
    secs = row->expires_at ? (long) (row->expires_at - time(NULL)) : 86400;
    snprintf(ttl, sizeof(ttl), "%lds", secs > 0 ? secs : 0);

    data = pushd_fcm_data(row);
    android = json_pack("{s:s, s:s}", "priority", "HIGH", "ttl", ttl);
    if (android && row->collapse_key) {
        json_object_set_new(android, "collapse_key",
                            json_string(row->collapse_key));
    }

    msg = (data && android)
          ? json_pack("{s:s, s:O, s:O}", "token", row->token, "data", data,
                      "android", android)
          : NULL;
    json_decref(data);

    if (msg && type && strcmp(type, "message") == 0) {
        json_object_set_new(msg, "notification", json_pack("{s:O?, s:O?}",
            "title", json_object_get(row->payload, "title"),
            "body", json_object_get(row->payload, "body")));

        badge = json_object_get(row->payload, "badge");
        if (json_is_integer(badge)) {
            json_object_set_new(android, "notification",
                                json_pack("{s:O, s:s}",
                                          "notification_count", badge,
                                          "channel_id", "messages"));
        }
    }

    json_decref(android);

    top = msg ? json_pack("{s:o}", "message", msg) : NULL;
    body = top ? json_dumps(top, JSON_COMPACT) : NULL;
    json_decref(top);

    snprintf(url, sizeof(url), "%s/v1/projects/%s/messages:send",
             d->conf.fcm_url, d->fcm.project_id);

    req = body ? pushd_req_new(d, url, pushd_fcm_sent, NULL) : NULL;

    if (req == NULL
        || pushd_req_header(req, "Content-Type: application/json") != 0
        || pushd_req_header(req, "Authorization: Bearer %s",
                            d->fcm.access_token) != 0)
    {
        free(body);
        pushd_req_free(req);
        pushd_retry(d, row, -1, "fcm: out of memory");
        return;
    }

    pushd_req_send_row(req, row, body, 1, "fcm");
}


static void
pushd_fcm_sent(pushd_req_t *req)
{
    pushd_t      *d = req->d;
    pushd_row_t  *row = req->rows;

    if (pushd_req_failed_retry(req, "fcm")) {
        return;
    }

    req->rows = NULL;

    if (req->status == 200) {
        pushd_stat(d, PUSHD_FCM, row);
        pushd_done(d, row, PUSHD_OK, "fcm", "%s", "");
        return;
    }

    if (req->status == 404
        || (req->resp && strstr(req->resp, "UNREGISTERED") != NULL))
    {
        pushd_done(d, row, PUSHD_DEAD, NULL, "fcm: unregistered");
        return;
    }

    if (req->status == 401) {
        /* the access token was refused: the next send fetches another */
        free(d->fcm.access_token);
        d->fcm.access_token = NULL;
    }

    pushd_retry(d, row, req->retry_after, "fcm: HTTP %ld %.100s",
                req->status, req->resp ? req->resp : "");
}
