/*
 * famcall: the nginx module: directives, configuration, worker start and
 * exit, and the $famcall_user_id variable.
 *
 * All settings are http-level (one API per nginx); famcall_api and
 * famcall_error_page go in locations.  Every directive is checked while
 * the configuration is read, so `nginx -t` names what is wrong.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <sodium.h>

#include "ngx_famcall.h"
#include "ngx_famcall_token.h"
#include "ngx_famcall_ipc.h"


static ngx_int_t ngx_famcall_add_variables(ngx_conf_t *cf);
static void *ngx_famcall_create_main_conf(ngx_conf_t *cf);
static char *ngx_famcall_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_famcall_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_famcall_init_process(ngx_cycle_t *cycle);
static void ngx_famcall_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_famcall_user_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_famcall_db(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_famcall_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_famcall_jwt_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_famcall_otp_sms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_famcall_otp_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_famcall_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_famcall_error_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static char *ngx_famcall_check_bounds(ngx_conf_t *cf, void *post,
    void *data);


/* like ngx_conf_check_num_bounds, but the message names the directive */
static ngx_conf_num_bounds_t  ngx_famcall_pool_size_bounds = {
    ngx_famcall_check_bounds, 1, 256
};

static ngx_conf_num_bounds_t  ngx_famcall_send_streams_bounds = {
    ngx_famcall_check_bounds, 1, 64
};

static ngx_conf_num_bounds_t  ngx_famcall_opslimit_bounds = {
    ngx_famcall_check_bounds, 1, 32
};

static ngx_conf_num_bounds_t  ngx_famcall_attempts_bounds = {
    ngx_famcall_check_bounds, 1, 100
};


#define FAMCALL_MAIN  NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1
#define FAMCALL_MCF   NGX_HTTP_MAIN_CONF_OFFSET
#define famcall_off(f)  offsetof(ngx_http_famcall_main_conf_t, f)

