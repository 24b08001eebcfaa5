/*
 * famcall-pushd: the push dispatcher (docs/push.md).
 *
 * One process, one thread, one loop: a libpq connection that LISTENs on
 * famcall_outbox and leases rows (sql/027_push_dispatch.sql), and a
 * libcurl multi handle that sends them, HTTP/2 where the provider speaks
 * it (APNs must; FCM and Expo may).  A row is settled once the provider
 * answered: delivered, retried later with backoff, parked, or its token
 * removed.  Several dispatchers on several nodes share the outbox.
 */

#ifndef _FAMCALL_PUSHD_H_INCLUDED_
#define _FAMCALL_PUSHD_H_INCLUDED_


#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>


typedef enum {
    PUSHD_PENDING = 0,
    PUSHD_OK,           /* the provider took it */
    PUSHD_RETRY,        /* again after retry_ms; counts as a try */
    PUSHD_DEFER,        /* again after retry_ms; not a try (not configured) */
    PUSHD_PARK,         /* given up */
    PUSHD_DEAD,         /* the token is invalid: the device goes */
    PUSHD_DEAD_VOIP     /* the VoIP token is invalid: it goes */
} pushd_outcome_e;


typedef struct pushd_row_s   pushd_row_t;
typedef struct pushd_req_s   pushd_req_t;
typedef struct pushd_s       pushd_t;

struct pushd_row_s {
    pushd_row_t        *next;

    long long           id;
    int                 sms;          /* kind sms (a webhook), or push */
    int                 attempts;     /* this one included */
    double              created_at;   /* unix seconds: the commit, about */
    time_t              expires_at;   /* 0: none */
    char               *collapse_key;
    json_t             *payload;
    char               *provider;     /* the device's; NULL for sms */
    char               *platform;
    char               *token;
    char               *voip_token;
    int                 voip;         /* sent as a VoIP push */

    pushd_outcome_e     outcome;
    long                retry_ms;
    const char         *sent_by;
    char                error[200];
    char                receipt_id[80];
};


typedef void (*pushd_req_done_pt)(pushd_req_t *req);

struct pushd_req_s {
    pushd_t            *d;
    CURL               *easy;
    struct curl_slist  *headers;
    char               *body;
    char               *resp;
    size_t              resp_len;
    long                status;       /* HTTP, 0: no answer */
    long                retry_after;  /* seconds, -1: none */
    long                http_version;
    CURLcode            rc;
    char                errbuf[CURL_ERROR_SIZE];

    pushd_req_done_pt   done;
    void               *data;
    pushd_row_t        *rows;         /* the rows it carries, in order */
    size_t              nrows;
};


typedef struct {
    char               *db;

    int                 claim_batch;  /* rows leased at once */
    int                 max_inflight; /* rows held at once */
    int                 lease_s;
    int                 max_tries;
    long                backoff_base_ms;
    long                backoff_max_ms;
    long                poll_ms;      /* look for due rows this often */
    long                timeout_ms;   /* one HTTP request */
    long                defer_ms;     /* a provider not configured here */
    int                 receipt_s;    /* Expo: receipts looked at after */
    long                receipt_poll_ms;
    int                 keep_s;       /* settled rows kept this long */
    char               *ca_file;      /* extra trust, for local mocks */

    char               *expo_url;
    char               *expo_receipts_url;
    char               *expo_access_token;
    int                 expo_batch;

    char               *fcm_url;
    char               *fcm_service_account;
    char               *fcm_token_url;

    char               *apns_url;
    char               *apns_key_file;
    char               *apns_key_id;
    char               *apns_team_id;
    char               *apns_topic;
    int                 apns_token_ttl;

    int                 webhook;      /* deliver sms rows */
} pushd_conf_t;


typedef struct {
    char               *project_id;
    char               *client_email;
    char               *token_uri;
    EVP_PKEY           *key;
    char               *access_token;
    time_t              access_expires;
    int                 fetching;
    time_t              fetch_after;  /* after a failed fetch */
    pushd_row_t        *waiting;
    pushd_row_t       **waiting_tail;
} pushd_fcm_t;


typedef struct {
    EVP_PKEY           *key;
    char               *jwt;
    time_t              jwt_at;
} pushd_apns_t;


