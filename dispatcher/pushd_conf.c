/*
 * famcall-pushd: its configuration file, "name value" lines (# starts a
 * comment).  Every provider is optional: rows for one that is not
 * configured wait (deferred, not counted as tries) until their expiry,
 * so a dispatcher configured later still delivers them.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pushd.h"


typedef struct {
    const char  *name;
    int          type;         /* 0 string, 1 int, 2 long, 3 flag */
    size_t       offset;
    long         min, max;
} pushd_conf_key_t;


#define S(f)  0, offsetof(pushd_conf_t, f), 0, 0
#define I(f, a, b)  1, offsetof(pushd_conf_t, f), a, b
#define L(f, a, b)  2, offsetof(pushd_conf_t, f), a, b
#define F(f)  3, offsetof(pushd_conf_t, f), 0, 1

static const pushd_conf_key_t  pushd_conf_keys[] = {
    { "db", S(db) },
    { "claim_batch", I(claim_batch, 1, 10000) },
    { "max_inflight", I(max_inflight, 1, 100000) },
    { "lease", I(lease_s, 5, 3600) },
    { "max_tries", I(max_tries, 1, 1000) },
    { "backoff_base_ms", L(backoff_base_ms, 1, 3600000) },
    { "backoff_max_ms", L(backoff_max_ms, 1, 86400000) },
    { "poll_ms", L(poll_ms, 10, 60000) },
    { "timeout_ms", L(timeout_ms, 100, 600000) },
    { "defer_ms", L(defer_ms, 10, 3600000) },
    { "receipt_delay", I(receipt_s, 0, 86400) },
    { "receipt_poll_ms", L(receipt_poll_ms, 10, 3600000) },
    { "keep", I(keep_s, 60, 365 * 86400) },
    { "ca_file", S(ca_file) },
    { "expo_url", S(expo_url) },
    { "expo_receipts_url", S(expo_receipts_url) },
    { "expo_access_token", S(expo_access_token) },
    { "expo_batch", I(expo_batch, 1, 100) },
    { "fcm_url", S(fcm_url) },
    { "fcm_service_account", S(fcm_service_account) },
    { "fcm_token_url", S(fcm_token_url) },
    { "apns_url", S(apns_url) },
    { "apns_key_file", S(apns_key_file) },
    { "apns_key_id", S(apns_key_id) },
    { "apns_team_id", S(apns_team_id) },
    { "apns_topic", S(apns_topic) },
    { "apns_token_ttl", I(apns_token_ttl, 60, 3300) },
    { "webhook", F(webhook) },
    { NULL, 0, 0, 0, 0 }
};


void
pushd_conf_defaults(pushd_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));

    conf->claim_batch = 500;
    conf->max_inflight = 2000;
    conf->lease_s = 60;
    conf->max_tries = 10;
    conf->backoff_base_ms = 1000;
    conf->backoff_max_ms = 300000;
    conf->poll_ms = 1000;
    conf->timeout_ms = 15000;
    conf->defer_ms = 60000;
    conf->receipt_s = 900;           /* Expo: receipts after 15 minutes */
    conf->receipt_poll_ms = 30000;
    conf->keep_s = 7 * 86400;
    conf->expo_batch = 100;          /* Expo takes at most 100 a request */
    conf->apns_token_ttl = 2400;     /* APNs: under an hour, over 20 min */
    conf->webhook = 1;

    conf->expo_url = strdup("https://exp.host/--/api/v2/push/send");
    conf->expo_receipts_url =
        strdup("https://exp.host/--/api/v2/push/getReceipts");
    conf->fcm_url = strdup("https://fcm.googleapis.com");
    conf->apns_url = strdup("https://api.push.apple.com");
}


/* NULL, or what is wrong with the value */
static const char *
pushd_conf_set(pushd_conf_t *conf, const pushd_conf_key_t *k, char *value)
{
    char   *end, **sp;
    long    n;

    switch (k->type) {

    case 0:
        sp = (char **) ((char *) conf + k->offset);
        free(*sp);
        *sp = strdup(value);
        return *sp ? NULL : "out of memory";

    case 3:
        if (strcmp(value, "on") == 0) {
            n = 1;
        } else if (strcmp(value, "off") == 0) {
            n = 0;
        } else {
            return "must be on or off";
        }
        *(int *) ((char *) conf + k->offset) = (int) n;
        return NULL;

    default:
        errno = 0;
        n = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || n < k->min
            || n > k->max)
        {
            return "out of range";
        }

        if (k->type == 1) {
            *(int *) ((char *) conf + k->offset) = (int) n;
        } else {
            *(long *) ((char *) conf + k->offset) = n;
        }

        return NULL;
    }
}


int
pushd_conf_read(pushd_conf_t *conf, const char *path)
{
    FILE                    *f;
    char                     line[4096], *p, *name, *value, *e;
    unsigned                 lineno = 0;
    const char              *err;
    const pushd_conf_key_t  *k;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "famcall-pushd: %s: %s\n", path, strerror(errno));
        return -1;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;

        p = strchr(line, '#');
        if (p != NULL) {
            *p = '\0';
        }

        for (name = line; isspace((unsigned char) *name); name++) { }
        if (*name == '\0') {
            continue;
        }

        for (value = name; *value && !isspace((unsigned char) *value);
             value++)
        { }

        if (*value) {
            *value++ = '\0';
        }

        for ( /* void */ ; isspace((unsigned char) *value); value++) { }
        for (e = value + strlen(value);
             e > value && isspace((unsigned char) e[-1]); e--)
        { }
        *e = '\0';

        for (k = pushd_conf_keys; k->name; k++) {
            if (strcmp(k->name, name) == 0) {
                break;
            }
        }

        if (k->name == NULL) {
            fprintf(stderr, "famcall-pushd: %s:%u: unknown \"%s\"\n",
                    path, lineno, name);
            fclose(f);
            return -1;
        }

        err = *value ? pushd_conf_set(conf, k, value) : "has no value";
        if (err != NULL) {
            fprintf(stderr, "famcall-pushd: %s:%u: \"%s\" %s\n",
                    path, lineno, name, err);
            fclose(f);
            return -1;
        }
    }

    fclose(f);

    if (conf->db == NULL) {
        fprintf(stderr, "famcall-pushd: %s: \"db\" is required\n", path);
        return -1;
    }

    if (conf->backoff_max_ms < conf->backoff_base_ms) {
        fprintf(stderr, "famcall-pushd: %s: backoff_max_ms is below "
                "backoff_base_ms\n", path);
        return -1;
    }

    return 0;
}
