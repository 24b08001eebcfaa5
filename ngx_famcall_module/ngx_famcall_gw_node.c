/*
 * famcall: one LISTEN per node.  One worker of the node, the leader, holds
 * the bus's LISTEN connection and hands every notification to the node's
 * other workers (ngx_famcall_ipc.c), which route its lines to their own
 * sockets as the leader does (ngx_famcall_gw_bus.c).  With a LISTEN per
 * worker, PostgreSQL woke every worker's backend for every commit, and
 * each paid libpq's reading of every notification: on 8 workers, 2 s of
 * CPU in the LISTEN backends per 20 s at 10,000 messages/s.
 *
 * The workers and the leader are in shared memory (a zone per reload).
 * The leader beats every second; a follower that finds the beat older
 * than NGX_FAMCALL_NODE_DEAD, or the leader's pid gone, takes over, and an
 * exiting leader hands over at once.  Whatever was sent while nobody
 * listened is missed: the new leader's first subscription tells every
 * socket of the node to resync, as a reconnected LISTEN always has.
 * A worker finding no free slot (more than NGX_FAMCALL_NODE_SLOTS workers,
 * with a reload's old ones) listens for itself.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_gw.h"
#include "ngx_famcall_ipc.h"


#define NGX_FAMCALL_NODE_SLOTS  64
#define NGX_FAMCALL_NODE_BEAT   1000
#define NGX_FAMCALL_NODE_DEAD   5000


struct ngx_famcall_node_s {
    ngx_shmtx_t                    *mutex;
    ngx_pid_t                       leader;
    ngx_msec_t                      beat;        /* the leader's last */
    ngx_uint_t                      led;         /* someone led before */
    ngx_pid_t                       workers[NGX_FAMCALL_NODE_SLOTS];
};


static ngx_int_t ngx_famcall_node_init_zone(ngx_shm_zone_t *zone, void *data);
static void ngx_famcall_node_lead(ngx_famcall_gw_t *gw);
static void ngx_famcall_node_notify(void *data, const char *payload,
    size_t len);
static void ngx_famcall_node_broadcast(ngx_famcall_gw_t *gw, ngx_uint_t type,
    const u_char *data, size_t len);
static void ngx_famcall_node_watch(ngx_event_t *ev);
static void ngx_famcall_node_events(u_char *data, size_t len);
static void ngx_famcall_node_resync(u_char *data, size_t len);
static void ngx_famcall_node_kick(u_char *data, size_t len);
static void ngx_famcall_node_forget(ngx_famcall_node_t *node, ngx_pid_t pid);
static ngx_uint_t ngx_famcall_node_gone(ngx_pid_t pid);


static ngx_famcall_gw_t  *ngx_famcall_node_gw;


/*
 * A zone per configuration (a name per reload): a reload's new workers
 * elect their own leader and LISTEN before their first socket, while the
 * old ones keep theirs until they are gone.  Sharing one zone, the new
 * workers followed the old leader until it exited, and missed what was
 * sent between its LISTEN and their own.
 */
ngx_shm_zone_t *
ngx_famcall_node_zone(ngx_conf_t *cf, void *tag)
{
    ngx_str_t        name;
    ngx_shm_zone_t  *zone;

    static ngx_uint_t  generation;

    name.data = ngx_pnalloc(cf->pool, sizeof("famcall_node_") + NGX_INT_T_LEN);
    if (name.data == NULL) {
        return NULL;
    }

    name.len = ngx_sprintf(name.data, "famcall_node_%ui", ++generation)
               - name.data;

    zone = ngx_shared_memory_add(cf, &name, 64 * 1024, tag);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_famcall_node_init_zone;

    return zone;
}


static ngx_int_t
ngx_famcall_node_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t     *shpool;
    ngx_famcall_node_t  *node;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    node = ngx_slab_calloc(shpool, sizeof(ngx_famcall_node_t));
    if (node == NULL) {
        return NGX_ERROR;
    }

    node->mutex = &shpool->mutex;
    zone->data = node;

    return NGX_OK;
}