static ngx_command_t  ngx_famcall_commands[] = {

    { ngx_string("famcall_db"), FAMCALL_MAIN,
      ngx_famcall_db, FAMCALL_MCF, 0, NULL },

    { ngx_string("famcall_db_pool_size"), FAMCALL_MAIN,
      ngx_conf_set_num_slot, FAMCALL_MCF, famcall_off(db_pool_size),
      &ngx_famcall_pool_size_bounds },

    { ngx_string("famcall_db_timeout"), FAMCALL_MAIN,
      ngx_conf_set_msec_slot, FAMCALL_MCF, famcall_off(db_timeout), NULL },

    { ngx_string("famcall_send_streams"), FAMCALL_MAIN,
      ngx_conf_set_num_slot, FAMCALL_MCF, famcall_off(send_streams),
      &ngx_famcall_send_streams_bounds },

    { ngx_string("famcall_send_turns"), FAMCALL_MAIN,
      ngx_conf_set_flag_slot, FAMCALL_MCF, famcall_off(send_turns), NULL },

    { ngx_string("famcall_send_queue_size"), FAMCALL_MAIN,
      ngx_conf_set_size_slot, FAMCALL_MCF, famcall_off(send_queue_size),
      NULL },

    { ngx_string("famcall_jwt_secret"), FAMCALL_MAIN,
      ngx_famcall_jwt_secret, FAMCALL_MCF, 0, NULL },

    { ngx_string("famcall_jwt_secret_file"), FAMCALL_MAIN,
      ngx_famcall_jwt_secret_file, FAMCALL_MCF, 0, NULL },

    { ngx_string("famcall_jwt_ttl"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(jwt_ttl), NULL },

    { ngx_string("famcall_refresh_ttl"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(refresh_ttl), NULL },

    { ngx_string("famcall_refresh_grace"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(refresh_grace), NULL },

    { ngx_string("famcall_password_thread_pool"), FAMCALL_MAIN,
      ngx_conf_set_str_slot, FAMCALL_MCF, famcall_off(password_tp_name),
      NULL },

    { ngx_string("famcall_password_opslimit"), FAMCALL_MAIN,
      ngx_conf_set_num_slot, FAMCALL_MCF, famcall_off(password_opslimit),
      &ngx_famcall_opslimit_bounds },

    { ngx_string("famcall_password_memlimit"), FAMCALL_MAIN,
      ngx_conf_set_size_slot, FAMCALL_MCF, famcall_off(password_memlimit),
      NULL },

    { ngx_string("famcall_otp_sms"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_famcall_otp_sms, FAMCALL_MCF, 0, NULL },

    { ngx_string("famcall_otp_ttl"), FAMCALL_MAIN,
      ngx_conf_set_sec_slot, FAMCALL_MCF, famcall_off(otp_ttl), NULL },

    { ngx_string("famcall_otp_max_attempts"), FAMCALL_MAIN,
      ngx_conf_set_num_slot, FAMCALL_MCF, famcall_off(otp_max_attempts),
      &ngx_famcall_attempts_bounds },

    { ngx_string("famcall_otp_limit_phone"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_famcall_otp_limit, FAMCALL_MCF, famcall_off(otp_phone_max), NULL },

    { ngx_string("famcall_otp_limit_ip"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_famcall_otp_limit, FAMCALL_MCF, famcall_off(otp_ip_max), NULL },

    { ngx_string("famcall_max_body_size"), FAMCALL_MAIN,
      ngx_conf_set_size_slot, FAMCALL_MCF, famcall_off(max_body_size), NULL },

    { ngx_string("famcall_ws_max_message"), FAMCALL_MAIN,
      ngx_conf_set_size_slot, FAMCALL_MCF, famcall_off(ws_max_message),
      NULL },

    { ngx_string("famcall_ws_max_queue"), FAMCALL_MAIN,
      ngx_conf_set_size_slot, FAMCALL_MCF, famcall_off(ws_max_queue), NULL },

    { ngx_string("famcall_ws_ping_interval"), FAMCALL_MAIN,
      ngx_conf_set_msec_slot, FAMCALL_MCF, famcall_off(ws_ping_interval),
      NULL },

    { ngx_string("famcall_ws_idle_timeout"), FAMCALL_MAIN,
      ngx_conf_set_msec_slot, FAMCALL_MCF, famcall_off(ws_idle_timeout),
      NULL },

    { ngx_string("famcall_api"), NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_famcall_api, 0, 0, NULL },

    { ngx_string("famcall_error_page"), NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_famcall_error_page, 0, 0, NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_module_ctx = {
    ngx_famcall_add_variables,             /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_famcall_create_main_conf,          /* create main configuration */
    ngx_famcall_init_main_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_module_ctx,          /* module context */
    ngx_famcall_commands,                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_famcall_init_module,               /* init module */
    ngx_famcall_init_process,              /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_famcall_exit_process,              /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_famcall_user_id_name = ngx_string("famcall_user_id");


static ngx_int_t
ngx_famcall_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_famcall_user_id_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_famcall_user_id_variable;

    return NGX_OK;
}


/* evaluated lazily: works in limit_req_zone keys (preaccess) and logs */
static ngx_int_t
ngx_famcall_user_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_famcall_ctx_t             *ctx;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_famcall_module);

    if (fmcf->jwt_secret.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ctx = ngx_famcall_ctx_get(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ngx_famcall_authenticate(ctx) != NGX_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->user_id.data;
    v->len = ctx->user_id.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static void *
ngx_famcall_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_famcall_main_conf_t));
    if (fmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     fmcf->conninfo = { 0, NULL };
     *     fmcf->jwt_secret = { 0, NULL };
     *     fmcf->password_tp_name = { 0, NULL };
     *     fmcf->otp_webhook = { 0, NULL };
     *     fmcf->otp_log = NULL;
     *     fmcf->pg = NULL;
     */

    fmcf->db_pool_size = NGX_CONF_UNSET_UINT;
    fmcf->db_timeout = NGX_CONF_UNSET_MSEC;
    fmcf->send_streams = NGX_CONF_UNSET_UINT;
    fmcf->send_turns = NGX_CONF_UNSET;
    fmcf->send_queue_size = NGX_CONF_UNSET_SIZE;
    fmcf->jwt_ttl = NGX_CONF_UNSET;
    fmcf->refresh_ttl = NGX_CONF_UNSET;
    fmcf->refresh_grace = NGX_CONF_UNSET;
    fmcf->password_opslimit = NGX_CONF_UNSET_UINT;
    fmcf->password_memlimit = NGX_CONF_UNSET_SIZE;
    fmcf->otp_driver = NGX_CONF_UNSET_UINT;
    fmcf->otp_ttl = NGX_CONF_UNSET;
    fmcf->otp_max_attempts = NGX_CONF_UNSET_UINT;
    fmcf->otp_phone_max = NGX_CONF_UNSET_UINT;
    fmcf->otp_phone_window = NGX_CONF_UNSET;
    fmcf->otp_ip_max = NGX_CONF_UNSET_UINT;
    fmcf->otp_ip_window = NGX_CONF_UNSET;
    fmcf->max_body_size = NGX_CONF_UNSET_SIZE;
    fmcf->ws_max_message = NGX_CONF_UNSET_SIZE;
    fmcf->ws_max_queue = NGX_CONF_UNSET_SIZE;
    fmcf->ws_ping_interval = NGX_CONF_UNSET_MSEC;
    fmcf->ws_idle_timeout = NGX_CONF_UNSET_MSEC;
    fmcf->api_used = NGX_CONF_UNSET;

    return fmcf;
}


static char *
ngx_famcall_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_famcall_main_conf_t  *fmcf = conf;

    ngx_str_t  sms_log = ngx_string("logs/sms.log");
    ngx_str_t  send_zone = ngx_string("famcall_send");

    ngx_conf_init_uint_value(fmcf->db_pool_size, 2);
    ngx_conf_init_msec_value(fmcf->db_timeout, 5000);
    ngx_conf_init_uint_value(fmcf->send_streams, 2);
    ngx_conf_init_value(fmcf->send_turns, 0);
    ngx_conf_init_size_value(fmcf->send_queue_size, 1024 * 1024);
    ngx_conf_init_value(fmcf->jwt_ttl, 15 * 60);
    ngx_conf_init_value(fmcf->refresh_ttl, 30 * 24 * 60 * 60);
    ngx_conf_init_value(fmcf->refresh_grace, 10);
    ngx_conf_init_uint_value(fmcf->password_opslimit, 2);
    ngx_conf_init_size_value(fmcf->password_memlimit, 64 * 1024 * 1024);
    ngx_conf_init_uint_value(fmcf->otp_driver, NGX_FAMCALL_SMS_LOG);
    ngx_conf_init_value(fmcf->otp_ttl, 5 * 60);
    ngx_conf_init_uint_value(fmcf->otp_max_attempts, 5);
    ngx_conf_init_uint_value(fmcf->otp_phone_max, 3);
    ngx_conf_init_value(fmcf->otp_phone_window, 10 * 60);
    ngx_conf_init_uint_value(fmcf->otp_ip_max, 20);
    ngx_conf_init_value(fmcf->otp_ip_window, 60 * 60);
    ngx_conf_init_size_value(fmcf->max_body_size, 64 * 1024);
    ngx_conf_init_value(fmcf->api_used, 0);
    ngx_conf_init_size_value(fmcf->ws_max_message, 64 * 1024);
    ngx_conf_init_size_value(fmcf->ws_max_queue, 256 * 1024);
    ngx_conf_init_msec_value(fmcf->ws_ping_interval, 30000);
    ngx_conf_init_msec_value(fmcf->ws_idle_timeout, 75000);

    if (fmcf->password_tp_name.len == 0) {
        ngx_str_set(&fmcf->password_tp_name, "default");
    }

    if (!fmcf->api_used) {
        return NGX_CONF_OK;
    }

    if (fmcf->conninfo.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "famcall_api needs \"famcall_db\" at http level");
        return NGX_CONF_ERROR;
    }

    if (fmcf->jwt_secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "famcall_api needs \"famcall_jwt_secret\" or "
                           "\"famcall_jwt_secret_file\" at http level");
        return NGX_CONF_ERROR;
    }

    if (fmcf->password_memlimit < crypto_pwhash_MEMLIMIT_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_password_memlimit\" must be at least "
                           "%uz bytes", (size_t) crypto_pwhash_MEMLIMIT_MIN);
        return NGX_CONF_ERROR;
    }

    if (fmcf->jwt_ttl < 1 || fmcf->refresh_ttl < fmcf->jwt_ttl) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_jwt_ttl\" must be at least 1s and "
                           "\"famcall_refresh_ttl\" at least as long");
        return NGX_CONF_ERROR;
    }

    if (fmcf->ws_max_message < 1024 || fmcf->ws_max_queue < 4096
        || fmcf->ws_ping_interval < 1000
        || fmcf->ws_idle_timeout <= fmcf->ws_ping_interval)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_ws_max_message\" must be at least 1k, "
                           "\"famcall_ws_max_queue\" at least 4k, "
                           "\"famcall_ws_ping_interval\" at least 1s and "
                           "\"famcall_ws_idle_timeout\" longer than it");
        return NGX_CONF_ERROR;
    }

    if (fmcf->otp_ttl < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_otp_ttl\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (fmcf->otp_driver == NGX_FAMCALL_SMS_LOG && fmcf->otp_log == NULL) {
        fmcf->otp_log = ngx_conf_open_file(cf->cycle, &sms_log);
        if (fmcf->otp_log == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    fmcf->password_tp = ngx_thread_pool_add(cf, &fmcf->password_tp_name);
    if (fmcf->password_tp == NULL) {
        return NGX_CONF_ERROR;
    }

    if (fmcf->send_queue_size < 64 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_send_queue_size\" must be at least 64k");
        return NGX_CONF_ERROR;
    }

    fmcf->send_zone = ngx_famcall_batch_zone(cf, &send_zone,
                                             fmcf->send_streams,
                                             fmcf->send_queue_size,
                                             &ngx_http_famcall_module);
    if (fmcf->send_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    fmcf->node_zone = ngx_famcall_node_zone(cf, &ngx_http_famcall_module);
    if (fmcf->node_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Under AddressSanitizer (make test-asan) the module keeps itself loaded:
 * nginx dlclose()s it as a worker exits, before LeakSanitizer reports,
 * which would leave the module's frames in a report unnamed.
 */
static ngx_int_t
ngx_famcall_init_module(ngx_cycle_t *cycle)
{
#if defined(__SANITIZE_ADDRESS__)
    Dl_info  info;

    if (dladdr((void *) ngx_famcall_init_module, &info) != 0
        && info.dli_fname != NULL)
    {
        (void) dlopen(info.dli_fname, RTLD_NOW|RTLD_NOLOAD|RTLD_NODELETE);
    }
#endif

    return NGX_OK;
}


static const char *const  ngx_famcall_empty_batch[] = {
    "{}", "{}", "{}", "{}", "{}"
};


static ngx_int_t
ngx_famcall_init_process(ngx_cycle_t *cycle)
{
    ngx_http_famcall_main_conf_t  *fmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_module) == NULL) {
        return NGX_OK;
    }

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_famcall_module);
    if (fmcf == NULL || !fmcf->api_used) {
        return NGX_OK;
    }

    if (sodium_init() < 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "famcall: libsodium failed to initialise");
        return NGX_ERROR;
    }

    fmcf->pg = ngx_famcall_pg_pool_create(cycle, &fmcf->conninfo,
                                          fmcf->db_pool_size,
                                          fmcf->db_timeout);
    if (fmcf->pg == NULL) {
        return NGX_ERROR;
    }

    /* a batch of no sends: each connection prepares and plans it at once */
    ngx_famcall_pg_warm(fmcf->pg, NGX_FAMCALL_SQL_MESSAGE_SEND_BATCH,
                        NGX_FAMCALL_SEND_FIELDS, ngx_famcall_empty_batch);

    if (ngx_famcall_ipc_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * One batch of sends in flight per stream, and famcall_send_streams
     * (2) streams per node, however many workers it has: what arrives
     * meanwhile waits and leaves as the next batch.  More batches side by
     * side make each smaller for the same wait, and every batch has a fixed
     * cost in PostgreSQL of about fifteen sends; with one stream per worker,
     * 10,000 sends/s over WebSocket fell behind on 8 workers (seconds of
     * latency) while 2 carried it (docs/benchmarks.md).  With
     * famcall_send_turns on, the streams take turns (ngx_famcall_batch.c).  An
     * item unanswered after twice the database timeout (its runner died)
     * gets 503.
     */
    fmcf->send_batcher = ngx_famcall_batcher_create(cycle->pool, fmcf->pg,
                             fmcf->send_zone,
                             NGX_FAMCALL_SQL_MESSAGE_SEND_BATCH,
                             NGX_FAMCALL_SEND_FIELDS, 1, 256,
                             fmcf->send_turns,
                             2 * fmcf->db_timeout + 1000, cycle->log);
    if (fmcf->send_batcher == NULL) {
        return NGX_ERROR;
    }

    if (ngx_famcall_gw_init(cycle, fmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_famcall_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_famcall_main_conf_t  *fmcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return;
    }

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_famcall_module);

    if (fmcf != NULL) {
        ngx_famcall_gw_exit(fmcf);
    }

    if (fmcf != NULL && fmcf->send_batcher != NULL) {
        ngx_famcall_batcher_exit(fmcf->send_batcher);
    }

    ngx_famcall_ipc_exit();

    if (fmcf != NULL && fmcf->pg != NULL) {
        ngx_famcall_pg_pool_destroy(fmcf->pg);
        fmcf->pg = NULL;
    }
}


/*
 * famcall_db "<libpq conninfo>": checked now, and a host name resolved now
 * (as hostaddr), so a worker never waits on DNS.
 */
static char *
ngx_famcall_db(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_famcall_main_conf_t  *fmcf = conf;

    u_char               *p;
    char                 *err, *cinfo, addr[NI_MAXHOST];
    const char           *host, *hostaddr;
    ngx_str_t            *value;
    struct addrinfo       hints, *res;
    unsigned char         buf[sizeof(struct in6_addr)];
    PQconninfoOption     *opts, *o;

    if (fmcf->conninfo.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cinfo = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (cinfo == NULL) {
        return NGX_CONF_ERROR;
    }
    (void) ngx_cpystrn((u_char *) cinfo, value[1].data, value[1].len + 1);

    err = NULL;
    opts = PQconninfoParse(cinfo, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"famcall_db\" conninfo: %s",
                           err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    host = NULL;
    hostaddr = NULL;

    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0') {
            continue;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            hostaddr = o->val;
        }
    }

    fmcf->conninfo = value[1];

    if (host == NULL || hostaddr != NULL || host[0] == '/'
        || inet_pton(AF_INET, host, buf) == 1
        || inet_pton(AF_INET6, host, buf) == 1)
    {
        PQconninfoFree(opts);
        return NGX_CONF_OK;
    }

    if (ngx_strchr(host, ',') != NULL) {
        PQconninfoFree(opts);
        return "with several hosts needs \"hostaddr\" too";
    }

    ngx_memzero(&hints, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;

    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_db\" host \"%s\" cannot be resolved",
                           host);
        PQconninfoFree(opts);
        return NGX_CONF_ERROR;
    }

    if (getnameinfo(res->ai_addr, res->ai_addrlen, addr, sizeof(addr),
                    NULL, 0, NI_NUMERICHOST) != 0)
    {
        freeaddrinfo(res);
        PQconninfoFree(opts);
        return "host cannot be resolved";
    }

    freeaddrinfo(res);
    PQconninfoFree(opts);

    p = ngx_pnalloc(cf->pool, value[1].len + sizeof(" hostaddr=") + NI_MAXHOST);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    fmcf->conninfo.data = p;
    fmcf->conninfo.len = ngx_sprintf(p, "%V hostaddr=%s", &value[1], addr) - p;

    return NGX_CONF_OK;
}


