/*
 * famcall: the types shared by the module's files.
 *
 * Layering: ngx_famcall_pg (database), ngx_famcall_validate/json (input
 * checks), ngx_famcall_token (JWT, random tokens, hashes) know nothing of
 * each other or of routes.  ngx_famcall_http is the request plumbing (router,
 * body, responses); the feature files (auth, otp, me) are thin layers over
 * them, with the business rules in SQL functions (sql/).
 */

#ifndef _NGX_FAMCALL_H_INCLUDED_
#define _NGX_FAMCALL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_famcall_pg.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_batch.h"


#define NGX_FAMCALL_HTTP_UNPROCESSABLE  422


/* statements: indexes into ngx_famcall_statements[] */
typedef enum {
    NGX_FAMCALL_SQL_PING = 0,
    NGX_FAMCALL_SQL_SIGNUP,
    NGX_FAMCALL_SQL_LOGIN_LOOKUP,
    NGX_FAMCALL_SQL_SESSION_CREATE,
    NGX_FAMCALL_SQL_REFRESH,
    NGX_FAMCALL_SQL_LOGOUT,
    NGX_FAMCALL_SQL_ME,
    NGX_FAMCALL_SQL_ME_UPDATE,
    NGX_FAMCALL_SQL_OTP_REQUEST,
    NGX_FAMCALL_SQL_OTP_VERIFY,
    NGX_FAMCALL_SQL_USER_SEARCH,
    NGX_FAMCALL_SQL_CONTACTS_LIST,
    NGX_FAMCALL_SQL_CONTACT_REQUEST,
    NGX_FAMCALL_SQL_CONTACT_ACCEPT,
    NGX_FAMCALL_SQL_CONTACT_REMOVE,
    NGX_FAMCALL_SQL_BLOCKS_LIST,
    NGX_FAMCALL_SQL_BLOCK,
    NGX_FAMCALL_SQL_UNBLOCK,
    NGX_FAMCALL_SQL_REPORT,
    NGX_FAMCALL_SQL_CONVERSATIONS_LIST,
    NGX_FAMCALL_SQL_CONVERSATION_OPEN,
    NGX_FAMCALL_SQL_MESSAGES_LIST,
    NGX_FAMCALL_SQL_CONVERSATION_READ,
    NGX_FAMCALL_SQL_MESSAGE_SEND_BATCH,
    NGX_FAMCALL_SQL_LISTEN,
    NGX_FAMCALL_SQL_MESSAGE_GET,
    NGX_FAMCALL_SQL_RECEIPT,
    NGX_FAMCALL_SQL_TYPING,
    NGX_FAMCALL_SQL_SYNC,
    NGX_FAMCALL_SQL_PRESENCE_BATCH,
    NGX_FAMCALL_SQL_INSTANCE_REGISTER,
    NGX_FAMCALL_SQL_INSTANCE_SWEEP,
    NGX_FAMCALL_SQL_COUNT
} ngx_famcall_sql_e;


typedef struct ngx_famcall_gw_s  ngx_famcall_gw_t;
typedef struct ngx_famcall_ws_s  ngx_famcall_ws_t;


typedef enum {
    NGX_FAMCALL_SMS_LOG = 0,
    NGX_FAMCALL_SMS_WEBHOOK
} ngx_famcall_sms_driver_e;


typedef struct {
    ngx_str_t                  conninfo;
    ngx_uint_t                 db_pool_size;
    ngx_msec_t                 db_timeout;
    ngx_uint_t                 send_streams;
    ngx_flag_t                 send_turns;
    size_t                     send_queue_size;
    ngx_shm_zone_t            *send_zone;   /* the node's send streams */
    ngx_shm_zone_t            *node_zone;   /* the node's workers, bus */

    ngx_str_t                  jwt_secret;
    time_t                     jwt_ttl;
    time_t                     refresh_ttl;
    time_t                     refresh_grace;

    ngx_str_t                  password_tp_name;
    ngx_thread_pool_t         *password_tp;
    ngx_uint_t                 password_opslimit;
    size_t                     password_memlimit;

    ngx_uint_t                 otp_driver;
    ngx_str_t                  otp_webhook;
    ngx_open_file_t           *otp_log;
    time_t                     otp_ttl;
    ngx_uint_t                 otp_max_attempts;
    ngx_uint_t                 otp_phone_max;
    time_t                     otp_phone_window;
    ngx_uint_t                 otp_ip_max;
    time_t                     otp_ip_window;

    size_t                     max_body_size;

    size_t                     ws_max_message;
    size_t                     ws_max_queue;
    ngx_msec_t                 ws_ping_interval;
    ngx_msec_t                 ws_idle_timeout;

    ngx_flag_t                 api_used;    /* famcall_api appears */
    ngx_famcall_pg_pool_t     *pg;          /* this worker's pool */
    ngx_famcall_batcher_t     *send_batcher; /* group commit of sends */
    ngx_famcall_gw_t          *gw;          /* this worker's gateway */
} ngx_http_famcall_main_conf_t;


typedef struct ngx_famcall_ctx_s  ngx_famcall_ctx_t;

typedef ngx_int_t (*ngx_famcall_route_pt)(ngx_famcall_ctx_t *ctx);

/* a query answer: rows of (status int, body jsonb) from sql/ functions */
typedef void (*ngx_famcall_answer_pt)(ngx_famcall_ctx_t *ctx,
    ngx_int_t status, u_char *body, size_t len);


struct ngx_famcall_ctx_s {
    ngx_http_request_t            *request;
    ngx_http_famcall_main_conf_t  *fmcf;

