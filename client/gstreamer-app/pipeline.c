/*
 * famcall-client: the media pipeline around webrtcbin.
 *
 * VP8 and Opus, one BUNDLE transport (max-bundle), trickle ICE with the
 * servers of GET /v1/turn. Both sides build the same pipeline before any
 * SDP: the offerer's transceivers come from its linked sink pads, and the
 * answerer's webrtcbin pairs its own with the offer's m-lines by kind.
 *
 * webrtcbin signals on its own threads and on streaming threads. Those
 * handlers only copy what they get into an fc_handoff_t and queue it on
 * the main loop, which checks the pipeline is still the call's (by serial)
 * before acting. Decoded frames and buffers are counted in pad probes
 * with atomic counters.
 */

#include "fc.h"

#include <string.h>

#define GST_USE_UNSTABLE_API
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

struct fc_pipeline_s {
    fc_app_t    *app;
    guint        serial;
    GstElement  *pipe;
    GstElement  *webrtc;
    GstElement  *volume;
    GstElement  *valve;
    gboolean     offerer;
};

typedef enum {
    FC_HO_SDP,
    FC_HO_ICE,
    FC_HO_STATE,
    FC_HO_ERROR
} fc_handoff_kind_t;

typedef struct {
    fc_app_t           *app;
    guint               serial;
    fc_handoff_kind_t   kind;
    char               *type;      /* offer, answer; ICE state name */
    char               *text;      /* SDP, candidate, error message */
    guint               mline;
} fc_handoff_t;

static const char *fc_plugins_always[] = {
    "webrtcbin", "nicesrc", "nicesink", "dtlssrtpenc", "dtlssrtpdec",
    "srtpenc", "srtpdec", "rtpbin", "vp8enc", "vp8dec", "rtpvp8pay",
    "rtpvp8depay", "opusenc", "opusdec", "rtpopuspay", "rtpopusdepay",
    "videoconvert", "videoscale", "videorate", "audioconvert", "audioresample",
    "volume", "valve", "queue", "decodebin", "fakesink", NULL
};

static void fc_handoff(fc_pipeline_t *p, fc_handoff_kind_t kind,
    const char *type, char *text, guint mline);
static gboolean fc_handoff_run(gpointer data);
static void fc_on_negotiation_needed(GstElement *webrtc, gpointer data);
static void fc_on_offer_created(GstPromise *promise, gpointer data);
static void fc_on_answer_created(GstPromise *promise, gpointer data);
static void fc_on_remote_set(GstPromise *promise, gpointer data);
static void fc_on_ice_candidate(GstElement *webrtc, guint mline,
    gchar *candidate, gpointer data);
static void fc_on_ice_state(GObject *webrtc, GParamSpec *ps, gpointer data);
static void fc_on_incoming(GstElement *webrtc, GstPad *pad, gpointer data);
static void fc_on_decoded(GstElement *decodebin, GstPad *pad, gpointer data);
static GstPadProbeReturn fc_count_probe(GstPad *pad, GstPadProbeInfo *info,
    gpointer data);
static gboolean fc_on_bus(GstBus *bus, GstMessage *msg, gpointer data);
static char *fc_turn_uri(const char *url, const char *user,
    const char *pass);
static void fc_add_ice_servers(fc_pipeline_t *p);
static void fc_quiet_agent(fc_pipeline_t *p);
static void fc_note_turn(fc_app_t *app, const char *url);

/* which counter a probe bumps */
enum { FC_C_VIDEO_SENT, FC_C_AUDIO_SENT, FC_C_VIDEO_RECV, FC_C_AUDIO_RECV };


