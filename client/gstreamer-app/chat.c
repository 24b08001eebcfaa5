/*
 * famcall-client: `chat CONTACT`. Messages go out on the socket
 * (message:send, a fresh client_id each, so a resend after a reconnect is
 * not stored twice); the peer's come in as message:new. Whenever the
 * socket opens, the messages after the last one seen are fetched over
 * HTTP first, so none sent while it was closed (or before it first opened)
 * is missed, and none is printed twice (seq only grows).
 */

#include "fc.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char      *client_id;
    char      *body;
    gboolean   in_flight;              /* sent on the open socket */
} fc_outgoing_t;

static void fc_chat_open(fc_app_t *app, gboolean again);
static void fc_chat_event(fc_app_t *app, const char *type, JsonObject *d);
static void fc_chat_catch_up(fc_app_t *app);
static void fc_chat_show(fc_app_t *app, JsonObject *m);
static void fc_chat_flush(fc_app_t *app);
static void fc_chat_sent(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user);
static void fc_chat_maybe_done(fc_app_t *app);
static gboolean fc_chat_stdin(GIOChannel *ch, GIOCondition cond,
    gpointer data);
static gboolean fc_chat_timeout(gpointer data);
static gboolean fc_chat_sigint(gpointer data);

/*
 * Shown at most once each: the peer's messages come both from catch-ups and
 * as message:new, and neither comes in seq order for sure.
 */
static gboolean
fc_chat_first_sight(fc_app_t *app, gint64 seq)
{
    if (app->chat_seen == NULL) {
        app->chat_seen = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                               g_free, NULL);
    }
    if (g_hash_table_contains(app->chat_seen, &seq)) {
        return FALSE;
    }
    g_hash_table_add(app->chat_seen, g_memdup2(&seq, sizeof(seq)));
    return TRUE;
}


static void
fc_outgoing_free(gpointer p)
{
    fc_outgoing_t  *o = p;

    g_free(o->client_id);
    g_free(o->body);
    g_free(o);
}


static void
fc_chat_queue(fc_app_t *app, const char *body)
{
    fc_outgoing_t  *o = g_new0(fc_outgoing_t, 1);

    o->client_id = g_uuid_string_random();
    o->body = g_strdup(body);
    g_queue_push_tail(&app->chat_outbox, o);
}


int
fc_chat_run(fc_app_t *app, const char *contact, char **send, int until,
    double timeout_s)
{
    JsonObject  *o;
    JsonNode    *body, *answer, *page;
    JsonArray   *msgs;
    char        *name = NULL, *path;
    guint        status, i, n;
    int          rc;
    gboolean     interactive = send == NULL && until == 0;

    rc = fc_api_find_contact(app, contact, &app->chat_peer_id, &name);
    if (rc != 0) {
        return rc;
    }
    app->chat_peer_name = name;

    o = json_object_new();
    json_object_set_string_member(o, "user_id", app->chat_peer_id);
    body = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(body, o);
    rc = fc_api_request(app, "POST", "/v1/conversations", body, TRUE,
                        &status, &answer);
    json_node_unref(body);
    if (rc != 0) {
        return rc;
    }
    if ((status != 200 && status != 201) || !JSON_NODE_HOLDS_OBJECT(answer)) {
        g_printerr("famcall-client: chat: %s (%u %s)\n",
                   fc_api_error_message(answer), status,
                   fc_api_error_code(answer));
        if (answer) {
            json_node_unref(answer);
        }
        return fc_api_exit_for(status);
    }
    app->conversation_id = g_strdup(json_object_get_string_member_with_default(
        json_node_get_object(answer), "id", ""));
    /* what we have not read yet is new to us: we start after our read mark */
    app->chat_seq = json_object_get_int_member_with_default(
        json_node_get_object(answer), "last_read_seq", 0);
    json_node_unref(answer);

    /* on a terminal, the last few read ones for context */
    if (interactive && isatty(STDIN_FILENO) && app->chat_seq > 0) {
        path = g_strdup_printf("/v1/conversations/%s/messages?limit=10"
                               "&before_seq=%" G_GINT64_FORMAT,
                               app->conversation_id, app->chat_seq + 1);
        rc = fc_api_request(app, "GET", path, NULL, TRUE, &status, &page);
        g_free(path);
        if (rc != 0) {
            return rc;
        }
        if (status == 200 && JSON_NODE_HOLDS_OBJECT(page)) {
            msgs = json_object_get_array_member(json_node_get_object(page),
                                                "messages");
            n = msgs ? json_array_get_length(msgs) : 0;
            for (i = 0; i < n; i++) {
                JsonObject  *m = json_array_get_object_element(msgs, i);

                fc_chat_first_sight(app, json_object_get_int_member_with_default(
                    m, "seq", 0));
                g_print("%s: %s\n",
                        g_strcmp0(json_object_get_string_member_with_default(
                                      m, "sender_id", ""), app->user_id) == 0
                        ? "me" : app->chat_peer_name,
                        json_object_get_string_member_with_default(m, "body",
                                                                   ""));
            }
        }
        if (page) {
            json_node_unref(page);
        }
    }

    app->chat_want = until;
    for (i = 0; send && send[i]; i++) {
        fc_chat_queue(app, send[i]);
    }
    g_strfreev(send);

    if (interactive) {
        GIOChannel  *ch = g_io_channel_unix_new(STDIN_FILENO);

        app->stdin_watch = g_io_add_watch(ch, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                          fc_chat_stdin, app);
        g_io_channel_unref(ch);
    } else {
        app->stdin_eof = TRUE;
    }
    if (timeout_s > 0) {
        g_timeout_add((guint) (timeout_s * 1000), fc_chat_timeout, app);
    }
    g_unix_signal_add(SIGINT, fc_chat_sigint, app);
    app->on_open = fc_chat_open;
    app->on_event = fc_chat_event;
    fc_ws_connect(app);
    return -1;
}


