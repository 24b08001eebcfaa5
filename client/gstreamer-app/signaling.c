/*
 * famcall-client: the WebSocket (docs/websocket.md).
 *
 * One socket, opened with `Authorization: Bearer` and the famcall.v1
 * subprotocol. Requests carry a ref; their ack or error comes back to the
 * callback given with them. Everything else goes to app->on_event. When the
 * socket drops while it is wanted (a call or a chat goes on), it is opened
 * again with backoff and a fresh token, and app->on_open says so: the call
 * resumes from there. The token's expiry is renewed on the socket (`auth`)
 * before the server would close it.
 */

#include "fc.h"

#include <string.h>

#define FC_WS_MAX_RETRIES  8

typedef struct {
    fc_ack_cb   cb;
    gpointer    user;
} fc_pending_t;

static void fc_ws_connected(GObject *src, GAsyncResult *res, gpointer data);
static void fc_ws_message(SoupWebsocketConnection *ws, gint type,
    GBytes *message, gpointer data);
static void fc_ws_closed(SoupWebsocketConnection *ws, gpointer data);
static void fc_ws_lost(fc_app_t *app);
static gboolean fc_ws_retry(gpointer data);
static void fc_ws_schedule_auth(fc_app_t *app, gint64 expires_at);
static gboolean fc_ws_renew(gpointer data);
static void fc_ws_renewed(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user);
static void fc_ws_fail_pending(fc_app_t *app);


void
fc_ws_connect(fc_app_t *app)
{
    SoupMessage  *msg;
    char         *url, *hdr;
    const char   *protocols[] = { "famcall.v1", NULL };
    int           rc;

    app->ws_want = TRUE;
    if (app->pending == NULL) {
        app->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             g_free);
    }

    rc = fc_api_fresh_token(app);
    if (rc != 0) {
        fc_quit(app, rc);
        return;
    }

    /* http://host -> ws://host, https -> wss */
    if (g_str_has_prefix(app->opts.server, "https:")) {
        url = g_strconcat("wss:", app->opts.server + 6, "/v1/ws", NULL);
    } else {
        url = g_strconcat("ws:", app->opts.server + 5, "/v1/ws", NULL);
    }
    msg = soup_message_new("GET", url);
    g_free(url);
    if (msg == NULL) {
        g_printerr("famcall-client: bad server URL: %s\n", app->opts.server);
        fc_quit(app, FC_EXIT_USAGE);
        return;
    }
    hdr = g_strconcat("Bearer ", app->access_token, NULL);
    soup_message_headers_replace(soup_message_get_request_headers(msg),
                                 "Authorization", hdr);
    g_free(hdr);

    soup_session_websocket_connect_async(app->http, msg, NULL,
                                         (char **) protocols,
                                         G_PRIORITY_DEFAULT, NULL,
                                         fc_ws_connected, app);
    g_object_unref(msg);
}


static void
fc_ws_connected(GObject *src, GAsyncResult *res, gpointer data)
{
    fc_app_t  *app = data;
    GError    *err = NULL;

    app->ws = soup_session_websocket_connect_finish(SOUP_SESSION(src), res,
                                                    &err);
    if (app->ws == NULL) {
        fc_log(app, "socket: %s", err->message);
        if (!app->ws_was_open || !app->ws_want) {
            g_printerr("famcall-client: cannot open the socket: %s\n",
                       err->message);
            g_clear_error(&err);
            fc_quit(app, FC_EXIT_NETWORK);
            return;
        }
        g_clear_error(&err);
        fc_ws_lost(app);
        return;
    }

    /* a sync page or an SDP may be large; the server bounds them */
    g_object_set(app->ws, "max-incoming-payload-size", (guint64) 4 << 20,
                 "keepalive-interval", 20, NULL);
    g_signal_connect(app->ws, "message", G_CALLBACK(fc_ws_message), app);
    g_signal_connect(app->ws, "closed", G_CALLBACK(fc_ws_closed), app);
    /* the open completes on the server's hello */
}


