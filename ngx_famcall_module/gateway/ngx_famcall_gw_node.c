/*
 * famcall: one LISTEN per node.  One worker of the node, the leader, holds
 * the bus's LISTEN connection and passes each notification's lines to the
 * node's workers (ngx_famcall_ipc.c), which deliver them to their own
 * sockets (ngx_famcall_gw_bus.c).  With a LISTEN per
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
 *
 * The leader sends each worker only the lines of the users it has sockets
 * of (the index, ngx_famcall_gw_index.c: a worker sets its bit for a user
 * when the user's first socket opens there and clears it when the last
 * closes).  A worker's bit is set before its socket says hello, so before
 * the client's first sync: an event the socket missed because the leader
 * routed it earlier was committed before that sync's snapshot, and the
 * sync returns it.
 *
 * A leader that finds another in its place (it stood still longer than
 * NGX_FAMCALL_NODE_DEAD, and was taken over) closes its LISTEN; one that
 * leads again LISTENs anew, and its subscription tells the node's sockets
 * to resync what was sent while it did not listen.
 *
 * Delivery inside the node (ngx_famcall_gw_deliver.h): any worker hands
 * an event to the workers of the node that hold a user's sockets, found in
 * the index, or to the one whose instance id a socket's src names, found
 * in the worker slots.  It goes the way the leader's lines go: into the
 * worker's outbox for that worker, one datagram per worker at the end of
 * the event loop's turn.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_gw.h"
#include "ngx_famcall_gw_node.h"
#include "ngx_famcall_gw_index.h"
#include "ngx_famcall_ipc.h"


#define NGX_FAMCALL_NODE_BEAT   1000
#define NGX_FAMCALL_NODE_DEAD   5000


static ngx_int_t ngx_famcall_node_generation(ngx_conf_t *cf, ngx_uint_t *gen);
static ngx_uint_t ngx_famcall_node_capacity(ngx_conf_t *cf);
static ngx_int_t ngx_famcall_node_init_zone(ngx_shm_zone_t *zone, void *data);
static ngx_int_t ngx_famcall_node_route(ngx_famcall_gw_t *gw, u_char *payload,
    size_t len);
static size_t ngx_famcall_node_lines(u_char *out, size_t len,
    ngx_famcall_node_line_t *lines, ngx_uint_t n, uint64_t bit);
static void ngx_famcall_node_free(ngx_famcall_gw_t *gw);
static void ngx_famcall_node_flush_handler(ngx_event_t *ev);
static void ngx_famcall_node_flush(ngx_famcall_gw_t *gw);
static void ngx_famcall_node_flush_slot(ngx_famcall_gw_t *gw, ngx_uint_t s);
static void ngx_famcall_node_lead(ngx_famcall_gw_t *gw);
static void ngx_famcall_node_unlisten(ngx_famcall_gw_t *gw, ngx_pid_t leader);
static void ngx_famcall_node_notify(void *data, const char *payload,
    size_t len);
static void ngx_famcall_node_broadcast(ngx_famcall_gw_t *gw, ngx_uint_t type,
    const u_char *data, size_t len);
static void ngx_famcall_node_watch(ngx_event_t *ev);
static void ngx_famcall_node_events(void *data, u_char *msg, size_t len);
static void ngx_famcall_node_resync(void *data, u_char *msg, size_t len);
static void ngx_famcall_node_kick(void *data, u_char *msg, size_t len);
static void ngx_famcall_node_forget(ngx_famcall_gw_t *gw, ngx_pid_t pid);
static ngx_uint_t ngx_famcall_node_gone(ngx_pid_t pid);


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
    size_t           size;
    ngx_str_t        name;
    ngx_uint_t       capacity, generation;
    ngx_shm_zone_t  *zone;

    if (ngx_famcall_node_generation(cf, &generation) != NGX_OK) {
        return NULL;
    }

    name.data = ngx_pnalloc(cf->pool, sizeof("famcall_node_") + NGX_INT_T_LEN);
    if (name.data == NULL) {
        return NULL;
    }

    name.len = ngx_sprintf(name.data, "famcall_node_%ui", generation)
               - name.data;

    capacity = ngx_famcall_node_capacity(cf);
    size = ngx_famcall_index_size(capacity);

    /* the slab pool's own: a descriptor (24 bytes) per page, and room */
    zone = ngx_shared_memory_add(cf, &name, size + size / 64 + 128 * 1024,
                                 tag);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_famcall_node_init_zone;
    zone->data = (void *) capacity;

    return zone;
}


