/*
 * famcall: the core module, ngx_http_famcall_module (ngx_famcall_core.h):
 * the database, the token secret, the body limit, the famcall_api and
 * famcall_error_page locations, $famcall_user_id, the lists of routes and
 * statements the feature modules fill, and a worker's pool and IPC.
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

#include "ngx_famcall_core.h"
#include "ngx_famcall_http.h"
#include "ngx_famcall_token.h"
#include "ngx_famcall_ipc.h"


struct ngx_famcall_exit_s {
    ngx_famcall_exit_pt        handler;
    void                      *data;
    ngx_famcall_exit_t        *next;
};


static ngx_int_t ngx_famcall_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_famcall_postconfiguration(ngx_conf_t *cf);
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
static char *ngx_famcall_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_famcall_error_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_num_bounds_t  ngx_famcall_pool_size_bounds = {
    ngx_famcall_conf_check_bounds, 1, 256
};


#define famcall_off(f)  offsetof(ngx_http_famcall_main_conf_t, f)

static ngx_command_t  ngx_famcall_commands[] = {

    { ngx_string("famcall_db"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_famcall_db, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL },

    { ngx_string("famcall_db_pool_size"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(db_pool_size), &ngx_famcall_pool_size_bounds },

    { ngx_string("famcall_db_pool_max"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(db_pool_max), &ngx_famcall_pool_size_bounds },

    { ngx_string("famcall_db_timeout"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(db_timeout), NULL },

    { ngx_string("famcall_jwt_secret"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_famcall_jwt_secret, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL },

    { ngx_string("famcall_jwt_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_famcall_jwt_secret_file, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL },

    { ngx_string("famcall_max_body_size"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      famcall_off(max_body_size), NULL },

    { ngx_string("famcall_api"), NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_famcall_api, 0, 0, NULL },

    { ngx_string("famcall_error_page"), NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_famcall_error_page, 0, 0, NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_module_ctx = {
    ngx_famcall_add_variables,             /* preconfiguration */
    ngx_famcall_postconfiguration,         /* postconfiguration */

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


static ngx_int_t
ngx_famcall_add_variables(ngx_conf_t *cf)
{
    ngx_str_t             name = ngx_string("famcall_user_id");
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
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

    switch (ngx_famcall_authenticate(ctx)) {

    case NGX_OK:
        break;

    case NGX_ERROR:
        return NGX_ERROR;

    default:
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
     *     fmcf->sql = 0;
     *     fmcf->pg = NULL;
     *     fmcf->exits = NULL;
     */

    if (ngx_array_init(&fmcf->routes, cf->pool, 32,
                       sizeof(ngx_famcall_route_t))
        != NGX_OK
        || ngx_array_init(&fmcf->statements, cf->pool, 32,
                          sizeof(ngx_famcall_stmt_t))
           != NGX_OK)
    {
        return NULL;
    }

    fmcf->db_pool_size = NGX_CONF_UNSET_UINT;
    fmcf->db_pool_max = NGX_CONF_UNSET_UINT;
    fmcf->db_timeout = NGX_CONF_UNSET_MSEC;
    fmcf->max_body_size = NGX_CONF_UNSET_SIZE;
    fmcf->api_used = NGX_CONF_UNSET;

    return fmcf;
}


static char *
ngx_famcall_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_famcall_main_conf_t  *fmcf = conf;

    ngx_conf_init_uint_value(fmcf->db_pool_size, 2);
    ngx_conf_init_uint_value(fmcf->db_pool_max, 4 * fmcf->db_pool_size);

    if (fmcf->db_pool_max < fmcf->db_pool_size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_db_pool_max\" %ui is less than "
                           "\"famcall_db_pool_size\" %ui",
                           fmcf->db_pool_max, fmcf->db_pool_size);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(fmcf->db_timeout, 5000);
    ngx_conf_init_size_value(fmcf->max_body_size, 64 * 1024);
    ngx_conf_init_value(fmcf->api_used, 0);

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

    return NGX_CONF_OK;
}


