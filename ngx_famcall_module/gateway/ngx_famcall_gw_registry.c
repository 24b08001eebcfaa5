/*
 * famcall: which sockets of which user live in this worker, and presence.
 * A user's first socket here writes a presence row (online), their last
 * one deletes it (offline); sql/008 announces the change to contacts when
 * it is the first or last row anywhere.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_gw.h"


static void ngx_famcall_gw_grow(ngx_famcall_gw_t *gw);
static void ngx_famcall_gw_presence(ngx_famcall_gw_user_t *u);
static ngx_uint_t ngx_famcall_gw_presence_wait(ngx_famcall_gw_user_t *u);
static void ngx_famcall_gw_presence_send(ngx_famcall_gw_t *gw);
static void ngx_famcall_gw_presence_failed(ngx_famcall_gw_t *gw,
    ngx_uint_t retry);
static void ngx_famcall_gw_presence_retry_handler(ngx_event_t *ev);
static void ngx_famcall_gw_presence_done(void *data,
    ngx_famcall_pg_status_e status, PGresult *res);
static void ngx_famcall_gw_user_free_maybe(ngx_famcall_gw_user_t *u);


ngx_uint_t
ngx_famcall_gw_user_sockets(ngx_famcall_gw_t *gw, const u_char *user)
{
    ngx_famcall_gw_user_t  *u;

    u = ngx_famcall_gw_user_find(gw, user);

    return u != NULL ? u->nsockets : 0;
}


ngx_famcall_gw_user_t *
ngx_famcall_gw_user_find(ngx_famcall_gw_t *gw, const u_char *id)
{
    uint64_t                h;
    ngx_queue_t            *q, *b;
    ngx_famcall_gw_user_t  *u;

    if (gw->buckets == NULL) {
        return NULL;
    }

    /* user ids are random UUIDs: their first bytes are the hash (bytes 6
     * and 8 hold the version and variant, high in this word) */
    ngx_memcpy(&h, id, sizeof(h));
    b = &gw->buckets[h & (gw->nbuckets - 1)];

    for (q = ngx_queue_head(b); q != ngx_queue_sentinel(b);
         q = ngx_queue_next(q))
    {
        u = ngx_queue_data(q, ngx_famcall_gw_user_t, bucket);

        if (ngx_memcmp(u->id, id, 16) == 0) {
            return u;
        }
    }

    return NULL;
}


