/*
 * famcall-client: `call` and `answer`, the call's state machine.
 *
 * The caller builds its pipeline as soon as the callee rings, so that ICE
 * gathering overlaps the ringing; its offer and candidates are held until
 * call:accept, since the server relays nothing before. Each side sends
 * its candidates only once its offer or answer is acked (relays need not
 * arrive in order), and keeps the peer's until the remote description is
 * set. Every way a call can end goes through fc_call_finish(), which takes
 * the last statistics, stops the media, prints one summary line, writes
 * --stats-json and, for a call that was answered, the quality report.
 */

#include "fc.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* ICE "disconnected" this long is a lost call */
#define FC_ICE_GRACE_MS  10000

static int fc_call_prepare(fc_app_t *app);
static void fc_call_open(fc_app_t *app, gboolean again);
static void fc_answer_open(fc_app_t *app, gboolean again);
static void fc_call_event(fc_app_t *app, const char *type, JsonObject *d);
static void fc_call_lost(fc_app_t *app);
static void fc_call_invited(fc_app_t *app, JsonObject *data,
    const char *error, JsonObject *err, gpointer user);
static void fc_call_incoming(fc_app_t *app, const char *call_id,
    JsonObject *from, const char *media);
static void fc_call_accept(fc_app_t *app);
static void fc_call_accepted(fc_app_t *app, JsonObject *data,
    const char *error, JsonObject *err, gpointer user);
static void fc_call_active(fc_app_t *app, gboolean offerer);
static void fc_call_start_media(fc_app_t *app, gboolean offerer);
static void fc_call_send_held(fc_app_t *app);
static void fc_call_sdp_acked(fc_app_t *app, JsonObject *data,
    const char *error, JsonObject *err, gpointer user);
static void fc_call_send_ice(fc_app_t *app, JsonObject *ice);
static void fc_call_remote_ice(fc_app_t *app, JsonObject *d);
static void fc_call_ended_ack(fc_app_t *app, JsonObject *data,
    const char *error, JsonObject *err, gpointer user);
static void fc_call_resumed(fc_app_t *app, JsonObject *data,
    const char *error, JsonObject *err, gpointer user);
static void fc_call_listed(fc_app_t *app, JsonObject *data,
    const char *error, JsonObject *err, gpointer user);
static void fc_call_finish(fc_app_t *app, fc_exit_t outcome,
    const char *message);
static void fc_call_report(fc_app_t *app);
static JsonNode *fc_call_figures(fc_app_t *app, gboolean for_server);
static gboolean fc_call_duration_up(gpointer data);
static gboolean fc_call_poll_stats(gpointer data);
static gboolean fc_call_ice_gone(gpointer data);
static gboolean fc_call_wait_up(gpointer data);
static gboolean fc_call_on_sigint(gpointer data);
static gboolean fc_call_on_key(GIOChannel *ch, GIOCondition cond,
    gpointer data);
static void fc_call_keys(fc_app_t *app, gboolean on);
static void fc_call_ref_id(fc_app_t *app, const char *op);
static void fc_call_replay_early(fc_app_t *app);


static JsonObject *
fc_call_id_data(fc_app_t *app)
{
    JsonObject  *d = json_object_new();

    json_object_set_string_member(d, "call_id", app->call.call_id);
    return d;
}


/* what `call` and `answer` both need: ICE servers, signals, the socket's
   handlers (the plugins were checked at start, in main.c) */
static int
fc_call_prepare(fc_app_t *app)
{
    JsonNode  *answer;
    guint      status;
    int        rc;

    rc = fc_api_request(app, "GET", "/v1/turn", NULL, TRUE, &status,
                        &answer);
    if (rc != 0) {
        return rc;
    }
    if (status == 200 && JSON_NODE_HOLDS_OBJECT(answer)
        && json_object_has_member(json_node_get_object(answer),
                                  "ice_servers"))
    {
        app->ice_servers = json_array_ref(json_object_get_array_member(
            json_node_get_object(answer), "ice_servers"));
    } else if (app->opts.relay_only) {
        g_printerr("famcall-client: --relay-only, but the server offers no "
                   "TURN (%u %s)\n", status, fc_api_error_code(answer));
        if (answer) {
            json_node_unref(answer);
        }
        return FC_EXIT_REFUSED;
    } else {
        fc_log(app, "no ICE servers (%u): direct paths only", status);
    }
    if (answer) {
        json_node_unref(answer);
    }

    app->on_event = fc_call_event;
    app->on_lost = fc_call_lost;
    g_unix_signal_add(SIGINT, fc_call_on_sigint, app);
    g_unix_signal_add(SIGTERM, fc_call_on_sigint, app);
    return 0;
}