void
fc_ws_send(fc_app_t *app, const char *type, JsonObject *data, fc_ack_cb cb,
    gpointer user)
{
    JsonBuilder   *b;
    JsonNode      *root, *dn;
    fc_pending_t  *p;
    char          *ref, *text;

    b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, type);
    ref = g_strdup_printf("r%u", ++app->next_ref);
    json_builder_set_member_name(b, "ref");
    json_builder_add_string_value(b, ref);
    json_builder_set_member_name(b, "data");
    dn = json_node_new(JSON_NODE_OBJECT);
    json_node_set_object(dn, data ? data : json_object_new());
    if (data == NULL) {
        json_object_unref(json_node_get_object(dn));
    }
    json_builder_add_value(b, dn);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    text = json_to_string(root, FALSE);
    json_node_unref(root);
    g_object_unref(b);

    if (app->ws == NULL || !app->ws_open) {
        /* nothing can answer it: fail it now, on the loop */
        fc_log(app, "socket closed: %s not sent", type);
        if (cb) {
            cb(app, NULL, "unavailable", NULL, user);
        }
        g_free(ref);
        g_free(text);
        return;
    }

    if (app->opts.verbose) {
        /* never a token in the log */
        fc_log(app, "-> %.200s", strcmp(type, "auth") == 0
                                 ? "{\"type\":\"auth\", ...}" : text);
    }
    p = g_new0(fc_pending_t, 1);
    p->cb = cb;
    p->user = user;
    g_hash_table_insert(app->pending, ref, p);
    soup_websocket_connection_send_text(app->ws, text);
    g_free(text);
}


static void
fc_ws_message(SoupWebsocketConnection *ws, gint type, GBytes *message,
    gpointer data)
{
    fc_app_t      *app = data;
    JsonParser    *parser;
    JsonObject    *o, *d = NULL, *e = NULL;
    JsonNode      *n;
    fc_pending_t  *p;
    const char    *ev, *ref;
    gconstpointer  bytes;
    gpointer       key = NULL, val = NULL;
    gsize          len;

    if (type != SOUP_WEBSOCKET_DATA_TEXT) {
        return;
    }
    bytes = g_bytes_get_data(message, &len);
    if (app->opts.verbose) {
        fc_log(app, "<- %.*s", (int) MIN(len, 200), (const char *) bytes);
    }
    parser = json_parser_new();
    if (!json_parser_load_from_data(parser, bytes, len, NULL)
        || !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
    {
        g_object_unref(parser);
        return;
    }
    o = json_node_get_object(json_parser_get_root(parser));
    ev = json_object_get_string_member_with_default(o, "type", "");
    n = json_object_get_member(o, "data");
    if (n && JSON_NODE_HOLDS_OBJECT(n)) {
        d = json_node_get_object(n);
    }

    if (strcmp(ev, "ack") == 0 || strcmp(ev, "error") == 0) {
        n = json_object_get_member(o, "ref");
        ref = n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_string(n) : NULL;
        n = json_object_get_member(o, "error");
        if (n && JSON_NODE_HOLDS_OBJECT(n)) {
            e = json_node_get_object(n);
        }
        if (ref == NULL
            || !g_hash_table_steal_extended(app->pending, ref, &key, &val))
        {
            if (e) {
                fc_log(app, "server: %s",
                       json_object_get_string_member_with_default(
                           e, "message", "error"));
            }
            g_object_unref(parser);
            return;
        }
        g_free(key);
        p = val;
        if (p->cb) {
            p->cb(app, d ? d : NULL,
                  e ? json_object_get_string_member_with_default(e, "code",
                                                                 "error")
                    : NULL,
                  e, p->user);
        }
        g_free(p);
        g_object_unref(parser);
        return;
    }

    if (strcmp(ev, "hello") == 0) {
        gboolean  again = app->ws_was_open;

        app->ws_open = TRUE;
        app->ws_was_open = TRUE;
        app->ws_retries = 0;
        if (d) {
            fc_ws_schedule_auth(app, json_object_get_int_member_with_default(
                d, "expires_at", 0));
        }
        if (app->on_open) {
            app->on_open(app, again);
        }
        g_object_unref(parser);
        return;
    }

    if (strcmp(ev, "session:revoked") == 0) {
        g_printerr("famcall-client: this session was logged out elsewhere\n");
        app->ws_want = FALSE;
        fc_quit(app, FC_EXIT_AUTH);
        g_object_unref(parser);
        return;
    }

    if (app->on_event) {
        JsonObject  *empty = NULL;

        if (d == NULL) {
            empty = json_object_new();
        }
        app->on_event(app, ev, d ? d : empty);
        if (empty) {
            json_object_unref(empty);
        }
    }
    g_object_unref(parser);
}


static void
fc_ws_fail_pending(fc_app_t *app)
{
    GHashTableIter  it;
    gpointer        k, v;
    GList          *cbs = NULL, *l;

    if (app->pending == NULL) {
        return;
    }
    /* callbacks may send again: collect them first */
    g_hash_table_iter_init(&it, app->pending);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        cbs = g_list_prepend(cbs, v);
        g_hash_table_iter_steal(&it);
        g_free(k);
    }
    for (l = cbs; l; l = l->next) {
        fc_pending_t  *p = l->data;

        if (p->cb) {
            p->cb(app, NULL, "unavailable", NULL, p->user);
        }
        g_free(p);
    }
    g_list_free(cbs);
}