static char *
ngx_famcall_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_famcall_main_conf_t  *fmcf = conf;

    ngx_str_t  *value;

    if (fmcf->jwt_secret.data != NULL) {
        return "is duplicate (famcall_jwt_secret or famcall_jwt_secret_file)";
    }

    value = cf->args->elts;

    if (value[1].len < NGX_FAMCALL_JWT_KEY_MIN) {
        return "must be at least 32 bytes long";
    }

    fmcf->jwt_secret = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_famcall_jwt_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_famcall_main_conf_t  *fmcf = conf;

    u_char           *buf;
    size_t            len;
    ssize_t           n;
    ngx_str_t        *value, name;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    if (fmcf->jwt_secret.data != NULL) {
        return "is duplicate (famcall_jwt_secret or famcall_jwt_secret_file)";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 4096)
    {
        ngx_close_file(file.fd);
        return "must name a key file of at most 4096 bytes";
    }

    len = (size_t) ngx_file_size(&fi);
    buf = ngx_pnalloc(cf->pool, len + 1);
    if (buf == NULL) {
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, buf, len, 0);
    ngx_close_file(file.fd);

    if (n != (ssize_t) len) {
        return "cannot read the key file";
    }

    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }

    if (len < NGX_FAMCALL_JWT_KEY_MIN) {
        return "must name a key of at least 32 bytes";
    }

    fmcf->jwt_secret.data = buf;
    fmcf->jwt_secret.len = len;

    return NGX_CONF_OK;
}