/* in a worker: take a slot, and lead or follow */
ngx_int_t
ngx_famcall_gw_node_start(ngx_famcall_gw_t *gw, ngx_cycle_t *cycle)
{
    ngx_uint_t           i, slot;
    ngx_famcall_node_t  *node = gw->fmcf->node_zone->data;

    gw->node = node;
    ngx_famcall_node_gw = gw;

    ngx_famcall_ipc_on(NGX_FAMCALL_IPC_BUS_EVENTS, ngx_famcall_node_events);
    ngx_famcall_ipc_on(NGX_FAMCALL_IPC_BUS_RESYNC, ngx_famcall_node_resync);
    ngx_famcall_ipc_on(NGX_FAMCALL_IPC_BUS_KICK, ngx_famcall_node_kick);

    slot = NGX_FAMCALL_NODE_SLOTS;

    ngx_shmtx_lock(node->mutex);

    for (i = 0; i < NGX_FAMCALL_NODE_SLOTS; i++) {
        if (node->workers[i] == 0 || ngx_famcall_node_gone(node->workers[i])) {
            node->workers[i] = ngx_pid;
            slot = i;
            break;
        }
    }

    ngx_shmtx_unlock(node->mutex);

    if (slot == NGX_FAMCALL_NODE_SLOTS) {
        ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                      "famcall: more than %d workers on this node: "
                      "this one listens for itself", NGX_FAMCALL_NODE_SLOTS);
        gw->node = NULL;
        return ngx_famcall_pg_listen(gw->fmcf->pg, cycle,
                                     NGX_FAMCALL_SQL_LISTEN,
                                     ngx_famcall_gw_notify, gw);
    }

    gw->watch.handler = ngx_famcall_node_watch;
    gw->watch.data = gw;
    gw->watch.log = gw->log;
    gw->watch.cancelable = 1;

    ngx_famcall_node_watch(&gw->watch);

    return NGX_OK;
}


/* the worker exits: it leaves, and a leader hands over */
void
ngx_famcall_gw_node_stop(ngx_famcall_gw_t *gw)
{
    u_char               id;
    ngx_uint_t           i;
    ngx_pid_t            next;
    ngx_famcall_node_t  *node = gw->node;

    if (gw->watch.timer_set) {
        ngx_del_timer(&gw->watch);
    }

    ngx_famcall_node_gw = NULL;

    if (node == NULL) {
        return;
    }

    next = 0;

    ngx_shmtx_lock(node->mutex);

    for (i = 0; i < NGX_FAMCALL_NODE_SLOTS; i++) {
        if (node->workers[i] == ngx_pid) {
            node->workers[i] = 0;

        } else if (node->workers[i] != 0 && next == 0) {
            next = node->workers[i];
        }
    }

    if (node->leader != ngx_pid) {
        next = 0;

    } else {
        node->leader = 0;
    }

    ngx_shmtx_unlock(node->mutex);

    if (next != 0) {
        id = 0;
        (void) ngx_famcall_ipc_send(next, NGX_FAMCALL_IPC_BUS_KICK, &id, 1);
    }
}


/*
 * Every second: the leader beats; a follower takes over from a leader that
 * is gone or silent.
 */
static void
ngx_famcall_node_watch(ngx_event_t *ev)
{
    ngx_famcall_gw_t  *gw = ev->data;

    ngx_uint_t           take;
    ngx_famcall_node_t  *node = gw->node;

    take = 0;

    ngx_shmtx_lock(node->mutex);

    if (node->leader == ngx_pid) {
        node->beat = ngx_current_msec;

    } else if (!ngx_exiting
               && (node->leader == 0
                   || (ngx_msec_int_t) (ngx_current_msec - node->beat)
                      > NGX_FAMCALL_NODE_DEAD
                   || ngx_famcall_node_gone(node->leader)))
    {
        if (node->leader != 0) {
            ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                          "famcall: worker %P, which listened for the node, "
                          "is gone or silent; worker %P takes over",
                          node->leader, ngx_pid);
        }

        /* events sent before this worker's LISTEN reach nobody */
        gw->took_over = node->led;
        node->led = 1;
        node->leader = ngx_pid;
        node->beat = ngx_current_msec;
        take = 1;
    }

    ngx_shmtx_unlock(node->mutex);

    if (take) {
        ngx_famcall_node_lead(gw);
    }

    ngx_add_timer(ev, NGX_FAMCALL_NODE_BEAT);
}


