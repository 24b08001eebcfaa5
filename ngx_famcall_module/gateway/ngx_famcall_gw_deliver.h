/*
 * famcall: delivery inside a node, from any worker (ngx_famcall_gw_node.c).
 *
 * An event to a user's sockets on this node, or to one socket, whichever
 * worker of the node holds them, without the database: the node's index
 * says which workers hold sockets of the user, the node's worker slots
 * which worker a socket's instance id (its src, "<instance>.<id>", see
 * ngx_famcall_gw_src) names.  This worker's sockets get the event before
 * the call returns; another worker's at the end of this event loop's turn,
 * with everything else this worker has for it in the same turn (one
 * datagram per worker, ngx_famcall_ipc.c).  The socket gets
 * {"type": <type>, "data": <data>}, as from the bus.
 *
 * What it does not do is reach other nodes: NGX_DECLINED says that nothing
 * on this node holds the target, and the caller goes to the bus (a NOTIFY:
 * a bus line with src "=<src>" reaches that one socket on whichever node
 * holds it).  NGX_OK for a user says nothing of the user's sockets on other
 * nodes either.  A socket that closes while its event is on the way to its
 * worker does not get it (it resyncs when it is back, as ever).
 *
 * Event calls at the rate of signaling (tens of thousands a second) cost a
 * lookup under the node's lock and a copy into the outbox: no allocation,
 * no system call of their own.
 */

#ifndef _NGX_FAMCALL_GW_DELIVER_H_INCLUDED_
#define _NGX_FAMCALL_GW_DELIVER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_famcall_gw.h"


/* workers a node keeps track of (bits of the index's masks) */
#define NGX_FAMCALL_NODE_SLOTS   64

/* the node's instances as an array literal: "{<id>,<id>,...}" */
#define NGX_FAMCALL_GW_HERE_LEN                                              \
    (2 + NGX_FAMCALL_NODE_SLOTS * (NGX_FAMCALL_ID_LEN + 1) + 1)


/*
 * The event (type: no space; data: JSON text on one line) to the sockets
 * of user (16 bytes) on this node, but skip (a src: the sender's socket;
 * NULL or empty: none).
 * NGX_OK: this node holds sockets of the user, and they get it;
 * NGX_DECLINED: none here; NGX_ERROR: malformed, or out of memory.  An
 * event too long for one worker message (about 60 KB) goes to another
 * worker in parts, which that worker puts together (ngx_famcall_gw_bus.c).
 */
ngx_int_t ngx_famcall_gw_deliver_user(ngx_famcall_gw_t *gw,
    const u_char *user, ngx_str_t *skip, ngx_str_t *type, ngx_str_t *data);

/*
 * The event to one socket of user: src, its "<instance>.<id>".  The user
 * finds the socket among its worker's without a table of every socket.
 * NGX_OK: its worker is on this node (this worker: and the socket is
 * open); NGX_DECLINED: not here; NGX_ERROR: as above.
 */
ngx_int_t ngx_famcall_gw_deliver_socket(ngx_famcall_gw_t *gw,
    const u_char *user, ngx_str_t *src, ngx_str_t *type, ngx_str_t *data);

/*
 * Bus lines ("<type> <users> <src> <data>", one per line, as a NOTIFY
 * carries them; src "=<src>": that socket only) delivered on this node
 * only: what a statement answers when it found every recipient here and
 * notified nobody (sql/018_typing_local.sql).  NGX_OK: something here
 * holds a recipient; NGX_DECLINED: nothing.
 */
ngx_int_t ngx_famcall_gw_deliver_lines(ngx_famcall_gw_t *gw, u_char *lines,
    size_t len);

/* this worker's instance id (NGX_FAMCALL_ID_LEN characters) */
const char *ngx_famcall_gw_instance(ngx_famcall_gw_t *gw);

/*
 * Whether src ("<instance>.<id>") names a socket of one of this node's
 * workers (open or not: its worker is here).
 */
ngx_uint_t ngx_famcall_gw_node_has(ngx_famcall_gw_t *gw, ngx_str_t *src);

/*
 * out (NGX_FAMCALL_GW_HERE_LEN): the instance ids of this node's workers as
 * a PostgreSQL array literal, this worker's first, NUL-terminated; what a
 * statement needs to tell whether a user's sockets are all on this node
 * (their presence rows name their instances).
 */
void ngx_famcall_gw_node_here(ngx_famcall_gw_t *gw, char *out);


/*
 * What a feature that keeps state about sockets of the node hears from the
 * gateway, in every worker (registered while the configuration is read):
 *
 * line: bus lines whose type starts with prefix ("node:" and the like)
 *     are the feature's, not the sockets': they reach the worker the
 *     leader routes them to (their users' or their "=<src>"'s), in the
 *     order the bus carried them, and go to no socket.
 * closed: a socket of this worker closed (src: its "<instance>.<id>").
 * resync: the node's bus had a gap: lines may have been missed.
 */
typedef struct {
    const char                    *prefix;
    void                         (*line)(ngx_famcall_gw_t *gw,
                                         ngx_str_t *type, ngx_str_t *users,
                                         ngx_str_t *src, ngx_str_t *data);
    void                         (*closed)(ngx_famcall_gw_t *gw,
                                           const u_char *user,
                                           ngx_str_t *src);
    void                         (*resync)(ngx_famcall_gw_t *gw);
} ngx_famcall_gw_hooks_t;

ngx_int_t ngx_famcall_gw_hooks_add(ngx_conf_t *cf,
    const ngx_famcall_gw_hooks_t *hooks);


#endif /* _NGX_FAMCALL_GW_DELIVER_H_INCLUDED_ */
