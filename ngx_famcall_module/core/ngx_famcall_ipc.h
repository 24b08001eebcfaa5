/*
 * famcall: messages between the worker processes of one nginx node.
 *
 * Each worker binds a Unix datagram socket to the abstract address
 * "famcall.<pid>": any worker reaches any other knowing only its pid, across
 * reloads and respawns, with nothing set up before fork and nothing left in
 * the file system (an abstract address goes with its socket).  A datagram
 * is one message: a type byte and at most NGX_FAMCALL_IPC_MAX bytes of
 * payload.  Only datagrams from the processes of this nginx (its master's
 * children: the workers of every generation still running) are read.  An
 * abstract address has no file permissions, so any local process could
 * send to it, and a process of the workers' own user (a PHP-FPM running as
 * www-data on the same host) could otherwise hand bus lines to any user.
 * The kernel tells the sender's pid (SO_PASSCRED); it is checked against
 * nginx's own table of its processes, which the master keeps up to date in
 * every worker over its channels (ngx_processes).  Not the node's worker
 * slots: a send stream's zone outlives a reload, and an old worker's
 * answers and hand-overs reach the new ones.  Sending never blocks: when
 * the receiver's queue is full, the datagram waits in the sender and is
 * retried every millisecond, in order.
 *
 * DESIGN.md (3): within one node, workers hand work to each other without
 * a database round trip; PostgreSQL stays the path between nodes.
 */

#ifndef _NGX_FAMCALL_IPC_H_INCLUDED_
#define _NGX_FAMCALL_IPC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_FAMCALL_IPC_MAX  (60 * 1024)


typedef enum {
    NGX_FAMCALL_IPC_BATCH_ANSWERS = 1,  /* a runner's answers to an origin */
    NGX_FAMCALL_IPC_BATCH_KICK,         /* "run the batches of this queue" */
    NGX_FAMCALL_IPC_BUS_EVENTS,         /* a notification, from the leader */
    NGX_FAMCALL_IPC_BUS_RESYNC,         /* "events were missed" */
    NGX_FAMCALL_IPC_BUS_KICK,           /* "the leader is leaving" */
    NGX_FAMCALL_IPC_NTYPES
} ngx_famcall_ipc_type_e;


typedef struct ngx_famcall_ipc_s  ngx_famcall_ipc_t;

/* data: what was given with the handler; msg: the payload */
typedef void (*ngx_famcall_ipc_handler_pt)(void *data, u_char *msg,
    size_t len);


/*
 * In a worker: bind this process's address and start reading it.  The
 * worker's messages live in the cycle's pool; the caller keeps the pointer
 * (the module's main conf).
 */
ngx_famcall_ipc_t *ngx_famcall_ipc_init(ngx_cycle_t *cycle);
void ngx_famcall_ipc_exit(ngx_famcall_ipc_t *ipc);

void ngx_famcall_ipc_on(ngx_famcall_ipc_t *ipc, ngx_uint_t type,
    ngx_famcall_ipc_handler_pt handler, void *data);

/* the data given with type's handler, or NULL */
void *ngx_famcall_ipc_data(ngx_famcall_ipc_t *ipc, ngx_uint_t type);

/*
 * NGX_OK: sent, or kept to be retried; NGX_DECLINED: no worker has that
 * pid any more; NGX_ERROR: too long, or out of memory (logged)
 */
ngx_int_t ngx_famcall_ipc_send(ngx_famcall_ipc_t *ipc, ngx_pid_t pid,
    ngx_uint_t type, const u_char *data, size_t len);


#endif /* _NGX_FAMCALL_IPC_H_INCLUDED_ */