static void
fc_ws_closed(SoupWebsocketConnection *ws, gpointer data)
{
    fc_app_t  *app = data;
    gushort    code = soup_websocket_connection_get_close_code(ws);

    fc_log(app, "socket closed (%u)", code);
    if (app->ws == ws) {
        g_signal_handlers_disconnect_by_data(ws, app);
        g_clear_object(&app->ws);
    }
    app->ws_open = FALSE;
    if (app->auth_timer) {
        g_source_remove(app->auth_timer);
        app->auth_timer = 0;
    }
    fc_ws_fail_pending(app);
    if (app->ws_want) {
        /*
         * 1001: the server is reloading or stopping. Its new workers need
         * a moment to register before they take sockets (a socket that
         * comes back at once may find its presence refused), and every
         * client comes back at this moment: start the backoff at a second.
         */
        app->ws_going_away = code == SOUP_WEBSOCKET_CLOSE_GOING_AWAY;
        fc_ws_lost(app);
    }
}


static void
fc_ws_lost(fc_app_t *app)
{
    guint  delay;

    if (app->ws_retries >= FC_WS_MAX_RETRIES) {
        g_printerr("famcall-client: the server is gone\n");
        if (app->on_lost) {
            app->on_lost(app);
        }
        fc_quit(app, FC_EXIT_NETWORK);
        return;
    }
    /* 250 ms (1 s after a 1001) doubling, plus as much again of jitter */
    delay = (app->ws_going_away ? 1000u : 250u) << MIN(app->ws_retries, 5);
    delay += g_random_int_range(0, delay);
    app->ws_retries++;
    fc_log(app, "reconnecting in %u ms", delay);
    if (app->ws_retry_timer == 0) {
        app->ws_retry_timer = g_timeout_add(delay, fc_ws_retry, app);
    }
}


static gboolean
fc_ws_retry(gpointer data)
{
    fc_app_t  *app = data;

    app->ws_retry_timer = 0;
    if (app->ws_want) {
        fc_ws_connect(app);
    }
    return G_SOURCE_REMOVE;
}


void
fc_ws_close(fc_app_t *app)
{
    app->ws_want = FALSE;
    if (app->ws_retry_timer) {
        g_source_remove(app->ws_retry_timer);
        app->ws_retry_timer = 0;
    }
    if (app->auth_timer) {
        g_source_remove(app->auth_timer);
        app->auth_timer = 0;
    }
    if (app->ws) {
        g_signal_handlers_disconnect_by_data(app->ws, app);
        if (soup_websocket_connection_get_state(app->ws)
            == SOUP_WEBSOCKET_STATE_OPEN)
        {
            soup_websocket_connection_close(app->ws,
                                            SOUP_WEBSOCKET_CLOSE_NORMAL,
                                            NULL);
        }
        g_clear_object(&app->ws);
    }
    app->ws_open = FALSE;
    if (app->pending) {
        fc_ws_fail_pending(app);
        g_hash_table_destroy(app->pending);
        app->pending = NULL;
    }
}


/* renew the socket's token a minute before the server would close it */
static void
fc_ws_schedule_auth(fc_app_t *app, gint64 expires_at)
{
    gint64  in;

    if (app->auth_timer) {
        g_source_remove(app->auth_timer);
        app->auth_timer = 0;
    }
    if (expires_at <= 0) {
        return;
    }
    in = expires_at - 60 - g_get_real_time() / G_USEC_PER_SEC;
    app->auth_timer = g_timeout_add_seconds(MAX(in, 1), fc_ws_renew, app);
}


static gboolean
fc_ws_renew(gpointer data)
{
    fc_app_t    *app = data;
    JsonObject  *d;

    app->auth_timer = 0;
    app->access_expires = 0;           /* force a refresh */
    if (fc_api_fresh_token(app) != 0) {
        fc_quit(app, FC_EXIT_AUTH);
        return G_SOURCE_REMOVE;
    }
    d = json_object_new();
    json_object_set_string_member(d, "access_token", app->access_token);
    fc_ws_send(app, "auth", d, fc_ws_renewed, NULL);
    json_object_unref(d);
    return G_SOURCE_REMOVE;
}


static void
fc_ws_renewed(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    if (error || data == NULL) {
        fc_log(app, "token renewal on the socket failed: %s",
               error ? error : "?");
        return;
    }
    fc_log(app, "token renewed on the socket");
    fc_ws_schedule_auth(app, json_object_get_int_member_with_default(
        data, "expires_at", 0));
}