/* 0, or FC_EXIT_MEDIA naming every missing element */
int
fc_pipeline_check_plugins(fc_app_t *app)
{
    GString      *missing = g_string_new(NULL);
    const char  **n;
    const char   *extra[5] = { NULL };
    int           i = 0, rc;

    if (!app->opts.test_media) {
        extra[i++] = "autoaudiosrc";
        if (!app->opts.audio_only) {
            extra[i++] = "autovideosrc";
        }
    } else {
        extra[i++] = "audiotestsrc";
        extra[i++] = "videotestsrc";
    }
    if (!app->opts.headless) {
        extra[i++] = "autoaudiosink";
        extra[i++] = "autovideosink";
    }

    for (n = fc_plugins_always; *n; n++) {
        GstElementFactory  *f = gst_element_factory_find(*n);

        if (f == NULL) {
            g_string_append_printf(missing, " %s", *n);
        } else {
            gst_object_unref(f);
        }
    }
    for (i = 0; i < (int) G_N_ELEMENTS(extra) && extra[i]; i++) {
        GstElementFactory  *f = gst_element_factory_find(extra[i]);

        if (f == NULL) {
            g_string_append_printf(missing, " %s", extra[i]);
        } else {
            gst_object_unref(f);
        }
    }

    rc = missing->len ? FC_EXIT_MEDIA : 0;
    if (rc) {
        g_printerr("famcall-client: missing GStreamer elements:%s\n"
                   "  (Debian: gstreamer1.0-plugins-base, -good, -bad, "
                   "gstreamer1.0-nice)\n", missing->str);
    }
    g_string_free(missing, TRUE);
    return rc;
}


fc_pipeline_t *
fc_pipeline_new(fc_app_t *app, gboolean offerer)
{
    fc_pipeline_t  *p;
    GError         *err = NULL;
    GstBus         *bus;
    GstPad         *pad;
    GstElement     *e;
    GString        *desc;
    const char     *vsrc, *asrc;

    vsrc = app->opts.test_media
        ? "videotestsrc is-live=true pattern=ball"
        : "autovideosrc";
    asrc = app->opts.test_media
        ? "audiotestsrc is-live=true wave=sine freq=440 volume=0.2"
        : "autoaudiosrc";

    desc = g_string_new(NULL);
    g_string_append_printf(desc,
        "webrtcbin name=webrtc bundle-policy=max-bundle latency=%d "
        "%s ! audioconvert ! audioresample ! volume name=micvol ! queue "
        "! opusenc ! rtpopuspay name=apay pt=111 "
        "! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 "
        "! webrtc. ",
        app->opts.latency_ms, asrc);
    if (!app->opts.audio_only) {
        g_string_append_printf(desc,
            "%s ! videoconvert ! videoscale "
            "! video/x-raw,width=320,height=240 ! videorate "
            "! video/x-raw,framerate=15/1 ! valve name=camvalve ! queue "
            "! vp8enc deadline=1 cpu-used=8 target-bitrate=300000 "
            "keyframe-max-dist=30 error-resilient=partitions "
            "! rtpvp8pay name=vpay pt=96 "
            "! application/x-rtp,media=video,encoding-name=VP8,payload=96 "
            "! webrtc. ",
            vsrc);
    }

    p = g_new0(fc_pipeline_t, 1);
    p->app = app;
    p->offerer = offerer;
    p->serial = ++app->pipe_serial;
    p->pipe = gst_parse_launch(desc->str, &err);
    g_string_free(desc, TRUE);
    if (p->pipe == NULL || err) {
        g_printerr("famcall-client: pipeline: %s\n",
                   err ? err->message : "?");
        g_clear_error(&err);
        if (p->pipe) {
            gst_object_unref(p->pipe);
        }
        g_free(p);
        return NULL;
    }

    p->webrtc = gst_bin_get_by_name(GST_BIN(p->pipe), "webrtc");
    p->volume = gst_bin_get_by_name(GST_BIN(p->pipe), "micvol");
    p->valve = gst_bin_get_by_name(GST_BIN(p->pipe), "camvalve");

    fc_quiet_agent(p);
    if (app->opts.relay_only) {
        g_object_set(p->webrtc, "ice-transport-policy",
                     GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY, NULL);
    }
    fc_add_ice_servers(p);

    /* what we send: encoded frames and packets into the payloaders */
    e = gst_bin_get_by_name(GST_BIN(p->pipe), "apay");
    pad = gst_element_get_static_pad(e, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, fc_count_probe,
                      GINT_TO_POINTER(FC_C_AUDIO_SENT), NULL);
    gst_object_unref(pad);
    gst_object_unref(e);
    if (!app->opts.audio_only) {
        e = gst_bin_get_by_name(GST_BIN(p->pipe), "vpay");
        pad = gst_element_get_static_pad(e, "sink");
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, fc_count_probe,
                          GINT_TO_POINTER(FC_C_VIDEO_SENT), NULL);
        gst_object_unref(pad);
        gst_object_unref(e);
    }

    /*
     * The probes reach the counters through the app, which outlives every
     * pipeline; the signal handlers get p, which is freed only after the
     * pipeline has stopped and they are disconnected.
     */
    g_object_set_data(G_OBJECT(p->pipe), "fc-app", app);
    g_signal_connect(p->webrtc, "on-negotiation-needed",
                     G_CALLBACK(fc_on_negotiation_needed), p);
    g_signal_connect(p->webrtc, "on-ice-candidate",
                     G_CALLBACK(fc_on_ice_candidate), p);
    g_signal_connect(p->webrtc, "notify::ice-connection-state",
                     G_CALLBACK(fc_on_ice_state), p);
    g_signal_connect(p->webrtc, "pad-added", G_CALLBACK(fc_on_incoming), p);

    bus = gst_element_get_bus(p->pipe);
    gst_bus_add_watch(bus, fc_on_bus, p);
    gst_object_unref(bus);

    if (gst_element_set_state(p->pipe, GST_STATE_PLAYING)
        == GST_STATE_CHANGE_FAILURE)
    {
        g_printerr("famcall-client: the pipeline did not start "
                   "(a camera or microphone missing? try --test-media)\n");
        fc_pipeline_free(p);
        return NULL;
    }
    return p;
}


