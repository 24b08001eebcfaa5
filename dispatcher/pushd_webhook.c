/*
 * famcall-pushd: one-time codes for an SMS gateway (famcall_otp_sms
 * webhook URL): the row's {"to", "body"} POSTed as JSON to its webhook.
 * Any 2xx is delivered; anything else is tried again with backoff.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pushd.h"


static void pushd_webhook_sent(pushd_req_t *req);


void
pushd_webhook_send(pushd_t *d, pushd_row_t *row)
{
    char         *body;
    json_t       *msg;
    const char   *url;
    pushd_req_t  *req;

    url = pushd_str(row->payload, "webhook");
    if (url == NULL || (strncmp(url, "http://", 7) != 0
                        && strncmp(url, "https://", 8) != 0))
    {
        pushd_done(d, row, PUSHD_PARK, NULL, "webhook: no http(s) URL");
        return;
    }

    msg = json_pack("{s:O?, s:O?}", "to", json_object_get(row->payload, "to"),
                    "body", json_object_get(row->payload, "body"));
    body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);

    req = body ? pushd_req_new(d, url, pushd_webhook_sent, NULL) : NULL;

    if (req == NULL
        || pushd_req_header(req, "Content-Type: application/json") != 0)
    {
        free(body);
        pushd_req_free(req);
        pushd_retry(d, row, -1, "webhook: out of memory");
        return;
    }

    pushd_req_send_row(req, row, body, 0, "webhook");
}


static void
pushd_webhook_sent(pushd_req_t *req)
{
    pushd_row_t  *row = req->rows;

    if (pushd_req_failed_retry(req, "webhook")) {
        return;
    }

    req->rows = NULL;

    if (req->status >= 200 && req->status < 300) {
        pushd_stat(req->d, PUSHD_WEBHOOK, row);
        pushd_done(req->d, row, PUSHD_OK, "webhook", "%s", "");
        return;
    }

    pushd_retry(req->d, row, req->retry_after, "webhook: HTTP %ld",
                req->status);
}
