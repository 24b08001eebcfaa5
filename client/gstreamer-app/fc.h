/*
 * famcall-client: the types every part shares. The whole state of a run is
 * one fc_app_t, passed to every function (no statics holding state), so
 * that what a callback may touch is visible in its arguments.
 *
 * Threads: everything here belongs to the main loop's thread, except the
 * fields marked "atomic" (written by GStreamer streaming threads, read with
 * g_atomic_*). webrtcbin's signals arrive on its own threads: pipeline.c
 * copies what they carry and hands it to the main loop (g_idle_add) before
 * anything touches the socket or the call state.
 */

#ifndef FC_H
#define FC_H

#include <glib.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <termios.h>

/*
 * Exit codes: every outcome of a command has its own (README.md in this
 * folder lists them; keep the two in step).
 */
typedef enum {
    FC_EXIT_OK = 0,            /* done; a call that took place and hung up */
    FC_EXIT_ERROR = 1,         /* unexpected failure (a bug, a bad answer) */
    FC_EXIT_USAGE = 2,         /* bad command line */
    FC_EXIT_AUTH = 3,          /* not signed in, bad credentials, token dead */
    FC_EXIT_NETWORK = 4,       /* server unreachable, socket lost for good */
    FC_EXIT_REFUSED = 5,       /* the server said no (not found, not a
                                  contact, blocked, taken, rate limited) */
    FC_EXIT_MEDIA = 6,         /* GStreamer plugins missing, pipeline error */
    FC_EXIT_REJECTED = 10,     /* the callee declined */
    FC_EXIT_BUSY = 11,         /* one side was already in a call */
    FC_EXIT_NO_ANSWER = 12,    /* rang out; or `answer`: nobody called */
    FC_EXIT_ELSEWHERE = 13,    /* another of our devices answered */
    FC_EXIT_CANCELLED = 14,    /* the caller gave up before we answered */
    FC_EXIT_LOST = 15,         /* the connection was lost during the call */
    FC_EXIT_NO_MEDIA = 16      /* answered, but nothing was decoded */
} fc_exit_t;

typedef enum {
    FC_CALL_IDLE = 0,
    FC_CALL_INVITING,          /* call:invite sent, no ack yet */
    FC_CALL_RINGING,           /* ringing at the callee */
    FC_CALL_INCOMING,          /* an invite rings here */
    FC_CALL_ACCEPTING,         /* call:accept sent */
    FC_CALL_ACTIVE,            /* accepted: negotiating or in media */
    FC_CALL_ENDING,            /* call:end sent, waiting for its ack */
    FC_CALL_DONE
} fc_call_state_t;

typedef struct fc_app_s     fc_app_t;
typedef struct fc_tunnel_s  fc_tunnel_t;

/* an answer to a request on the socket: ack (error == NULL) or error */
typedef void (*fc_ack_cb)(fc_app_t *app, JsonObject *data,
    const char *error, JsonObject *err, gpointer user);

/* what a run was asked to do, from the command line */
typedef struct {
    char       *server;
    char       *profile;
    char       *token_file;
    gboolean    verbose;

    /* media */
    gboolean    test_media;
    gboolean    headless;
    gboolean    audio_only;
    gboolean    relay_only;
    char       *turn_transport;    /* udp, tcp, tls or NULL: all */
    char       *stats_json;
    char       *turn_ca;           /* PEM authorities for TURN over TLS */
    int         latency_ms;
    double      duration_s;        /* hang up this long after accept; 0 */
    double      wait_s;            /* answer: give up after; 0: forever */
    gboolean    auto_answer;
    char       *from;              /* answer: only calls from this contact */
} fc_opts_t;

/* counters written on streaming threads (atomic) */
typedef struct {
    gint        video_sent;
    gint        audio_sent;
    gint        video_recv;
    gint        audio_recv;
    gint64      first_frame_us;    /* monotonic time of the first decoded
                                      remote video frame (audio for an
                                      audio call); 0 until then; written
                                      once, __atomic_* */
} fc_counters_t;

/* the figures of a finished (or running) call */
typedef struct {
    char       *local_type;        /* selected pair's candidate types */
    char       *remote_type;
    char       *local_proto;       /* udp or tcp */
    double      rtt_ms;            /* -1: unknown */
    double      packet_loss;       /* 0..1, -1: unknown */
    double      bitrate_in;        /* bits/s over the call */
    double      bitrate_out;
    guint64     bytes_in;
    guint64     bytes_out;
} fc_netstats_t;

typedef struct fc_pipeline_s  fc_pipeline_t;

/* an event about a call whose id we do not know yet */
typedef struct {
    char        *type;
    JsonObject  *data;
} fc_early_t;

typedef struct {
    fc_call_state_t  state;
    char            *call_id;
    char            *peer_id;
    char            *peer_name;
    gboolean         outgoing;     /* we placed it (the offerer) */
    gboolean         video;
    char            *end_reason;   /* what ended it, for the message */
    fc_exit_t        outcome;

    fc_pipeline_t   *pipe;
    gboolean         remote_set;   /* remote description applied */
    gboolean         local_acked;  /* our offer/answer relayed */
    GQueue           pending_remote;   /* JsonObject* candidates early */
    GQueue           pending_local;    /* JsonObject* ours, before ack */
    GQueue           early;            /* fc_early_t*, before the ack */

    /* monotonic microseconds */
    gint64           t_invite;
    gint64           t_ringing;
    gint64           t_accept;
    gint64           t_ice;
    gint64           t_end;
    char            *held_type;    /* our offer/answer, made before the
                                      call was accepted */
    char            *held_sdp;

    guint            duration_timer;
    guint            stats_timer;
    guint            ice_fail_timer;
    gboolean         muted;
    gboolean         camera_off;
    gboolean         resuming;     /* our socket came back: call:resume */
    gboolean         prompted;     /* "Answer? [y/n]" is on the screen */
    fc_netstats_t    net;
    const char      *turn[4];      /* TURN transports given to the agent */
} fc_call_t;