void
fc_pipeline_free(fc_pipeline_t *p)
{
    GstBus  *bus;

    if (p == NULL) {
        return;
    }
    /* stop first: no streaming thread runs a handler of ours after this */
    gst_element_set_state(p->pipe, GST_STATE_NULL);
    g_signal_handlers_disconnect_by_data(p->webrtc, p);
    bus = gst_element_get_bus(p->pipe);
    gst_bus_remove_watch(bus);
    gst_object_unref(bus);
    gst_object_unref(p->webrtc);
    if (p->volume) {
        gst_object_unref(p->volume);
    }
    if (p->valve) {
        gst_object_unref(p->valve);
    }
    gst_object_unref(p->pipe);
    g_free(p);
}


/*
 * libnice looks for a UPnP gateway to map ports (SSDP multicast, a thread,
 * seconds of waiting on networks without one); STUN and TURN do that job
 * here, so it is turned off on the agent webrtcbin made.
 */
static void
fc_quiet_agent(fc_pipeline_t *p)
{
    GObject  *ice = NULL, *agent = NULL;

    if (g_object_class_find_property(G_OBJECT_GET_CLASS(p->webrtc),
                                     "ice-agent") == NULL)
    {
        return;
    }
    g_object_get(p->webrtc, "ice-agent", &ice, NULL);
    if (ice && g_object_class_find_property(G_OBJECT_GET_CLASS(ice),
                                            "agent"))
    {
        g_object_get(ice, "agent", &agent, NULL);
    }
    if (agent && g_object_class_find_property(G_OBJECT_GET_CLASS(agent),
                                              "upnp"))
    {
        g_object_set(agent, "upnp", FALSE, NULL);
        fc_log(p->app, "UPnP off");
    }
    g_clear_object(&agent);
    g_clear_object(&ice);
}


