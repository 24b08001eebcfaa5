/*
 * famcall: a node-wide batcher's streams in shared memory
 * (ngx_famcall_batch_queue.h).
 *
 * The ring: records from head to tail, each a header and its elements;
 * a record that does not fit before the end starts over at offset 0, and
 * the gap it leaves counts as used until the runner passes it.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_famcall_batch.h"
#include "ngx_famcall_batch_queue.h"


#define NGX_FAMCALL_BQ_MAX_TAKE  1024


typedef struct {
    uint32_t                     size;    /* bytes, header included; 0: a
                                             gap, go on at offset 0 */
    int32_t                      pid;
    uint64_t                     token;
    uint64_t                     added;   /* ngx_current_msec */
    uint32_t                     len[NGX_FAMCALL_BATCH_MAX_FIELDS];
} ngx_famcall_bq_rec_t;


struct ngx_famcall_bq_s {
    ngx_slab_pool_t             *shpool;  /* its mutex is the lock */
    ngx_pid_t                    runner;  /* 0: none */
    uint64_t                     beat;    /* ngx_current_msec when the
                                             runner last took, or began */
    size_t                       size;
    size_t                       head;
    size_t                       tail;
    size_t                       used;
    ngx_uint_t                   count;
    u_char                      *data;
    /* for the runners of the other streams (ngx_famcall_batch.c, "taking
       turns"), read and written without the lock: hints, each bounded */
    ngx_atomic_t                 busy;    /* ngx_current_msec its batch
                                             went to the database; 0: none */
    ngx_atomic_t                 waiting; /* ngx_current_msec it began to
                                             wait for its turn; 0: not */
};


typedef struct {
    ngx_uint_t                   nstreams;
    size_t                       size;
    ngx_famcall_bq_t            *streams; /* in the zone */
} ngx_famcall_bq_ctx_t;


static ngx_int_t ngx_famcall_bq_init_zone(ngx_shm_zone_t *zone, void *data);
static size_t ngx_famcall_bq_skip(ngx_famcall_bq_t *q, size_t *pos);
static ngx_famcall_bq_rec_t *ngx_famcall_bq_at(ngx_famcall_bq_t *q,
    size_t *pos);
static u_char *ngx_famcall_bq_field(ngx_famcall_bq_rec_t *rec,
    ngx_famcall_bq_rec_t *head, ngx_uint_t f);
static ngx_uint_t ngx_famcall_bq_runner_dead(ngx_famcall_bq_t *q,
    ngx_msec_t stale);
static size_t ngx_famcall_bq_elt_len(const ngx_str_t *v);
static u_char *ngx_famcall_bq_elt(u_char *p, const ngx_str_t *v);


ngx_shm_zone_t *
ngx_famcall_bq_zone(ngx_conf_t *cf, ngx_str_t *name, ngx_uint_t nstreams,
    size_t size, void *tag)
{
    size_t                 total;
    ngx_str_t              zname;
    ngx_shm_zone_t        *zone;
    ngx_famcall_bq_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_bq_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->nstreams = nstreams;
    ctx->size = ngx_align(size, 8);

    /* the rings, and room for the slab allocator's own pages */
    total = nstreams * (ctx->size + ctx->size / 64) + 256 * 1024;

    /*
     * The layout in the name: a reload with the same one shares the zone
     * (the old workers' queued items carry on), one with another gets a
     * new zone for the new workers while the old ones finish theirs.
     */
    zname.data = ngx_pnalloc(cf->pool, name->len + 3 * NGX_INT_T_LEN + 4);
    if (zname.data == NULL) {
        return NULL;
    }

    /* the struct's size too: a reload into a module built with another
       layout must not read the old one's streams */
    zname.len = ngx_sprintf(zname.data, "%V_%ui_%uz_%uz", name, nstreams,
                            ctx->size, sizeof(ngx_famcall_bq_t))
                - zname.data;

    zone = ngx_shared_memory_add(cf, &zname, total, tag);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "shared memory zone \"%V\" is already used",
                           &zname);
        return NULL;
    }

    zone->init = ngx_famcall_bq_init_zone;
    zone->data = ctx;

    return zone;
}