struct fc_app_s {
    GMainLoop       *loop;
    fc_opts_t        opts;
    int              exit_code;
    const char      *command;

    /* HTTP and tokens (api.c) */
    SoupSession     *http;
    char            *token_path;
    char            *access_token;
    char            *refresh_token;
    gint64           access_expires;   /* unix seconds */
    char            *user_id;
    char            *username;

    /* the socket (signaling.c) */
    SoupWebsocketConnection *ws;
    gboolean         ws_open;
    gboolean         ws_want;          /* reconnect when it drops */
    guint            ws_retry_timer;
    int              ws_retries;
    guint            auth_timer;
    guint            next_ref;
    GHashTable      *pending;          /* ref -> fc_pending_t */
    void           (*on_event)(fc_app_t *app, const char *type,
                               JsonObject *data);
    void           (*on_open)(fc_app_t *app, gboolean reconnected);
    void           (*on_lost)(fc_app_t *app);
    gboolean         ws_was_open;
    gboolean         ws_going_away;    /* the last close was a 1001 */

    /* the call (call.c) */
    fc_call_t        call;
    fc_counters_t    counters;
    JsonArray       *ice_servers;
    GPtrArray       *tunnels;          /* fc_tunnel_t*, for turns: URIs */
    GTlsDatabase    *turn_ca;

    /* chat (chat.c) */
    char            *conversation_id;
    char            *chat_peer_id;
    char            *chat_peer_name;
    gint64           chat_seq;         /* our read mark when we started */
    GHashTable      *chat_seen;        /* seqs of the peer's shown */
    int              chat_received;
    int              chat_want;
    int              chat_unacked;
    GQueue           chat_outbox;
    gboolean         stdin_eof;

    /* the terminal, when in-call keys put it in raw mode */
    gboolean         tty_raw;
    struct termios   tty_saved;        /* the terminal's own modes */
    guint            stdin_watch;

    guint            pipe_serial;      /* the last pipeline's number */
};

/* main.c */
void fc_quit(fc_app_t *app, int code);
void fc_log(fc_app_t *app, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
gint64 fc_now_us(void);

/* api.c: HTTP with the stored tokens */
void fc_api_init(fc_app_t *app);
int fc_api_load_tokens(fc_app_t *app);
int fc_api_save_tokens(fc_app_t *app, JsonObject *tokens);
void fc_api_forget_tokens(fc_app_t *app);
int fc_api_fresh_token(fc_app_t *app);
int fc_api_request(fc_app_t *app, const char *method, const char *path,
    JsonNode *body, gboolean auth, guint *status, JsonNode **answer);
int fc_api_exit_for(guint status);
const char *fc_api_error_code(JsonNode *answer);
const char *fc_api_error_message(JsonNode *answer);
int fc_api_find_contact(fc_app_t *app, const char *who, char **id,
    char **name);

/* signaling.c: the WebSocket */
void fc_ws_connect(fc_app_t *app);
void fc_ws_close(fc_app_t *app);
void fc_ws_send(fc_app_t *app, const char *type, JsonObject *data,
    fc_ack_cb cb, gpointer user);

/* call.c */
int fc_call_run(fc_app_t *app, const char *contact);
int fc_answer_run(fc_app_t *app);
void fc_call_hangup(fc_app_t *app);
void fc_call_early_free(gpointer p);
void fc_call_on_local_sdp(fc_app_t *app, const char *type, char *sdp);
void fc_call_on_local_ice(fc_app_t *app, guint mline, char *candidate);
void fc_call_on_ice_state(fc_app_t *app, const char *state);
void fc_call_on_pipeline_error(fc_app_t *app, char *message);

/* pipeline.c */
int fc_pipeline_check_plugins(fc_app_t *app);
fc_pipeline_t *fc_pipeline_new(fc_app_t *app, gboolean offerer);
void fc_pipeline_free(fc_pipeline_t *p);
void fc_pipeline_set_remote(fc_pipeline_t *p, const char *type,
    const char *sdp);
void fc_pipeline_add_ice(fc_pipeline_t *p, guint mline,
    const char *candidate);
void fc_pipeline_restart_ice(fc_pipeline_t *p);
void fc_pipeline_mute(fc_pipeline_t *p, gboolean mute);
void fc_pipeline_camera(fc_pipeline_t *p, gboolean off);
void fc_pipeline_stats(fc_pipeline_t *p, fc_netstats_t *out);

/* tunnel.c: TURN over TLS */
fc_tunnel_t *fc_tunnel_new(fc_app_t *app, const char *url, char **local);
void fc_tunnel_free(fc_tunnel_t *t);

/* chat.c */
int fc_chat_run(fc_app_t *app, const char *contact, char **send,
    int until, double timeout_s);
void fc_chat_free(fc_app_t *app);

#endif /* FC_H */