static void
fc_chat_open(fc_app_t *app, gboolean again)
{
    fc_chat_catch_up(app);
    fc_chat_flush(app);
    fc_chat_maybe_done(app);
}


/* the peer's messages after the last one seen, over HTTP */
static void
fc_chat_catch_up(fc_app_t *app)
{
    JsonNode   *page;
    JsonArray  *msgs;
    JsonObject *m;
    guint       status, i;
    gint64      after = app->chat_seq;
    char       *path;

    for ( ;; ) {
        path = g_strdup_printf("/v1/conversations/%s/messages?after_seq=%"
                               G_GINT64_FORMAT "&limit=100",
                               app->conversation_id, after);
        if (fc_api_request(app, "GET", path, NULL, TRUE, &status, &page)
            != 0)
        {
            g_free(path);
            return;
        }
        g_free(path);
        if (status != 200 || !JSON_NODE_HOLDS_OBJECT(page)) {
            if (page) {
                json_node_unref(page);
            }
            return;
        }
        msgs = json_object_get_array_member(json_node_get_object(page),
                                            "messages");
        for (i = 0; msgs && i < json_array_get_length(msgs); i++) {
            m = json_array_get_object_element(msgs, i);
            after = MAX(after, json_object_get_int_member_with_default(
                m, "seq", 0));
            fc_chat_show(app, m);
        }
        i = msgs ? json_array_get_length(msgs) : 0;
        json_node_unref(page);
        if (i < 100) {
            return;
        }
    }
}


static void
fc_chat_show(fc_app_t *app, JsonObject *m)
{
    const char  *sender;
    gint64       seq;
    JsonObject  *d;

    seq = json_object_get_int_member_with_default(m, "seq", 0);
    sender = json_object_get_string_member_with_default(m, "sender_id", "");
    if (g_strcmp0(sender, app->user_id) == 0) {
        return;             /* ours: shown as "sent:" when acked */
    }
    if (!fc_chat_first_sight(app, seq)) {
        return;
    }
    g_print("%s: %s\n", app->chat_peer_name,
            json_object_get_string_member_with_default(m, "body", ""));
    app->chat_received++;

    /* tell them it was read */
    if (app->ws_open) {
        d = json_object_new();
        json_object_set_string_member(d, "conversation_id",
                                      app->conversation_id);
        json_object_set_int_member(d, "up_to_seq", seq);
        fc_ws_send(app, "message:read", d, NULL, NULL);
        json_object_unref(d);
    }
}