/*
 * One more than the running configuration's zone (the old cycle's), so
 * that the count lives in the cycles, not in a variable of the master.
 */
static ngx_int_t
ngx_famcall_node_generation(ngx_conf_t *cf, ngx_uint_t *gen)
{
    ngx_int_t         n;
    ngx_uint_t        i;
    ngx_cycle_t      *old;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *zone;

    static const u_char  prefix[] = "famcall_node_";

    *gen = 1;
    old = cf->cycle->old_cycle;

    if (old == NULL || old->shared_memory.part.elts == NULL) {
        return NGX_OK;
    }

    part = &old->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].shm.name.len <= sizeof(prefix) - 1
            || ngx_strncmp(zone[i].shm.name.data, prefix, sizeof(prefix) - 1)
               != 0)
        {
            continue;
        }

        n = ngx_atoi(zone[i].shm.name.data + sizeof(prefix) - 1,
                     zone[i].shm.name.len - (sizeof(prefix) - 1));

        if (n != NGX_ERROR && (ngx_uint_t) n >= *gen) {
            *gen = n + 1;
        }
    }

    return NGX_OK;
}


/*
 * Index entries for the users the node's sockets can be of: twice the
 * workers' connections (the table stays under 3/4 full), at least 4096.
 * Pages are touched only as users are added.
 */
static ngx_uint_t
ngx_famcall_node_capacity(ngx_conf_t *cf)
{
    void             ***ctx;
    ngx_uint_t          want, capacity;
    ngx_core_conf_t    *ccf;
    ngx_event_conf_t   *ecf;

    want = 1 << 18;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);
    ctx = (void ***) ngx_get_conf(cf->cycle->conf_ctx, ngx_events_module);

    if (ctx != NULL && ccf->worker_processes > 0) {
        ecf = (*ctx)[ngx_event_core_module.ctx_index];

        if (ecf->connections != NGX_CONF_UNSET_UINT) {
            want = 2 * (ngx_uint_t) ccf->worker_processes * ecf->connections;
        }
    }

    want = ngx_min(ngx_max(want, 4096), (ngx_uint_t) 1 << 22);

    for (capacity = 4096; capacity < want; capacity <<= 1) { /* void */ }

    return capacity;
}


static ngx_int_t
ngx_famcall_node_init_zone(ngx_shm_zone_t *zone, void *data)
{
    void                *mem;
    size_t               size;
    ngx_uint_t           capacity = (ngx_uint_t) zone->data;
    ngx_slab_pool_t     *shpool;
    ngx_famcall_node_t  *node;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    node = ngx_slab_calloc(shpool, sizeof(ngx_famcall_node_t));
    size = ngx_famcall_index_size(capacity);

    /* the zone is new (a name per load), its pages still zero: not
     * touching them keeps the table's memory for the users it gets */
    mem = ngx_slab_alloc(shpool, size);

    if (node == NULL || mem == NULL) {
        return NGX_ERROR;
    }

#if (NGX_DEBUG_MALLOC)
    ngx_memzero(mem, size);
#endif

    node->mutex = &shpool->mutex;
    node->index = ngx_famcall_index_init(mem, capacity);
    zone->data = node;

    return NGX_OK;
}