/* turn:host:port?transport=tcp -> turn://user:pass@host:port?transport=tcp */
static char *
fc_turn_uri(const char *url, const char *user, const char *pass)
{
    const char  *rest, *scheme;
    char        *u, *pw, *out;

    if (g_str_has_prefix(url, "turns:")) {
        scheme = "turns";
        rest = url + 6;
    } else if (g_str_has_prefix(url, "turn:")) {
        scheme = "turn";
        rest = url + 5;
    } else {
        return NULL;
    }
    /* webrtcbin splits user:pass at the first ':': escape both */
    u = g_uri_escape_string(user ? user : "", NULL, FALSE);
    pw = g_uri_escape_string(pass ? pass : "", NULL, FALSE);
    out = g_strdup_printf("%s://%s:%s@%s", scheme, u, pw, rest);
    g_free(u);
    g_free(pw);
    return out;
}


static void
fc_add_ice_servers(fc_pipeline_t *p)
{
    JsonArray    *servers = p->app->ice_servers;
    JsonObject   *s;
    JsonArray    *urls;
    const char   *url, *user, *pass, *want = p->app->opts.turn_transport;
    gboolean      ok;
    guint         i, j;
    char         *uri;

    for (i = 0; servers && i < json_array_get_length(servers); i++) {
        s = json_array_get_object_element(servers, i);
        if (s == NULL || !json_object_has_member(s, "urls")) {
            continue;
        }
        urls = json_object_get_array_member(s, "urls");
        user = json_object_get_string_member_with_default(s, "username",
                                                          NULL);
        pass = json_object_get_string_member_with_default(s, "credential",
                                                          NULL);
        for (j = 0; urls && j < json_array_get_length(urls); j++) {
            url = json_array_get_string_element(urls, j);
            if (url == NULL) {
                continue;
            }
            if (g_str_has_prefix(url, "stun:")) {
                uri = g_strconcat("stun://", url + 5, NULL);
                g_object_set(p->webrtc, "stun-server", uri, NULL);
                fc_log(p->app, "STUN %s", url);
                g_free(uri);
                continue;
            }
            /* --turn-transport keeps the TURN URIs of one transport */
            if (want) {
                if (strcmp(want, "tls") == 0) {
                    ok = g_str_has_prefix(url, "turns:");
                } else {
                    char  *t = g_strconcat("transport=", want, NULL);

                    ok = g_str_has_prefix(url, "turn:")
                         && strstr(url, t) != NULL;
                    g_free(t);
                }
                if (!ok) {
                    continue;
                }
            }
            if (g_str_has_prefix(url, "turns:")) {
                /* libnice would speak in the clear: through a tunnel */
                fc_tunnel_t  *t;
                char         *local = NULL;

                t = fc_tunnel_new(p->app, url, &local);
                if (t == NULL) {
                    continue;
                }
                if (p->app->tunnels == NULL) {
                    p->app->tunnels = g_ptr_array_new_with_free_func(
                        (GDestroyNotify) fc_tunnel_free);
                }
                g_ptr_array_add(p->app->tunnels, t);
                uri = fc_turn_uri(local, user, pass);
                g_free(local);
            } else {
                uri = fc_turn_uri(url, user, pass);
            }
            if (uri) {
                g_signal_emit_by_name(p->webrtc, "add-turn-server", uri, &ok);
                fc_log(p->app, "TURN %s%s", url, ok ? "" : " (refused)");
                g_free(uri);
                if (ok) {
                    fc_note_turn(p->app, url);
                }
            }
        }
    }
}


/*
 * Which TURN transports the agent may use (for --stats-json: webrtcbin 1.22
 * leaves a relay candidate's relay-protocol at "none", so this is how a
 * test knows a relay pair went over TCP when only TCP was given).
 */
