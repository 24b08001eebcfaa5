/*
 * famcall: group commit, node-wide.  Calls of one kind (sending a message)
 * made in one event-loop turn, or while the database is busy with earlier
 * ones, are sent together, as one statement and one transaction, at the
 * end of the turn or when the stream frees up.  Nothing waits on a timer:
 * at low load each call goes alone; under load the batches grow by
 * themselves, and one commit (one fsync, one NOTIFY) carries many calls.
 *
 * The node's workers share a few streams (famcall_send_streams); an item
 * goes to the stream its key picks (a send: its conversation).  A stream
 * is a queue in shared memory and one batch at a time at the database,
 * run by whichever worker found it idle; that worker hands each answer
 * back to the worker whose item it was (ngx_famcall_ipc.h).  So the number
 * of batches in flight, and their size, do not depend on how many workers
 * the node needs for its sockets; one key's items are stored in the order
 * they were queued (a stream runs its batches one after the other); and
 * the batches running side by side never hold the same conversation.
 *
 * An item is a row of nfields text values (or SQL NULLs).  The statement
 * takes nfields parameters, one array literal per field (column-wise: the
 * first parameter holds every item's first field, in the items' order),
 * and returns one row (i int, status int, body: JSON text) per item, i
 * counting from 1, in any order.  Arrays rather than one JSON document:
 * PostgreSQL reads them without parsing JSON, and the worker writes them
 * without building one (sql/013_send_arrays.sql).
 */

#ifndef _NGX_FAMCALL_BATCH_H_INCLUDED_
#define _NGX_FAMCALL_BATCH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_famcall_pg.h"
#include "ngx_famcall_ipc.h"


#define NGX_FAMCALL_BATCH_MAX_FIELDS   8


/* answers when the batch itself failed (HTTP values, used by every owner) */
#define NGX_FAMCALL_BATCH_FAILED       500
#define NGX_FAMCALL_BATCH_UNAVAILABLE  503


typedef struct ngx_famcall_batcher_s  ngx_famcall_batcher_t;
typedef struct ngx_famcall_batch_entry_s  ngx_famcall_batch_entry_t;

/* status is an HTTP status: the row's, or 503/500 when the batch failed */
typedef void (*ngx_famcall_batch_answer_pt)(void *owner, ngx_int_t status,
    u_char *body, size_t len);


/*
 * At configuration: the node's shared memory for a batcher called name,
 * with nstreams streams, each queueing up to queue_size bytes of items.
 */
ngx_shm_zone_t *ngx_famcall_batch_zone(ngx_conf_t *cf, ngx_str_t *name,
    ngx_uint_t nstreams, size_t queue_size, void *tag);

/*
 * In a worker.  ipc: the worker's messages (answers to other workers go
 * through them).  part: the field whose value picks an item's stream (the
 * conversation).  turns: the streams take turns (ngx_famcall_batch.c).
 * timeout: an item not answered after this many
 * milliseconds gets 503 (its runner died; the stream is taken over from a
 * dead runner after half of it); the batch's query has the pool's own
 * timeout.
 */
ngx_famcall_batcher_t *ngx_famcall_batcher_create(ngx_pool_t *pool,
    ngx_famcall_pg_pool_t *pg, ngx_famcall_ipc_t *ipc, ngx_shm_zone_t *zone,
    ngx_uint_t stmt, ngx_uint_t nfields, ngx_uint_t part,
    ngx_uint_t max_items, ngx_uint_t turns, ngx_msec_t timeout,
    ngx_log_t *log);

/* the worker is exiting: hand its stream to another worker */
void ngx_famcall_batcher_exit(ngx_famcall_batcher_t *b);

/*
 * Queue an item for owner: fields, the batcher's nfields values (copied;
 * a NULL data is SQL NULL; a value must not contain a NUL byte).
 * *ref holds the entry (for ngx_famcall_batch_detach) until the batcher
 * clears it, right before calling answer.  The answer never comes before
 * this returns: the batch leaves at the end of the event-loop turn.  When
 * the stream's queue is full, the answer is 503 (at the end of the turn).
 * NGX_ERROR: out of memory, nothing queued, no answer will come.
 */
ngx_int_t ngx_famcall_batch_add(ngx_famcall_batcher_t *b,
    const ngx_str_t *fields,
    ngx_famcall_batch_answer_pt answer, void *owner,
    ngx_famcall_batch_entry_t **ref);

/*
 * The owner is gone: its answer will not be called.  An item already in
 * the shared queue is still sent (a send whose socket closed is stored,
 * and its device sees it at its next sync).
 */
void ngx_famcall_batch_detach(ngx_famcall_batch_entry_t *e);


#endif /* _NGX_FAMCALL_BATCH_H_INCLUDED_ */