int
fc_call_run(fc_app_t *app, const char *contact)
{
    int  rc;

    rc = fc_api_find_contact(app, contact, &app->call.peer_id,
                             &app->call.peer_name);
    if (rc != 0) {
        return rc;
    }
    rc = fc_call_prepare(app);
    if (rc != 0) {
        return rc;
    }
    app->call.outgoing = TRUE;
    app->call.video = !app->opts.audio_only;
    app->on_open = fc_call_open;
    fc_ws_connect(app);
    return -1;                          /* the loop runs */
}


int
fc_answer_run(fc_app_t *app)
{
    int  rc;

    if (app->opts.from) {
        char  *name = NULL;

        rc = fc_api_find_contact(app, app->opts.from, &app->call.peer_id,
                                 &name);
        g_free(name);
        if (rc != 0) {
            return rc;
        }
    }
    rc = fc_call_prepare(app);
    if (rc != 0) {
        return rc;
    }
    app->on_open = fc_answer_open;
    if (app->opts.wait_s > 0) {
        g_timeout_add((guint) (app->opts.wait_s * 1000), fc_call_wait_up,
                      app);
    }
    fc_ws_connect(app);
    return -1;
}


static gboolean
fc_call_wait_up(gpointer data)
{
    fc_app_t  *app = data;

    if (app->call.state == FC_CALL_IDLE) {
        g_printerr("famcall-client: nobody called within %.0f s\n",
                   app->opts.wait_s);
        fc_quit(app, FC_EXIT_NO_ANSWER);
    }
    return G_SOURCE_REMOVE;
}


/* the socket is open (again) */
static void
fc_call_open(fc_app_t *app, gboolean again)
{
    JsonObject  *d;

    if (again) {
        fc_call_ref_id(app, "reconnected");
        return;
    }
    d = json_object_new();
    json_object_set_string_member(d, "to_user_id", app->call.peer_id);
    json_object_set_string_member(d, "media",
                                  app->call.video ? "video" : "audio");
    app->call.state = FC_CALL_INVITING;
    app->call.t_invite = fc_now_us();
    g_print("Calling %s...\n", app->call.peer_name);
    fc_ws_send(app, "call:invite", d, fc_call_invited, NULL);
    json_object_unref(d);
}


static void
fc_answer_open(fc_app_t *app, gboolean again)
{
    if (again && app->call.state != FC_CALL_IDLE) {
        fc_call_ref_id(app, "reconnected");
        return;
    }
    /* a call that rang before this socket opened still rings */
    fc_ws_send(app, "call:active", NULL, fc_call_listed, NULL);
    if (!again) {
        g_print("Waiting for a call%s%s...\n",
                app->opts.from ? " from " : "",
                app->opts.from ? app->opts.from : "");
    }
}


/*
 * Our socket came back during a call: ask the server where the call
 * stands, then take our side back (call:resume) if it goes on.
 */
static void
fc_call_ref_id(fc_app_t *app, const char *op)
{
    if (app->call.call_id == NULL || app->call.state == FC_CALL_DONE) {
        return;
    }
    fc_log(app, "socket %s: checking the call", op);
    app->call.resuming = TRUE;
    fc_ws_send(app, "call:active", NULL, fc_call_listed, NULL);
}


static void
fc_call_listed(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    JsonArray   *calls;
    JsonObject  *c, *from;
    const char  *id, *status, *dir;
    guint        i;
    gboolean     found = FALSE;

    if (error || data == NULL) {
        fc_log(app, "call:active: %s", error ? error : "?");
        return;
    }
    calls = json_object_get_array_member(data, "calls");

    for (i = 0; calls && i < json_array_get_length(calls); i++) {
        c = json_array_get_object_element(calls, i);
        id = json_object_get_string_member_with_default(c, "call_id", "");
        status = json_object_get_string_member_with_default(c, "status", "");
        dir = json_object_get_string_member_with_default(c, "direction", "");

        if (!app->call.resuming) {
            /* `answer` starting: a call ringing for us */
            if (app->call.state == FC_CALL_IDLE
                && strcmp(status, "ringing") == 0
                && strcmp(dir, "incoming") == 0
                && json_object_has_member(c, "from"))
            {
                from = json_object_get_object_member(c, "from");
                fc_call_incoming(app, id, from,
                    json_object_get_string_member_with_default(c, "media",
                                                               "video"));
            }
            continue;
        }
        if (app->call.call_id == NULL || strcmp(id, app->call.call_id) != 0) {
            continue;
        }
        found = TRUE;
        if (strcmp(status, "accepted") == 0
            && (app->call.state == FC_CALL_ACTIVE
                || app->call.state == FC_CALL_RINGING))
        {
            JsonObject  *d = fc_call_id_data(app);

            fc_ws_send(app, "call:resume", d, fc_call_resumed, NULL);
            json_object_unref(d);
        } else if (app->call.state == FC_CALL_ENDING) {
            JsonObject  *d = fc_call_id_data(app);

            json_object_set_string_member(d, "reason", "hangup");
            fc_ws_send(app, "call:end", d, fc_call_ended_ack, NULL);
            json_object_unref(d);
        }
    }
    if (app->call.resuming) {
        app->call.resuming = FALSE;
        if (!found && app->call.state != FC_CALL_DONE) {
            fc_call_finish(app, app->call.state == FC_CALL_ENDING
                                ? FC_EXIT_OK : FC_EXIT_LOST,
                           "the call ended while the connection was down");
        }
    }
}


