/*
 * famcall-pushd: HTTP requests on the libcurl multi handle.  A request
 * carries the rows it sends; its done handler reads the answer and
 * settles them (pushd_done / pushd_retry), then the request is freed.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pushd.h"


/* a provider's answer bigger than this is not one we need to read whole */
#define PUSHD_RESP_MAX  (1 << 20)


static size_t
pushd_req_write(char *ptr, size_t size, size_t n, void *data)
{
    pushd_req_t  *req = data;
    size_t        len = size * n;
    char         *p;

    if (req->resp_len + len > PUSHD_RESP_MAX) {
        return 0;
    }

    p = realloc(req->resp, req->resp_len + len + 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p + req->resp_len, ptr, len);
    req->resp = p;
    req->resp_len += len;
    p[req->resp_len] = '\0';

    return len;
}


/* Retry-After in seconds (its date form is not used by these providers) */
static size_t
pushd_req_header_in(char *ptr, size_t size, size_t n, void *data)
{
    pushd_req_t  *req = data;
    size_t        len = size * n;
    char          buf[32];

    if (len > 12 && len < 12 + sizeof(buf)
        && strncasecmp(ptr, "retry-after:", 12) == 0)
    {
        memcpy(buf, ptr + 12, len - 12);
        buf[len - 12] = '\0';
        req->retry_after = strtol(buf, NULL, 10);
        if (req->retry_after < 0 || req->retry_after > 86400) {
            req->retry_after = -1;
        }
    }

    return len;
}


pushd_req_t *
pushd_req_new(pushd_t *d, const char *url, pushd_req_done_pt done,
    void *data)
{
    pushd_req_t  *req;

    req = calloc(1, sizeof(pushd_req_t));
    if (req == NULL) {
        return NULL;
    }

    req->easy = curl_easy_init();
    if (req->easy == NULL) {
        free(req);
        return NULL;
    }

    req->d = d;
    req->done = done;
    req->data = data;
    req->retry_after = -1;

    curl_easy_setopt(req->easy, CURLOPT_URL, url);
    curl_easy_setopt(req->easy, CURLOPT_PRIVATE, req);
    curl_easy_setopt(req->easy, CURLOPT_WRITEFUNCTION, pushd_req_write);
    curl_easy_setopt(req->easy, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(req->easy, CURLOPT_HEADERFUNCTION, pushd_req_header_in);
    curl_easy_setopt(req->easy, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(req->easy, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(req->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, d->conf.timeout_ms);
    curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(req->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(req->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(req->easy, CURLOPT_USERAGENT, "famcall-pushd/1");

    if (d->conf.ca_file != NULL) {
        curl_easy_setopt(req->easy, CURLOPT_CAINFO, d->conf.ca_file);
    }

    return req;
}


int
pushd_req_header(pushd_req_t *req, const char *fmt, ...)
{
    char                buf[4096];
    va_list             ap;
    struct curl_slist  *l;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    l = curl_slist_append(req->headers, buf);
    if (l == NULL) {
        return -1;
    }

    req->headers = l;
    return 0;
}


/*
 * POST body (owned by the request from here on, freed with it); http2:
 * HTTP/2 over TLS, on one connection per host that every request shares
 * (PIPEWAIT: wait for the connection to say it multiplexes rather than
 * open another).  -1: not started, the caller settles its rows.
 */
int
pushd_req_start(pushd_req_t *req, char *body, int http2)
{
    req->body = body;

    curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);

    if (http2) {
        curl_easy_setopt(req->easy, CURLOPT_HTTP_VERSION,
                         (long) CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(req->easy, CURLOPT_PIPEWAIT, 1L);
    }

    if (curl_multi_add_handle(req->d->multi, req->easy) != CURLM_OK) {
        return -1;
    }

    return 0;
}


void
pushd_req_finish(pushd_t *d, CURL *easy, CURLcode rc)
{
    pushd_req_t  *req = NULL;

    (void) d;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &req);
    curl_multi_remove_handle(req->d->multi, easy);

    req->rc = rc;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &req->status);
        curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &req->http_version);
    }

    req->done(req);
    pushd_req_free(req);
}


void
pushd_req_free(pushd_req_t *req)
{
    if (req == NULL) {
        return;
    }

    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    free(req->body);
    free(req->resp);
    free(req);
}


/*
 * The answers every provider treats alike: no answer at all, 429 and 5xx
 * are retried (Retry-After honoured); each of req's rows is settled and 1
 * returned.  0: the provider answered something to read.
 */
int
pushd_req_failed_retry(pushd_req_t *req, const char *what)
{
    pushd_row_t  *row, *next;

    if (req->rc == CURLE_OK && req->status != 429 && req->status < 500) {
        return 0;
    }

    for (row = req->rows; row; row = next) {
        next = row->next;

        if (req->rc != CURLE_OK) {
            pushd_retry(req->d, row, -1, "%s: %s", what,
                        req->errbuf[0] ? req->errbuf
                                       : curl_easy_strerror(req->rc));
        } else {
            pushd_retry(req->d, row, req->retry_after, "%s: HTTP %ld %.100s",
                        what, req->status, req->resp ? req->resp : "");
        }
    }

    req->rows = NULL;

    return 1;
}


/*
 * A request that carries one outbox row (a provider's single send): the row
 * is settled by the request's done handler; a request that cannot start is
 * freed and its row retried, who naming the provider in the row's error.
 */
void
pushd_req_send_row(pushd_req_t *req, pushd_row_t *row, char *body, int http2,
    const char *who)
{
    pushd_t  *d = req->d;

    req->rows = row;
    req->nrows = 1;

    if (pushd_req_start(req, body, http2) != 0) {
        req->rows = NULL;
        pushd_req_free(req);
        pushd_retry(d, row, -1, "%s: cannot start the request", who);
    }
}
