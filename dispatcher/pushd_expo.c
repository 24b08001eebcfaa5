/*
 * famcall-pushd: Expo's push service.  Messages go in batches of up to
 * expo_batch (Expo takes 100) to expo_url; the answer has one ticket per
 * message, in order.  A ticket's error DeviceNotRegistered removes the
 * device at once; an ok ticket has an id whose receipt (what Apple or
 * Google said) is looked at receipt_delay later, from
 * expo_receipts_url, and a receipt's DeviceNotRegistered removes the
 * device then.
 *
 * Expo has no collapse key of its own: the key travels in data, for the
 * app; calls go as high priority with their own channel.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pushd.h"


static json_t *pushd_expo_message(pushd_t *d, pushd_row_t *row);
static void pushd_expo_sent(pushd_req_t *req);
static void pushd_expo_receipts_done(pushd_req_t *req);


void
pushd_expo_add(pushd_t *d, pushd_row_t *row)
{
    *d->expo_tail = row;
    d->expo_tail = &row->next;

    if (++d->nexpo == (size_t) d->conf.expo_batch) {
        pushd_expo_flush(d);
    }
}


/* the rows gathered: one request */
void
pushd_expo_flush(pushd_t *d)
{
    char         *body;
    json_t       *all, *m;
    pushd_req_t  *req;
    pushd_row_t  *row, *next, *rows;

    rows = d->expo;
    if (rows == NULL) {
        return;
    }

    d->expo = NULL;
    d->expo_tail = &d->expo;
    d->nexpo = 0;

    all = json_array();

    for (row = rows; all && row; row = row->next) {
        m = pushd_expo_message(d, row);
        if (m == NULL || json_array_append_new(all, m) != 0) {
            json_decref(all);
            all = NULL;
        }
    }

    body = all ? json_dumps(all, JSON_COMPACT) : NULL;
    json_decref(all);

    req = body ? pushd_req_new(d, d->conf.expo_url, pushd_expo_sent, NULL)
               : NULL;

    if (req == NULL
        || pushd_req_header(req, "Content-Type: application/json") != 0
        || pushd_req_header(req, "Accept: application/json") != 0
        || (d->conf.expo_access_token
            && pushd_req_header(req, "Authorization: Bearer %s",
                                d->conf.expo_access_token) != 0))
    {
        goto failed;
    }

    req->rows = rows;
    for (row = rows; row; row = row->next) {
        req->nrows++;
    }

    /* Expo's API speaks HTTP/2 too: one connection for every batch */
    if (pushd_req_start(req, body, 1) != 0) {
        body = NULL;
        goto failed;
    }

    return;

failed:

    if (req != NULL) {
        req->rows = NULL;
        if (req->body == NULL) {
            free(body);
        }
        pushd_req_free(req);

    } else {
        free(body);
    }

    for (row = rows; row; row = next) {
        next = row->next;
        pushd_retry(d, row, -1, "expo: out of memory");
    }
}


static json_t *
pushd_expo_message(pushd_t *d, pushd_row_t *row)
{
    json_t      *m, *data, *badge;
    const char  *type;
    long         ttl;

    (void) d;

    type = pushd_str(row->payload, "type");
    if (type == NULL) {
        type = "";
    }

    data = json_deep_copy(row->payload);
    if (data == NULL) {
        return NULL;
    }

    json_object_del(data, "title");
    json_object_del(data, "body");
    json_object_del(data, "badge");
    json_object_set_new(data, "push_id", json_integer(row->id));
    if (row->collapse_key) {
        json_object_set_new(data, "collapse_key",
                            json_string(row->collapse_key));
    }

    m = json_pack("{s:s, s:o}", "to", row->token, "data", data);
    if (m == NULL) {
        return NULL;
    }

    if (row->expires_at) {
        ttl = (long) (row->expires_at - time(NULL));
        json_object_set_new(m, "ttl", json_integer(ttl > 0 ? ttl : 0));
    }

    if (strcmp(type, "call_cancel") == 0) {
        /* nothing shown: the app stops ringing */
        json_object_set_new(m, "priority", json_string("high"));
        json_object_set_new(m, "_contentAvailable", json_true());
        return m;
    }

    json_object_set(m, "title", json_object_get(row->payload, "title"));
    json_object_set(m, "body", json_object_get(row->payload, "body"));
    json_object_set_new(m, "sound", json_string("default"));
    json_object_set_new(m, "priority", json_string("high"));

    if (strcmp(type, "call") == 0) {
        json_object_set_new(m, "channelId", json_string("calls"));
        json_object_set_new(m, "categoryId", json_string("call"));

    } else {
        json_object_set_new(m, "channelId", json_string("messages"));
        badge = json_object_get(row->payload, "badge");
        if (json_is_integer(badge)) {
            json_object_set(m, "badge", badge);
        }
    }

    return m;
}