static void
fc_note_turn(fc_app_t *app, const char *url)
{
    const char  *t = g_str_has_prefix(url, "turns:") ? "tls"
                     : strstr(url, "transport=tcp") ? "tcp" : "udp";
    guint        i;

    for (i = 0; i < G_N_ELEMENTS(app->call.turn) && app->call.turn[i]; i++) {
        if (strcmp(app->call.turn[i], t) == 0) {
            return;
        }
    }
    if (i < G_N_ELEMENTS(app->call.turn)) {
        app->call.turn[i] = t;
    }
}


/* queue what a webrtcbin thread saw for the main loop */
static void
fc_handoff(fc_pipeline_t *p, fc_handoff_kind_t kind, const char *type,
    char *text, guint mline)
{
    fc_handoff_t  *h = g_new0(fc_handoff_t, 1);

    h->app = p->app;
    h->serial = p->serial;
    h->kind = kind;
    h->type = g_strdup(type);
    h->text = text;
    h->mline = mline;
    g_idle_add(fc_handoff_run, h);
}


static gboolean
fc_handoff_run(gpointer data)
{
    fc_handoff_t  *h = data;
    fc_app_t      *app = h->app;

    /* the call may have ended, or moved to a new pipeline, meanwhile */
    if (app->call.pipe && app->call.pipe->serial == h->serial) {
        switch (h->kind) {
        case FC_HO_SDP:
            fc_call_on_local_sdp(app, h->type, h->text);
            h->text = NULL;
            break;
        case FC_HO_ICE:
            fc_call_on_local_ice(app, h->mline, h->text);
            h->text = NULL;
            break;
        case FC_HO_STATE:
            fc_call_on_ice_state(app, h->type);
            break;
        case FC_HO_ERROR:
            fc_call_on_pipeline_error(app, h->text);
            h->text = NULL;
            break;
        }
    }
    g_free(h->type);
    g_free(h->text);
    g_free(h);
    return G_SOURCE_REMOVE;
}


static void
fc_on_negotiation_needed(GstElement *webrtc, gpointer data)
{
    fc_pipeline_t  *p = data;
    GstPromise     *promise;

    if (!p->offerer) {
        return;
    }
    promise = gst_promise_new_with_change_func(fc_on_offer_created, p, NULL);
    g_signal_emit_by_name(webrtc, "create-offer", NULL, promise);
}


static void
fc_local_description(fc_pipeline_t *p, GstPromise *promise, const char *kind)
{
    const GstStructure        *reply;
    GstWebRTCSessionDescription *desc = NULL;

    if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
        gst_promise_unref(promise);
        fc_handoff(p, FC_HO_ERROR, NULL,
                   g_strdup_printf("creating the %s failed", kind), 0);
        return;
    }
    reply = gst_promise_get_reply(promise);
    gst_structure_get(reply, kind, GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
                      &desc, NULL);
    gst_promise_unref(promise);
    if (desc == NULL) {
        fc_handoff(p, FC_HO_ERROR, NULL,
                   g_strdup_printf("webrtcbin made no %s", kind), 0);
        return;
    }

    g_signal_emit_by_name(p->webrtc, "set-local-description", desc, NULL);
    fc_handoff(p, FC_HO_SDP, kind, gst_sdp_message_as_text(desc->sdp), 0);
    gst_webrtc_session_description_free(desc);
}


static void
fc_on_offer_created(GstPromise *promise, gpointer data)
{
    fc_local_description(data, promise, "offer");
}


static void
fc_on_answer_created(GstPromise *promise, gpointer data)
{
    fc_local_description(data, promise, "answer");
}


static void
fc_on_remote_set(GstPromise *promise, gpointer data)
{
    fc_pipeline_t  *p = data;

    gst_promise_unref(promise);
    if (!p->offerer) {
        promise = gst_promise_new_with_change_func(fc_on_answer_created, p,
                                                   NULL);
        g_signal_emit_by_name(p->webrtc, "create-answer", NULL, promise);
    }
}