/* in a worker: take a slot, and lead or follow */
ngx_int_t
ngx_famcall_gw_node_start(ngx_famcall_gw_t *gw, ngx_cycle_t *cycle)
{
    ngx_uint_t               i, slot;
    ngx_famcall_ipc_t       *ipc = gw->fmcf->ipc;
    ngx_famcall_node_t      *node = gw->gwcf->node_zone->data;
    ngx_famcall_node_out_t  *out;

    out = ngx_pcalloc(cycle->pool, sizeof(ngx_famcall_node_out_t));
    if (out == NULL) {
        return NGX_ERROR;
    }

    out->lines = ngx_palloc(cycle->pool, NGX_FAMCALL_NODE_LINES
                                         * sizeof(ngx_famcall_node_line_t));
    if (out->lines == NULL) {
        return NGX_ERROR;
    }

    out->flush.handler = ngx_famcall_node_flush_handler;
    out->flush.data = gw;
    out->flush.log = gw->log;

    gw->out = out;
    gw->node = node;

    ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BUS_EVENTS,
                       ngx_famcall_node_events, gw);
    ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BUS_RESYNC,
                       ngx_famcall_node_resync, gw);
    ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BUS_KICK,
                       ngx_famcall_node_kick, gw);

    slot = NGX_FAMCALL_NODE_SLOTS;

    ngx_shmtx_lock(node->mutex);

    for (i = 0; i < NGX_FAMCALL_NODE_SLOTS; i++) {
        if (node->slots[i].pid == 0
            || ngx_famcall_node_gone(node->slots[i].pid))
        {
            node->slots[i].pid = ngx_pid;
            ngx_memcpy(node->slots[i].instance, gw->instance,
                       NGX_FAMCALL_ID_LEN);
            slot = i;
            break;
        }
    }

    if (slot < NGX_FAMCALL_NODE_SLOTS) {
        /* a worker that died had it: its users are not this one's */
        if (node->used & ((uint64_t) 1 << slot)) {
            ngx_log_debug1(NGX_LOG_DEBUG_CORE, gw->log, 0,
                           "famcall node: slot %ui was a dead worker's, "
                           "its users cleared", slot);
            ngx_famcall_index_clear_slot(node->index, (unsigned) slot);
        }

        node->used |= (uint64_t) 1 << slot;
        gw->slot = slot;
    }

    ngx_shmtx_unlock(node->mutex);

    if (slot == NGX_FAMCALL_NODE_SLOTS) {
        ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                      "famcall: more than %d workers on this node: "
                      "this one listens for itself", NGX_FAMCALL_NODE_SLOTS);
        gw->node = NULL;
        return ngx_famcall_pg_listen(gw->fmcf->pg, cycle,
                                     gw->gwcf->sql + NGX_FAMCALL_GW_SQL_LISTEN,
                                     ngx_famcall_gw_notify, gw);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, gw->log, 0,
                   "famcall node: worker %P, instance %s, takes slot %ui",
                   ngx_pid, gw->instance, slot);

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
    ngx_famcall_ipc_t   *ipc = gw->fmcf->ipc;
    ngx_famcall_node_t  *node = gw->node;

    if (gw->watch.timer_set) {
        ngx_del_timer(&gw->watch);
    }

    /* what still arrives has no gateway to go to */
    ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BUS_EVENTS, NULL, NULL);
    ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BUS_RESYNC, NULL, NULL);
    ngx_famcall_ipc_on(ipc, NGX_FAMCALL_IPC_BUS_KICK, NULL, NULL);

    if (node == NULL) {
        ngx_famcall_node_free(gw);
        return;
    }

    ngx_famcall_node_flush(gw);     /* what was routed or delivered last */
    ngx_famcall_node_free(gw);

    next = 0;

    ngx_shmtx_lock(node->mutex);

    for (i = 0; i < NGX_FAMCALL_NODE_SLOTS; i++) {
        if (node->slots[i].pid == ngx_pid) {
            node->slots[i].pid = 0;

        } else if (node->slots[i].pid != 0 && next == 0) {
            next = node->slots[i].pid;
        }
    }

    if (node->leader != ngx_pid) {
        next = 0;

    } else {
        node->leader = 0;
    }

    ngx_shmtx_unlock(node->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_CORE, gw->log, 0,
                   "famcall node: worker %P leaves slot %ui", ngx_pid,
                   gw->slot);

    if (next != 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_CORE, gw->log, 0,
                       "famcall node: the exiting leader hands over to %P",
                       next);
        id = 0;
        (void) ngx_famcall_ipc_send(ipc, next, NGX_FAMCALL_IPC_BUS_KICK,
                                    &id, 1);
    }
}


/* user id's first socket opened in this worker (here), or its last closed */
void
ngx_famcall_gw_node_user(ngx_famcall_gw_t *gw, const u_char *id,
    ngx_uint_t here)
{
    int                  rc;
    ngx_famcall_node_t  *node = gw->node;

    if (node == NULL) {
        return;
    }

    ngx_shmtx_lock(node->mutex);
    rc = ngx_famcall_index_set(node->index, id, (unsigned) gw->slot, here);
    ngx_shmtx_unlock(node->mutex);

    if (rc != 0 && gw->out != NULL && !gw->out->full_logged) {
        gw->out->full_logged = 1;
        ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                      "famcall: the node's user index is full: every worker "
                      "reads every event until the next reload");
    }
}


/*
 * Every second: the leader beats; a follower takes over from a leader that
 * is gone or silent; a worker that finds itself replaced stops listening.
 */