static void
fc_call_resumed(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    if (error) {
        fc_call_finish(app, FC_EXIT_LOST,
                       "the call could not be taken back after a reconnect");
        return;
    }
    g_print("Signaling reconnected; the call goes on\n");
    if (app->call.state == FC_CALL_RINGING) {
        /* it was accepted while we were away */
        fc_call_active(app, TRUE);
    }
}


static void
fc_call_lost(fc_app_t *app)
{
    if (app->call.state != FC_CALL_IDLE && app->call.state != FC_CALL_DONE) {
        fc_call_finish(app, FC_EXIT_LOST, "lost the connection to the server");
    }
}


static void
fc_call_invited(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    const char  *status;

    if (error) {
        const char  *msg = err ? json_object_get_string_member_with_default(
                                     err, "message", error)
                               : error;

        g_printerr("famcall-client: the call was refused: %s (%s)\n", msg,
                   error);
        app->call.state = FC_CALL_DONE;
        fc_quit(app, strcmp(error, "unavailable") == 0 ? FC_EXIT_NETWORK
                     : FC_EXIT_REFUSED);
        return;
    }
    g_free(app->call.call_id);
    app->call.call_id = g_strdup(json_object_get_string_member_with_default(
        data, "call_id", ""));
    status = json_object_get_string_member_with_default(data, "status", "");

    if (strcmp(status, "busy") == 0) {
        fc_call_finish(app, FC_EXIT_BUSY,
            strcmp(json_object_get_string_member_with_default(data, "reason",
                                                              ""),
                   "caller_busy") == 0
            ? "you are in another call already"
            : "busy: they are in another call");
        return;
    }
    if (strcmp(status, "accepted") == 0) {
        /* glare: our invite answered theirs; we are the callee now */
        g_print("%s was calling you at the same moment: connected\n",
                app->call.peer_name);
        app->call.outgoing = FALSE;
        app->call.t_accept = fc_now_us();
        fc_call_active(app, FALSE);
        return;
    }
    app->call.state = FC_CALL_RINGING;
    /* gather candidates while it rings */
    fc_call_start_media(app, TRUE);
    fc_call_replay_early(app);
}


void
fc_call_early_free(gpointer p)
{
    fc_early_t  *e = p;

    g_free(e->type);
    json_object_unref(e->data);
    g_free(e);
}


static void
fc_call_replay_early(fc_app_t *app)
{
    fc_early_t  *e;

    while ((e = g_queue_pop_head(&app->call.early)) != NULL) {
        if (app->call.state != FC_CALL_DONE) {
            fc_call_event(app, e->type, e->data);
        }
        fc_call_early_free(e);
    }
}


static void
fc_call_incoming(fc_app_t *app, const char *call_id, JsonObject *from,
    const char *media)
{
    const char  *fid, *fname;

    fid = json_object_get_string_member_with_default(from, "id", "");
    fname = json_object_get_string_member_with_default(from, "display_name",
                                                       "someone");
    if (app->call.state != FC_CALL_IDLE) {
        return;                         /* one call at a time */
    }
    if (app->opts.from && g_strcmp0(app->call.peer_id, fid) != 0) {
        fc_log(app, "ignoring a call from %s", fname);
        return;
    }
    g_free(app->call.call_id);
    g_free(app->call.peer_id);
    g_free(app->call.peer_name);
    app->call.call_id = g_strdup(call_id);
    app->call.peer_id = g_strdup(fid);
    app->call.peer_name = g_strdup(fname);
    app->call.video = strcmp(media, "video") == 0 && !app->opts.audio_only;
    app->call.state = FC_CALL_INCOMING;
    app->call.t_invite = fc_now_us();

    g_print("Incoming %s call from %s\n", media, fname);
    if (app->opts.auto_answer) {
        fc_call_accept(app);
        return;
    }
    g_print("Answer? [y/n] ");
    fflush(stdout);
    app->call.prompted = TRUE;
    fc_call_keys(app, TRUE);
}


static void
fc_call_accept(fc_app_t *app)
{
    JsonObject  *d = fc_call_id_data(app);

    app->call.state = FC_CALL_ACCEPTING;
    fc_ws_send(app, "call:accept", d, fc_call_accepted, NULL);
    json_object_unref(d);
}


static void
fc_call_accepted(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    if (error) {
        if (strcmp(error, "answered_elsewhere") == 0) {
            fc_call_finish(app, FC_EXIT_ELSEWHERE,
                           "answered on another device");
        } else if (strcmp(error, "wrong_state") == 0) {
            fc_call_finish(app, FC_EXIT_CANCELLED,
                           "the call had already ended");
        } else {
            fc_call_finish(app, FC_EXIT_NETWORK, "could not answer");
        }
        return;
    }
    app->call.t_accept = fc_now_us();
    fc_call_active(app, FALSE);
}


