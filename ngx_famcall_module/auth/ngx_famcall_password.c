/*
 * famcall: Argon2id password hashing (libsodium) on an nginx thread pool,
 * so the tens of milliseconds it costs never stall the event loop.
 *
 * The request is kept alive while a thread works on it (r->main->blocked),
 * the way nginx's own thread I/O does.  Verifying against a missing hash
 * (unknown email) hashes the password anyway, so a failed login costs the
 * same time whatever the reason.  Posting returns NGX_DONE: the thread's
 * callback answers, or returns NGX_ERROR and 500 is sent here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "ngx_famcall_auth.h"


#define NGX_FAMCALL_PASSWORD_GUARD  60000


typedef struct {
    ngx_famcall_ctx_t        *ctx;
    ngx_famcall_password_pt   done;
    ngx_event_t               guard;
    unsigned                  verify:1;
    unsigned long long        opslimit;
    size_t                    memlimit;
    ngx_int_t                 rc;
    char                     *password;
    char                      hash[crypto_pwhash_STRBYTES];
} ngx_famcall_password_task_t;


static ngx_int_t ngx_famcall_password_post(ngx_famcall_ctx_t *ctx,
    const char *password, const char *hash, ngx_uint_t verify,
    ngx_famcall_password_pt done);
static void ngx_famcall_password_thread(void *data, ngx_log_t *log);
static void ngx_famcall_password_event(ngx_event_t *ev);
static void ngx_famcall_password_guard(ngx_event_t *ev);


ngx_int_t
ngx_famcall_password_hash(ngx_famcall_ctx_t *ctx, const char *password,
    ngx_famcall_password_pt done)
{
    return ngx_famcall_password_post(ctx, password, NULL, 0, done);
}


ngx_int_t
ngx_famcall_password_verify(ngx_famcall_ctx_t *ctx, const char *password,
    const char *hash, ngx_famcall_password_pt done)
{
    return ngx_famcall_password_post(ctx, password, hash, 1, done);
}


static ngx_int_t
ngx_famcall_password_post(ngx_famcall_ctx_t *ctx, const char *password,
    const char *hash, ngx_uint_t verify, ngx_famcall_password_pt done)
{
    size_t                        len;
    ngx_thread_task_t            *task;
    ngx_http_request_t           *r = ctx->request;
    ngx_famcall_auth_conf_t      *acf = ngx_famcall_auth_conf(ctx);
    ngx_famcall_password_task_t  *t;

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_famcall_password_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    t = task->ctx;
    t->ctx = ctx;
    t->done = done;
    t->verify = verify;
    t->opslimit = acf->password_opslimit;
    t->memlimit = acf->password_memlimit;
    t->rc = NGX_ERROR;

    len = ngx_strlen(password);
    t->password = ngx_pnalloc(r->pool, len + 1);
    if (t->password == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(t->password, password, len + 1);

    t->hash[0] = '\0';
    if (hash != NULL) {
        if (ngx_strlen(hash) >= sizeof(t->hash)) {
            return NGX_ERROR;
        }
        (void) ngx_cpystrn((u_char *) t->hash, (u_char *) hash,
                           sizeof(t->hash));
    }

    task->handler = ngx_famcall_password_thread;
    task->event.handler = ngx_famcall_password_event;
    task->event.data = t;

    if (ngx_thread_task_post(acf->password_tp, task) != NGX_OK) {
        return NGX_ERROR;
    }

    r->main->blocked++;

    /*
     * A graceful shutdown waits for pending (non-cancelable) timers only:
     * this one keeps the worker alive until the hash is done and answered.
     */
    t->guard.handler = ngx_famcall_password_guard;
    t->guard.data = t;
    t->guard.log = r->connection->log;
    ngx_add_timer(&t->guard, NGX_FAMCALL_PASSWORD_GUARD);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "famcall: password %s posted to the thread pool",
                   verify ? "check" : "hash");

    return NGX_DONE;
}


/* runs on a pool thread: touches nothing but the task */
static void
ngx_famcall_password_thread(void *data, ngx_log_t *log)
{
    ngx_famcall_password_task_t  *t = data;

    size_t  len;
    char    fresh[crypto_pwhash_STRBYTES];

    len = strlen(t->password);

    if (t->verify && t->hash[0] != '\0') {
        t->rc = crypto_pwhash_str_verify(t->hash, t->password, len) == 0
                ? NGX_OK : NGX_DECLINED;

    } else if (crypto_pwhash_str_alg(fresh, t->password, len, t->opslimit,
                                     t->memlimit, crypto_pwhash_ALG_ARGON2ID13)
               != 0)
    {
        t->rc = NGX_ERROR;

    } else if (t->verify) {
        t->rc = NGX_DECLINED;     /* no account: same cost, same answer */

    } else {
        ngx_memcpy(t->hash, fresh, sizeof(fresh));
        t->rc = NGX_OK;
    }

    sodium_memzero(t->password, len);
}


static void
ngx_famcall_password_event(ngx_event_t *ev)
{
    ngx_famcall_password_task_t  *t = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r = t->ctx->request;

    c = r->connection;
    r->main->blocked--;

    if (t->guard.timer_set) {
        ngx_del_timer(&t->guard);
    }

    if (c->error) {
        /* terminated while the thread worked: just let it go */
        ngx_http_finalize_request(r, NGX_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "famcall: password work done: %i", t->rc);

    if (t->done(t->ctx, t->rc, t->rc == NGX_OK && !t->verify ? t->hash : NULL)
        != NGX_DONE)
    {
        (void) ngx_famcall_send_internal(t->ctx);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_famcall_password_guard(ngx_event_t *ev)
{
    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "famcall: password hashing has waited %M ms in the thread "
                  "pool", (ngx_msec_t) NGX_FAMCALL_PASSWORD_GUARD);
}