static void
ngx_famcall_node_watch(ngx_event_t *ev)
{
    ngx_famcall_gw_t  *gw = ev->data;

    ngx_pid_t            leader;
    ngx_uint_t           take, deposed;
    ngx_famcall_node_t  *node = gw->node;

    take = 0;
    deposed = 0;

    ngx_shmtx_lock(node->mutex);

    if (node->leader == ngx_pid) {
        node->beat = ngx_current_msec;

        /* its LISTEN could not start: it tries again */
        take = !gw->listening;

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

    } else if (gw->listening) {
        deposed = 1;
    }

    leader = node->leader;

    ngx_shmtx_unlock(node->mutex);

    if (take) {
        ngx_famcall_node_lead(gw);

    } else if (deposed) {
        ngx_famcall_node_unlisten(gw, leader);
    }

    ngx_add_timer(ev, NGX_FAMCALL_NODE_BEAT);
}


static void
ngx_famcall_node_lead(ngx_famcall_gw_t *gw)
{
    if (gw->listening) {
        /*
         * It leads again before it noticed that it had been replaced: its
         * LISTEN passed nothing on meanwhile.  A new one, whose
         * subscription makes the node's sockets resync.
         */
        ngx_famcall_node_unlisten(gw, ngx_pid);
        gw->took_over = 1;
    }

    ngx_log_error(NGX_LOG_NOTICE, gw->log, 0,
                  "famcall: worker %P listens for the node's events", ngx_pid);

    if (ngx_famcall_pg_listen(gw->fmcf->pg, (ngx_cycle_t *) ngx_cycle,
                              gw->gwcf->sql + NGX_FAMCALL_GW_SQL_LISTEN,
                              ngx_famcall_node_notify, gw)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, gw->log, 0,
                      "famcall: the node's LISTEN could not start");
        return;
    }

    gw->listening = 1;
}


/* another worker leads: this one's LISTEN goes (and its backend with it) */
static void
ngx_famcall_node_unlisten(ngx_famcall_gw_t *gw, ngx_pid_t leader)
{
    ngx_log_error(NGX_LOG_NOTICE, gw->log, 0,
                  "famcall: worker %P no longer listens for the node's "
                  "events; worker %P does", ngx_pid, leader);

    ngx_famcall_pg_unlisten(gw->fmcf->pg);
    gw->listening = 0;
}


/* the leader's LISTEN: each worker's lines, this one's included */
static void
ngx_famcall_node_notify(void *data, const char *payload, size_t len)
{
    ngx_famcall_gw_t  *gw = data;

    if (gw->node == NULL || gw->node->leader != ngx_pid) {
        /* another worker took over: it passes them on, and this one
         * closes its LISTEN at its next watch */
        return;
    }

    if (payload != NULL) {
        if (ngx_famcall_node_route(gw, (u_char *) payload, len) == NGX_OK) {
            return;
        }

        /* the index is full, or the notification too big to route; what
         * was routed before goes first */
        ngx_famcall_node_flush(gw);
        ngx_famcall_node_broadcast(gw, NGX_FAMCALL_IPC_BUS_EVENTS,
                                   (const u_char *) payload, len);

    } else if (gw->subscribed || gw->took_over) {
        ngx_famcall_node_flush(gw);
        /* (re)subscribed after someone listened: events were missed */
        ngx_log_debug0(NGX_LOG_DEBUG_CORE, gw->log, 0,
                       "famcall node: subscribed after a gap, every worker "
                       "resyncs");
        ngx_famcall_node_broadcast(gw, NGX_FAMCALL_IPC_BUS_RESYNC,
                                   (u_char *) "", 0);
    }

    ngx_famcall_gw_notify(gw, payload, len);
}


/*
 * Each worker, this one too, gets the lines of the notification that
 * concern users it has sockets of, in their order; a worker with none gets
 * nothing.  NGX_DECLINED: not routed (the caller sends it all to all).
 */