    json_t                        *body;        /* request body, an object */
    ngx_str_t                      params[2];   /* {id}s from the path */

    /* the bearer token, checked once and lazily */
    ngx_str_t                      user_id;
    ngx_str_t                      session_id;
    unsigned                       auth_checked:1;

    ngx_famcall_pg_query_t        *query;       /* in flight, or NULL */
    ngx_famcall_batch_entry_t     *batch;       /* queued, or NULL */
    ngx_famcall_answer_pt          answer;

    void                          *data;        /* the route's own state */
};


extern ngx_module_t  ngx_http_famcall_module;


/* ngx_famcall_http.c */
ngx_famcall_ctx_t *ngx_famcall_ctx_get(ngx_http_request_t *r);
ngx_int_t ngx_famcall_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_famcall_error_page_handler(ngx_http_request_t *r);
ngx_int_t ngx_famcall_authenticate(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_bearer_token(ngx_http_request_t *r, ngx_str_t *token);
ngx_int_t ngx_famcall_check_body(ngx_famcall_ctx_t *ctx,
    const ngx_famcall_field_t *fields);
ngx_int_t ngx_famcall_path_uuid(ngx_famcall_ctx_t *ctx, ngx_uint_t i,
    char *out);
ngx_int_t ngx_famcall_arg(ngx_famcall_ctx_t *ctx, const char *name,
    ngx_str_t *out);
ngx_int_t ngx_famcall_arg_int(ngx_famcall_ctx_t *ctx, const char *name,
    int64_t min, int64_t max, int64_t *out);
ngx_int_t ngx_famcall_query(ngx_famcall_ctx_t *ctx, ngx_famcall_sql_e stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_famcall_answer_pt answer);
ngx_int_t ngx_famcall_query_me(ngx_famcall_ctx_t *ctx, ngx_famcall_sql_e stmt);
ngx_int_t ngx_famcall_query_me_id(ngx_famcall_ctx_t *ctx,
    ngx_famcall_sql_e stmt);
ngx_int_t ngx_famcall_query_me_user(ngx_famcall_ctx_t *ctx,
    ngx_famcall_sql_e stmt);
ngx_int_t ngx_famcall_not_self(ngx_famcall_ctx_t *ctx, const char *id,
    const char *field);
void ngx_famcall_send(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    u_char *body, size_t len);
void ngx_famcall_send_json(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    json_t *body);
void ngx_famcall_send_error(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *message, const char *field);
void ngx_famcall_send_answer(ngx_famcall_ctx_t *ctx, ngx_int_t status,
    u_char *body, size_t len);
char *ngx_famcall_cstr(ngx_famcall_ctx_t *ctx, ngx_str_t *s);
char *ngx_famcall_num(ngx_famcall_ctx_t *ctx, ngx_int_t n);

/* ngx_famcall_password.c: Argon2id in the thread pool */
typedef void (*ngx_famcall_password_pt)(ngx_famcall_ctx_t *ctx,
    ngx_int_t rc, const char *hash);
ngx_int_t ngx_famcall_password_hash(ngx_famcall_ctx_t *ctx,
    const char *password, ngx_famcall_password_pt done);
ngx_int_t ngx_famcall_password_verify(ngx_famcall_ctx_t *ctx,
    const char *password, const char *hash, ngx_famcall_password_pt done);

/* route handlers */
ngx_int_t ngx_famcall_healthz(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_auth_signup(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_auth_login(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_auth_refresh(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_auth_logout(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_otp_request(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_otp_verify(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_me_get(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_me_patch(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_users_search(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_add(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_accept(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_contacts_remove(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_blocks_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_blocks_add(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_blocks_remove(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_reports_add(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_conversations_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_conversations_open(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_messages_list(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_messages_send(ngx_famcall_ctx_t *ctx);
ngx_int_t ngx_famcall_conversations_read(ngx_famcall_ctx_t *ctx);

/*
 * A send as the batcher's item (sql/013: me, conversation, client_id,
 * body, src), for the HTTP route and the socket's message:send alike.
 * client_id and body: checked strings; src: the sending socket, or NULL.
 */
#define NGX_FAMCALL_SEND_FIELDS  5
void ngx_famcall_send_item(ngx_str_t *item, ngx_str_t *me, ngx_str_t *conv,
    json_t *client_id, json_t *body, const char *src);

ngx_int_t ngx_famcall_ws_open(ngx_famcall_ctx_t *ctx);

/* ngx_famcall_gateway.c: the worker's gateway (registry, bus, events) */
ngx_int_t ngx_famcall_gw_init(ngx_cycle_t *cycle,
    ngx_http_famcall_main_conf_t *fmcf);
void ngx_famcall_gw_exit(ngx_http_famcall_main_conf_t *fmcf);
ngx_shm_zone_t *ngx_famcall_node_zone(ngx_conf_t *cf, void *tag);
ngx_int_t ngx_famcall_gw_user_parse(const u_char *uuid, size_t len,
    u_char *out);
u_char *ngx_famcall_gw_scratch(ngx_famcall_ws_t *ws);
ngx_int_t ngx_famcall_gw_open(ngx_famcall_ws_t *ws);
void ngx_famcall_gw_message(ngx_famcall_ws_t *ws, const u_char *data,
    size_t len);
void ngx_famcall_gw_close(ngx_famcall_ws_t *ws);

/* ngx_famcall_auth.c: shared by otp verify */
void ngx_famcall_auth_send_tokens(ngx_famcall_ctx_t *ctx, ngx_uint_t status,
    const char *refresh_token, u_char *body, size_t len);


#endif /* _NGX_FAMCALL_H_INCLUDED_ */
