/*
 * famcall: delivery inside a node, from any worker (ngx_famcall_gw_deliver.h).
 * The node's index and worker slots say which workers hold the target; this
 * worker's sockets get the event at once, another worker's through this
 * worker's outbox to it (ngx_famcall_gw_node.c flushes the outboxes at the
 * end of the event loop's turn, one datagram per worker).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_famcall_gw.h"
#include "ngx_famcall_gw_node.h"
#include "ngx_famcall_ipc.h"


/*
 * An event longer than this goes to another worker in parts (a box holds
 * NGX_FAMCALL_IPC_MAX bytes, several events when they are small)
 */
#define NGX_FAMCALL_NODE_PART  16000


static ngx_int_t ngx_famcall_node_deliver(ngx_famcall_gw_t *gw,
    const u_char *user, ngx_str_t *src, ngx_uint_t only, ngx_str_t *type,
    ngx_str_t *data);
static ngx_int_t ngx_famcall_node_append(ngx_famcall_gw_t *gw, ngx_uint_t s,
    ngx_famcall_gw_line_t *line, ngx_str_t *part, ngx_str_t *piece);


ngx_int_t
ngx_famcall_gw_deliver_lines(ngx_famcall_gw_t *gw, u_char *p, size_t len)
{
    u_char                 *last, *eol, *u, *end, *comma;
    u_char                  id[16];
    ngx_str_t               src;
    ngx_int_t               rc, any;
    ngx_famcall_gw_line_t   line;

    any = NGX_DECLINED;
    last = p + len;

    for ( /* void */ ; p < last; p = eol + 1) {
        eol = memchr(p, '\n', last - p);
        if (eol == NULL) {
            eol = last;
        }

        if (ngx_famcall_gw_line_parse(p, eol, &line) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, gw->log, 0,
                          "famcall: unreadable event ignored: \"%*s\"",
                          ngx_min(eol - p, 60), p);
            continue;
        }

        u = line.users.data;
        end = u + line.users.len;

        for ( /* void */ ; u < end; u = comma + 1) {
            comma = memchr(u, ',', end - u);
            if (comma == NULL) {
                comma = end;
            }

            if (ngx_famcall_uuid_parse((char *) u, comma - u, id) != 0) {
                continue;
            }

            if (line.src.len && line.src.data[0] == '=') {
                src.data = line.src.data + 1;
                src.len = line.src.len - 1;
                rc = ngx_famcall_gw_deliver_socket(gw, id, &src, &line.type,
                                                   &line.data);

            } else {
                rc = ngx_famcall_gw_deliver_user(gw, id, &line.src,
                                                 &line.type, &line.data);
            }

            if (rc == NGX_OK) {
                any = NGX_OK;
            }
        }
    }

    return any;
}


const char *
ngx_famcall_gw_instance(ngx_famcall_gw_t *gw)
{
    return gw->instance;
}


ngx_uint_t
ngx_famcall_gw_node_has(ngx_famcall_gw_t *gw, ngx_str_t *src)
{
    uint64_t             mask;
    ngx_famcall_node_t  *node = gw->node;

    if (src->len <= NGX_FAMCALL_ID_LEN + 1
        || src->data[NGX_FAMCALL_ID_LEN] != '.')
    {
        return 0;
    }

    if (node == NULL) {
        return ngx_strncmp(src->data, gw->instance, NGX_FAMCALL_ID_LEN) == 0;
    }

    ngx_shmtx_lock(node->mutex);
    mask = ngx_famcall_node_instance(node, src->data, src->len);
    ngx_shmtx_unlock(node->mutex);

    return mask != 0;
}


ngx_int_t
ngx_famcall_gw_hooks_add(ngx_conf_t *cf, const ngx_famcall_gw_hooks_t *hooks)
{
    ngx_famcall_gw_conf_t   *gwcf;
    ngx_famcall_gw_hooks_t  *h;

    gwcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_famcall_gateway_module);

    if (gwcf->hooks == NULL) {
        gwcf->hooks = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_famcall_gw_hooks_t));
        if (gwcf->hooks == NULL) {
            return NGX_ERROR;
        }
    }

    h = ngx_array_push(gwcf->hooks);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = *hooks;

    return NGX_OK;
}