static ngx_int_t
ngx_famcall_node_route(ngx_famcall_gw_t *gw, u_char *payload, size_t len)
{
    u_char                   *p, *last, *eol, *u, *end, *comma;
    u_char                    id[16];
    uint64_t                  all, bit;
    ngx_uint_t                n, s;
    ngx_famcall_node_t       *node = gw->node;
    ngx_famcall_node_box_t   *b;
    ngx_famcall_gw_line_t     line;
    ngx_famcall_node_line_t  *lines = gw->out->lines;

    if (len >= NGX_FAMCALL_IPC_MAX) {
        return NGX_DECLINED;
    }

    n = 0;
    all = 0;
    p = payload;
    last = payload + len;

    ngx_shmtx_lock(node->mutex);

    if (ngx_famcall_index_full(node->index)) {
        ngx_shmtx_unlock(node->mutex);
        return NGX_DECLINED;
    }

    for ( /* void */ ; p < last; p = eol + 1) {
        eol = memchr(p, '\n', last - p);
        if (eol == NULL) {
            eol = last;
        }

        if (n == NGX_FAMCALL_NODE_LINES) {
            ngx_shmtx_unlock(node->mutex);
            return NGX_DECLINED;
        }

        lines[n].data = p;
        lines[n].len = eol - p;
        lines[n].mask = 0;

        if (ngx_famcall_gw_line_parse(p, eol, &line) != NGX_OK) {
            /* this worker logs it, once for the node */
            lines[n].mask = (uint64_t) 1 << gw->slot;
            all |= lines[n++].mask;
            continue;
        }

        /* "=<src>": the worker of that socket only */
        if (line.src.len && line.src.data[0] == '=') {
            lines[n].mask = ngx_famcall_node_instance(node, line.src.data + 1,
                                                      line.src.len - 1);
            all |= lines[n++].mask;
            continue;
        }

        u = line.users.data;
        end = u + line.users.len;

        for ( /* void */ ; u < end; u = comma + 1) {
            comma = memchr(u, ',', end - u);
            if (comma == NULL) {
                comma = end;
            }

            if (ngx_famcall_uuid_parse((char *) u, comma - u, id) == 0) {
                lines[n].mask |= ngx_famcall_index_get(node->index, id);
            }
        }

        all |= lines[n++].mask;
    }

    ngx_shmtx_unlock(node->mutex);

    /*
     * Into each worker's box; they go at the end of the event loop's turn,
     * together with those of the other notifications read in the same turn
     * (a batch's commit sends several) and what this worker delivered: one
     * datagram, and one wake-up, per worker instead of one per
     * notification.
     */
    for (s = 0; s < NGX_FAMCALL_NODE_SLOTS; s++) {
        bit = (uint64_t) 1 << s;

        if (!(all & bit)) {
            continue;
        }

        if (ngx_famcall_node_box(gw, s, len) != NGX_OK) {
            return NGX_DECLINED;
        }

        b = &gw->out->box[s];
        b->len = ngx_famcall_node_lines(b->data, b->len, lines, n, bit);
    }

    ngx_famcall_node_post(gw);

    return NGX_OK;
}


/*
 * Slot s's box, with room for len more bytes and a newline: what it held
 * goes first when they would not fit in one datagram.
 */
ngx_int_t
ngx_famcall_node_box(ngx_famcall_gw_t *gw, ngx_uint_t s, size_t len)
{
    ngx_famcall_node_box_t  *b = &gw->out->box[s];

    if (b->data == NULL) {
        b->data = ngx_alloc(NGX_FAMCALL_IPC_MAX, gw->log);
        if (b->data == NULL) {
            return NGX_ERROR;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_CORE, gw->log, 0,
                       "famcall node: a box for slot %ui", s);
    }

    if (b->len + 1 + len > NGX_FAMCALL_IPC_MAX) {
        ngx_famcall_node_flush_slot(gw, s);
    }

    return NGX_OK;
}


void
ngx_famcall_node_post(ngx_famcall_gw_t *gw)
{
    if (!gw->out->flush.posted) {
        ngx_post_event(&gw->out->flush, &ngx_posted_events);
    }
}


/* the boxes' memory, at exit (the cycle's pool goes without a cleanup) */
static void
ngx_famcall_node_free(ngx_famcall_gw_t *gw)
{
    ngx_uint_t               s;
    ngx_famcall_node_out_t  *out = gw->out;

    if (out == NULL) {
        return;
    }

    if (out->flush.posted) {
        ngx_delete_posted_event(&out->flush);
    }

    for (s = 0; s < NGX_FAMCALL_NODE_SLOTS; s++) {
        ngx_free(out->box[s].data);
        out->box[s].data = NULL;
        out->box[s].len = 0;
    }

    gw->out = NULL;
}


static void
ngx_famcall_node_flush_handler(ngx_event_t *ev)
{
    ngx_famcall_node_flush(ev->data);
}