typedef struct {
    unsigned long long  sent;
    double              lat[1024];    /* commit to answer, ms: a ring */
    unsigned            nlat;
} pushd_stats_t;


struct pushd_s {
    pushd_conf_t        conf;
    char                owner[80];
    int                 verbose;

    PGconn             *pg;
    long long           pg_retry_at;  /* ms */
    long                pg_backoff;
    int                 wake;

    CURLM              *multi;
    int                 running;      /* libcurl's transfers */
    size_t              inflight;     /* rows leased and not yet settled */
    pushd_row_t        *settle;
    pushd_row_t       **settle_tail;
    size_t              nsettle;
    long long           settle_since; /* ms: the oldest row to settle */

    pushd_row_t        *expo;         /* to batch at the end of a claim */
    pushd_row_t       **expo_tail;
    size_t              nexpo;

    pushd_fcm_t         fcm;
    pushd_apns_t        apns;
    int                 has_fcm, has_apns;

    long long           next_claim;
    long long           next_receipts;
    long long           next_purge;
    long long           next_stats;
    int                 receipts_inflight;

    pushd_stats_t       stats[4];     /* expo, fcm, apns, webhook */
};


extern volatile sig_atomic_t  pushd_stopping;


/* pushd_conf.c */
int pushd_conf_read(pushd_conf_t *conf, const char *path);
void pushd_conf_defaults(pushd_conf_t *conf);

/* pushd_main.c */
long long pushd_now_ms(void);
void pushd_log(pushd_t *d, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pushd_done(pushd_t *d, pushd_row_t *row, pushd_outcome_e outcome,
    const char *sent_by, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void pushd_retry(pushd_t *d, pushd_row_t *row, long retry_after,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void pushd_row_free(pushd_row_t *row);

/* pushd_db.c */
int pushd_db_connect(pushd_t *d);
int pushd_db_claim(pushd_t *d, int lim, pushd_row_t **rows);
int pushd_db_settle(pushd_t *d);
int pushd_db_receipts_due(pushd_t *d, int lim, json_t **due);
int pushd_db_receipts_settle(pushd_t *d, json_t *results);
int pushd_db_purge(pushd_t *d);

/* pushd_http.c */
pushd_req_t *pushd_req_new(pushd_t *d, const char *url,
    pushd_req_done_pt done, void *data);
int pushd_req_header(pushd_req_t *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int pushd_req_start(pushd_req_t *req, char *body, int http2);
void pushd_req_send_row(pushd_req_t *req, pushd_row_t *row, char *body,
    int http2, const char *who);
void pushd_req_finish(pushd_t *d, CURL *easy, CURLcode rc);
void pushd_req_free(pushd_req_t *req);
int pushd_req_failed_retry(pushd_req_t *req, const char *what);

/* pushd_jwt.c */
EVP_PKEY *pushd_key_read(const char *pem, size_t len);
EVP_PKEY *pushd_key_file(const char *path);
char *pushd_jwt_sign(EVP_PKEY *key, int es256, json_t *header,
    json_t *claims);

/* the providers: pushd_expo.c, pushd_fcm.c, pushd_apns.c, pushd_webhook.c */
void pushd_expo_add(pushd_t *d, pushd_row_t *row);
void pushd_expo_flush(pushd_t *d);
void pushd_expo_receipts(pushd_t *d);
int pushd_fcm_init(pushd_t *d);
void pushd_fcm_send(pushd_t *d, pushd_row_t *row);
int pushd_apns_init(pushd_t *d);
void pushd_apns_send(pushd_t *d, pushd_row_t *row);
void pushd_webhook_send(pushd_t *d, pushd_row_t *row);

/* the payload's value as a string, or NULL */
const char *pushd_str(json_t *obj, const char *key);
void pushd_stat(pushd_t *d, int provider, pushd_row_t *row);

/* answered rows settle in groups of up to this many, or this old */
#define PUSHD_SETTLE_MAX  256
#define PUSHD_SETTLE_MS   5

#define PUSHD_EXPO     0
#define PUSHD_FCM      1
#define PUSHD_APNS     2
#define PUSHD_WEBHOOK  3


#endif /* _FAMCALL_PUSHD_H_INCLUDED_ */