/* famcall_otp_sms log <path> | webhook <http(s) url> */
static char *
ngx_famcall_otp_sms(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_famcall_main_conf_t  *fmcf = conf;

    ngx_str_t  *value;

    if (fmcf->otp_driver != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "log") == 0) {
        fmcf->otp_driver = NGX_FAMCALL_SMS_LOG;
        fmcf->otp_log = ngx_conf_open_file(cf->cycle, &value[2]);

        return fmcf->otp_log ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[1].data, "webhook") == 0) {
        if (ngx_strncmp(value[2].data, "http://", 7) != 0
            && ngx_strncmp(value[2].data, "https://", 8) != 0)
        {
            return "webhook needs an http:// or https:// URL";
        }

        fmcf->otp_driver = NGX_FAMCALL_SMS_WEBHOOK;
        fmcf->otp_webhook = value[2];

        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown \"famcall_otp_sms\" driver \"%V\", "
                       "use \"log\" or \"webhook\"", &value[1]);
    return NGX_CONF_ERROR;
}


/* famcall_otp_limit_{phone,ip} <count> <window> */
static char *
ngx_famcall_otp_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_famcall_main_conf_t  *fmcf = conf;

    time_t       t, *window;
    ngx_int_t    n;
    ngx_uint_t  *max;
    ngx_str_t   *value;

    if (cmd->offset == famcall_off(otp_phone_max)) {
        max = &fmcf->otp_phone_max;
        window = &fmcf->otp_phone_window;

    } else {
        max = &fmcf->otp_ip_max;
        window = &fmcf->otp_ip_window;
    }

    if (*max != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1) {
        return "needs a count of at least 1";
    }

    t = ngx_parse_time(&value[2], 1);
    if (t == (time_t) NGX_ERROR || t < 1) {
        return "needs a time window such as 10m";
    }

    *max = (ngx_uint_t) n;
    *window = t;

    return NGX_CONF_OK;
}


static char *
ngx_famcall_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_famcall_main_conf_t  *fmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_famcall_api_handler;

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);
    fmcf->api_used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_famcall_error_page(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_famcall_error_page_handler;

    return NGX_CONF_OK;
}


static char *
ngx_famcall_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_int_t              *np = data;

    ngx_str_t  *value;

    if (*np >= bounds->low && *np <= bounds->high) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" must be between %i and %i",
                       &value[0], bounds->low, bounds->high);

    return NGX_CONF_ERROR;
}
