/*
 * famcall-pushd: the outbox (sql/027_push_dispatch.sql) over one libpq
 * connection, which also LISTENs on famcall_outbox.  Queries are short
 * statements run synchronously between turns of the loop: the loop has
 * nothing else to do meanwhile but HTTP, whose bytes wait in the kernel
 * for the few milliseconds a query takes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pushd.h"


static char *
pushd_dup(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL
                                      : strdup(PQgetvalue(res, row, col));
}


static void
pushd_db_broken(pushd_t *d, const char *what, PGresult *res)
{
    pushd_log(d, "error", "%s: %s", what,
              res ? PQresultErrorMessage(res) : PQerrorMessage(d->pg));

    if (PQstatus(d->pg) != CONNECTION_OK) {
        PQfinish(d->pg);
        d->pg = NULL;
    }
}


int
pushd_db_connect(pushd_t *d)
{
    PGresult  *res;

    d->pg = PQconnectdb(d->conf.db);
    if (PQstatus(d->pg) != CONNECTION_OK) {
        pushd_log(d, "error", "database: %s", PQerrorMessage(d->pg));
        PQfinish(d->pg);
        d->pg = NULL;
        return -1;
    }

    res = PQexec(d->pg, "LISTEN famcall_outbox");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pushd_db_broken(d, "LISTEN", res);
        PQclear(res);
        if (d->pg) {
            PQfinish(d->pg);
            d->pg = NULL;
        }
        return -1;
    }

    PQclear(res);

    /*
     * The rows were stored durably by their cause; what this session
     * writes (leases, settlements) may be lost in a crash of the database
     * at the price of a push sent again, as when a dispatcher dies.  So
     * its commits do not wait for the WAL flush.
     */
    res = PQexec(d->pg, "SET synchronous_commit = off");
    PQclear(res);

    if (PQsetnonblocking(d->pg, 0) != 0) {
        return -1;
    }

    pushd_log(d, "info", "database connected, listening on famcall_outbox");

    /* whatever was queued while we were away */
    d->wake = 1;

    return 0;
}


/* lease up to lim rows: their count, or -1 */
int
pushd_db_claim(pushd_t *d, int lim, pushd_row_t **rows)
{
    int           i, n;
    char          slim[16], slease[16];
    const char   *params[3];
    PGresult     *res;
    pushd_row_t  *row, **tail;

    snprintf(slim, sizeof(slim), "%d", lim);
    snprintf(slease, sizeof(slease), "%d", d->conf.lease_s);
    params[0] = d->owner;
    params[1] = slim;
    params[2] = slease;

    res = PQexecParams(d->pg,
        "SELECT id, kind, attempts, extract(epoch from created_at), "
        "extract(epoch from expires_at)::bigint, collapse_key, payload, "
        "provider, platform, push_token, voip_token "
        "FROM famcall_push_claim($1, $2::int, $3::int)",
        3, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pushd_db_broken(d, "claim", res);
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    tail = rows;
    *rows = NULL;

    for (i = 0; i < n; i++) {
        row = calloc(1, sizeof(pushd_row_t));
        if (row == NULL) {
            /* its lease runs out and another turn takes it */
            break;
        }

        row->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        row->sms = strcmp(PQgetvalue(res, i, 1), "sms") == 0;
        row->attempts = atoi(PQgetvalue(res, i, 2));
        row->created_at = strtod(PQgetvalue(res, i, 3), NULL);
        row->expires_at = PQgetisnull(res, i, 4)
                          ? 0 : (time_t) strtoll(PQgetvalue(res, i, 4),
                                                 NULL, 10);
        row->collapse_key = pushd_dup(res, i, 5);
        row->payload = json_loads(PQgetvalue(res, i, 6), 0, NULL);
        row->provider = pushd_dup(res, i, 7);
        row->platform = pushd_dup(res, i, 8);
        row->token = pushd_dup(res, i, 9);
        row->voip_token = pushd_dup(res, i, 10);

        *tail = row;
        tail = &row->next;
    }

    PQclear(res);

    return i;
}


static const char *
pushd_outcome_name(pushd_outcome_e o)
{
    switch (o) {
    case PUSHD_OK:        return "ok";
    case PUSHD_RETRY:     return "retry";
    case PUSHD_DEFER:     return "defer";
    case PUSHD_DEAD:      return "dead";
    case PUSHD_DEAD_VOIP: return "dead_voip";
    default:              return "park";
    }
}


/* the settled rows to the database; kept for the next turn on failure */
int
pushd_db_settle(pushd_t *d)
{
    char         *s, tries[16], receipt[16];
    size_t        n = 0;
    json_t       *all, *one;
    PGresult     *res;
    const char   *params[4];
    pushd_row_t  *row, *next;

    all = json_array();
    if (all == NULL) {
        return -1;
    }

    for (row = d->settle; row; row = row->next) {
        one = json_pack("{s:I, s:s, s:s, s:I, s:s?, s:s?}",
                        "id", (json_int_t) row->id,
                        "outcome", pushd_outcome_name(row->outcome),
                        "error", row->error,
                        "retry_ms", (json_int_t) row->retry_ms,
                        "provider", row->sent_by,
                        "receipt_id", row->receipt_id[0] ? row->receipt_id
                                                         : NULL);
        if (one == NULL || json_array_append_new(all, one) != 0) {
            json_decref(all);
            return -1;
        }

        n++;
    }

    s = json_dumps(all, JSON_COMPACT);
    json_decref(all);
    if (s == NULL) {
        return -1;
    }

    snprintf(tries, sizeof(tries), "%d", d->conf.max_tries);
    snprintf(receipt, sizeof(receipt), "%d", d->conf.receipt_s);
    params[0] = d->owner;
    params[1] = s;
    params[2] = tries;
    params[3] = receipt;

    res = PQexecParams(d->pg,
        "SELECT famcall_push_settle($1, $2::jsonb, $3::int, $4::int)",
        4, NULL, params, NULL, NULL, 0);
    free(s);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pushd_db_broken(d, "settle", res);
        PQclear(res);
        return -1;
    }

    PQclear(res);

    for (row = d->settle; row; row = next) {
        next = row->next;
        pushd_row_free(row);
    }

    d->settle = NULL;
    d->settle_tail = &d->settle;
    d->nsettle = 0;
    d->inflight -= n;

    /* a device's next row may be leased only now that this one is settled */
    d->wake = 1;

    return 0;
}


