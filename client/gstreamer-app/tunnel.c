/*
 * famcall-client: TURN over TLS through a local tunnel.
 *
 * libnice, in the RFC 5245 mode webrtcbin uses, speaks TURN in the clear
 * even to a turns: server (its TLS is only for the old compatibility
 * modes). So for each turns:HOST:PORT the client listens on an ephemeral
 * loopback port and gives webrtcbin turn:127.0.0.1:THAT?transport=tcp;
 * each connection libnice opens there is carried to HOST:PORT inside TLS
 * (GIO, glib-networking), its certificate checked against the system's
 * authorities or --turn-ca. The bytes are spliced on the main loop: a
 * call's few hundred kbit/s are nothing to it.
 */

#include "fc.h"

#include <string.h>

struct fc_tunnel_s {
    fc_app_t        *app;
    GSocketService  *service;
    char            *host;
    guint16          port;
    guint16          local_port;
};

typedef struct {
    fc_tunnel_t        *tunnel;
    GSocketConnection  *local;
} fc_tunnel_conn_t;

static gboolean fc_tunnel_incoming(GSocketService *service,
    GSocketConnection *conn, GObject *source, gpointer data);
static void fc_tunnel_event(GSocketClient *client, GSocketClientEvent event,
    GSocketConnectable *connectable, GIOStream *stream, gpointer data);
static void fc_tunnel_connected(GObject *src, GAsyncResult *res,
    gpointer data);
static void fc_tunnel_done(GObject *src, GAsyncResult *res, gpointer data);


/*
 * turns:HOST:PORT[?...] -> a tunnel, and the turn: URI to give webrtcbin
 * in *local (host 127.0.0.1, transport tcp); NULL when it cannot be made.
 */
fc_tunnel_t *
fc_tunnel_new(fc_app_t *app, const char *url, char **local)
{
    fc_tunnel_t     *t;
    GInetAddress    *lo;
    GSocketAddress  *want, *got = NULL;
    GError          *err = NULL;
    const char      *rest;
    char            *hostport, *q, *colon;
    guint64          port;

    rest = url + strlen("turns:");
    hostport = g_strdup(rest);
    q = strchr(hostport, '?');
    if (q) {
        *q = '\0';
    }
    colon = strrchr(hostport, ':');
    port = colon ? g_ascii_strtoull(colon + 1, NULL, 10) : 5349;
    if (colon) {
        *colon = '\0';
    }
    if (*hostport == '\0' || port == 0 || port > 65535) {
        g_printerr("famcall-client: bad TURN URI %s\n", url);
        g_free(hostport);
        return NULL;
    }

    t = g_new0(fc_tunnel_t, 1);
    t->app = app;
    t->host = hostport;
    t->port = (guint16) port;
    t->service = g_socket_service_new();

    lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    want = g_inet_socket_address_new(lo, 0);
    g_object_unref(lo);
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(t->service), want,
                                       G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_TCP, NULL, &got,
                                       &err))
    {
        g_printerr("famcall-client: TURN over TLS: %s\n", err->message);
        g_clear_error(&err);
        g_object_unref(want);
        fc_tunnel_free(t);
        return NULL;
    }
    g_object_unref(want);
    t->local_port = g_inet_socket_address_get_port(
        G_INET_SOCKET_ADDRESS(got));
    g_object_unref(got);

    g_signal_connect(t->service, "incoming", G_CALLBACK(fc_tunnel_incoming),
                     t);
    g_socket_service_start(t->service);

    *local = g_strdup_printf("turn:127.0.0.1:%u?transport=tcp",
                             t->local_port);
    fc_log(app, "TURN over TLS to %s:%u through 127.0.0.1:%u", t->host,
           t->port, t->local_port);
    return t;
}


void
fc_tunnel_free(fc_tunnel_t *t)
{
    if (t == NULL) {
        return;
    }
    g_signal_handlers_disconnect_by_data(t->service, t);
    g_socket_service_stop(t->service);
    g_socket_listener_close(G_SOCKET_LISTENER(t->service));
    g_object_unref(t->service);
    g_free(t->host);
    g_free(t);
}


static gboolean
fc_tunnel_incoming(GSocketService *service, GSocketConnection *conn,
    GObject *source, gpointer data)
{
    fc_tunnel_t       *t = data;
    fc_tunnel_conn_t  *c;
    GSocketClient     *client;

    c = g_new0(fc_tunnel_conn_t, 1);
    c->tunnel = t;
    c->local = g_object_ref(conn);

    client = g_socket_client_new();
    g_socket_client_set_tls(client, TRUE);
    g_signal_connect(client, "event", G_CALLBACK(fc_tunnel_event), t->app);
    g_socket_client_connect_to_host_async(client, t->host, t->port, NULL,
                                          fc_tunnel_connected, c);
    g_object_unref(client);
    return TRUE;
}


/* --turn-ca: trust that file's authorities instead of the system's */
static void
fc_tunnel_event(GSocketClient *client, GSocketClientEvent event,
    GSocketConnectable *connectable, GIOStream *stream, gpointer data)
{
    fc_app_t  *app = data;

    if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING && app->turn_ca) {
        g_tls_connection_set_database(G_TLS_CONNECTION(stream),
                                      app->turn_ca);
    }
}


static void
fc_tunnel_connected(GObject *src, GAsyncResult *res, gpointer data)
{
    fc_tunnel_conn_t   *c = data;
    GSocketConnection  *remote;
    GError             *err = NULL;

    remote = g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(src),
                                                    res, &err);
    if (remote == NULL) {
        /* libnice sees its TCP connection close, and has no relay there */
        g_printerr("famcall-client: TURN over TLS to %s:%u: %s\n",
                   c->tunnel->host, c->tunnel->port, err->message);
        g_clear_error(&err);
        g_io_stream_close(G_IO_STREAM(c->local), NULL, NULL);
        g_object_unref(c->local);
        g_free(c);
        return;
    }
    /* both ends close together; the splice holds its own references */
    g_io_stream_splice_async(G_IO_STREAM(c->local), G_IO_STREAM(remote),
                             G_IO_STREAM_SPLICE_CLOSE_STREAM1
                             | G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                             G_PRIORITY_DEFAULT, NULL, fc_tunnel_done, NULL);
    g_object_unref(remote);
    g_object_unref(c->local);
    g_free(c);
}


static void
fc_tunnel_done(GObject *src, GAsyncResult *res, gpointer data)
{
    g_io_stream_splice_finish(res, NULL);
}