static void
pushd_expo_sent(pushd_req_t *req)
{
    size_t        i;
    json_t       *answer, *tickets, *t;
    pushd_t      *d = req->d;
    const char   *status, *err, *id;
    pushd_row_t  *row, *next;

    if (pushd_req_failed_retry(req, "expo")) {
        return;
    }

    answer = json_loadb(req->resp ? req->resp : "", req->resp_len, 0, NULL);
    tickets = json_object_get(answer, "data");

    if (req->status != 200 || !json_is_array(tickets)
        || json_array_size(tickets) != req->nrows)
    {
        for (row = req->rows; row; row = next) {
            next = row->next;
            pushd_retry(d, row, req->retry_after, "expo: HTTP %ld %.100s",
                        req->status, req->resp ? req->resp : "");
        }

        req->rows = NULL;
        json_decref(answer);
        return;
    }

    for (i = 0, row = req->rows; row; row = next, i++) {
        next = row->next;
        t = json_array_get(tickets, i);
        status = pushd_str(t, "status");

        if (status != NULL && strcmp(status, "ok") == 0) {
            id = pushd_str(t, "id");
            if (id != NULL && strlen(id) < sizeof(row->receipt_id)) {
                strcpy(row->receipt_id, id);
            }

            pushd_stat(d, PUSHD_EXPO, row);
            pushd_done(d, row, PUSHD_OK, "expo", "%s", "");
            continue;
        }

        err = pushd_str(json_object_get(t, "details"), "error");

        if (err != NULL && strcmp(err, "DeviceNotRegistered") == 0) {
            pushd_done(d, row, PUSHD_DEAD, NULL, "expo: %s", err);

        } else {
            pushd_retry(d, row, -1, "expo: %s: %.100s",
                        err ? err : "error",
                        pushd_str(t, "message") ? pushd_str(t, "message")
                                                : "");
        }
    }

    req->rows = NULL;
    json_decref(answer);
}


/* the receipts due, up to 1000 (Expo's limit) a request */
void
pushd_expo_receipts(pushd_t *d)
{
    char         *body;
    size_t        i;
    json_t       *due, *ids, *obj;
    pushd_req_t  *req;

    due = NULL;

    if (pushd_db_receipts_due(d, 1000, &due) <= 0) {
        json_decref(due);
        return;
    }

    ids = json_array();
    for (i = 0; ids && i < json_array_size(due); i++) {
        json_array_append(ids, json_object_get(json_array_get(due, i),
                                               "receipt_id"));
    }

    obj = ids ? json_pack("{s:o}", "ids", ids) : NULL;
    body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);

    req = body ? pushd_req_new(d, d->conf.expo_receipts_url,
                               pushd_expo_receipts_done, due)
               : NULL;

    if (req == NULL
        || pushd_req_header(req, "Content-Type: application/json") != 0
        || (d->conf.expo_access_token
            && pushd_req_header(req, "Authorization: Bearer %s",
                                d->conf.expo_access_token) != 0)
        || pushd_req_start(req, body, 1) != 0)
    {
        /* due again when their lease runs out */
        if (req == NULL || req->body == NULL) {
            free(body);
        }
        pushd_req_free(req);
        json_decref(due);
        return;
    }

    d->receipts_inflight = 1;
}


static void
pushd_expo_receipts_done(pushd_req_t *req)
{
    size_t       i;
    json_t      *due = req->data, *answer, *data, *r, *one, *results;
    pushd_t     *d = req->d;
    const char  *id, *status, *err;

    d->receipts_inflight = 0;

    answer = json_loadb(req->resp ? req->resp : "", req->resp_len, 0, NULL);
    data = json_object_get(answer, "data");

    if (req->rc != CURLE_OK || req->status != 200 || !json_is_object(data)) {
        pushd_log(d, "warn", "expo receipts: HTTP %ld %s", req->status,
                  req->rc != CURLE_OK ? curl_easy_strerror(req->rc) : "");
        json_decref(answer);
        json_decref(due);
        return;
    }

    results = json_array();

    for (i = 0; results && i < json_array_size(due); i++) {
        one = json_array_get(due, i);
        id = pushd_str(one, "receipt_id");
        r = json_object_get(data, id);
        status = pushd_str(r, "status");
        err = pushd_str(json_object_get(r, "details"), "error");

        if (status == NULL) {
            /* not ready yet: due again */
            continue;
        }

        json_array_append_new(results, json_pack("{s:O, s:s, s:s?}",
            "id", json_object_get(one, "id"),
            "status", strcmp(status, "ok") == 0 ? "ok"
                      : (err && strcmp(err, "DeviceNotRegistered") == 0)
                        ? "dead" : "error",
            "error", err ? err : pushd_str(r, "message")));
    }

    if (results && json_array_size(results) > 0) {
        (void) pushd_db_receipts_settle(d, results);
    }

    json_decref(results);
    json_decref(answer);
    json_decref(due);
}
