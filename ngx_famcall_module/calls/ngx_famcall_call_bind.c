/*
 * famcall: the node's bindings of accepted calls (ngx_famcall_call_bind.h),
 * in a shared zone every worker of the node reads.
 *
 * Two red-black trees, as limit_req's zone keeps its states: calls by id,
 * and the bound sockets by src (a socket closing finds its call without a
 * walk).  A socket is bound to one call at a time (a user is in one call
 * at most), so binding a call first drops what held either socket.
 *
 * Where a binding comes from, and goes.  The calls row's trigger (sql/025)
 * sends, from the transaction that changed it:
 *
 *     node:call-bind <caller> =<caller src> <call> <caller> <caller src>
 *                                          <callee> <callee src>
 *         when the call is accepted, or a side resumes from a new socket;
 *     node:call-unbind, the same fields, the values it had, to each of the
 *         two sockets, when it stops being accepted, a side resumes, or
 *         the row is deleted.
 *
 * A bind goes to the caller's socket's worker only, and so does one of the
 * two unbinds: that worker reads them in commit order, so an unbind is
 * never overtaken by the bind before it.  An unbind drops the binding only
 * if it still names the same sockets (a resume's bind may have come first,
 * through another worker).  The second unbind goes to the callee's socket,
 * so that whichever of the two heard of the end first drops the binding.
 * A bind is kept only when both sockets are on this node: otherwise
 * relays cross nodes, through the row and the bus.
 *
 * And the node drops a binding whenever it cannot be sure: when one of its
 * sockets sends call:end or call:resume (before the statement runs: a
 * relay right after the end must find the row ended), when a bound socket
 * closes, when a relay finds the peer's worker gone, and all of them when
 * the bus had a gap (a missed unbind).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_call_bind.h"
#include "ngx_famcall_gw_deliver.h"


#define NGX_FAMCALL_CALL_BIND_PREFIX  "node:call-"
#define NGX_FAMCALL_CALL_BIND_EVICT   8
#define NGX_FAMCALL_CALL_BIND_EPOCHS  256

/* a call's counter of drops (ngx_famcall_call_bind_epoch()) */
#define ngx_famcall_call_bind_bucket(call)                                    \
    ((call)[15] % NGX_FAMCALL_CALL_BIND_EPOCHS)


typedef struct ngx_famcall_call_bind_s  ngx_famcall_call_bind_t;

/* a bound socket, in the tree by src */
typedef struct {
    ngx_rbtree_node_t              node;        /* key: crc32 of src */
    ngx_famcall_call_bind_t       *bind;
    u_char                         user[16];
    size_t                         srclen;
    u_char                         src[NGX_FAMCALL_CALL_SRC_LEN + 1];
} ngx_famcall_call_side_t;

struct ngx_famcall_call_bind_s {
    ngx_rbtree_node_t              node;        /* key: crc32 of the id */
    ngx_queue_t                    age;         /* newest first */
    u_char                         call[16];
    ngx_famcall_call_side_t        side[2];     /* caller, callee */
};

typedef struct {
    ngx_rbtree_t                   calls;
    ngx_rbtree_node_t              calls_sentinel;
    ngx_rbtree_t                   srcs;
    ngx_rbtree_node_t              srcs_sentinel;
    ngx_queue_t                    age;
    ngx_uint_t                     epoch[NGX_FAMCALL_CALL_BIND_EPOCHS];
} ngx_famcall_call_bind_sh_t;

typedef struct {
    ngx_famcall_call_bind_sh_t    *sh;
    ngx_slab_pool_t               *shpool;
} ngx_famcall_call_bind_ctx_t;


static ngx_int_t ngx_famcall_call_bind_init_zone(ngx_shm_zone_t *zone,
    void *data);
