/*
 * famcall: messages between the worker processes of one nginx node.
 *
 * Each worker binds a Unix datagram socket to the abstract address
 * "famcall.<pid>": any worker reaches any other knowing only its pid, across
 * reloads and respawns, with nothing set up before fork and nothing left in
 * the file system (an abstract address goes with its socket).  A datagram
 * is one message: a type byte and at most NGX_FAMCALL_IPC_MAX bytes of
 * payload.  Only datagrams from processes of the workers' own user are
 * read (SO_PASSCRED): an abstract address has no file permissions to keep
 * other local users out.  Sending never blocks: when the receiver's queue
 * is full, the datagram waits in the sender and is retried every
 * millisecond, in order.
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


typedef void (*ngx_famcall_ipc_handler_pt)(u_char *data, size_t len);


/* in a worker: bind this process's address and start reading it */
ngx_int_t ngx_famcall_ipc_init(ngx_cycle_t *cycle);
void ngx_famcall_ipc_exit(void);

void ngx_famcall_ipc_on(ngx_uint_t type, ngx_famcall_ipc_handler_pt handler);

/*
 * NGX_OK: sent, or kept to be retried; NGX_DECLINED: no worker has that
 * pid any more; NGX_ERROR: too long, or out of memory (logged)
 */
ngx_int_t ngx_famcall_ipc_send(ngx_pid_t pid, ngx_uint_t type,
    const u_char *data, size_t len);


#endif /* _NGX_FAMCALL_IPC_H_INCLUDED_ */