static ngx_int_t
ngx_famcall_bq_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_famcall_bq_ctx_t  *octx = data;

    ngx_uint_t             i;
    ngx_slab_pool_t       *shpool;
    ngx_famcall_bq_t      *q;
    ngx_famcall_bq_ctx_t  *ctx;

    ctx = zone->data;

    if (octx != NULL) {
        /* a reload: the old workers' queues carry on, shared with the new
           (the same name, so the same layout) */
        ctx->streams = octx->streams;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    ctx->streams = ngx_slab_alloc(shpool,
                                  ctx->nstreams * sizeof(ngx_famcall_bq_t));
    if (ctx->streams == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->nstreams; i++) {
        q = &ctx->streams[i];
        ngx_memzero(q, sizeof(ngx_famcall_bq_t));

        q->shpool = shpool;
        q->size = ctx->size;
        q->data = ngx_slab_alloc(shpool, ctx->size);
        if (q->data == NULL) {
            return NGX_ERROR;
        }
    }

    shpool->data = ctx->streams;

    return NGX_OK;
}


ngx_uint_t
ngx_famcall_bq_nstreams(ngx_shm_zone_t *zone)
{
    ngx_famcall_bq_ctx_t  *ctx = zone->data;

    return ctx->nstreams;
}


ngx_famcall_bq_t *
ngx_famcall_bq_stream(ngx_shm_zone_t *zone, ngx_uint_t i)
{
    ngx_famcall_bq_ctx_t  *ctx = zone->data;

    return &ctx->streams[i];
}


ngx_int_t
ngx_famcall_bq_put(ngx_famcall_bq_t *q, uint64_t token, ngx_uint_t nfields,
    const ngx_str_t *fields, ngx_msec_t stale, ngx_uint_t *run)
{
    u_char                *p;
    size_t                 rsz, gap;
    ngx_uint_t             f;
    ngx_famcall_bq_rec_t  *rec;

    rsz = sizeof(ngx_famcall_bq_rec_t);
    for (f = 0; f < nfields; f++) {
        rsz += ngx_famcall_bq_elt_len(&fields[f]);
    }
    rsz = ngx_align(rsz, 8);

    ngx_shmtx_lock(&q->shpool->mutex);

    if (q->used == 0) {
        q->head = 0;
        q->tail = 0;
    }

    /* a record that does not fit before the end starts over at 0 */
    gap = (q->tail + rsz > q->size) ? q->size - q->tail : 0;

    if (q->used + gap + rsz > q->size) {
        ngx_shmtx_unlock(&q->shpool->mutex);
        return NGX_BUSY;
    }

    if (gap) {
        ((ngx_famcall_bq_rec_t *) (q->data + q->tail))->size = 0;
        q->used += gap;
        q->tail = 0;
    }

    rec = (ngx_famcall_bq_rec_t *) (q->data + q->tail);
    rec->size = (uint32_t) rsz;
    rec->pid = (int32_t) ngx_pid;
    rec->token = token;
    rec->added = ngx_current_msec;

    p = (u_char *) (rec + 1);
    for (f = 0; f < nfields; f++) {
        rec->len[f] = ngx_famcall_bq_elt(p, &fields[f]) - p;
        p += rec->len[f];
    }

    q->tail += rsz;
    if (q->tail == q->size) {
        q->tail = 0;
    }
    q->used += rsz;
    q->count++;

    if (q->runner == 0 || ngx_famcall_bq_runner_dead(q, stale)) {
        q->runner = ngx_pid;
        q->beat = ngx_current_msec;
    }

    *run = (q->runner == ngx_pid);

    ngx_shmtx_unlock(&q->shpool->mutex);

    return NGX_OK;
}


