/*
 * famcall: the TURN module, ngx_http_famcall_turn_module: GET /v1/turn,
 * the ICE servers a client hands to WebRTC, with short-lived credentials
 * in coturn's REST scheme (use-auth-secret):
 *
 *     username    "<expiry unix time>:<user id>"
 *     credential  base64(HMAC-SHA1(secret, username))
 *
 * coturn shares the secret and checks both the HMAC and the expiry, so a
 * credential needs no database row and no round trip: the route answers
 * from the token and the configuration alone.
 *
 * Directives (http level):
 *     famcall_turn_secret_file  <path>;        coturn's static-auth-secret
 *     famcall_turn_uris         <uri> ...;     stun:, turn:, turns: URIs
 *     famcall_turn_ttl          <time>;        24h
 * Both the secret and the URIs, or neither: without them the route answers
 * 503 turn_unavailable.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_famcall_http.h"


/* as the JWT key: one issued credential must not let the secret be guessed */
#define NGX_FAMCALL_TURN_SECRET_MIN   32
#define NGX_FAMCALL_TURN_SECRET_MAX   4096

/* a URI longer than this is a mistake, not a server name */
#define NGX_FAMCALL_TURN_URI_MAX      256

#define NGX_FAMCALL_TURN_TTL_MIN      60
#define NGX_FAMCALL_TURN_TTL_MAX      (7 * 24 * 60 * 60)


typedef struct {
    ngx_str_t                  secret;
    ngx_array_t               *uris;        /* of ngx_str_t, or NULL */
    time_t                     ttl;
} ngx_famcall_turn_conf_t;