/* the call is accepted: media starts (or goes on), held SDP leaves */
static void
fc_call_active(fc_app_t *app, gboolean offerer)
{
    app->call.state = FC_CALL_ACTIVE;
    g_print("Connected with %s%s\n", app->call.peer_name,
            app->opts.headless ? "" : " (q: hang up, m: mute, v: camera)");
    if (app->call.pipe == NULL) {
        fc_call_start_media(app, offerer);
        if (app->call.pipe == NULL) {
            return;
        }
    }
    fc_call_send_held(app);
    if (app->opts.duration_s > 0) {
        app->call.duration_timer = g_timeout_add(
            (guint) (app->opts.duration_s * 1000), fc_call_duration_up, app);
    }
    app->call.stats_timer = g_timeout_add_seconds(1, fc_call_poll_stats,
                                                  app);
    fc_call_keys(app, TRUE);
}


static void
fc_call_start_media(fc_app_t *app, gboolean offerer)
{
    app->call.pipe = fc_pipeline_new(app, offerer);
    if (app->call.pipe == NULL) {
        fc_call_finish(app, FC_EXIT_MEDIA, "the media pipeline failed");
    }
}


/* webrtcbin made our offer or answer (main loop, via pipeline.c) */
void
fc_call_on_local_sdp(fc_app_t *app, const char *type, char *sdp)
{
    g_free(app->call.held_type);
    g_free(app->call.held_sdp);
    app->call.held_type = g_strdup(type);
    app->call.held_sdp = sdp;
    if (app->call.state == FC_CALL_ACTIVE) {
        fc_call_send_held(app);
    }
}


static void
fc_call_send_held(fc_app_t *app)
{
    JsonObject  *d;
    char        *type;

    if (app->call.held_sdp == NULL) {
        return;
    }
    d = fc_call_id_data(app);
    json_object_set_string_member(d, "sdp", app->call.held_sdp);
    type = g_strconcat("webrtc:", app->call.held_type, NULL);
    fc_ws_send(app, type, d, fc_call_sdp_acked, NULL);
    g_free(type);
    json_object_unref(d);
    g_clear_pointer(&app->call.held_sdp, g_free);
}


static void
fc_call_sdp_acked(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    JsonObject  *ice;

    if (error) {
        if (app->call.state == FC_CALL_ACTIVE) {
            fc_call_finish(app, strcmp(error, "unavailable") == 0
                                ? FC_EXIT_LOST : FC_EXIT_ERROR,
                           "the server did not relay our description");
        }
        return;
    }
    app->call.local_acked = TRUE;
    while ((ice = g_queue_pop_head(&app->call.pending_local)) != NULL) {
        fc_call_send_ice(app, ice);
        json_object_unref(ice);
    }
}


void
fc_call_on_local_ice(fc_app_t *app, guint mline, char *candidate)
{
    JsonObject  *ice = json_object_new();

    json_object_set_string_member(ice, "candidate", candidate);
    json_object_set_int_member(ice, "sdp_mline_index", mline);
    g_free(candidate);
    if (!app->call.local_acked) {
        g_queue_push_tail(&app->call.pending_local, ice);
        return;
    }
    fc_call_send_ice(app, ice);
    json_object_unref(ice);
}


static void
fc_call_send_ice(fc_app_t *app, JsonObject *ice)
{
    json_object_set_string_member(ice, "call_id", app->call.call_id);
    fc_ws_send(app, "webrtc:ice", ice, NULL, NULL);
}


static void
fc_call_remote_ice(fc_app_t *app, JsonObject *d)
{
    const char  *cand;
    guint        mline;

    cand = json_object_get_string_member_with_default(d, "candidate", "");
    mline = json_object_get_int_member_with_default(d, "sdp_mline_index", 0);
    if (*cand == '\0' || app->call.pipe == NULL) {
        return;                         /* the end of the peer's list */
    }
    fc_pipeline_add_ice(app->call.pipe, mline, cand);
}


void
fc_call_on_ice_state(fc_app_t *app, const char *state)
{
    fc_log(app, "ICE %s", state);
    if (strcmp(state, "connected") == 0 || strcmp(state, "completed") == 0) {
        if (app->call.t_ice == 0) {
            app->call.t_ice = fc_now_us();
            g_print("Media connected\n");
        }
        if (app->call.ice_fail_timer) {
            g_source_remove(app->call.ice_fail_timer);
            app->call.ice_fail_timer = 0;
        }
    } else if (strcmp(state, "failed") == 0) {
        fc_call_ice_gone(app);
    } else if (strcmp(state, "disconnected") == 0
               && app->call.ice_fail_timer == 0)
    {
        app->call.ice_fail_timer = g_timeout_add(FC_ICE_GRACE_MS,
                                                 fc_call_ice_gone, app);
    }
}