/* Expo tickets whose receipts are due: [{"id", "receipt_id"}] */
int
pushd_db_receipts_due(pushd_t *d, int lim, json_t **due)
{
    int          i, n;
    char         slim[16];
    json_t      *one;
    PGresult    *res;
    const char  *params[2];

    snprintf(slim, sizeof(slim), "%d", lim);
    params[0] = slim;
    params[1] = "60";

    res = PQexecParams(d->pg,
        "SELECT id, receipt_id FROM famcall_push_receipts_due($1::int, "
        "$2::int)", 2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pushd_db_broken(d, "receipts", res);
        PQclear(res);
        return -1;
    }

    *due = json_array();
    n = PQntuples(res);

    for (i = 0; *due && i < n; i++) {
        one = json_pack("{s:I, s:s}", "id",
                        (json_int_t) strtoll(PQgetvalue(res, i, 0), NULL, 10),
                        "receipt_id", PQgetvalue(res, i, 1));
        if (one == NULL || json_array_append_new(*due, one) != 0) {
            json_decref(*due);
            *due = NULL;
        }
    }

    PQclear(res);

    return *due ? n : -1;
}


int
pushd_db_receipts_settle(pushd_t *d, json_t *results)
{
    char        *s;
    PGresult    *res;
    const char  *params[1];

    if (d->pg == NULL) {
        return -1;
    }

    s = json_dumps(results, JSON_COMPACT);
    if (s == NULL) {
        return -1;
    }

    params[0] = s;
    res = PQexecParams(d->pg,
        "SELECT famcall_push_receipts_settle($1::jsonb)",
        1, NULL, params, NULL, NULL, 0);
    free(s);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pushd_db_broken(d, "receipts settle", res);
        PQclear(res);
        return -1;
    }

    PQclear(res);
    return 0;
}


int
pushd_db_purge(pushd_t *d)
{
    char         keep[16];
    PGresult    *res;
    const char  *params[1];

    snprintf(keep, sizeof(keep), "%d", d->conf.keep_s);
    params[0] = keep;

    res = PQexecParams(d->pg, "SELECT famcall_push_purge($1::int, 10000)",
                       1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pushd_db_broken(d, "purge", res);
        PQclear(res);
        return -1;
    }

    PQclear(res);
    return 0;
}
