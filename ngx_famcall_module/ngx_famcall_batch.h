/*
 * famcall: group commit.  Calls of one kind (sending a message) made in
 * one event-loop turn, or while the database is busy with earlier ones,
 * are sent together, as one statement and one transaction, at the end of
 * the turn or when a slot frees up.  Nothing waits on a timer: at low load
 * each call goes alone; under load the batches grow by themselves, and one
 * commit (one fsync, one NOTIFY) carries many calls.
 *
 * The statement takes one parameter, a JSON array of the items, and
 * returns one row (i int, status int, body: JSON text) per item, i counting
 * from 1 in the array's order.
 */

#ifndef _NGX_FAMCALL_BATCH_H_INCLUDED_
#define _NGX_FAMCALL_BATCH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>

#include "ngx_famcall_pg.h"


/* answers when the batch itself failed (HTTP values, used by every owner) */
#define NGX_FAMCALL_BATCH_FAILED       500
#define NGX_FAMCALL_BATCH_UNAVAILABLE  503


typedef struct ngx_famcall_batcher_s  ngx_famcall_batcher_t;
typedef struct ngx_famcall_batch_entry_s  ngx_famcall_batch_entry_t;

/* status is an HTTP status: the row's, or 503/500 when the batch failed */
typedef void (*ngx_famcall_batch_answer_pt)(void *owner, ngx_int_t status,
    u_char *body, size_t len);


ngx_famcall_batcher_t *ngx_famcall_batcher_create(ngx_pool_t *pool,
    ngx_famcall_pg_pool_t *pg, ngx_uint_t stmt, ngx_uint_t max_inflight,
    ngx_uint_t max_items, ngx_log_t *log);

/*
 * Queue item (a JSON object; the batcher takes the reference) for owner.
 * *ref holds the entry (for ngx_famcall_batch_detach) until the batcher
 * clears it, right before calling answer.  The answer never comes before
 * this returns: the batch leaves at the end of the event-loop turn.
 * NGX_ERROR: out of memory, nothing queued, no answer will come.
 */
ngx_int_t ngx_famcall_batch_add(ngx_famcall_batcher_t *b, json_t *item,
    ngx_famcall_batch_answer_pt answer, void *owner,
    ngx_famcall_batch_entry_t **ref);

/* the owner is gone: its answer will not be called */
void ngx_famcall_batch_detach(ngx_famcall_batch_entry_t *e);


#endif /* _NGX_FAMCALL_BATCH_H_INCLUDED_ */
