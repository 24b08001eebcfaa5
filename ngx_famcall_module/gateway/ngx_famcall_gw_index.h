/*
 * famcall: the node's user index, user id -> mask of the worker slots with
 * sockets of that user (ngx_famcall_gw_index.c).  The caller holds the
 * node's lock around every call.
 */

#ifndef _NGX_FAMCALL_GW_INDEX_H_INCLUDED_
#define _NGX_FAMCALL_GW_INDEX_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct ngx_famcall_index_s  ngx_famcall_index_t;


/* bytes for an index of capacity entries (a power of 2) */
size_t ngx_famcall_index_size(size_t capacity);

/* mem: ngx_famcall_index_size(capacity) zeroed bytes */
ngx_famcall_index_t *ngx_famcall_index_init(void *mem, size_t capacity);

/*
 * Slot's bit (0..63) for the 16-byte user id, on or off.  -1: one more
 * user would fill the table past 3/4; nothing is set, and the index is
 * full from then on.
 */
int ngx_famcall_index_set(ngx_famcall_index_t *ix, const unsigned char *id,
    unsigned slot, int on);

/* the slots with sockets of the user: 0 if none */
uint64_t ngx_famcall_index_get(ngx_famcall_index_t *ix,
    const unsigned char *id);

/* slot's bits, all of them gone (its worker died) */
void ngx_famcall_index_clear_slot(ngx_famcall_index_t *ix, unsigned slot);

/* an add was ever refused: the index may miss users */
int ngx_famcall_index_full(ngx_famcall_index_t *ix);

/* users in the index */
size_t ngx_famcall_index_count(ngx_famcall_index_t *ix);


#endif /* _NGX_FAMCALL_GW_INDEX_H_INCLUDED_ */