static void
fc_chat_event(fc_app_t *app, const char *type, JsonObject *d)
{
    if (strcmp(type, "message:new") == 0
        && g_strcmp0(json_object_get_string_member_with_default(
                         d, "conversation_id", ""),
                     app->conversation_id) == 0)
    {
        fc_chat_show(app, d);
        fc_chat_maybe_done(app);
    } else if (strcmp(type, "typing") == 0
               && g_strcmp0(json_object_get_string_member_with_default(
                                d, "state", ""), "start") == 0)
    {
        fc_log(app, "typing...");
    } else if (strcmp(type, "resync") == 0) {
        fc_chat_catch_up(app);
    }
}


static void
fc_chat_flush(fc_app_t *app)
{
    fc_outgoing_t  *o;
    JsonObject     *d;
    GList          *l;

    if (!app->ws_open) {
        return;
    }
    /* everything not yet acked, in order; the same client_id each time */
    for (l = app->chat_outbox.head; l; l = l->next) {
        o = l->data;
        if (o->in_flight) {
            continue;
        }
        d = json_object_new();
        json_object_set_string_member(d, "conversation_id",
                                      app->conversation_id);
        json_object_set_string_member(d, "client_id", o->client_id);
        json_object_set_string_member(d, "body", o->body);
        o->in_flight = TRUE;
        fc_ws_send(app, "message:send", d, fc_chat_sent, o);
        json_object_unref(d);
    }
}


static void
fc_chat_sent(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    fc_outgoing_t  *o = user;

    o->in_flight = FALSE;
    if (error && strcmp(error, "unavailable") == 0) {
        return;                         /* resent when the socket is back */
    }
    g_queue_remove(&app->chat_outbox, o);
    if (error) {
        g_printerr("famcall-client: not sent: %s (%s)\n",
                   err ? json_object_get_string_member_with_default(
                             err, "message", "") : "", error);
        fc_outgoing_free(o);
        fc_quit(app, strcmp(error, "rate_limited") == 0
                     || strcmp(error, "blocked") == 0
                     || strcmp(error, "not_a_contact") == 0
                     ? FC_EXIT_REFUSED : FC_EXIT_ERROR);
        return;
    }
    g_print("sent: %s\n", o->body);
    fc_outgoing_free(o);
    fc_chat_maybe_done(app);
}


/* stop once everything is sent and as many as asked came in */
static void
fc_chat_maybe_done(fc_app_t *app)
{
    if (!app->stdin_eof || !g_queue_is_empty(&app->chat_outbox)) {
        return;
    }
    if (app->chat_want > 0 && app->chat_received < app->chat_want) {
        return;
    }
    fc_quit(app, FC_EXIT_OK);
}


static gboolean
fc_chat_stdin(GIOChannel *ch, GIOCondition cond, gpointer data)
{
    fc_app_t   *app = data;
    char       *line = NULL;
    gsize       len;
    GIOStatus   st;

    st = g_io_channel_read_line(ch, &line, &len, NULL, NULL);
    if (st == G_IO_STATUS_EOF || st == G_IO_STATUS_ERROR) {
        g_free(line);
        app->stdin_eof = TRUE;
        app->stdin_watch = 0;
        fc_chat_maybe_done(app);
        return G_SOURCE_REMOVE;
    }
    if (line) {
        g_strstrip(line);
        if (*line) {
            fc_chat_queue(app, line);
            fc_chat_flush(app);
        }
        g_free(line);
    }
    return G_SOURCE_CONTINUE;
}


static gboolean
fc_chat_timeout(gpointer data)
{
    fc_app_t  *app = data;

    g_printerr("famcall-client: timed out (%d of %d messages came in)\n",
               app->chat_received, app->chat_want);
    fc_quit(app, FC_EXIT_NO_ANSWER);
    return G_SOURCE_REMOVE;
}


static gboolean
fc_chat_sigint(gpointer data)
{
    fc_quit(data, FC_EXIT_OK);
    return G_SOURCE_REMOVE;
}


void
fc_chat_free(fc_app_t *app)
{
    g_queue_clear_full(&app->chat_outbox, fc_outgoing_free);
    if (app->chat_seen) {
        g_hash_table_destroy(app->chat_seen);
        app->chat_seen = NULL;
    }
}