static gboolean
fc_call_ice_gone(gpointer data)
{
    fc_app_t    *app = data;
    JsonObject  *d;

    app->call.ice_fail_timer = 0;
    if (app->call.state != FC_CALL_ACTIVE) {
        return G_SOURCE_REMOVE;
    }
    g_printerr("famcall-client: the media connection failed\n");
    d = fc_call_id_data(app);
    json_object_set_string_member(d, "reason", "ice_failed");
    app->call.outcome = FC_EXIT_LOST;
    app->call.state = FC_CALL_ENDING;
    fc_ws_send(app, "call:end", d, fc_call_ended_ack, NULL);
    json_object_unref(d);
    return G_SOURCE_REMOVE;
}


void
fc_call_on_pipeline_error(fc_app_t *app, char *message)
{
    g_printerr("famcall-client: media: %s\n", message);
    g_free(message);
    if (app->call.state == FC_CALL_ACTIVE
        || app->call.state == FC_CALL_RINGING)
    {
        app->call.outcome = FC_EXIT_MEDIA;
        fc_call_hangup(app);
    }
}


static void
fc_call_event(fc_app_t *app, const char *type, JsonObject *d)
{
    const char  *id, *reason, *sdp;

    id = json_object_get_string_member_with_default(d, "call_id", "");

    if (strcmp(type, "call:invite") == 0) {
        if (json_object_has_member(d, "from") && !app->call.outgoing) {
            fc_call_incoming(app, id, json_object_get_object_member(d, "from"),
                json_object_get_string_member_with_default(d, "media",
                                                           "video"));
        }
        return;
    }
    if (app->call.state == FC_CALL_INVITING && app->call.call_id == NULL) {
        /*
         * call:ringing is sent by the invite's transaction and may come
         * before its ack tells us the call's id: keep it for then.
         */
        fc_early_t  *e = g_new0(fc_early_t, 1);

        e->type = g_strdup(type);
        e->data = json_object_ref(d);
        g_queue_push_tail(&app->call.early, e);
        return;
    }
    if (app->call.call_id == NULL || strcmp(id, app->call.call_id) != 0
        || app->call.state == FC_CALL_DONE)
    {
        return;                         /* not about our call */
    }

    if (strcmp(type, "call:ringing") == 0) {
        app->call.t_ringing = fc_now_us();
        g_print("Ringing...\n");

    } else if (strcmp(type, "call:accept") == 0) {
        app->call.t_accept = fc_now_us();
        fc_call_active(app, TRUE);

    } else if (strcmp(type, "call:reject") == 0) {
        fc_call_finish(app, app->call.outgoing ? FC_EXIT_REJECTED
                                               : FC_EXIT_ELSEWHERE,
                       app->call.outgoing ? "the call was declined"
                                          : "declined on another device");

    } else if (strcmp(type, "call:busy") == 0) {
        fc_call_finish(app, FC_EXIT_BUSY, "busy: they are in another call");

    } else if (strcmp(type, "call:timeout") == 0) {
        fc_call_finish(app, FC_EXIT_NO_ANSWER,
                       app->call.outgoing ? "no answer" : "missed call");

    } else if (strcmp(type, "call:cancel") == 0) {
        fc_call_finish(app, FC_EXIT_CANCELLED, "the caller hung up");

    } else if (strcmp(type, "call:answered_elsewhere") == 0) {
        fc_call_finish(app, FC_EXIT_ELSEWHERE, "answered on another device");

    } else if (strcmp(type, "call:end") == 0) {
        reason = json_object_get_string_member_with_default(d, "reason",
                                                            "hangup");
        g_free(app->call.end_reason);
        app->call.end_reason = g_strdup(reason);
        if (strcmp(reason, "hangup") == 0) {
            char  *m = g_strdup_printf("%s hung up", app->call.peer_name);

            fc_call_finish(app, FC_EXIT_OK, m);
            g_free(m);
        } else {
            char  *m = g_strdup_printf("the call ended: %s", reason);

            fc_call_finish(app, strcmp(reason, "connection_lost") == 0
                                || strcmp(reason, "ice_failed") == 0
                                ? FC_EXIT_LOST : FC_EXIT_OK, m);
            g_free(m);
        }

    } else if (strcmp(type, "call:resume") == 0) {
        if (app->call.pipe) {
            fc_pipeline_restart_ice(app->call.pipe);
        }

    } else if (strcmp(type, "webrtc:offer") == 0
               || strcmp(type, "webrtc:answer") == 0)
    {
        sdp = json_object_get_string_member_with_default(d, "sdp", NULL);
        if (sdp == NULL || app->call.pipe == NULL) {
            return;
        }
        if (app->call.remote_set) {
            fc_log(app, "a renegotiation; the media path is kept");
            return;
        }
        fc_pipeline_set_remote(app->call.pipe, type + 7, sdp);
        /* webrtcbin orders its operations: candidates may follow now */
        app->call.remote_set = TRUE;
        while (!g_queue_is_empty(&app->call.pending_remote)) {
            JsonObject  *ice = g_queue_pop_head(&app->call.pending_remote);

            fc_call_remote_ice(app, ice);
            json_object_unref(ice);
        }

    } else if (strcmp(type, "webrtc:ice") == 0) {
        if (!app->call.remote_set) {
            g_queue_push_tail(&app->call.pending_remote,
                              json_object_ref(d));
            return;
        }
        fc_call_remote_ice(app, d);
    }
}