ngx_int_t
ngx_famcall_gw_user_add(ngx_famcall_gw_t *gw, ngx_famcall_gw_session_t *ws)
{
    uint64_t                h;
    ngx_famcall_gw_user_t  *u;

    u = ngx_famcall_gw_user_find(gw, ws->user);

    if (u == NULL) {
        u = ngx_calloc(sizeof(ngx_famcall_gw_user_t), gw->log);
        if (u == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(u->id, ws->user, 16);
        ngx_queue_init(&u->sockets);
        u->gw = gw;

        ngx_memcpy(&h, u->id, sizeof(h));
        ngx_queue_insert_tail(&gw->buckets[h & (gw->nbuckets - 1)],
                              &u->bucket);

        if (++gw->nusers > 2 * gw->nbuckets) {
            ngx_famcall_gw_grow(gw);
        }
    }

    ngx_queue_insert_tail(&u->sockets, &ws->gw_link);
    ws->gw_user = u;

    if (u->nsockets++ == 0) {
        ngx_famcall_gw_node_user(gw, u->id, 1);     /* before hello */
    }

    ngx_famcall_gw_presence(u);

    return NGX_OK;
}


void
ngx_famcall_gw_user_remove(ngx_famcall_gw_session_t *ws)
{
    ngx_famcall_gw_user_t  *u = ws->gw_user;

    ngx_queue_remove(&ws->gw_link);
    ws->gw_user = NULL;

    if (--u->nsockets == 0) {
        ngx_famcall_gw_node_user(u->gw, u->id, 0);
    }

    ngx_famcall_gw_presence(u);
    ngx_famcall_gw_user_free_maybe(u);
}


static void
ngx_famcall_gw_grow(ngx_famcall_gw_t *gw)
{
    uint64_t                h;
    ngx_uint_t              i, n;
    ngx_queue_t            *nb, *q;
    ngx_famcall_gw_user_t  *u;

    n = gw->nbuckets * 2;

    nb = ngx_alloc(n * sizeof(ngx_queue_t), gw->log);
    if (nb == NULL) {
        return;     /* longer chains, still correct */
    }

    for (i = 0; i < n; i++) {
        ngx_queue_init(&nb[i]);
    }

    for (i = 0; i < gw->nbuckets; i++) {
        while (!ngx_queue_empty(&gw->buckets[i])) {
            q = ngx_queue_head(&gw->buckets[i]);
            ngx_queue_remove(q);

            u = ngx_queue_data(q, ngx_famcall_gw_user_t, bucket);
            ngx_memcpy(&h, u->id, sizeof(h));
            ngx_queue_insert_tail(&nb[h & (n - 1)], q);
        }
    }

    ngx_free(gw->buckets);
    gw->buckets = nb;
    gw->nbuckets = n;
}


ngx_int_t
ngx_famcall_gw_presence_init(ngx_famcall_gw_t *gw, ngx_pool_t *pool)
{
    size_t  n = NGX_FAMCALL_GW_PRESENCE_BATCH;

    ngx_queue_init(&gw->presence_wait);

    gw->presence_retry.handler = ngx_famcall_gw_presence_retry_handler;
    gw->presence_retry.data = gw;
    gw->presence_retry.log = gw->log;
    gw->presence_retry.cancelable = 1;

    /* "{id,id,...}" and "{t,f,...}" */
    gw->presence_batch = ngx_palloc(pool, n * sizeof(ngx_famcall_gw_user_t *));
    gw->presence_users = ngx_palloc(pool, n * (NGX_FAMCALL_ID_LEN + 1) + 2);
    gw->presence_online = ngx_palloc(pool, n * 2 + 2);

    if (gw->presence_batch == NULL || gw->presence_users == NULL
        || gw->presence_online == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the worker exits: the batch in flight dies with the pool */
void
ngx_famcall_gw_presence_stop(ngx_famcall_gw_t *gw)
{
    if (gw->presence_query != NULL) {
        ngx_famcall_pg_detach(gw->presence_query);
        gw->presence_query = NULL;
    }

    if (gw->presence_retry.timer_set) {
        ngx_del_timer(&gw->presence_retry);
    }
}


/*
 * Tell the database what this worker knows: online while the user has a
 * socket here.  Changes go in batches, one at a time per worker (group
 * commit, like the sends): those that arrive while a batch runs wait for
 * the next.  A user is in one batch at most, so an open and a close in
 * quick succession reach the database in their order.
 */
static void
ngx_famcall_gw_presence(ngx_famcall_gw_user_t *u)
{
    ngx_famcall_gw_t  *gw = u->gw;

    if (ngx_famcall_gw_presence_wait(u)) {
        ngx_famcall_gw_presence_send(gw);
    }
}


/* queue u's change, if it has one; 1 if queued */
static ngx_uint_t
ngx_famcall_gw_presence_wait(ngx_famcall_gw_user_t *u)
{
    ngx_famcall_gw_t  *gw = u->gw;

    if (u->waiting || u->sent
        || ((u->nsockets > 0) == u->online && !u->unsure)
        || gw->exiting || ngx_exiting || ngx_quit)
    {
        return 0;
    }

    u->waiting = 1;
    ngx_queue_insert_tail(&gw->presence_wait, &u->presence);

    return 1;
}


static void
ngx_famcall_gw_presence_send(ngx_famcall_gw_t *gw)
{
    char                   *ids, *ups;
    ngx_uint_t              n, want;
    ngx_queue_t            *q;
    const char             *params[3];
    ngx_famcall_gw_user_t  *u;

    /*
     * At exit, the sweep (ngx_famcall_gw_close) stands for every change.
     * Before the worker's instance row has committed, a presence row
     * naming it would break its foreign key (the registration goes on
     * another pooled connection): the changes wait for it, and
     * ngx_famcall_gw_registered sends them.
     */
    if (!gw->registered
        || gw->presence_query != NULL || gw->presence_retry.timer_set
        || ngx_queue_empty(&gw->presence_wait)
        || gw->exiting || ngx_exiting || ngx_quit)
    {
        return;
    }

    ids = gw->presence_users;
    ups = gw->presence_online;
    *ids++ = '{';
    *ups++ = '{';
    n = 0;

    while (n < NGX_FAMCALL_GW_PRESENCE_BATCH
           && !ngx_queue_empty(&gw->presence_wait))
    {
        q = ngx_queue_head(&gw->presence_wait);
        ngx_queue_remove(q);
        u = ngx_queue_data(q, ngx_famcall_gw_user_t, presence);
        u->waiting = 0;

        want = (u->nsockets > 0);

        if (want == u->online && !u->unsure) {  /* opened and closed */
            ngx_famcall_gw_user_free_maybe(u);
            continue;
        }

        if (n > 0) {
            *ids++ = ',';
            *ups++ = ',';
        }

        ngx_famcall_uuid_format(u->id, ids);
        ids += NGX_FAMCALL_ID_LEN;
        *ups++ = want ? 't' : 'f';

        u->asked = want;
        u->sent = 1;
        gw->presence_batch[n++] = u;
    }

    if (n == 0) {
        return;
    }

    *ids++ = '}';
    *ids = '\0';
    *ups++ = '}';
    *ups = '\0';

    params[0] = gw->instance;
    params[1] = gw->presence_users;
    params[2] = gw->presence_online;

    gw->presence_n = n;
    gw->presence_query = ngx_famcall_pg_send(gw->fmcf->pg,
                             gw->gwcf->sql + NGX_FAMCALL_GW_SQL_PRESENCE_BATCH,
                             3, params, ngx_famcall_gw_presence_done, gw);

    if (gw->presence_query != NULL) {
        return;
    }

    /* the database is unreachable right now */
    ngx_famcall_gw_presence_failed(gw, 1);
}


/*
 * The batch failed.  For want of the database (down, a timeout): its users
 * wait again, for a retry in a second.  A timed-out batch may still commit,
 * so the database may have either state: the retry writes what is true by
 * then, whatever it is.  Writing a change twice announces nothing twice: a
 * row already there (or gone) is not news.  Refused by PostgreSQL (an
 * error, logged; rolled back): not retried, as it would fail again and
 * hold the worker's other users back; those users' next open or close
 * here tries again.
 */
static void
ngx_famcall_gw_presence_failed(ngx_famcall_gw_t *gw, ngx_uint_t retry)
{
    ngx_uint_t              i;
    ngx_famcall_gw_user_t  *u;

    for (i = 0; i < gw->presence_n; i++) {
        u = gw->presence_batch[i];
        u->sent = 0;

        if (retry) {
            u->unsure = 1;
            (void) ngx_famcall_gw_presence_wait(u);
        }

        ngx_famcall_gw_user_free_maybe(u);
    }

    gw->presence_n = 0;

    if (!retry) {
        ngx_famcall_gw_presence_send(gw);
        return;
    }

    if (!ngx_queue_empty(&gw->presence_wait) && !gw->presence_retry.timer_set
        && !gw->exiting)
    {
        ngx_add_timer(&gw->presence_retry, NGX_FAMCALL_GW_PRESENCE_RETRY);
    }
}


/* the instance row is there: the presence changes that waited for it go */
void
ngx_famcall_gw_presence_flush(ngx_famcall_gw_t *gw)
{
    ngx_famcall_gw_presence_send(gw);
}


static void
ngx_famcall_gw_presence_retry_handler(ngx_event_t *ev)
{
    ngx_famcall_gw_presence_send(ev->data);
}


static void
ngx_famcall_gw_presence_done(void *data, ngx_famcall_pg_status_e status,
    PGresult *res)
{
    ngx_famcall_gw_t       *gw = data;
    ngx_uint_t              i;
    ngx_famcall_gw_user_t  *u;

    gw->presence_query = NULL;

    if (status != NGX_FAMCALL_PG_OK) {
        ngx_famcall_gw_presence_failed(gw,
                                       status != NGX_FAMCALL_PG_SQL_ERROR);
        return;
    }

    for (i = 0; i < gw->presence_n; i++) {
        u = gw->presence_batch[i];
        u->sent = 0;
        u->online = u->asked;
        u->unsure = 0;
        (void) ngx_famcall_gw_presence_wait(u);     /* changed meanwhile? */
        ngx_famcall_gw_user_free_maybe(u);
    }

    gw->presence_n = 0;
    ngx_famcall_gw_presence_send(gw);
}


static void
ngx_famcall_gw_user_free_maybe(ngx_famcall_gw_user_t *u)
{
    ngx_famcall_gw_t  *gw = u->gw;

    if (u->nsockets > 0 || u->waiting || u->sent || gw->exiting) {
        return;     /* (at exit, ngx_famcall_gw_exit frees them all) */
    }

    /* online in the database but going away: the exit sweep clears it */
    if ((u->online || u->unsure) && !(ngx_exiting || ngx_quit)) {
        return;
    }

    ngx_queue_remove(&u->bucket);
    gw->nusers--;
    ngx_free(u);
}