/* 1: the line was a feature's (it went to its hook, and to no socket) */
ngx_uint_t
ngx_famcall_gw_hooks_line(ngx_famcall_gw_t *gw, ngx_famcall_gw_line_t *line)
{
    size_t                   len;
    ngx_uint_t               i;
    ngx_famcall_gw_hooks_t  *h;

    if (gw->gwcf->hooks == NULL) {
        return 0;
    }

    h = gw->gwcf->hooks->elts;

    for (i = 0; i < gw->gwcf->hooks->nelts; i++) {
        if (h[i].prefix == NULL || h[i].line == NULL) {
            continue;
        }

        len = ngx_strlen(h[i].prefix);

        if (line->type.len >= len
            && ngx_strncmp(line->type.data, h[i].prefix, len) == 0)
        {
            h[i].line(gw, &line->type, &line->users, &line->src,
                      &line->data);
            return 1;
        }
    }

    return 0;
}


void
ngx_famcall_gw_hooks_closed(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *src)
{
    ngx_uint_t               i;
    ngx_famcall_gw_hooks_t  *h;

    if (gw->gwcf->hooks == NULL) {
        return;
    }

    h = gw->gwcf->hooks->elts;

    for (i = 0; i < gw->gwcf->hooks->nelts; i++) {
        if (h[i].closed != NULL) {
            h[i].closed(gw, user, src);
        }
    }
}


void
ngx_famcall_gw_hooks_resync(ngx_famcall_gw_t *gw)
{
    ngx_uint_t               i;
    ngx_famcall_gw_hooks_t  *h;

    if (gw->gwcf->hooks == NULL) {
        return;
    }

    h = gw->gwcf->hooks->elts;

    for (i = 0; i < gw->gwcf->hooks->nelts; i++) {
        if (h[i].resync != NULL) {
            h[i].resync(gw);
        }
    }
}


void
ngx_famcall_gw_node_here(ngx_famcall_gw_t *gw, char *out)
{
    char                *p;
    ngx_uint_t           s;
    ngx_famcall_node_t  *node = gw->node;

    p = out;
    *p++ = '{';
    p = (char *) ngx_cpymem(p, gw->instance, NGX_FAMCALL_ID_LEN);

    if (node != NULL) {
        ngx_shmtx_lock(node->mutex);

        for (s = 0; s < NGX_FAMCALL_NODE_SLOTS; s++) {
            if (s != gw->slot && node->slots[s].pid != 0) {
                *p++ = ',';
                p = (char *) ngx_cpymem(p, node->slots[s].instance,
                                        NGX_FAMCALL_ID_LEN);
            }
        }

        ngx_shmtx_unlock(node->mutex);
    }

    *p++ = '}';
    *p = '\0';
}


ngx_int_t
ngx_famcall_gw_deliver_user(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *skip, ngx_str_t *type, ngx_str_t *data)
{
    return ngx_famcall_node_deliver(gw, user, skip, 0, type, data);
}


ngx_int_t
ngx_famcall_gw_deliver_socket(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *src, ngx_str_t *type, ngx_str_t *data)
{
    if (src == NULL || src->len <= NGX_FAMCALL_ID_LEN + 1
        || src->data[NGX_FAMCALL_ID_LEN] != '.')
    {
        return NGX_DECLINED;
    }

    return ngx_famcall_node_deliver(gw, user, src, 1, type, data);
}


/*
 * Which workers of the node: those the index has for the user, or the one
 * whose instance src names (only).  This worker's sockets get the event
 * now; the others' worker, a line in its box: "<type> <user> <src> <data>"
 * as on the bus, src "=<src>" for "that socket only".
 */
