/*
 * famcall: the streams of a node-wide batcher, in shared memory (used by
 * ngx_famcall_batch.c only).
 *
 * A stream is a ring of items (records of array elements, already escaped
 * for an array literal) that any worker appends to, and a runner: the pid
 * of the one worker that takes batches from it, one at a time.  A worker
 * that queues into a stream with no runner becomes its runner; a runner
 * that finds the ring empty lets go, under the same lock, so an item is
 * never left with nobody to take it.  A runner that died or stands still
 * is replaced by the next worker to queue or look once the oldest item is
 * older than `stale` milliseconds and the runner's pid is gone or it has
 * taken nothing for as long (its beat: a live runner takes again within
 * the database timeout, which is less).  Only the runner reads and
 * removes records, so it reads them without the lock; writers never touch
 * space it has not given back.
 */

#ifndef _NGX_FAMCALL_BATCH_QUEUE_H_INCLUDED_
#define _NGX_FAMCALL_BATCH_QUEUE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct ngx_famcall_bq_s  ngx_famcall_bq_t;

/* whose an item of a batch is: the worker that queued it, and its number */
typedef struct {
    ngx_pid_t                    pid;
    uint64_t                     token;
} ngx_famcall_bq_origin_t;


ngx_shm_zone_t *ngx_famcall_bq_zone(ngx_conf_t *cf, ngx_str_t *name,
    ngx_uint_t nstreams, size_t size, void *tag);

ngx_uint_t ngx_famcall_bq_nstreams(ngx_shm_zone_t *zone);
ngx_famcall_bq_t *ngx_famcall_bq_stream(ngx_shm_zone_t *zone, ngx_uint_t i);

/*
 * Append an item: nfields values (NULL data: SQL NULL).  *run: the caller
 * is the stream's runner now (it may have been already).  NGX_BUSY: the
 * ring is full, nothing queued.
 */
ngx_int_t ngx_famcall_bq_put(ngx_famcall_bq_t *q, uint64_t token,
    ngx_uint_t nfields, const ngx_str_t *fields, ngx_msec_t stale,
    ngx_uint_t *run);

/*
 * The runner takes up to max items, oldest first: params[f] points into
 * *buf (allocated, the caller frees it; NULL if out of memory), the array
 * literal of field f; origins[k] says whose item k is.  0: the ring was
 * empty and the caller is no longer the runner.
 */
ngx_uint_t ngx_famcall_bq_take(ngx_famcall_bq_t *q, ngx_uint_t nfields,
    ngx_uint_t max, u_char **buf, const char **params,
    ngx_famcall_bq_origin_t *origins, ngx_log_t *log);

/* become the runner if the stream has items and no (live) runner */
ngx_uint_t ngx_famcall_bq_claim(ngx_famcall_bq_t *q, ngx_msec_t stale);

/*
 * An exiting runner lets go.  NGX_DECLINED: every queued item is its own,
 * it stays the runner; otherwise it is not, and *kick is a worker with
 * items queued (to be told to take over), or 0.
 */
ngx_int_t ngx_famcall_bq_release(ngx_famcall_bq_t *q, ngx_pid_t *kick);


/*
 * Taking turns (ngx_famcall_batch.c): since when the stream's batch has
 * been at the database, and since when its runner has been waiting for
 * its turn (0: not), with the runner's pid to wake it.  Hints for the
 * other runners, without the lock; a wrong one costs a wait, never an item.
 */
void ngx_famcall_bq_set_busy(ngx_famcall_bq_t *q, ngx_uint_t busy);
ngx_msec_t ngx_famcall_bq_busy(ngx_famcall_bq_t *q);
void ngx_famcall_bq_set_waiting(ngx_famcall_bq_t *q, ngx_msec_t since);
void ngx_famcall_bq_clear_waiting(ngx_famcall_bq_t *q);
ngx_msec_t ngx_famcall_bq_waiting(ngx_famcall_bq_t *q, ngx_pid_t *runner);

/* the runner: items queued, and how long the oldest has waited */
ngx_uint_t ngx_famcall_bq_backlog(ngx_famcall_bq_t *q, ngx_msec_int_t *age);

#endif /* _NGX_FAMCALL_BATCH_QUEUE_H_INCLUDED_ */