ngx_uint_t
ngx_famcall_bq_take(ngx_famcall_bq_t *q, ngx_uint_t nfields, ngx_uint_t max,
    u_char **buf, const char **params, ngx_famcall_bq_origin_t *origins,
    ngx_log_t *log)
{
    u_char                *p;
    size_t                 pos, len, body, consumed;
    ngx_uint_t             n, k, f, torn;
    ngx_famcall_bq_rec_t  *recs[NGX_FAMCALL_BQ_MAX_TAKE];
    ngx_famcall_bq_rec_t   heads[NGX_FAMCALL_BQ_MAX_TAKE];   /* 56k */

    ngx_shmtx_lock(&q->shpool->mutex);

    if (q->runner != ngx_pid || q->count == 0) {
        if (q->runner == ngx_pid) {
            q->runner = 0;
        }
        ngx_shmtx_unlock(&q->shpool->mutex);
        *buf = NULL;
        return 0;
    }

    n = ngx_min(q->count, ngx_min(max, NGX_FAMCALL_BQ_MAX_TAKE));
    pos = q->head;
    q->beat = ngx_current_msec;

    ngx_shmtx_unlock(&q->shpool->mutex);

    /*
     * The n records are complete, and only this runner moves head.  Unless
     * this worker stood still and was taken over meanwhile: then others may
     * be writing where it reads.  So each record's header is read once,
     * into heads[], and its sizes checked against the ring; what follows
     * uses those, and a torn read is dropped (below) without reading or
     * writing out of bounds.
     */
    torn = 0;
    consumed = 0;
    len = nfields * (n + 2);

    for (k = 0; k < n; k++) {
        consumed += ngx_famcall_bq_skip(q, &pos);

        recs[k] = (ngx_famcall_bq_rec_t *) (q->data + pos);
        heads[k] = *recs[k];

        body = 0;
        for (f = 0; f < nfields; f++) {
            body += heads[k].len[f];
        }

        if (heads[k].size < sizeof(ngx_famcall_bq_rec_t) + body
            || pos + heads[k].size > q->size)
        {
            torn = 1;
            n = k;
            break;
        }

        origins[k].pid = heads[k].pid;
        origins[k].token = heads[k].token;

        len += body;
        consumed += heads[k].size;
        pos += heads[k].size;
    }

    if (pos == q->size) {
        pos = 0;
    }

    /* per field: braces, n elements, n - 1 commas, the NUL */
    *buf = torn ? NULL : ngx_alloc(len, log);

    if (*buf != NULL) {
        p = *buf;

        for (f = 0; f < nfields; f++) {
            params[f] = (const char *) p;
            *p++ = '{';

            for (k = 0; k < n; k++) {
                if (k > 0) {
                    *p++ = ',';
                }

                p = ngx_cpymem(p, ngx_famcall_bq_field(recs[k], &heads[k], f),
                               heads[k].len[f]);
            }

            *p++ = '}';
            *p++ = '\0';
        }
    }

    ngx_shmtx_lock(&q->shpool->mutex);

    if (q->runner != ngx_pid || torn) {
        /* taken over meanwhile (this worker stood still): the items are
         * the new runner's, and what was read may be torn */
        if (q->runner == ngx_pid) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "famcall: a send stream's ring is inconsistent");
        }

        ngx_shmtx_unlock(&q->shpool->mutex);
        ngx_free(*buf);
        *buf = NULL;
        return 0;
    }

    q->head = pos;
    q->used -= consumed;
    q->count -= n;

    if (q->used == 0) {
        q->head = 0;
        q->tail = 0;
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    return n;
}


ngx_uint_t
ngx_famcall_bq_claim(ngx_famcall_bq_t *q, ngx_msec_t stale)
{
    ngx_uint_t  mine;

    ngx_shmtx_lock(&q->shpool->mutex);

    if (q->count > 0
        && (q->runner == 0 || ngx_famcall_bq_runner_dead(q, stale)))
    {
        q->runner = ngx_pid;
        q->beat = ngx_current_msec;
    }

    mine = (q->count > 0 && q->runner == ngx_pid);

    ngx_shmtx_unlock(&q->shpool->mutex);

    return mine;
}


ngx_int_t
ngx_famcall_bq_release(ngx_famcall_bq_t *q, ngx_pid_t *kick)
{
    size_t                 pos;
    ngx_uint_t             k;
    ngx_famcall_bq_rec_t  *rec;

    *kick = 0;

    ngx_shmtx_lock(&q->shpool->mutex);

    if (q->runner != ngx_pid) {
        ngx_shmtx_unlock(&q->shpool->mutex);
        return NGX_OK;
    }

    pos = q->head;

    for (k = 0; k < q->count; k++) {
        rec = ngx_famcall_bq_at(q, &pos);
        if (rec->pid != (int32_t) ngx_pid) {
            *kick = rec->pid;
            break;
        }
        pos += rec->size;
    }

    if (q->count > 0 && *kick == 0) {
        ngx_shmtx_unlock(&q->shpool->mutex);
        return NGX_DECLINED;
    }

    q->runner = 0;

    ngx_shmtx_unlock(&q->shpool->mutex);

    return NGX_OK;
}


/*
 * At a gap (the rest of the ring, left by a record that did not fit),
 * move *pos to offset 0; the gap's bytes
 */
static size_t
ngx_famcall_bq_skip(ngx_famcall_bq_t *q, size_t *pos)
{
    size_t  gap;

    if (*pos < q->size
        && q->size - *pos >= sizeof(ngx_famcall_bq_rec_t)
        && ((ngx_famcall_bq_rec_t *) (q->data + *pos))->size != 0)
    {
        return 0;
    }

    gap = q->size - *pos;
    *pos = 0;

    return gap;
}


static ngx_famcall_bq_rec_t *
ngx_famcall_bq_at(ngx_famcall_bq_t *q, size_t *pos)
{
    (void) ngx_famcall_bq_skip(q, pos);

    return (ngx_famcall_bq_rec_t *) (q->data + *pos);
}