void
fc_pipeline_set_remote(fc_pipeline_t *p, const char *type, const char *sdp)
{
    GstSDPMessage                *msg;
    GstWebRTCSessionDescription  *desc;
    GstPromise                   *promise;

    if (gst_sdp_message_new_from_text(sdp, &msg) != GST_SDP_OK) {
        fc_handoff(p, FC_HO_ERROR, NULL, g_strdup("the peer's SDP is bad"),
                   0);
        return;
    }
    desc = gst_webrtc_session_description_new(
        strcmp(type, "offer") == 0 ? GST_WEBRTC_SDP_TYPE_OFFER
                                   : GST_WEBRTC_SDP_TYPE_ANSWER, msg);
    promise = gst_promise_new_with_change_func(fc_on_remote_set, p, NULL);
    g_signal_emit_by_name(p->webrtc, "set-remote-description", desc,
                          promise);
    gst_webrtc_session_description_free(desc);
}


void
fc_pipeline_add_ice(fc_pipeline_t *p, guint mline, const char *candidate)
{
    g_signal_emit_by_name(p->webrtc, "add-ice-candidate", mline, candidate);
}


static void
fc_on_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate,
    gpointer data)
{
    fc_handoff(data, FC_HO_ICE, NULL, g_strdup(candidate), mline);
}


static void
fc_on_ice_state(GObject *webrtc, GParamSpec *ps, gpointer data)
{
    fc_pipeline_t              *p = data;
    GstWebRTCICEConnectionState state;
    GEnumClass                 *klass;
    GEnumValue                 *v;

    g_object_get(webrtc, "ice-connection-state", &state, NULL);
    klass = g_type_class_ref(GST_TYPE_WEBRTC_ICE_CONNECTION_STATE);
    v = g_enum_get_value(klass, state);
    fc_handoff(p, FC_HO_STATE, v ? v->value_nick : "?", NULL, 0);
    g_type_class_unref(klass);
}


/* a remote stream: decode it, then count (and show or play) what comes */
static void
fc_on_incoming(GstElement *webrtc, GstPad *pad, gpointer data)
{
    fc_pipeline_t  *p = data;
    GstElement     *dec;
    GstPad         *sink;

    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) {
        return;
    }
    dec = gst_element_factory_make("decodebin", NULL);
    g_signal_connect(dec, "pad-added", G_CALLBACK(fc_on_decoded), p);
    gst_bin_add(GST_BIN(p->pipe), dec);
    gst_element_sync_state_with_parent(dec);
    sink = gst_element_get_static_pad(dec, "sink");
    gst_pad_link(pad, sink);
    gst_object_unref(sink);
}


static void
fc_on_decoded(GstElement *decodebin, GstPad *pad, gpointer data)
{
    fc_pipeline_t  *p = data;
    GstCaps        *caps;
    const char     *name;
    GstElement     *bin;
    GstPad         *sink;
    GError         *err = NULL;
    gboolean        video;
    char           *desc;

    caps = gst_pad_get_current_caps(pad);
    if (caps == NULL) {
        caps = gst_pad_query_caps(pad, NULL);
    }
    name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
    video = g_str_has_prefix(name, "video/");
    if (!video && !g_str_has_prefix(name, "audio/")) {
        gst_caps_unref(caps);
        return;
    }
    gst_caps_unref(caps);

    if (video) {
        desc = g_strdup_printf("queue name=vin ! videoconvert ! %s",
                               p->app->opts.headless
                               ? "fakesink sync=false"
                               : "autovideosink");
    } else {
        desc = g_strdup_printf("queue name=ain ! audioconvert "
                               "! audioresample ! %s",
                               p->app->opts.headless
                               ? "fakesink sync=false"
                               : "autoaudiosink");
    }
    bin = gst_parse_bin_from_description(desc, TRUE, &err);
    g_free(desc);
    if (bin == NULL) {
        fc_handoff(p, FC_HO_ERROR, NULL, g_strdup(err->message), 0);
        g_clear_error(&err);
        return;
    }
    sink = gst_element_get_static_pad(bin, "sink");
    gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, fc_count_probe,
                      GINT_TO_POINTER(video ? FC_C_VIDEO_RECV
                                            : FC_C_AUDIO_RECV), NULL);
    gst_bin_add(GST_BIN(p->pipe), bin);
    gst_element_sync_state_with_parent(bin);
    gst_pad_link(pad, sink);
    gst_object_unref(sink);
}


