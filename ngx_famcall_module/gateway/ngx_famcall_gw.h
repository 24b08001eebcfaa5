/*
 * famcall: the gateway's own types, shared by its files:
 *
 *   ngx_famcall_gateway.c      a worker's gateway: start, exit, sockets
 *                              opening and closing, the instance row
 *   ngx_famcall_gw_registry.c  user id -> sockets here, and presence
 *   ngx_famcall_gw_bus.c       LISTEN: events from any worker of any node
 *                              to the sockets here
 *   ngx_famcall_gw_node.c      the node: its workers, the LISTEN leader
 *   ngx_famcall_gw_deliver.c   delivery to the sockets of any worker of the
 *                              node (ngx_famcall_gw_deliver.h)
 *   ngx_famcall_gw_events.c    what clients send: the table of events,
 *                              its handlers, answers under each ref
 */

#ifndef _NGX_FAMCALL_GW_H_INCLUDED_
#define _NGX_FAMCALL_GW_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_famcall_gateway.h"
#include "ngx_famcall_ws.h"
#include "ngx_famcall_token.h"
#include "ngx_famcall_gw_events.h"


#define NGX_FAMCALL_GW_BUCKETS_MIN    1024
#define NGX_FAMCALL_GW_MAX_OPS        32
#define NGX_FAMCALL_GW_HEARTBEAT      60000
/* a first registration that failed is tried again after (ms) */
#define NGX_FAMCALL_GW_REGISTER_RETRY 1000
#define NGX_FAMCALL_GW_TYPING_BURST   5
#define NGX_FAMCALL_GW_SRC_LEN        (NGX_FAMCALL_ID_LEN + 1 + NGX_INT64_LEN)

/* users per presence batch: one transaction holds their rows locked */
#define NGX_FAMCALL_GW_PRESENCE_BATCH 128
#define NGX_FAMCALL_GW_PRESENCE_RETRY 1000


typedef struct ngx_famcall_node_s        ngx_famcall_node_t;
typedef struct ngx_famcall_node_out_s    ngx_famcall_node_out_t;
typedef struct ngx_famcall_gw_user_s     ngx_famcall_gw_user_t;
typedef struct ngx_famcall_gw_session_s  ngx_famcall_gw_session_t;


/* an event on the bus: "<type> <users> <src> <data>" (ngx_famcall_gw_bus.c) */
typedef struct {
    ngx_str_t                      type;
    ngx_str_t                      users;        /* ids, comma-separated */
    ngx_str_t                      src;          /* empty: none */
    ngx_str_t                      data;         /* JSON text */
} ngx_famcall_gw_line_t;


struct ngx_famcall_gw_s {
    ngx_http_famcall_main_conf_t  *fmcf;
    ngx_log_t                     *log;
    char                           instance[NGX_FAMCALL_ID_LEN + 1];
    uint64_t                       next_id;
    u_char                        *scratch;      /* ws_max_message bytes */
    ngx_famcall_ws_handler_t       handler;      /* what its sockets do */

    ngx_queue_t                   *buckets;
    ngx_uint_t                     nbuckets;     /* a power of 2 */
    ngx_uint_t                     nusers;

    /* presence changes: one batch at the database, the next one waits */
    ngx_queue_t                    presence_wait;
    ngx_famcall_pg_query_t        *presence_query;
    ngx_event_t                    presence_retry; /* after a failed batch */
    ngx_famcall_gw_user_t        **presence_batch;
    ngx_uint_t                     presence_n;
    char                          *presence_users;  /* its parameters */
    char                          *presence_online;

    ngx_event_t                    heartbeat;
    ngx_famcall_node_t            *node;         /* NULL: listens alone */
    ngx_uint_t                     slot;         /* its place in the node */
    ngx_event_t                    watch;        /* on the node's leader */
    unsigned                       listening:1;  /* holds a LISTEN */
    unsigned                       took_over:1;  /* led after another */
    unsigned                       subscribed:1; /* the bus was up before */
    unsigned                       swept:1;      /* exit sweep sent */
    unsigned                       exiting:1;    /* in exit_process */
    unsigned                       registered:1; /* its instance row is
                                                    committed: presence
                                                    rows may name it */

    ngx_famcall_gw_conf_t         *gwcf;         /* the gateway module's */
    ngx_famcall_node_out_t        *out;          /* lines for the node's
                                                    workers, this turn */

    /* events that came in parts, being put together (ngx_famcall_gw_bus.c) */
    ngx_queue_t                    parts;
    ngx_uint_t                     nparts;
    uint64_t                       next_part;    /* the ids of its own */
};