/* where field f of a record starts: after its fields 0 .. f - 1 */
static u_char *
ngx_famcall_bq_field(ngx_famcall_bq_rec_t *rec, ngx_famcall_bq_rec_t *head,
    ngx_uint_t f)
{
    u_char      *p;
    ngx_uint_t   i;

    p = (u_char *) (rec + 1);
    for (i = 0; i < f; i++) {
        p += head->len[i];
    }

    return p;
}


/*
 * Under the lock: the runner has left its oldest item waiting longer than
 * stale, and its process is gone (it died with a batch in hand) or has
 * not taken a batch for longer than stale (it stands still, or died and
 * another process has its pid).  A live runner takes again within the
 * database timeout (stale is more): its batch is answered or times out.
 */
static ngx_uint_t
ngx_famcall_bq_runner_dead(ngx_famcall_bq_t *q, ngx_msec_t stale)
{
    size_t                 pos;
    ngx_msec_int_t         idle;
    ngx_famcall_bq_rec_t  *rec;

    if (q->runner == 0 || q->runner == ngx_pid || q->count == 0) {
        return 0;
    }

    pos = q->head;
    rec = ngx_famcall_bq_at(q, &pos);

    if ((ngx_msec_int_t) (ngx_current_msec - (ngx_msec_t) rec->added)
        < (ngx_msec_int_t) stale)
    {
        return 0;
    }

    if (kill(q->runner, 0) == -1 && ngx_errno == NGX_ESRCH) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "famcall: worker %P, which ran a send stream, is gone; "
                      "worker %P takes the stream over", q->runner, ngx_pid);
        return 1;
    }

    idle = (ngx_msec_int_t) (ngx_current_msec - (ngx_msec_t) q->beat);

    if (idle >= (ngx_msec_int_t) stale) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "famcall: worker %P, which ran a send stream, took "
                      "nothing for %M ms; worker %P takes the stream over",
                      q->runner, (ngx_msec_t) idle, ngx_pid);
        return 1;
    }

    return 0;
}


/* an array element: NULL, or the value in double quotes */
static size_t
ngx_famcall_bq_elt_len(const ngx_str_t *v)
{
    size_t  i, len;

    if (v->data == NULL) {
        return sizeof("NULL") - 1;
    }

    len = v->len + 2;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '"' || v->data[i] == '\\') {
            len++;
        }
    }

    return len;
}


static u_char *
ngx_famcall_bq_elt(u_char *p, const ngx_str_t *v)
{
    size_t  i;

    if (v->data == NULL) {
        return ngx_cpymem(p, "NULL", sizeof("NULL") - 1);
    }

    *p++ = '"';

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '"' || v->data[i] == '\\') {
            *p++ = '\\';
        }
        *p++ = v->data[i];
    }

    *p++ = '"';

    return p;
}


/*
 * A runner writes its own mark, then reads the others' (and one whose
 * batch came back does the same the other way round): a full fence
 * between, so that one of the two sees the other's write (on x86 a store
 * can pass a later load; ngx_memory_barrier() stops only the compiler).
 */
static ngx_inline void
ngx_famcall_bq_fence(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}


void
ngx_famcall_bq_set_busy(ngx_famcall_bq_t *q, ngx_uint_t busy)
{
    q->busy = busy ? (ngx_current_msec ? ngx_current_msec : 1) : 0;
    ngx_famcall_bq_fence();
}


ngx_msec_t
ngx_famcall_bq_busy(ngx_famcall_bq_t *q)
{
    return (ngx_msec_t) q->busy;
}


void
ngx_famcall_bq_set_waiting(ngx_famcall_bq_t *q, ngx_msec_t since)
{
    q->waiting = since ? since : 1;     /* 0 means "not waiting" */
    ngx_famcall_bq_fence();
}


void
ngx_famcall_bq_clear_waiting(ngx_famcall_bq_t *q)
{
    q->waiting = 0;
}


ngx_msec_t
ngx_famcall_bq_waiting(ngx_famcall_bq_t *q, ngx_pid_t *runner)
{
    *runner = q->runner;
    return (ngx_msec_t) q->waiting;
}


ngx_uint_t
ngx_famcall_bq_backlog(ngx_famcall_bq_t *q, ngx_msec_int_t *age)
{
    size_t                 pos;
    ngx_uint_t             n;
    ngx_famcall_bq_rec_t  *rec;

    ngx_shmtx_lock(&q->shpool->mutex);

    n = q->count;
    *age = 0;

    if (n > 0) {
        pos = q->head;
        rec = ngx_famcall_bq_at(q, &pos);
        *age = (ngx_msec_int_t) (ngx_current_msec - (ngx_msec_t) rec->added);
    }

    ngx_shmtx_unlock(&q->shpool->mutex);

    return n;
}