/* Ctrl-C, q, --duration, a pipeline error: leave the call politely */
void
fc_call_hangup(fc_app_t *app)
{
    JsonObject  *d;

    switch (app->call.state) {
    case FC_CALL_IDLE:
        fc_quit(app, FC_EXIT_OK);
        return;

    case FC_CALL_INVITING:
        /* no call id yet: nothing to cancel on the server */
        fc_call_finish(app, FC_EXIT_OK, "hung up");
        return;

    case FC_CALL_RINGING:
        d = fc_call_id_data(app);
        fc_ws_send(app, "call:cancel", d, NULL, NULL);
        json_object_unref(d);
        fc_call_finish(app, app->call.outcome ? app->call.outcome
                                              : FC_EXIT_OK, "cancelled");
        return;

    case FC_CALL_INCOMING:
        d = fc_call_id_data(app);
        fc_ws_send(app, "call:reject", d, NULL, NULL);
        json_object_unref(d);
        fc_call_finish(app, FC_EXIT_OK, "declined");
        return;

    case FC_CALL_ACCEPTING:
    case FC_CALL_ACTIVE:
        d = fc_call_id_data(app);
        json_object_set_string_member(d, "reason", "hangup");
        app->call.state = FC_CALL_ENDING;
        fc_ws_send(app, "call:end", d, fc_call_ended_ack, NULL);
        json_object_unref(d);
        return;

    case FC_CALL_ENDING:
    case FC_CALL_DONE:
        return;
    }
}


static void
fc_call_ended_ack(fc_app_t *app, JsonObject *data, const char *error,
    JsonObject *err, gpointer user)
{
    fc_exit_t  outcome = app->call.outcome;

    if (app->call.state == FC_CALL_DONE) {
        return;
    }
    if (error && strcmp(error, "unavailable") == 0) {
        /* the socket dropped: the reconnect finishes the job */
        return;
    }
    fc_call_finish(app, outcome, outcome == FC_EXIT_OK ? "hung up"
                                 : outcome == FC_EXIT_LOST
                                   ? "the media connection was lost"
                                   : "the call ended on an error");
}


static gboolean
fc_call_duration_up(gpointer data)
{
    fc_app_t  *app = data;

    app->call.duration_timer = 0;
    fc_call_hangup(app);
    return G_SOURCE_REMOVE;
}


static gboolean
fc_call_poll_stats(gpointer data)
{
    fc_app_t  *app = data;

    if (app->call.pipe == NULL) {
        app->call.stats_timer = 0;
        return G_SOURCE_REMOVE;
    }
    fc_pipeline_stats(app->call.pipe, &app->call.net);
    return G_SOURCE_CONTINUE;
}


static gboolean
fc_call_on_sigint(gpointer data)
{
    fc_app_t  *app = data;

    if (app->call.state == FC_CALL_ENDING) {
        /* a second Ctrl-C: do not wait for the server */
        fc_call_finish(app, FC_EXIT_OK, "hung up");
    } else {
        fc_call_hangup(app);
    }
    return G_SOURCE_CONTINUE;
}


/* in-call keys; in raw mode on a terminal, else whole lines */
static void
fc_call_keys(fc_app_t *app, gboolean on)
{
    struct termios         raw;
    GIOChannel            *ch;

    if (on && app->stdin_watch == 0 && !app->stdin_eof) {
        if (isatty(STDIN_FILENO) && app->call.state == FC_CALL_ACTIVE
            && tcgetattr(STDIN_FILENO, &app->tty_saved) == 0)
        {
            raw = app->tty_saved;
            raw.c_lflag &= ~(ICANON | ECHO);
            raw.c_cc[VMIN] = 1;
            raw.c_cc[VTIME] = 0;
            if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
                app->tty_raw = TRUE;
            }
        }
        ch = g_io_channel_unix_new(STDIN_FILENO);
        app->stdin_watch = g_io_add_watch(ch, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                          fc_call_on_key, app);
        g_io_channel_unref(ch);
        return;
    }
    if (!on) {
        if (app->tty_raw) {
            tcsetattr(STDIN_FILENO, TCSANOW, &app->tty_saved);
            app->tty_raw = FALSE;
        }
        if (app->stdin_watch) {
            g_source_remove(app->stdin_watch);
            app->stdin_watch = 0;
        }
    }
}