static void ngx_famcall_call_bind_insert_call(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_famcall_call_bind_insert_src(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_famcall_call_bind_t *ngx_famcall_call_bind_find(
    ngx_famcall_call_bind_sh_t *sh, const u_char *call);
static ngx_famcall_call_side_t *ngx_famcall_call_bind_find_src(
    ngx_famcall_call_bind_sh_t *sh, const u_char *src, size_t len);
static void ngx_famcall_call_bind_delete(ngx_famcall_call_bind_ctx_t *ctx,
    ngx_famcall_call_bind_t *b);
static ngx_int_t ngx_famcall_call_bind_add(ngx_famcall_call_bind_ctx_t *ctx,
    const u_char *call, u_char users[2][16], ngx_str_t *srcs);
static ngx_famcall_call_bind_ctx_t *ngx_famcall_call_bind_ctx(void);
static ngx_int_t ngx_famcall_call_bind_parse(ngx_str_t *data, u_char *call,
    u_char users[2][16], ngx_str_t *srcs);
static void ngx_famcall_call_bind_set(ngx_famcall_gw_t *gw,
    ngx_famcall_call_bind_ctx_t *ctx, const u_char *call,
    u_char users[2][16], ngx_str_t *srcs);
static void ngx_famcall_call_bind_line(ngx_famcall_gw_t *gw, ngx_str_t *type,
    ngx_str_t *users, ngx_str_t *src, ngx_str_t *data);
static void ngx_famcall_call_bind_closed(ngx_famcall_gw_t *gw,
    const u_char *user, ngx_str_t *src);
static void ngx_famcall_call_bind_resync(ngx_famcall_gw_t *gw);


static const ngx_famcall_gw_hooks_t  ngx_famcall_call_bind_hooks = {
    NGX_FAMCALL_CALL_BIND_PREFIX,
    ngx_famcall_call_bind_line,
    ngx_famcall_call_bind_closed,
    ngx_famcall_call_bind_resync
};


ngx_int_t
ngx_famcall_call_bind_init(ngx_conf_t *cf, ngx_famcall_calls_conf_t *ccf)
{
    ngx_str_t                     name = ngx_string("famcall_call_bind");
    ngx_famcall_call_bind_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_call_bind_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ccf->bind_zone = ngx_shared_memory_add(cf, &name,
                                           NGX_FAMCALL_CALL_BIND_ZONE,
                                           &ngx_http_famcall_calls_module);
    if (ccf->bind_zone == NULL) {
        return NGX_ERROR;
    }

    ccf->bind_zone->init = ngx_famcall_call_bind_init_zone;
    ccf->bind_zone->data = ctx;

    return ngx_famcall_gw_hooks_add(cf, &ngx_famcall_call_bind_hooks);
}


/* a reload keeps the bindings: its sockets' srcs do not change */
static ngx_int_t
ngx_famcall_call_bind_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_famcall_call_bind_ctx_t  *octx = data;

    ngx_slab_pool_t              *shpool;
    ngx_famcall_call_bind_ctx_t  *ctx = zone->data;

    if (octx != NULL) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        ctx->shpool = shpool;
        ctx->sh = shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(shpool, sizeof(ngx_famcall_call_bind_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ctx->sh;
    shpool->log_nomem = 0;
    ctx->shpool = shpool;

    ngx_rbtree_init(&ctx->sh->calls, &ctx->sh->calls_sentinel,
                    ngx_famcall_call_bind_insert_call);
    ngx_rbtree_init(&ctx->sh->srcs, &ctx->sh->srcs_sentinel,
                    ngx_famcall_call_bind_insert_src);
    ngx_queue_init(&ctx->sh->age);

    return NGX_OK;
}


static void
ngx_famcall_call_bind_insert_call(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t        **p;
    ngx_famcall_call_bind_t   *b, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            b = (ngx_famcall_call_bind_t *) node;
            t = (ngx_famcall_call_bind_t *) temp;

            p = (ngx_memcmp(b->call, t->call, 16) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static void
ngx_famcall_call_bind_insert_src(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t        **p;
    ngx_famcall_call_side_t   *s, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            s = (ngx_famcall_call_side_t *) node;
            t = (ngx_famcall_call_side_t *) temp;

            p = (ngx_memn2cmp(s->src, t->src, s->srclen, t->srclen) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* under the zone's lock */
static ngx_famcall_call_bind_t *
ngx_famcall_call_bind_find(ngx_famcall_call_bind_sh_t *sh, const u_char *call)
{
    ngx_int_t                 rc;
    ngx_rbtree_key_t          key;
    ngx_rbtree_node_t        *node, *sentinel;
    ngx_famcall_call_bind_t  *b;

    key = ngx_crc32_short((u_char *) call, 16);
    node = sh->calls.root;
    sentinel = sh->calls.sentinel;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        b = (ngx_famcall_call_bind_t *) node;
        rc = ngx_memcmp(call, b->call, 16);

        if (rc == 0) {
            return b;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* under the zone's lock */
static ngx_famcall_call_side_t *
ngx_famcall_call_bind_find_src(ngx_famcall_call_bind_sh_t *sh,
    const u_char *src, size_t len)
{
    ngx_int_t                 rc;
    ngx_rbtree_key_t          key;
    ngx_rbtree_node_t        *node, *sentinel;
    ngx_famcall_call_side_t  *s;

    key = ngx_crc32_short((u_char *) src, len);
    node = sh->srcs.root;
    sentinel = sh->srcs.sentinel;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        s = (ngx_famcall_call_side_t *) node;
        rc = ngx_memn2cmp((u_char *) src, s->src, len, s->srclen);

        if (rc == 0) {
            return s;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* under the zone's lock */
static void
ngx_famcall_call_bind_delete(ngx_famcall_call_bind_ctx_t *ctx,
    ngx_famcall_call_bind_t *b)
{
    ctx->sh->epoch[ngx_famcall_call_bind_bucket(b->call)]++;

    ngx_rbtree_delete(&ctx->sh->calls, &b->node);
    ngx_rbtree_delete(&ctx->sh->srcs, &b->side[0].node);
    ngx_rbtree_delete(&ctx->sh->srcs, &b->side[1].node);
    ngx_queue_remove(&b->age);
    ngx_slab_free_locked(ctx->shpool, b);
}


/* under the zone's lock: call bound between (users[0], srcs[0]) and [1] */
static ngx_int_t
ngx_famcall_call_bind_add(ngx_famcall_call_bind_ctx_t *ctx,
    const u_char *call, u_char users[2][16], ngx_str_t *srcs)
{
    ngx_uint_t                i;
    ngx_queue_t              *q;
    ngx_famcall_call_side_t  *s;
    ngx_famcall_call_bind_t  *b;

    b = ngx_famcall_call_bind_find(ctx->sh, call);
    if (b != NULL) {
        ngx_famcall_call_bind_delete(ctx, b);
    }

    for (i = 0; i < 2; i++) {
        s = ngx_famcall_call_bind_find_src(ctx->sh, srcs[i].data,
                                           srcs[i].len);
        if (s != NULL) {
            ngx_famcall_call_bind_delete(ctx, s->bind);
        }
    }

    b = ngx_slab_alloc_locked(ctx->shpool, sizeof(ngx_famcall_call_bind_t));

    /* full: the oldest go (a call that went on for long asks the row) */
    for (i = 0; b == NULL && i < NGX_FAMCALL_CALL_BIND_EVICT; i++) {
        if (ngx_queue_empty(&ctx->sh->age)) {
            break;
        }

        q = ngx_queue_last(&ctx->sh->age);
        ngx_famcall_call_bind_delete(ctx,
            ngx_queue_data(q, ngx_famcall_call_bind_t, age));

        b = ngx_slab_alloc_locked(ctx->shpool,
                                  sizeof(ngx_famcall_call_bind_t));
    }

    if (b == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(b->call, call, 16);
    b->node.key = ngx_crc32_short(b->call, 16);
    ngx_rbtree_insert(&ctx->sh->calls, &b->node);

    for (i = 0; i < 2; i++) {
        s = &b->side[i];
        s->bind = b;
        ngx_memcpy(s->user, users[i], 16);
        s->srclen = srcs[i].len;
        ngx_memcpy(s->src, srcs[i].data, srcs[i].len);
        s->src[s->srclen] = '\0';
        s->node.key = ngx_crc32_short(s->src, s->srclen);
        ngx_rbtree_insert(&ctx->sh->srcs, &s->node);
    }

    ngx_queue_insert_head(&ctx->sh->age, &b->age);

    return NGX_OK;
}


static ngx_famcall_call_bind_ctx_t *
ngx_famcall_call_bind_ctx(void)
{
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_famcall_calls_conf();

    if (ccf == NULL || ccf->bind_zone == NULL) {
        return NULL;
    }

    return ccf->bind_zone->data;
}


ngx_int_t
ngx_famcall_call_bind_peer(ngx_famcall_calls_conf_t *ccf, const u_char *call,
    const u_char *user, ngx_str_t *src, u_char *peer, u_char *psrc)
{
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_famcall_call_side_t      *s, *p;
    ngx_famcall_call_bind_t      *b;
    ngx_famcall_call_bind_ctx_t  *ctx;

    ctx = ccf->bind_zone ? ccf->bind_zone->data : NULL;

    if (ctx == NULL || ctx->sh == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    b = ngx_famcall_call_bind_find(ctx->sh, call);

    for (i = 0; b != NULL && i < 2; i++) {
        s = &b->side[i];

        if (ngx_memcmp(s->user, user, 16) == 0
            && s->srclen == src->len
            && ngx_memcmp(s->src, src->data, src->len) == 0)
        {
            p = &b->side[1 - i];
            ngx_memcpy(peer, p->user, 16);
            ngx_memcpy(psrc, p->src, p->srclen + 1);
            rc = NGX_OK;
            break;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


void
ngx_famcall_call_unbind(ngx_famcall_calls_conf_t *ccf, const u_char *call)
{
    ngx_famcall_call_bind_t      *b;
    ngx_famcall_call_bind_ctx_t  *ctx;

    ctx = ccf->bind_zone ? ccf->bind_zone->data : NULL;

    if (ctx == NULL || ctx->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    /* a fill on its way (ngx_famcall_call_bind_fill()) is out of date */
    ctx->sh->epoch[ngx_famcall_call_bind_bucket(call)]++;

    b = ngx_famcall_call_bind_find(ctx->sh, call);
    if (b != NULL) {
        ngx_famcall_call_bind_delete(ctx, b);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_uint_t
ngx_famcall_call_bind_epoch(ngx_famcall_calls_conf_t *ccf, const u_char *call)
{
    ngx_uint_t                    epoch;
    ngx_famcall_call_bind_ctx_t  *ctx;

    ctx = ccf->bind_zone ? ccf->bind_zone->data : NULL;

    if (ctx == NULL || ctx->sh == NULL) {
        return 0;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);
    epoch = ctx->sh->epoch[ngx_famcall_call_bind_bucket(call)];
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return epoch;
}


void
ngx_famcall_call_bind_fill(ngx_famcall_calls_conf_t *ccf,
    ngx_famcall_gw_t *gw, ngx_uint_t epoch, ngx_str_t *data)
{
    u_char                        call[16];
    u_char                        users[2][16];
    ngx_str_t                     srcs[2];
    ngx_famcall_call_bind_ctx_t  *ctx;

    ctx = ccf->bind_zone ? ccf->bind_zone->data : NULL;

    if (ctx == NULL || ctx->sh == NULL || gw == NULL
        || ngx_famcall_call_bind_parse(data, call, users, srcs) != NGX_OK)
    {
        return;
    }

    if (!(ngx_famcall_gw_node_has(gw, &srcs[0])
          && ngx_famcall_gw_node_has(gw, &srcs[1])))
    {
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    /* nothing dropped it since the statement read the row */
    if (ctx->sh->epoch[ngx_famcall_call_bind_bucket(call)] == epoch
        && ngx_famcall_call_bind_find(ctx->sh, call) == NULL)
    {
        ngx_famcall_call_bind_set(gw, ctx, call, users, srcs);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* "<call> <caller> <caller src> <callee> <callee src>" */
static ngx_int_t
ngx_famcall_call_bind_parse(ngx_str_t *data, u_char *call,
    u_char users[2][16], ngx_str_t *srcs)
{
    u_char      *p, *last, *sp;
    ngx_str_t    f[5];
    ngx_uint_t   i;

    p = data->data;
    last = p + data->len;

    for (i = 0; i < 5; i++) {
        sp = memchr(p, ' ', last - p);
        if (sp == NULL) {
            sp = last;
        }

        f[i].data = p;
        f[i].len = sp - p;
        p = (sp < last) ? sp + 1 : last;
    }

    if (ngx_famcall_uuid_parse((char *) f[0].data, f[0].len, call) != 0
        || ngx_famcall_uuid_parse((char *) f[1].data, f[1].len, users[0]) != 0
        || ngx_famcall_uuid_parse((char *) f[3].data, f[3].len, users[1]) != 0
        || f[2].len == 0 || f[2].len > NGX_FAMCALL_CALL_SRC_LEN
        || f[4].len == 0 || f[4].len > NGX_FAMCALL_CALL_SRC_LEN)
    {
        return NGX_ERROR;
    }

    srcs[0] = f[2];
    srcs[1] = f[4];

    return NGX_OK;
}


/* under the zone's lock */
static void
ngx_famcall_call_bind_set(ngx_famcall_gw_t *gw,
    ngx_famcall_call_bind_ctx_t *ctx, const u_char *call,
    u_char users[2][16], ngx_str_t *srcs)
{
    if (ngx_famcall_call_bind_add(ctx, call, users, srcs) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, gw->log, 0,
                      "famcall call: no room for a binding in "
                      "\"famcall_call_bind\"; its relays ask the row");
    }
}


/*
 * "node:call-bind" or "node:call-unbind", data "<call> <caller> <caller
 * src> <callee> <callee src>"
 */
static void
ngx_famcall_call_bind_line(ngx_famcall_gw_t *gw, ngx_str_t *type,
    ngx_str_t *users, ngx_str_t *src, ngx_str_t *data)
{
    u_char                        call[16];
    u_char                        ids[2][16];
    ngx_str_t                     srcs[2];
    ngx_uint_t                    bind;
    ngx_famcall_call_bind_t      *b;
    ngx_famcall_call_bind_ctx_t  *ctx;

    static const u_char  bind_type[] = NGX_FAMCALL_CALL_BIND_PREFIX "bind";

    ctx = ngx_famcall_call_bind_ctx();
    if (ctx == NULL || ctx->sh == NULL) {
        return;
    }

    /*
     * The worker of the socket the line names, alone (a leader whose index
     * is full sends every line to every worker): one worker reads a call's
     * binds, in commit order.
     */
    if (src->len < 1 + NGX_FAMCALL_ID_LEN || src->data[0] != '='
        || ngx_strncmp(src->data + 1, ngx_famcall_gw_instance(gw),
                       NGX_FAMCALL_ID_LEN)
           != 0)
    {
        return;
    }

    if (ngx_famcall_call_bind_parse(data, call, ids, srcs) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, gw->log, 0,
                      "famcall call: a binding line ignored: \"%V\"", data);
        return;
    }

    bind = (type->len == sizeof(bind_type) - 1
            && ngx_strncmp(type->data, bind_type, type->len) == 0);

    if (bind
        && !(ngx_famcall_gw_node_has(gw, &srcs[0])
             && ngx_famcall_gw_node_has(gw, &srcs[1])))
    {
        /* a side is on another node: its relays cross through the row */
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (bind) {
        ngx_famcall_call_bind_set(gw, ctx, call, ids, srcs);

    } else {
        ctx->sh->epoch[ngx_famcall_call_bind_bucket(call)]++;

        /* the same sockets only: a resume's bind may have come first */
        b = ngx_famcall_call_bind_find(ctx->sh, call);

        if (b != NULL
            && ngx_memn2cmp(b->side[0].src, srcs[0].data, b->side[0].srclen,
                            srcs[0].len) == 0
            && ngx_memn2cmp(b->side[1].src, srcs[1].data, b->side[1].srclen,
                            srcs[1].len) == 0)
        {
            ngx_famcall_call_bind_delete(ctx, b);
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, gw->log, 0,
                   "famcall call: %V %V", type, data);
}


/* a socket of this worker closed: no binding names it any more */
static void
ngx_famcall_call_bind_closed(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *src)
{
    ngx_famcall_call_side_t      *s;
    ngx_famcall_call_bind_ctx_t  *ctx;

    ctx = ngx_famcall_call_bind_ctx();
    if (ctx == NULL || ctx->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    s = ngx_famcall_call_bind_find_src(ctx->sh, src->data, src->len);
    if (s != NULL) {
        ngx_famcall_call_bind_delete(ctx, s->bind);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* the bus had a gap: an unbind may have been missed, the rows decide */
static void
ngx_famcall_call_bind_resync(ngx_famcall_gw_t *gw)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q;
    ngx_famcall_call_bind_ctx_t  *ctx;

    ctx = ngx_famcall_call_bind_ctx();
    if (ctx == NULL || ctx->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (i = 0; i < NGX_FAMCALL_CALL_BIND_EPOCHS; i++) {
        ctx->sh->epoch[i]++;
    }

    while (!ngx_queue_empty(&ctx->sh->age)) {
        q = ngx_queue_head(&ctx->sh->age);
        ngx_famcall_call_bind_delete(ctx,
            ngx_queue_data(q, ngx_famcall_call_bind_t, age));
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


void
ngx_famcall_call_unbind_id(const char *call_id)
{
    u_char                     call[16];
    ngx_famcall_calls_conf_t  *ccf;

    ccf = ngx_famcall_calls_conf();

    if (call_id != NULL && ccf != NULL
        && ngx_famcall_uuid_parse(call_id, ngx_strlen(call_id), call) == 0)
    {
        ngx_famcall_call_unbind(ccf, call);
    }
}