static void
ngx_famcall_node_lead(ngx_famcall_gw_t *gw)
{
    if (gw->listening) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, gw->log, 0,
                  "famcall: worker %P listens for the node's events", ngx_pid);

    if (ngx_famcall_pg_listen(gw->fmcf->pg, (ngx_cycle_t *) ngx_cycle,
                              NGX_FAMCALL_SQL_LISTEN,
                              ngx_famcall_node_notify, gw)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, gw->log, 0,
                      "famcall: the node's LISTEN could not start");
        return;
    }

    gw->listening = 1;
}


/* the leader's LISTEN: to the other workers, then to this one's sockets */
static void
ngx_famcall_node_notify(void *data, const char *payload, size_t len)
{
    ngx_famcall_gw_t  *gw = data;

    if (gw->node->leader != ngx_pid) {
        return;     /* another worker took over: it passes them on */
    }

    if (payload != NULL) {
        ngx_famcall_node_broadcast(gw, NGX_FAMCALL_IPC_BUS_EVENTS,
                                   (const u_char *) payload, len);

    } else if (gw->subscribed || gw->took_over) {
        /* (re)subscribed after someone listened: events were missed */
        ngx_famcall_node_broadcast(gw, NGX_FAMCALL_IPC_BUS_RESYNC,
                                   (u_char *) "", 0);
    }

    ngx_famcall_gw_notify(gw, payload, len);
}


static void
ngx_famcall_node_broadcast(ngx_famcall_gw_t *gw, ngx_uint_t type,
    const u_char *data, size_t len)
{
    ngx_uint_t           i, n;
    ngx_pid_t            pids[NGX_FAMCALL_NODE_SLOTS];
    ngx_famcall_node_t  *node = gw->node;

    n = 0;

    ngx_shmtx_lock(node->mutex);

    for (i = 0; i < NGX_FAMCALL_NODE_SLOTS; i++) {
        if (node->workers[i] != 0 && node->workers[i] != ngx_pid) {
            pids[n++] = node->workers[i];
        }
    }

    ngx_shmtx_unlock(node->mutex);

    for (i = 0; i < n; i++) {
        if (ngx_famcall_ipc_send(pids[i], type, data, len) == NGX_DECLINED) {
            ngx_famcall_node_forget(node, pids[i]);
        }
    }
}


/* a worker no longer there: its slot is free */
static void
ngx_famcall_node_forget(ngx_famcall_node_t *node, ngx_pid_t pid)
{
    ngx_uint_t  i;

    ngx_shmtx_lock(node->mutex);

    for (i = 0; i < NGX_FAMCALL_NODE_SLOTS; i++) {
        if (node->workers[i] == pid) {
            node->workers[i] = 0;
        }
    }

    ngx_shmtx_unlock(node->mutex);
}


static void
ngx_famcall_node_events(u_char *data, size_t len)
{
    if (ngx_famcall_node_gw != NULL && len > 0) {
        ngx_famcall_gw_notify(ngx_famcall_node_gw, (const char *) data, len);
    }
}


static void
ngx_famcall_node_resync(u_char *data, size_t len)
{
    if (ngx_famcall_node_gw != NULL) {
        ngx_famcall_gw_resync_all(ngx_famcall_node_gw);
    }
}


/* the leader is exiting: take over now rather than at the next watch */
static void
ngx_famcall_node_kick(u_char *data, size_t len)
{
    ngx_famcall_gw_t  *gw = ngx_famcall_node_gw;

    if (gw == NULL || gw->node == NULL) {
        return;
    }

    if (gw->watch.timer_set) {
        ngx_del_timer(&gw->watch);
    }

    ngx_famcall_node_watch(&gw->watch);
}


/* under the lock: a pid that no longer runs */
static ngx_uint_t
ngx_famcall_node_gone(ngx_pid_t pid)
{
    return kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}