static ngx_int_t
ngx_famcall_node_deliver(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *src, ngx_uint_t only, ngx_str_t *type, ngx_str_t *data)
{
    char                     id[NGX_FAMCALL_ID_LEN + 1];
    u_char                   head[64];
    size_t                   srclen;
    uint64_t                 mask, bit, nid;
    ngx_str_t                part, piece;
    ngx_uint_t               s, here, i, n;
    ngx_famcall_node_t      *node = gw->node;
    ngx_famcall_gw_line_t    line;
    u_char                   target[1 + NGX_FAMCALL_GW_SRC_LEN];

    if (type->len == 0 || data->len == 0
        || memchr(type->data, ' ', type->len) != NULL
        || memchr(type->data, '\n', type->len) != NULL
        || memchr(data->data, '\n', data->len) != NULL)
    {
        return NGX_ERROR;
    }

    srclen = (src != NULL) ? src->len : 0;

    if (srclen > NGX_FAMCALL_GW_SRC_LEN
        || (srclen && memchr(src->data, ' ', srclen) != NULL))
    {
        return NGX_ERROR;
    }

    ngx_famcall_uuid_format(user, id);

    line.type = *type;
    line.users.data = (u_char *) id;
    line.users.len = NGX_FAMCALL_ID_LEN;
    line.data = *data;

    if (only) {
        target[0] = '=';
        ngx_memcpy(target + 1, src->data, srclen);
        line.src.data = target;
        line.src.len = 1 + srclen;

    } else if (srclen) {
        line.src = *src;

    } else {
        ngx_str_null(&line.src);
    }

    mask = 0;

    if (node != NULL && gw->out != NULL) {
        ngx_shmtx_lock(node->mutex);

        if (only) {
            mask = ngx_famcall_node_instance(node, src->data, src->len);

        } else {
            mask = ngx_famcall_index_get(node->index, user);
        }

        ngx_shmtx_unlock(node->mutex);

        bit = (uint64_t) 1 << gw->slot;

    } else {
        /* a worker outside the node: its own sockets only */
        bit = 1;
        mask = 1;
    }

    here = 0;

    if (mask & bit) {
        mask &= ~bit;
        here = ngx_famcall_gw_line_deliver(gw, &line);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_CORE, gw->log, 0,
                   "famcall node: deliver \"%V\" to %s: %ui here, "
                   "workers %xL", type, id, here, mask);

    if (mask == 0) {
        return here ? NGX_OK : NGX_DECLINED;
    }

    /*
     * A long event goes in parts, "~<id>.<i>.<n> <piece>" in place of its
     * data, one after the other in the box, and its worker puts them
     * together (ngx_famcall_gw_bus.c); the id is this process's own.
     */
    n = (data->len + NGX_FAMCALL_NODE_PART - 1) / NGX_FAMCALL_NODE_PART;
    nid = (n > 1) ? ++gw->next_part : 0;

    for (s = 0; s < NGX_FAMCALL_NODE_SLOTS; s++) {
        bit = (uint64_t) 1 << s;

        if (!(mask & bit)) {
            continue;
        }

        if (n <= 1) {
            if (ngx_famcall_node_append(gw, s, &line, NULL, data) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        for (i = 0; i < n; i++) {
            part.data = head;
            part.len = ngx_sprintf(head, "~w%P-%uL.%ui.%ui", ngx_pid, nid,
                                   i + 1, n)
                       - head;
            piece.data = data->data + i * NGX_FAMCALL_NODE_PART;
            piece.len = ngx_min(NGX_FAMCALL_NODE_PART,
                                data->len - i * NGX_FAMCALL_NODE_PART);

            if (ngx_famcall_node_append(gw, s, &line, &part, &piece)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    ngx_famcall_node_post(gw);

    return NGX_OK;
}


/* "<type> <user> <src> [<part> ]<piece>" at the end of slot s's box */
static ngx_int_t
ngx_famcall_node_append(ngx_famcall_gw_t *gw, ngx_uint_t s,
    ngx_famcall_gw_line_t *line, ngx_str_t *part, ngx_str_t *piece)
{
    u_char  *p;
    size_t   len;

    len = line->type.len + 1 + line->users.len + 1
          + (line->src.len ? line->src.len : 1) + 1
          + (part ? part->len + 1 : 0) + piece->len;

    if (len >= NGX_FAMCALL_IPC_MAX
        || ngx_famcall_node_box(gw, s, len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = gw->out->box[s].data + gw->out->box[s].len;

    if (gw->out->box[s].len) {
        *p++ = '\n';
    }

    p = ngx_cpymem(p, line->type.data, line->type.len);
    *p++ = ' ';
    p = ngx_cpymem(p, line->users.data, line->users.len);
    *p++ = ' ';

    if (line->src.len) {
        p = ngx_cpymem(p, line->src.data, line->src.len);

    } else {
        *p++ = '-';
    }

    *p++ = ' ';

    if (part) {
        p = ngx_cpymem(p, part->data, part->len);
        *p++ = ' ';
    }

    p = ngx_cpymem(p, piece->data, piece->len);

    gw->out->box[s].len = p - gw->out->box[s].data;

    return NGX_OK;
}