static GstPadProbeReturn
fc_count_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    GstObject  *o;
    fc_app_t   *app = NULL;
    int         which = GPOINTER_TO_INT(data);

    /* the pipeline carries the app (set once, before PLAYING) */
    for (o = GST_OBJECT(pad); o; o = GST_OBJECT_PARENT(o)) {
        if (GST_IS_PIPELINE(o)) {
            app = g_object_get_data(G_OBJECT(o), "fc-app");
            break;
        }
    }
    if (app == NULL) {
        return GST_PAD_PROBE_OK;
    }

    switch (which) {
    case FC_C_VIDEO_SENT:
        g_atomic_int_inc(&app->counters.video_sent);
        break;
    case FC_C_AUDIO_SENT:
        g_atomic_int_inc(&app->counters.audio_sent);
        break;
    case FC_C_VIDEO_RECV:
        if (g_atomic_int_add(&app->counters.video_recv, 1) == 0
            && !app->opts.audio_only)
        {
            __atomic_store_n(&app->counters.first_frame_us, fc_now_us(),
                             __ATOMIC_RELEASE);
        }
        break;
    case FC_C_AUDIO_RECV:
        if (g_atomic_int_add(&app->counters.audio_recv, 1) == 0
            && app->opts.audio_only)
        {
            __atomic_store_n(&app->counters.first_frame_us, fc_now_us(),
                             __ATOMIC_RELEASE);
        }
        break;
    }
    return GST_PAD_PROBE_OK;
}


static gboolean
fc_on_bus(GstBus *bus, GstMessage *msg, gpointer data)
{
    fc_pipeline_t  *p = data;
    GError         *err = NULL;
    char           *dbg = NULL;

    switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
        gst_message_parse_error(msg, &err, &dbg);
        fc_log(p->app, "pipeline error: %s (%s)", err->message,
               dbg ? dbg : "");
        fc_handoff(p, FC_HO_ERROR, NULL,
                   g_strdup_printf("%s: %s", GST_OBJECT_NAME(msg->src),
                                   err->message), 0);
        g_clear_error(&err);
        g_free(dbg);
        break;
    case GST_MESSAGE_WARNING:
        gst_message_parse_warning(msg, &err, &dbg);
        fc_log(p->app, "pipeline warning: %s", err->message);
        g_clear_error(&err);
        g_free(dbg);
        break;
    default:
        break;
    }
    return G_SOURCE_CONTINUE;
}


void
fc_pipeline_restart_ice(fc_pipeline_t *p)
{
    /*
     * webrtcbin 1.22 cannot restart ICE (create-offer has no ice-restart
     * option): a call whose signaling came back keeps its media path.
     */
    fc_log(p->app, "the peer's signaling came back; media path kept");
}


void
fc_pipeline_mute(fc_pipeline_t *p, gboolean mute)
{
    if (p->volume) {
        g_object_set(p->volume, "mute", mute, NULL);
    }
}


void
fc_pipeline_camera(fc_pipeline_t *p, gboolean off)
{
    if (p->valve) {
        g_object_set(p->valve, "drop", off, NULL);
    }
}


static const GstStructure *
fc_stats_entry(const GstStructure *all, const char *id)
{
    const GValue  *v;

    if (id == NULL) {
        return NULL;
    }
    v = gst_structure_get_value(all, id);
    if (v == NULL || !GST_VALUE_HOLDS_STRUCTURE(v)) {
        return NULL;
    }
    return gst_value_get_structure(v);
}