static gboolean
fc_call_on_key(GIOChannel *ch, GIOCondition cond, gpointer data)
{
    fc_app_t  *app = data;
    char       buf[64];
    ssize_t    n, i;

    n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n <= 0) {
        /* stdin closed (a script, /dev/null): keys are off, the call not */
        app->stdin_eof = TRUE;
        app->stdin_watch = 0;
        return G_SOURCE_REMOVE;
    }
    for (i = 0; i < n; i++) {
        switch (g_ascii_tolower(buf[i])) {
        case 'y':
            if (app->call.state == FC_CALL_INCOMING) {
                fc_call_accept(app);
            }
            break;
        case 'n':
            if (app->call.state == FC_CALL_INCOMING) {
                fc_call_hangup(app);
            }
            break;
        case 'q':
            fc_call_hangup(app);
            break;
        case 'm':
            if (app->call.pipe) {
                app->call.muted = !app->call.muted;
                fc_pipeline_mute(app->call.pipe, app->call.muted);
                g_print("%s\n", app->call.muted ? "Muted" : "Unmuted");
            }
            break;
        case 'v':
            if (app->call.pipe && app->call.video) {
                app->call.camera_off = !app->call.camera_off;
                fc_pipeline_camera(app->call.pipe, app->call.camera_off);
                g_print("Camera %s\n", app->call.camera_off ? "off" : "on");
            }
            break;
        default:
            break;
        }
    }
    return G_SOURCE_CONTINUE;
}


static double
fc_ms_between(gint64 from, gint64 to)
{
    if (from == 0 || to == 0) {
        return -1;
    }
    return MAX(0, (to - from) / 1000.0);
}


/*
 * The call's figures: for --stats-json (for_server FALSE: everything,
 * with nulls) or as the quality report of POST /v1/calls/{id}/stats (only
 * what is known, within the documented ranges).
 */
static JsonNode *
fc_call_figures(fc_app_t *app, gboolean for_server)
{
    fc_call_t    *c = &app->call;
    JsonBuilder  *b = json_builder_new();
    JsonNode     *root;
    double        secs, v;
    gint64        first;
    const char   *setup_names[] = { "ringing", "ice_connected",
                                    "first_frame" };
    double        setup[3];
    int           i;

    first = __atomic_load_n(&app->counters.first_frame_us, __ATOMIC_ACQUIRE);
    setup[0] = fc_ms_between(c->t_invite, c->t_ringing);
    setup[1] = fc_ms_between(c->t_accept, c->t_ice);
    setup[2] = fc_ms_between(c->t_accept, first);
    secs = c->t_accept && c->t_end ? (c->t_end - c->t_accept) / 1e6 : 0;
    if (secs > 0) {
        c->net.bitrate_in = c->net.bytes_in * 8.0 / secs;
        c->net.bitrate_out = c->net.bytes_out * 8.0 / secs;
    }

    json_builder_begin_object(b);
    if (!for_server) {
        json_builder_set_member_name(b, "call_id");
        json_builder_add_string_value(b, c->call_id);
        json_builder_set_member_name(b, "role");
        json_builder_add_string_value(b, c->outgoing ? "caller" : "callee");
        json_builder_set_member_name(b, "exit_code");
        json_builder_add_int_value(b, app->exit_code);
        json_builder_set_member_name(b, "end_reason");
        json_builder_add_string_value(b, c->end_reason);
        json_builder_set_member_name(b, "video_frames_sent");
        json_builder_add_int_value(b, g_atomic_int_get(
            &app->counters.video_sent));
        json_builder_set_member_name(b, "audio_buffers_sent");
        json_builder_add_int_value(b, g_atomic_int_get(
            &app->counters.audio_sent));
        json_builder_set_member_name(b, "video_frames_received");
        json_builder_add_int_value(b, g_atomic_int_get(
            &app->counters.video_recv));
        json_builder_set_member_name(b, "audio_buffers_received");
        json_builder_add_int_value(b, g_atomic_int_get(
            &app->counters.audio_recv));
        json_builder_set_member_name(b, "duration_s");
        json_builder_add_double_value(b, secs);
        json_builder_set_member_name(b, "turn_transports");
        json_builder_begin_array(b);
        for (i = 0; i < (int) G_N_ELEMENTS(c->turn) && c->turn[i]; i++) {
            json_builder_add_string_value(b, c->turn[i]);
        }
        json_builder_end_array(b);
    }

    if (c->net.local_type && c->net.remote_type) {
        json_builder_set_member_name(b, "selected_pair");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "local_type");
        json_builder_add_string_value(b, c->net.local_type);
        json_builder_set_member_name(b, "remote_type");
        json_builder_add_string_value(b, c->net.remote_type);
        if (!for_server && c->net.local_proto) {
            json_builder_set_member_name(b, "protocol");
            json_builder_add_string_value(b, c->net.local_proto);
        }
        json_builder_end_object(b);
    } else if (!for_server) {
        json_builder_set_member_name(b, "selected_pair");
        json_builder_add_null_value(b);
    }

    if (c->net.rtt_ms >= 0) {
        json_builder_set_member_name(b, "rtt_ms");
        json_builder_add_int_value(b, (gint64) MIN(c->net.rtt_ms, 60000));
    }
    if (c->net.packet_loss >= 0) {
        json_builder_set_member_name(b, "packet_loss");
        json_builder_add_double_value(b, MIN(c->net.packet_loss, 1.0));
    }
    if (secs > 0) {
        json_builder_set_member_name(b, "bitrate_in");
        json_builder_add_int_value(b, (gint64) MIN(c->net.bitrate_in, 1e9));
        json_builder_set_member_name(b, "bitrate_out");
        json_builder_add_int_value(b, (gint64) MIN(c->net.bitrate_out, 1e9));
    }

    json_builder_set_member_name(b, "setup_ms");
    json_builder_begin_object(b);
    for (i = 0; i < 3; i++) {
        v = setup[i];
        if (v < 0) {
            if (!for_server) {
                json_builder_set_member_name(b, setup_names[i]);
                json_builder_add_null_value(b);
            }
            continue;
        }
        json_builder_set_member_name(b, setup_names[i]);
        json_builder_add_int_value(b, (gint64) MIN(v, 600000));
    }
    json_builder_end_object(b);

    json_builder_end_object(b);
    root = json_builder_get_root(b);
    g_object_unref(b);
    return root;
}