/* the boxes, to every worker that has lines in one */
static void
ngx_famcall_node_flush(ngx_famcall_gw_t *gw)
{
    ngx_uint_t               s;
    ngx_famcall_node_out_t  *out = gw->out;

    if (out == NULL) {
        return;
    }

    if (out->flush.posted) {
        ngx_delete_posted_event(&out->flush);
    }

    for (s = 0; s < NGX_FAMCALL_NODE_SLOTS; s++) {
        if (out->box[s].len > 0) {
            ngx_famcall_node_flush_slot(gw, s);
        }
    }
}


static void
ngx_famcall_node_flush_slot(ngx_famcall_gw_t *gw, ngx_uint_t s)
{
    size_t                   len;
    ngx_pid_t                pid;
    ngx_famcall_node_t      *node = gw->node;
    ngx_famcall_node_box_t  *b = &gw->out->box[s];

    len = b->len;
    b->len = 0;

    if (s == gw->slot) {
        ngx_famcall_gw_notify(gw, (const char *) b->data, len);
        return;
    }

    ngx_shmtx_lock(node->mutex);
    pid = node->slots[s].pid;
    ngx_shmtx_unlock(node->mutex);

    if (pid != 0
        && ngx_famcall_ipc_send(gw->fmcf->ipc, pid,
                                NGX_FAMCALL_IPC_BUS_EVENTS, b->data, len)
           == NGX_DECLINED)
    {
        ngx_famcall_node_forget(gw, pid);
    }
}


/* the lines of a worker's bit appended to out's len bytes; the new len */
static size_t
ngx_famcall_node_lines(u_char *out, size_t len, ngx_famcall_node_line_t *lines,
    ngx_uint_t n, uint64_t bit)
{
    u_char      *o;
    ngx_uint_t   i;

    o = out + len;

    for (i = 0; i < n; i++) {
        if (lines[i].mask & bit) {
            if (o != out) {
                *o++ = '\n';
            }

            o = ngx_cpymem(o, lines[i].data, lines[i].len);
        }
    }

    return o - out;
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
        if (node->slots[i].pid != 0 && node->slots[i].pid != ngx_pid) {
            pids[n++] = node->slots[i].pid;
        }
    }

    ngx_shmtx_unlock(node->mutex);

    for (i = 0; i < n; i++) {
        if (ngx_famcall_ipc_send(gw->fmcf->ipc, pids[i], type, data, len)
            == NGX_DECLINED)
        {
            ngx_famcall_node_forget(gw, pids[i]);
        }
    }
}


/* a worker no longer there: its slot is free */
static void
ngx_famcall_node_forget(ngx_famcall_gw_t *gw, ngx_pid_t pid)
{
    ngx_uint_t           i;
    ngx_famcall_node_t  *node = gw->node;

    ngx_shmtx_lock(node->mutex);

    for (i = 0; i < NGX_FAMCALL_NODE_SLOTS; i++) {
        if (node->slots[i].pid == pid) {
            node->slots[i].pid = 0;

            ngx_log_debug2(NGX_LOG_DEBUG_CORE, gw->log, 0,
                           "famcall node: worker %P is gone, slot %ui free",
                           pid, i);
        }
    }

    ngx_shmtx_unlock(node->mutex);
}


static void
ngx_famcall_node_events(void *data, u_char *msg, size_t len)
{
    ngx_famcall_gw_t  *gw = data;

    if (len > 0) {
        ngx_famcall_gw_notify(gw, (const char *) msg, len);
    }
}


static void
ngx_famcall_node_resync(void *data, u_char *msg, size_t len)
{
    ngx_famcall_gw_resync_all(data);
}


/* the leader is exiting: take over now rather than at the next watch */
static void
ngx_famcall_node_kick(void *data, u_char *msg, size_t len)
{
    ngx_famcall_gw_t  *gw = data;

    if (gw->node == NULL) {
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


/* under the lock: the bit of the worker whose instance src names, or 0 */
uint64_t
ngx_famcall_node_instance(ngx_famcall_node_t *node, u_char *src, size_t len)
{
    ngx_uint_t  s;

    if (len < NGX_FAMCALL_ID_LEN) {
        return 0;
    }

    for (s = 0; s < NGX_FAMCALL_NODE_SLOTS; s++) {
        if (node->slots[s].pid != 0
            && ngx_memcmp(node->slots[s].instance, src, NGX_FAMCALL_ID_LEN)
               == 0)
        {
            return (uint64_t) 1 << s;
        }
    }

    return 0;
}
