/*
 * famcall: the node's shared state and a worker's outbox to the node's
 * workers, shared by ngx_famcall_gw_node.c (the zone, the slots, the
 * leader and its routing) and ngx_famcall_gw_deliver.c (delivery from any
 * worker).  Private to the gateway.
 */

#ifndef _NGX_FAMCALL_GW_NODE_H_INCLUDED_
#define _NGX_FAMCALL_GW_NODE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_gw.h"
#include "ngx_famcall_gw_deliver.h"
#include "ngx_famcall_gw_index.h"


#define NGX_FAMCALL_NODE_LINES  1024            /* per notification */


/* a worker of the node */
typedef struct {
    ngx_pid_t                       pid;         /* 0: a free slot */
    u_char                          instance[NGX_FAMCALL_ID_LEN];
} ngx_famcall_node_slot_t;


struct ngx_famcall_node_s {
    ngx_shmtx_t                    *mutex;
    ngx_pid_t                       leader;
    ngx_msec_t                      beat;        /* the leader's last */
    ngx_uint_t                      led;         /* someone led before */
    ngx_famcall_node_slot_t         slots[NGX_FAMCALL_NODE_SLOTS];
    uint64_t                        used;        /* slots taken before */
    ngx_famcall_index_t            *index;
};


/* a line of the notification the leader routes, and whose it is */
typedef struct {
    u_char                         *data;
    size_t                          len;
    uint64_t                        mask;
} ngx_famcall_node_line_t;


/* the lines waiting for the end of the turn to go to one worker */
typedef struct {
    u_char                         *data;        /* NGX_FAMCALL_IPC_MAX */
    size_t                          len;
} ngx_famcall_node_box_t;


/* this worker's outbox to the node's workers */
struct ngx_famcall_node_out_s {
    ngx_famcall_node_box_t          box[NGX_FAMCALL_NODE_SLOTS];
    ngx_event_t                     flush;       /* posted: end of turn */
    ngx_famcall_node_line_t        *lines;       /* NGX_FAMCALL_NODE_LINES */
    unsigned                        full_logged:1;
};


/* under the node's lock: the bit of the worker whose instance src names */
uint64_t ngx_famcall_node_instance(ngx_famcall_node_t *node, u_char *src,
    size_t len);

/* slot s's box, with room for len bytes more (flushed first if need be) */
ngx_int_t ngx_famcall_node_box(ngx_famcall_gw_t *gw, ngx_uint_t s,
    size_t len);

/* the boxes go at the end of this event loop's turn */
void ngx_famcall_node_post(ngx_famcall_gw_t *gw);


#endif /* _NGX_FAMCALL_GW_NODE_H_INCLUDED_ */