static void
fc_call_report(fc_app_t *app)
{
    JsonNode  *body, *answer;
    guint      status;
    char      *path;
    int        rc;

    body = fc_call_figures(app, TRUE);
    path = g_strdup_printf("/v1/calls/%s/stats", app->call.call_id);
    rc = fc_api_request(app, "POST", path, body, TRUE, &status, &answer);
    g_free(path);
    json_node_unref(body);
    if (rc != 0) {
        g_printerr("famcall-client: the quality report was not sent\n");
        return;
    }
    if (status != 204) {
        g_printerr("famcall-client: the quality report was refused: %u %s\n",
                   status, fc_api_error_code(answer));
    } else {
        fc_log(app, "quality report sent");
    }
    if (answer) {
        json_node_unref(answer);
    }
}


static void
fc_call_finish(fc_app_t *app, fc_exit_t outcome, const char *message)
{
    fc_call_t  *c = &app->call;
    JsonNode   *fig;
    GError     *err = NULL;
    char       *text;
    gboolean    answered = c->t_accept != 0;
    int         vr, ar;

    if (c->state == FC_CALL_DONE) {
        return;
    }
    c->state = FC_CALL_DONE;
    c->t_end = fc_now_us();
    fc_call_keys(app, FALSE);
    if (c->duration_timer) {
        g_source_remove(c->duration_timer);
        c->duration_timer = 0;
    }
    if (c->stats_timer) {
        g_source_remove(c->stats_timer);
        c->stats_timer = 0;
    }
    if (c->ice_fail_timer) {
        g_source_remove(c->ice_fail_timer);
        c->ice_fail_timer = 0;
    }
    if (c->pipe) {
        fc_pipeline_stats(c->pipe, &c->net);
        fc_pipeline_free(c->pipe);
        c->pipe = NULL;
    }

    vr = g_atomic_int_get(&app->counters.video_recv);
    ar = g_atomic_int_get(&app->counters.audio_recv);
    /* nothing at all: a camera turned off still leaves the sound */
    if (outcome == FC_EXIT_OK && answered && app->opts.headless
        && ar == 0 && vr == 0)
    {
        outcome = FC_EXIT_NO_MEDIA;
        message = "the call carried no media";
    }
    if (c->end_reason == NULL) {
        c->end_reason = g_strdup(message);
    }
    app->exit_code = outcome;

    /* end the prompt's line first */
    g_print("%s%s\n", c->prompted && !answered ? "\n" : "", message);
    if (answered) {
        g_print("%s: %d video frames, %d audio buffers decoded "
                "(sent %d, %d; pair %s/%s%s%s)\n",
                app->username ? app->username : "me", vr, ar,
                g_atomic_int_get(&app->counters.video_sent),
                g_atomic_int_get(&app->counters.audio_sent),
                c->net.local_type ? c->net.local_type : "?",
                c->net.remote_type ? c->net.remote_type : "?",
                c->net.local_proto ? " " : "",
                c->net.local_proto ? c->net.local_proto : "");
    }

    if (app->opts.stats_json) {
        fig = fc_call_figures(app, FALSE);
        text = json_to_string(fig, TRUE);
        if (!g_file_set_contents(app->opts.stats_json, text, -1, &err)) {
            g_printerr("famcall-client: %s\n", err->message);
            g_clear_error(&err);
        }
        g_free(text);
        json_node_unref(fig);
    }
    if (answered && c->call_id) {
        fc_call_report(app);
    }
    fc_quit(app, outcome);
}