static const char *
fc_candidate_type_name(const GstStructure *c)
{
    const GValue  *v = gst_structure_get_value(c, "candidate-type");

    if (v == NULL) {
        return NULL;
    }
    if (G_VALUE_HOLDS_STRING(v)) {
        return g_value_get_string(v);
    }
    return NULL;
}


/*
 * The figures of the call so far, from get-stats. The selected pair is
 * found from a transport's "selected-candidate-pair-id", and its two
 * candidates by the pair's candidate ids: in GStreamer 1.22 the
 * candidate entries' own "type" (local- or remote-candidate) is swapped
 * in some entries, so the ids are what we trust.
 */
void
fc_pipeline_stats(fc_pipeline_t *p, fc_netstats_t *out)
{
    GstPromise          *promise;
    const GstStructure  *all, *s, *pair, *c;
    GstWebRTCStatsType   type;
    guint64              u64;
    gint64               lost;
    gint                 i, n;
    double               rtt, lost_total = 0, recv_total = 0;
    const char          *pair_id = NULL, *id;

    promise = gst_promise_new();
    g_signal_emit_by_name(p->webrtc, "get-stats", NULL, promise);
    if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
        gst_promise_unref(promise);
        return;
    }
    all = gst_promise_get_reply(promise);
    if (p->app->opts.verbose) {
        char  *dump = gst_structure_to_string(all);

        fc_log(p->app, "stats: %s", dump);
        g_free(dump);
    }

    n = gst_structure_n_fields(all);
    out->bytes_in = 0;
    out->bytes_out = 0;
    for (i = 0; i < n; i++) {
        s = fc_stats_entry(all, gst_structure_nth_field_name(all, i));
        if (s == NULL || !gst_structure_get(s, "type",
                                            GST_TYPE_WEBRTC_STATS_TYPE,
                                            &type, NULL))
        {
            continue;
        }
        switch (type) {
        case GST_WEBRTC_STATS_TRANSPORT:
            id = gst_structure_get_string(s, "selected-candidate-pair-id");
            if (id && pair_id == NULL) {
                pair_id = id;
            }
            break;
        case GST_WEBRTC_STATS_INBOUND_RTP:
            if (gst_structure_get_uint64(s, "bytes-received", &u64)) {
                out->bytes_in += u64;
            }
            if (gst_structure_get_int64(s, "packets-lost", &lost)) {
                lost_total += MAX(lost, 0);
            }
            if (gst_structure_get_uint64(s, "packets-received", &u64)) {
                recv_total += u64;
            }
            break;
        case GST_WEBRTC_STATS_OUTBOUND_RTP:
            if (gst_structure_get_uint64(s, "bytes-sent", &u64)) {
                out->bytes_out += u64;
            }
            break;
        case GST_WEBRTC_STATS_REMOTE_INBOUND_RTP:
            if (gst_structure_get_double(s, "round-trip-time", &rtt)
                && rtt > 0)
            {
                out->rtt_ms = rtt * 1000.0;
            }
            break;
        default:
            break;
        }
    }
    if (lost_total + recv_total > 0) {
        out->packet_loss = lost_total / (lost_total + recv_total);
    }

    pair = fc_stats_entry(all, pair_id);
    if (pair) {
        c = fc_stats_entry(all,
                           gst_structure_get_string(pair,
                                                    "local-candidate-id"));
        if (c && fc_candidate_type_name(c)) {
            g_free(out->local_type);
            out->local_type = g_strdup(fc_candidate_type_name(c));
            g_free(out->local_proto);
            out->local_proto = g_strdup(gst_structure_get_string(
                c, "protocol"));
        }
        c = fc_stats_entry(all,
                           gst_structure_get_string(pair,
                                                    "remote-candidate-id"));
        if (c && fc_candidate_type_name(c)) {
            g_free(out->remote_type);
            out->remote_type = g_strdup(fc_candidate_type_name(c));
        }
    }
    gst_promise_unref(promise);
}