static ngx_int_t ngx_famcall_turn_postconfiguration(ngx_conf_t *cf);
static void *ngx_famcall_turn_create_conf(ngx_conf_t *cf);
static char *ngx_famcall_turn_init_conf(ngx_conf_t *cf, void *conf);
static char *ngx_famcall_turn_secret_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_famcall_turn_uris(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_famcall_turn_check_uri(ngx_str_t *uri);
static ngx_int_t ngx_famcall_turn_get(ngx_famcall_ctx_t *ctx);


static ngx_command_t  ngx_famcall_turn_commands[] = {

    { ngx_string("famcall_turn_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_famcall_turn_secret_file, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL },

    { ngx_string("famcall_turn_uris"), NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_famcall_turn_uris, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL },

    { ngx_string("famcall_turn_ttl"), NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot, NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_famcall_turn_conf_t, ttl), NULL },

    ngx_null_command
};


static ngx_http_module_t  ngx_http_famcall_turn_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_famcall_turn_postconfiguration,    /* postconfiguration */

    ngx_famcall_turn_create_conf,          /* create main configuration */
    ngx_famcall_turn_init_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_famcall_turn_module = {
    NGX_MODULE_V1,
    &ngx_http_famcall_turn_module_ctx,     /* module context */
    ngx_famcall_turn_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static const ngx_famcall_route_t  ngx_famcall_turn_routes[] = {
    { NGX_HTTP_GET, "/v1/turn", ngx_famcall_turn_get, 1, 0 },
    { 0, NULL, NULL, 0, 0 }
};


static ngx_int_t
ngx_famcall_turn_postconfiguration(ngx_conf_t *cf)
{
    return ngx_famcall_routes_add(cf, ngx_famcall_turn_routes);
}


static void *
ngx_famcall_turn_create_conf(ngx_conf_t *cf)
{
    ngx_famcall_turn_conf_t  *tcf;

    tcf = ngx_pcalloc(cf->pool, sizeof(ngx_famcall_turn_conf_t));
    if (tcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     tcf->secret = { 0, NULL };
     *     tcf->uris = NULL;
     */

    tcf->ttl = NGX_CONF_UNSET;

    return tcf;
}


static char *
ngx_famcall_turn_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_famcall_turn_conf_t  *tcf = conf;

    /*
     * A day, as the TURN REST API draft recommends: a client fetches
     * credentials before a call, and coturn checks the expiry again when
     * the allocation is refreshed, so a call must not outlive them.
     */
    ngx_conf_init_value(tcf->ttl, 24 * 60 * 60);

    if (tcf->ttl < NGX_FAMCALL_TURN_TTL_MIN
        || tcf->ttl > NGX_FAMCALL_TURN_TTL_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_turn_ttl\" must be between 1m and 7d");
        return NGX_CONF_ERROR;
    }

    /* half a configuration is a mistake: name the missing half */

    if (tcf->uris != NULL && tcf->secret.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_turn_uris\" needs "
                           "\"famcall_turn_secret_file\" at http level");
        return NGX_CONF_ERROR;
    }

    if (tcf->uris == NULL && tcf->secret.data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_turn_secret_file\" needs "
                           "\"famcall_turn_uris\" at http level");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The secret is read here, once, by the master: workers never open it and
 * it may stay readable by root alone.  A file that others can read or
 * write is refused, since anyone holding the secret can mint credentials
 * for the relay.  The file holds the secret on one line (a final newline
 * is ignored), exactly as coturn's static-auth-secret gets it, so it must
 * be printable and without spaces.
 */
static char *
ngx_famcall_turn_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_famcall_turn_conf_t  *tcf = conf;

    u_char           *buf;
    size_t            len, i;
    ssize_t           n;
    ngx_uint_t        mode;
    ngx_str_t        *value, name;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    if (tcf->secret.data != NULL) {
        return "is duplicate";
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

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    if (!ngx_is_file(&fi)
        || ngx_file_size(&fi) > NGX_FAMCALL_TURN_SECRET_MAX)
    {
        ngx_close_file(file.fd);
        return "must name a file of at most 4096 bytes";
    }

    mode = ngx_file_access(&fi);

    if (mode & (S_IROTH|S_IWOTH)) {
        ngx_close_file(file.fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"famcall_turn_secret_file\" \"%s\" is open to "
                           "other users (mode 0%ui%ui%ui): chmod 0600 or 0640",
                           name.data, (ngx_uint_t) (mode >> 6) & 7,
                           (ngx_uint_t) (mode >> 3) & 7, (ngx_uint_t) mode & 7);
        return NGX_CONF_ERROR;
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
        return "cannot read the secret file";
    }

    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }

    if (len < NGX_FAMCALL_TURN_SECRET_MIN) {
        return "must name a secret of at least 32 bytes";
    }

    for (i = 0; i < len; i++) {
        if (buf[i] <= ' ' || buf[i] >= 0x7f) {
            return "must hold the secret as one line of printable "
                   "characters without spaces";
        }
    }

    tcf->secret.data = buf;
    tcf->secret.len = len;

    return NGX_CONF_OK;
}


/* famcall_turn_uris <uri> ...; repeated directives add up */
static char *
ngx_famcall_turn_uris(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_famcall_turn_conf_t  *tcf = conf;

    char        *err;
    ngx_str_t   *value, *uri;
    ngx_uint_t   i;

    if (tcf->uris == NULL) {
        tcf->uris = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (tcf->uris == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        err = ngx_famcall_turn_check_uri(&value[i]);
        if (err != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"famcall_turn_uris\": \"%V\" %s",
                               &value[i], err);
            return NGX_CONF_ERROR;
        }

        uri = ngx_array_push(tcf->uris);
        if (uri == NULL) {
            return NGX_CONF_ERROR;
        }

        *uri = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * RFC 7064 and RFC 7065, as browsers take them:
 *     stun:host[:port]  stuns:host[:port]
 *     turn:host[:port][?transport=udp|tcp]  turns:...
 * host: a name, an IPv4 address or an [IPv6] address.  NULL when the URI
 * is good, else what is wrong with it.
 */
static char *
ngx_famcall_turn_check_uri(ngx_str_t *uri)
{
    u_char      *p, *last, *host;
    ngx_int_t    port;
    ngx_uint_t   turn;

    if (uri->len > NGX_FAMCALL_TURN_URI_MAX) {
        return "is too long";
    }

    p = uri->data;
    last = p + uri->len;

    if (uri->len > 5 && ngx_strncmp(p, "stun:", 5) == 0) {
        turn = 0;
        p += 5;

    } else if (uri->len > 6 && ngx_strncmp(p, "stuns:", 6) == 0) {
        turn = 0;
        p += 6;

    } else if (uri->len > 5 && ngx_strncmp(p, "turn:", 5) == 0) {
        turn = 1;
        p += 5;

    } else if (uri->len > 6 && ngx_strncmp(p, "turns:", 6) == 0) {
        turn = 1;
        p += 6;

    } else {
        return "must start with stun:, stuns:, turn: or turns:";
    }

    host = p;

    if (*p == '[') {
        for (p++; p < last && *p != ']'; p++) {
            if (!(isxdigit(*p) || *p == ':' || *p == '.')) {
                return "has a bad IPv6 address";
            }
        }

        if (p == last || p == host + 1) {
            return "has a bad IPv6 address";
        }

        p++;

    } else {
        while (p < last
               && (isalnum(*p) || *p == '.' || *p == '-' || *p == '_'))
        {
            p++;
        }

        if (p == host) {
            return "has no host";
        }
    }

    if (p < last && *p == ':') {
        host = ++p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        port = ngx_atoi(host, p - host);
        if (port < 1 || port > 65535) {
            return "has a bad port";
        }
    }

    if (p == last) {
        return NULL;
    }

    if (*p != '?') {
        return "has something after the host and port";
    }

    if (!turn) {
        return "may not have a query: only turn: and turns: take a transport";
    }

    p++;

    if ((last - p == 13 && ngx_strncmp(p, "transport=udp", 13) == 0)
        || (last - p == 13 && ngx_strncmp(p, "transport=tcp", 13) == 0))
    {
        return NULL;
    }

    return "may only end in ?transport=udp or ?transport=tcp";
}


/*
 * GET /v1/turn: one ICE server entry carrying every URI and the caller's
 * credentials.  A browser ignores the credentials on stun: URIs, and one
 * entry is what the contract shows.
 */
static ngx_int_t
ngx_famcall_turn_get(ngx_famcall_ctx_t *ctx)
{
    u_char                    mac[EVP_MAX_MD_SIZE];
    u_char                   *user, *pass;
    size_t                    len;
    time_t                    expiry;
    json_t                   *urls, *server, *doc;
    ngx_str_t                *uri, username, credential, raw;
    ngx_uint_t                i;
    unsigned int              mac_len;
    ngx_http_request_t       *r = ctx->request;
    ngx_famcall_turn_conf_t  *tcf;

    tcf = ngx_http_get_module_main_conf(r, ngx_http_famcall_turn_module);

    if (tcf->uris == NULL) {
        return ngx_famcall_send_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "turn_unavailable",
                                      "no TURN server is configured", NULL);
    }

    expiry = ngx_time() + tcf->ttl;

    len = NGX_TIME_T_LEN + 1 + ctx->user_id.len;
    user = ngx_pnalloc(r->pool, len);
    if (user == NULL) {
        return NGX_ERROR;
    }

    username.data = user;
    username.len = ngx_sprintf(user, "%T:%V", expiry, &ctx->user_id) - user;

    if (HMAC(EVP_sha1(), tcf->secret.data, (int) tcf->secret.len,
             username.data, username.len, mac, &mac_len)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "famcall: HMAC-SHA1 of a TURN username failed");
        return NGX_ERROR;
    }

    raw.data = mac;
    raw.len = mac_len;

    pass = ngx_pnalloc(r->pool, ngx_base64_encoded_length(raw.len));
    if (pass == NULL) {
        return NGX_ERROR;
    }

    credential.data = pass;
    ngx_encode_base64(&credential, &raw);

    urls = json_array();
    if (urls == NULL) {
        return NGX_ERROR;
    }

    uri = tcf->uris->elts;

    for (i = 0; i < tcf->uris->nelts; i++) {
        if (json_array_append_new(urls,
                json_stringn((char *) uri[i].data, uri[i].len))
            != 0)
        {
            json_decref(urls);
            return NGX_ERROR;
        }
    }

    /* "o" steals urls and server, also when packing fails */
    server = json_pack("{s:o, s:s%, s:s%}", "urls", urls,
                       "username", username.data, username.len,
                       "credential", credential.data, credential.len);

    doc = server ? json_pack("{s:[o], s:I}", "ice_servers", server,
                             "ttl", (json_int_t) tcf->ttl)
                 : NULL;

    if (doc == NULL) {
        return NGX_ERROR;
    }

    return ngx_famcall_send_json(ctx, NGX_HTTP_OK, doc);
}