struct ngx_famcall_gw_user_s {
    ngx_queue_t                    bucket;
    u_char                         id[16];
    ngx_queue_t                    sockets;
    ngx_uint_t                     nsockets;
    ngx_famcall_gw_t              *gw;
    ngx_queue_t                    presence;     /* in gw->presence_wait */
    unsigned                       waiting:1;    /* in gw->presence_wait */
    unsigned                       sent:1;       /* in the batch in flight */
    unsigned                       online:1;     /* as the database has it */
    unsigned                       unsure:1;     /* a batch failed: either */
    unsigned                       asked:1;      /* what the batch asks */
};


/* a socket as the gateway knows it (the transport's is ngx_famcall_ws_t) */
struct ngx_famcall_gw_session_s {
    ngx_famcall_ws_t              *ws;
    ngx_famcall_gw_t              *gw;
    uint64_t                       id;           /* unique in this worker */
    u_char                         user[16];     /* the user id, binary */
    ngx_famcall_gw_user_t         *gw_user;      /* in the worker's registry */
    ngx_queue_t                    gw_link;      /* in gw_user's sockets */
    ngx_queue_t                    ops;          /* answers it waits for */
    ngx_uint_t                     nops;
    ngx_msec_t                     typing_at;    /* token bucket: when empty */
};


/* an event's answer a socket waits for (ngx_famcall_gw_events.h) */
struct ngx_famcall_gw_op_s {
    ngx_queue_t                    link;         /* in s->ops */
    ngx_famcall_gw_session_t      *s;
    ngx_famcall_pg_query_t        *query;
    ngx_famcall_batch_entry_t     *entry;
    ngx_famcall_gw_done_pt         done;         /* after the answer */
    void                          *done_data;
    size_t                         reflen;
    u_char                         ref[1];       /* JSON: "..." or null */
};


/* ngx_famcall_gateway.c */
void ngx_famcall_gw_src(ngx_famcall_gw_session_t *s, char *out);
void ngx_famcall_gw_ignore(void *data, ngx_famcall_pg_status_e status,
    PGresult *res);

/* ngx_famcall_gw_registry.c */
ngx_famcall_gw_user_t *ngx_famcall_gw_user_find(ngx_famcall_gw_t *gw,
    const u_char *id);
ngx_int_t ngx_famcall_gw_user_add(ngx_famcall_gw_t *gw,
    ngx_famcall_gw_session_t *s);
void ngx_famcall_gw_user_remove(ngx_famcall_gw_session_t *s);
ngx_int_t ngx_famcall_gw_presence_init(ngx_famcall_gw_t *gw, ngx_pool_t *pool);
void ngx_famcall_gw_presence_stop(ngx_famcall_gw_t *gw);
void ngx_famcall_gw_presence_flush(ngx_famcall_gw_t *gw);

/* ngx_famcall_gw_bus.c */
void ngx_famcall_gw_notify(void *data, const char *payload, size_t len);
void ngx_famcall_gw_resync_all(ngx_famcall_gw_t *gw);
ngx_int_t ngx_famcall_gw_line_parse(u_char *p, u_char *last,
    ngx_famcall_gw_line_t *line);
ngx_uint_t ngx_famcall_gw_line_deliver(ngx_famcall_gw_t *gw,
    ngx_famcall_gw_line_t *line);
void ngx_famcall_gw_parts_free(ngx_famcall_gw_t *gw);

/* ngx_famcall_gw_deliver.c: the features' hooks (ngx_famcall_gw_deliver.h) */
ngx_uint_t ngx_famcall_gw_hooks_line(ngx_famcall_gw_t *gw,
    ngx_famcall_gw_line_t *line);
void ngx_famcall_gw_hooks_closed(ngx_famcall_gw_t *gw, const u_char *user,
    ngx_str_t *src);
void ngx_famcall_gw_hooks_resync(ngx_famcall_gw_t *gw);

/* ngx_famcall_gw_node.c */
ngx_int_t ngx_famcall_gw_node_start(ngx_famcall_gw_t *gw, ngx_cycle_t *cycle);
void ngx_famcall_gw_node_stop(ngx_famcall_gw_t *gw);
void ngx_famcall_gw_node_user(ngx_famcall_gw_t *gw, const u_char *id,
    ngx_uint_t here);

/* ngx_famcall_gw_events.c */
void ngx_famcall_gw_message(ngx_famcall_ws_t *ws, const u_char *data,
    size_t len);
void ngx_famcall_gw_ops_detach(ngx_famcall_gw_session_t *s);


#endif /* _NGX_FAMCALL_GW_H_INCLUDED_ */