/* the core's own route: the health check (ngx_famcall_healthz.c) */
static ngx_int_t
ngx_famcall_postconfiguration(ngx_conf_t *cf)
{
    return ngx_famcall_healthz_init(cf);
}


ngx_int_t
ngx_famcall_pg_statements_add(ngx_conf_t *cf, const ngx_famcall_stmt_t *stmts,
    ngx_uint_t n, ngx_uint_t *base)
{
    ngx_uint_t                     i, j;
    ngx_famcall_stmt_t            *st, *all;
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_famcall_module);
    all = fmcf->statements.elts;

    for (i = 0; i < n; i++) {

        /* a hole in a designated-initializer table: an enum value left out */
        if (stmts[i].name == NULL || stmts[i].sql == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "famcall: statement %ui of a table added "
                               "after \"%s\" is missing", i,
                               i ? stmts[i - 1].name : "(none)");
            return NGX_ERROR;
        }

        for (j = 0; j < fmcf->statements.nelts; j++) {
            if (ngx_strcmp(all[j].name, stmts[i].name) == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "famcall: statement \"%s\" is added twice",
                                   stmts[i].name);
                return NGX_ERROR;
            }
        }
    }

    *base = fmcf->statements.nelts;

    st = ngx_array_push_n(&fmcf->statements, n);
    if (st == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(st, stmts, n * sizeof(ngx_famcall_stmt_t));

    return NGX_OK;
}


ngx_http_famcall_main_conf_t *
ngx_famcall_core_conf(ngx_cycle_t *cycle)
{
    ngx_http_famcall_main_conf_t  *fmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_module) == NULL) {
        return NULL;
    }

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_famcall_module);
    if (fmcf == NULL || !fmcf->api_used) {
        return NULL;
    }

    return fmcf;
}


ngx_int_t
ngx_famcall_exit_add(ngx_cycle_t *cycle, ngx_http_famcall_main_conf_t *fmcf,
    ngx_famcall_exit_pt handler, void *data)
{
    ngx_famcall_exit_t  *e;

    e = ngx_palloc(cycle->pool, sizeof(ngx_famcall_exit_t));
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->handler = handler;
    e->data = data;
    e->next = fmcf->exits;
    fmcf->exits = e;

    return NGX_OK;
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


/* first of the .so's modules: the features' init_process find the pool */
static ngx_int_t
ngx_famcall_init_process(ngx_cycle_t *cycle)
{
    ngx_http_famcall_main_conf_t  *fmcf;

    fmcf = ngx_famcall_core_conf(cycle);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    if (sodium_init() < 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "famcall: libsodium failed to initialise");
        return NGX_ERROR;
    }

    fmcf->pg = ngx_famcall_pg_pool_create(cycle, &fmcf->conninfo,
                                          fmcf->db_pool_size,
                                          fmcf->db_pool_max,
                                          fmcf->db_timeout,
                                          fmcf->statements.elts,
                                          fmcf->statements.nelts);
    if (fmcf->pg == NULL) {
        return NGX_ERROR;
    }

    fmcf->ipc = ngx_famcall_ipc_init(cycle);
    if (fmcf->ipc == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the features' exits (the gateway's, then the batcher's), then the core's */
static void
ngx_famcall_exit_process(ngx_cycle_t *cycle)
{
    ngx_famcall_exit_t            *e;
    ngx_http_famcall_main_conf_t  *fmcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return;
    }

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_famcall_module);
    if (fmcf == NULL) {
        return;
    }

    while (fmcf->exits != NULL) {
        e = fmcf->exits;
        fmcf->exits = e->next;
        e->handler(e->data);
    }

    ngx_famcall_ipc_exit(fmcf->ipc);
    fmcf->ipc = NULL;

    if (fmcf->pg != NULL) {
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


/* like ngx_conf_check_num_bounds, but the message names the directive */
char *
ngx_famcall_conf_check_bounds(ngx_conf_t *cf, void *post, void *data)
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
