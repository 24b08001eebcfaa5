/*
 * famcall-client: the command line. Each subcommand has its own options
 * (and --help), plus the common ones; main() parses, then hands over to
 * api.c (account commands), chat.c or call.c. The commands that need the
 * socket return -1 and leave the rest to the main loop, which ends with
 * fc_quit().
 */

#include "fc.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

typedef int (*fc_command_fn)(fc_app_t *app, int argc, char **argv);

typedef struct {
    const char     *name;
    const char     *args;
    const char     *summary;
    fc_command_fn   run;
} fc_command_t;

static int fc_cmd_signup(fc_app_t *app, int argc, char **argv);
static int fc_cmd_login(fc_app_t *app, int argc, char **argv);
static int fc_cmd_logout(fc_app_t *app, int argc, char **argv);
static int fc_cmd_me(fc_app_t *app, int argc, char **argv);
static int fc_cmd_contacts(fc_app_t *app, int argc, char **argv);
static int fc_cmd_add(fc_app_t *app, int argc, char **argv);
static int fc_cmd_chat(fc_app_t *app, int argc, char **argv);
static int fc_cmd_call(fc_app_t *app, int argc, char **argv);
static int fc_cmd_answer(fc_app_t *app, int argc, char **argv);
static int fc_cmd_history(fc_app_t *app, int argc, char **argv);

static const fc_command_t fc_commands[] = {
    { "signup", "", "create an account (email and password)", fc_cmd_signup },
    { "login", "", "sign in with email and password, or a phone code",
      fc_cmd_login },
    { "logout", "", "end this session and forget its tokens",
      fc_cmd_logout },
    { "me", "", "show who is signed in", fc_cmd_me },
    { "contacts", "", "list contacts and pending requests",
      fc_cmd_contacts },
    { "add", "USER", "ask USER (username, +phone or id) to be a contact, "
      "or accept their request", fc_cmd_add },
    { "chat", "CONTACT", "chat live: lines typed are sent", fc_cmd_chat },
    { "call", "CONTACT", "place a video (or --audio-only) call",
      fc_cmd_call },
    { "answer", "", "wait for a call and answer it", fc_cmd_answer },
    { "history", "", "list recent calls", fc_cmd_history },
    { NULL, NULL, NULL, NULL }
};

static const char *fc_exit_help =
    "Exit codes:\n"
    "  0  done (a call that took place and was hung up by either side)\n"
    "  1  unexpected error          2  bad command line\n"
    "  3  not signed in / bad credentials / session ended\n"
    "  4  server unreachable        5  refused by the server\n"
    "  6  media: GStreamer elements missing or the pipeline failed\n"
    " 10  rejected   11  busy   12  no answer / nothing came in time\n"
    " 13  answered on another device   14  the caller hung up first\n"
    " 15  connection lost during the call\n"
    " 16  the call was answered but nothing was decoded (--headless)\n";


gint64
fc_now_us(void)
{
    return g_get_monotonic_time();
}


void
fc_log(fc_app_t *app, const char *fmt, ...)
{
    va_list  ap;
    char    *msg;

    if (!app->opts.verbose) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_printerr("[%.3f] %s\n", g_get_monotonic_time() / 1e6, msg);
    g_free(msg);
}


void
fc_quit(fc_app_t *app, int code)
{
    app->exit_code = code;
    if (app->loop && g_main_loop_is_running(app->loop)) {
        g_main_loop_quit(app->loop);
    }
}


/* the options every command takes */
static GOptionEntry *
fc_common_entries(fc_app_t *app)
{
    GOptionEntry  entries[] = {
        { "server", 's', 0, G_OPTION_ARG_STRING, &app->opts.server,
          "server URL (default: $FAMCALL_SERVER, the signed-in one, "
          "http://127.0.0.1:8080)", "URL" },
        { "profile", 'p', 0, G_OPTION_ARG_STRING, &app->opts.profile,
          "whose tokens: ~/.config/famcall/NAME.json (default: "
          "$FAMCALL_PROFILE or 'default')", "NAME" },
        { "token-file", 0, 0, G_OPTION_ARG_FILENAME, &app->opts.token_file,
          "keep the tokens in FILE instead (mode 0600)", "FILE" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &app->opts.verbose,
          "say what happens on the socket and in the pipeline", NULL },
        { NULL }
    };

    return g_memdup2(entries, sizeof(entries));
}


/* the media options of call and answer */
static GOptionEntry *
fc_media_entries(fc_app_t *app)
{
    GOptionEntry  entries[] = {
        { "test-media", 0, 0, G_OPTION_ARG_NONE, &app->opts.test_media,
          "send a test pattern and a tone instead of camera and microphone",
          NULL },
        { "headless", 0, 0, G_OPTION_ARG_NONE, &app->opts.headless,
          "no window, no speaker: count decoded frames and buffers", NULL },
        { "audio-only", 0, 0, G_OPTION_ARG_NONE, &app->opts.audio_only,
          "audio without video", NULL },
        { "relay-only", 0, 0, G_OPTION_ARG_NONE, &app->opts.relay_only,
          "only TURN relay candidates (force the call through TURN)",
          NULL },
        { "turn-transport", 0, 0, G_OPTION_ARG_STRING,
          &app->opts.turn_transport,
          "use only the TURN servers over udp, tcp or tls", "PROTO" },
        { "stats-json", 0, 0, G_OPTION_ARG_FILENAME, &app->opts.stats_json,
          "write the call's figures to FILE when it ends", "FILE" },
        { "turn-ca", 0, 0, G_OPTION_ARG_FILENAME, &app->opts.turn_ca,
          "trust these PEM authorities for TURN over TLS (default: the "
          "system's)", "FILE" },
        { "latency", 0, 0, G_OPTION_ARG_INT, &app->opts.latency_ms,
          "receive jitter buffer in ms (default 50)", "MS" },
        { "duration", 0, 0, G_OPTION_ARG_DOUBLE, &app->opts.duration_s,
          "hang up this many seconds after the call is answered", "S" },
        { NULL }
    };

    return g_memdup2(entries, sizeof(entries));
}


/*
 * Parse one command's options: its own entries (may be NULL), the media
 * ones when media is set, and the common ones. Leaves the positional
 * arguments in argv. FALSE after printing the error.
 */
static gboolean
fc_parse(fc_app_t *app, const fc_command_t *cmd, GOptionEntry *own,
    gboolean media, const char *extra_help, int *argc, char ***argv)
{
    GOptionContext  *ctx;
    GOptionEntry    *m = NULL, *common;
    GError          *err = NULL;
    char            *param, *desc;
    gboolean         ok;

    /* "Usage: famcall-client call [OPTION...] CONTACT" */
    param = g_strconcat("famcall-client ", cmd->name, NULL);
    g_set_prgname(param);
    g_free(param);
    ctx = g_option_context_new(cmd->args);
    g_option_context_set_summary(ctx, cmd->summary);
    desc = g_strconcat(extra_help ? extra_help : "",
                       extra_help ? "\n" : "", fc_exit_help, NULL);
    g_option_context_set_description(ctx, desc);
    g_free(desc);
    if (own) {
        g_option_context_add_main_entries(ctx, own, NULL);
    }
    if (media) {
        m = fc_media_entries(app);
        g_option_context_add_main_entries(ctx, m, NULL);
    }
    common = fc_common_entries(app);
    g_option_context_add_main_entries(ctx, common, NULL);
    g_option_context_set_help_enabled(ctx, TRUE);

    ok = g_option_context_parse(ctx, argc, argv, &err);
    if (!ok) {
        g_printerr("famcall-client %s: %s (see --help)\n", cmd->name,
                   err->message);
        g_clear_error(&err);
    }
    g_free(m);
    g_free(common);
    g_option_context_free(ctx);
    return ok;
}


static char *
fc_read_line(const char *prompt, gboolean secret)
{
    struct termios  saved, quiet;
    gboolean        hidden = FALSE;
    char            buf[1024];
    char           *r;

    if (prompt && isatty(STDIN_FILENO)) {
        g_printerr("%s", prompt);
        if (secret && tcgetattr(STDIN_FILENO, &saved) == 0) {
            quiet = saved;
            quiet.c_lflag &= ~ECHO;
            hidden = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
        }
    }
    r = fgets(buf, sizeof(buf), stdin);
    if (hidden) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        g_printerr("\n");
    }
    if (r == NULL) {
        return NULL;
    }
    return g_strstrip(g_strdup(buf));
}


/* an account's password: --password, $FAMCALL_PASSWORD, or asked for */
static char *
fc_password(const char *given)
{
    if (given) {
        return g_strdup(given);
    }
    if (g_getenv("FAMCALL_PASSWORD")) {
        return g_strdup(g_getenv("FAMCALL_PASSWORD"));
    }
    return fc_read_line("Password: ", TRUE);
}


static void
fc_print_error(const char *what, guint status, JsonNode *answer)
{
    g_printerr("famcall-client: %s: %s (%u %s)\n", what,
               fc_api_error_message(answer), status,
               fc_api_error_code(answer));
}


/* POST a JSON object built from key, value pairs (NULL values skipped) */
static int
fc_post_tokens(fc_app_t *app, const char *path, const char *what, ...)
{
    JsonObject  *o = json_object_new();
    JsonNode    *body, *answer;
    va_list      ap;
    const char  *k, *v;
    guint        status;
    int          rc;

    va_start(ap, what);
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        if (v) {
            json_object_set_string_member(o, k, v);
        }
    }
    va_end(ap);
    body = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(body, o);

    rc = fc_api_request(app, "POST", path, body, FALSE, &status, &answer);
    json_node_unref(body);
    if (rc != 0) {
        return rc;
    }
    if ((status != 200 && status != 201) || !JSON_NODE_HOLDS_OBJECT(answer))
    {
        fc_print_error(what, status, answer);
        rc = fc_api_exit_for(status);
        if (answer) {
            json_node_unref(answer);
        }
        return rc;
    }
    rc = fc_api_save_tokens(app, json_node_get_object(answer));
    if (rc == 0) {
        g_print("Signed in as %s (%s)\n", app->username ? app->username : "?",
                app->user_id);
    }
    json_node_unref(answer);
    return rc;
}


static int
fc_cmd_signup(fc_app_t *app, int argc, char **argv)
{
    char  *email = NULL, *username = NULL, *name = NULL, *password = NULL;
    char  *pw;
    int    rc;
    GOptionEntry  own[] = {
        { "email", 0, 0, G_OPTION_ARG_STRING, &email, "email address",
          "EMAIL" },
        { "username", 0, 0, G_OPTION_ARG_STRING, &username,
          "username (a-z, 0-9, _ and .)", "NAME" },
        { "display-name", 0, 0, G_OPTION_ARG_STRING, &name,
          "the name others see", "NAME" },
        { "password", 0, 0, G_OPTION_ARG_STRING, &password,
          "password (else $FAMCALL_PASSWORD, else asked)", "PW" },
        { NULL }
    };

    if (!fc_parse(app, &fc_commands[0], own, FALSE, NULL, &argc, &argv)) {
        return FC_EXIT_USAGE;
    }
    if (email == NULL || username == NULL) {
        g_printerr("famcall-client signup: --email and --username are "
                   "needed\n");
        return FC_EXIT_USAGE;
    }
    fc_api_init(app);
    pw = fc_password(password);
    if (pw == NULL) {
        return FC_EXIT_USAGE;
    }
    rc = fc_post_tokens(app, "/v1/auth/signup", "signup", "email", email,
                        "username", username, "display_name",
                        name ? name : username, "password", pw, NULL);
    g_free(pw);
    return rc;
}


static int
fc_cmd_login(fc_app_t *app, int argc, char **argv)
{
    char      *email = NULL, *phone = NULL, *code = NULL, *name = NULL;
    char      *password = NULL, *pw, *c;
    gboolean   request_only = FALSE;
    JsonNode  *body, *answer;
    guint      status;
    int        rc;
    GOptionEntry  own[] = {
        { "email", 0, 0, G_OPTION_ARG_STRING, &email, "email address",
          "EMAIL" },
        { "password", 0, 0, G_OPTION_ARG_STRING, &password,
          "password (else $FAMCALL_PASSWORD, else asked)", "PW" },
        { "phone", 0, 0, G_OPTION_ARG_STRING, &phone,
          "phone number, E.164 (+...): sign in with a one-time code",
          "PHONE" },
        { "code", 0, 0, G_OPTION_ARG_STRING, &code,
          "the code received (else it is sent now and asked for)", "CODE" },
        { "request-only", 0, 0, G_OPTION_ARG_NONE, &request_only,
          "only send the code (sign in later with --code)", NULL },
        { "display-name", 0, 0, G_OPTION_ARG_STRING, &name,
          "your name, when the phone has no account yet", "NAME" },
        { NULL }
    };

    if (!fc_parse(app, &fc_commands[1], own, FALSE,
                  "Either --email (and a password) or --phone.", &argc,
                  &argv))
    {
        return FC_EXIT_USAGE;
    }
    if ((email == NULL) == (phone == NULL)) {
        g_printerr("famcall-client login: give --email or --phone\n");
        return FC_EXIT_USAGE;
    }
    fc_api_init(app);

    if (email) {
        pw = fc_password(password);
        if (pw == NULL) {
            return FC_EXIT_USAGE;
        }
        rc = fc_post_tokens(app, "/v1/auth/login", "login", "email", email,
                            "password", pw, NULL);
        g_free(pw);
        return rc;
    }

    if (code == NULL) {
        JsonObject  *o = json_object_new();

        json_object_set_string_member(o, "phone", phone);
        body = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(body, o);
        rc = fc_api_request(app, "POST", "/v1/auth/otp/request", body, FALSE,
                            &status, &answer);
        json_node_unref(body);
        if (rc != 0) {
            return rc;
        }
        if (status != 202) {
            fc_print_error("sending the code", status, answer);
            rc = fc_api_exit_for(status);
        } else {
            g_print("A code was sent to %s\n", phone);
        }
        if (answer) {
            json_node_unref(answer);
        }
        if (rc != 0 || request_only) {
            return rc;
        }
        c = fc_read_line("Code: ", FALSE);
        if (c == NULL || *c == '\0') {
            g_free(c);
            return FC_EXIT_USAGE;
        }
    } else {
        c = g_strdup(code);
    }
    rc = fc_post_tokens(app, "/v1/auth/otp/verify", "verifying the code",
                        "phone", phone, "code", c, "display_name", name,
                        NULL);
    g_free(c);
    return rc;
}


/* a signed-in command's start: parsed, tokens loaded */
static int
fc_signed_in(fc_app_t *app)
{
    int  rc;

    fc_api_init(app);
    rc = fc_api_load_tokens(app);
    if (rc == FC_EXIT_AUTH) {
        g_printerr("famcall-client: not signed in (famcall-client login, "
                   "or signup)\n");
    }
    return rc;
}


static int
fc_cmd_logout(fc_app_t *app, int argc, char **argv)
{
    JsonObject  *o;
    JsonNode    *body, *answer;
    guint        status;
    int          rc;

    if (!fc_parse(app, &fc_commands[2], NULL, FALSE, NULL, &argc, &argv)) {
        return FC_EXIT_USAGE;
    }
    rc = fc_signed_in(app);
    if (rc != 0) {
        return rc;
    }
    o = json_object_new();
    json_object_set_string_member(o, "refresh_token", app->refresh_token);
    body = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(body, o);
    rc = fc_api_request(app, "POST", "/v1/auth/logout", body, FALSE, &status,
                        &answer);
    json_node_unref(body);
    if (answer) {
        json_node_unref(answer);
    }
    fc_api_forget_tokens(app);
    g_print("Signed out\n");
    return rc;
}


static int
fc_get_print(fc_app_t *app, const char *path, const char *what,
    JsonNode **out)
{
    guint  status;
    int    rc;

    rc = fc_api_request(app, "GET", path, NULL, TRUE, &status, out);
    if (rc != 0) {
        return rc;
    }
    if (status != 200 || !JSON_NODE_HOLDS_OBJECT(*out)) {
        fc_print_error(what, status, *out);
        rc = fc_api_exit_for(status);
        if (*out) {
            json_node_unref(*out);
            *out = NULL;
        }
    }
    return rc;
}


static int
fc_cmd_me(fc_app_t *app, int argc, char **argv)
{
    JsonNode    *answer;
    JsonObject  *u;
    int          rc;

    if (!fc_parse(app, &fc_commands[3], NULL, FALSE, NULL, &argc, &argv)) {
        return FC_EXIT_USAGE;
    }
    rc = fc_signed_in(app);
    if (rc == 0) {
        rc = fc_get_print(app, "/v1/me", "me", &answer);
    }
    if (rc != 0) {
        return rc;
    }
    u = json_node_get_object(answer);
    g_print("%s (%s) id %s\n",
            json_object_get_string_member_with_default(u, "display_name", ""),
            json_object_get_string_member_with_default(u, "username", "-"),
            json_object_get_string_member_with_default(u, "id", ""));
    json_node_unref(answer);
    return 0;
}


static int
fc_cmd_contacts(fc_app_t *app, int argc, char **argv)
{
    JsonNode    *answer;
    JsonArray   *list;
    JsonObject  *c, *u;
    const char  *status, *dir;
    guint        i;
    int          rc;

    if (!fc_parse(app, &fc_commands[4], NULL, FALSE, NULL, &argc, &argv)) {
        return FC_EXIT_USAGE;
    }
    rc = fc_signed_in(app);
    if (rc == 0) {
        rc = fc_get_print(app, "/v1/contacts", "contacts", &answer);
    }
    if (rc != 0) {
        return rc;
    }
    list = json_object_get_array_member(json_node_get_object(answer),
                                        "contacts");
    for (i = 0; list && i < json_array_get_length(list); i++) {
        c = json_array_get_object_element(list, i);
        u = json_object_get_object_member(c, "user");
        status = json_object_get_string_member_with_default(c, "status", "");
        dir = json_object_get_string_member_with_default(c, "direction", "");
        g_print("%-20s %-24s %s\n",
                json_object_get_string_member_with_default(u, "username",
                                                           "-"),
                json_object_get_string_member_with_default(u, "display_name",
                                                           ""),
                strcmp(status, "accepted") == 0 ? "contact"
                : strcmp(dir, "incoming") == 0
                  ? "wants to be your contact (famcall-client add)"
                  : "asked, not yet accepted");
    }
    if (list == NULL || json_array_get_length(list) == 0) {
        g_print("No contacts yet (famcall-client add USER)\n");
    }
    json_node_unref(answer);
    return 0;
}


static int
fc_cmd_add(fc_app_t *app, int argc, char **argv)
{
    JsonObject  *o, *c;
    JsonNode    *body, *answer;
    const char  *who, *key;
    guint        status;
    int          rc;

    if (!fc_parse(app, &fc_commands[5], NULL, FALSE,
                  "Asking someone who has asked you accepts them.", &argc,
                  &argv))
    {
        return FC_EXIT_USAGE;
    }
    if (argc != 2) {
        g_printerr("famcall-client add: name one user (see --help)\n");
        return FC_EXIT_USAGE;
    }
    who = argv[1];
    rc = fc_signed_in(app);
    if (rc != 0) {
        return rc;
    }

    key = who[0] == '+' ? "phone"
          : strlen(who) == 36 && who[8] == '-' ? "user_id"
          : "username";
    o = json_object_new();
    json_object_set_string_member(o, key, who[0] == '@' ? who + 1 : who);
    body = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(body, o);
    rc = fc_api_request(app, "POST", "/v1/contacts", body, TRUE, &status,
                        &answer);
    json_node_unref(body);
    if (rc != 0) {
        return rc;
    }
    if ((status != 200 && status != 201) || !JSON_NODE_HOLDS_OBJECT(answer))
    {
        fc_print_error("add", status, answer);
        rc = fc_api_exit_for(status);
    } else {
        c = json_node_get_object(answer);
        g_print("%s: %s\n", who,
                strcmp(json_object_get_string_member_with_default(
                           c, "status", ""), "accepted") == 0
                ? "now a contact" : "asked; waiting for them to accept");
    }
    if (answer) {
        json_node_unref(answer);
    }
    return rc;
}


static int
fc_cmd_history(fc_app_t *app, int argc, char **argv)
{
    JsonNode    *answer;
    JsonArray   *list;
    JsonObject  *c, *peer;
    guint        i;
    int          rc, limit = 20;
    char        *path;
    GOptionEntry  own[] = {
        { "limit", 'n', 0, G_OPTION_ARG_INT, &limit, "how many (1-100)",
          "N" },
        { NULL }
    };

    if (!fc_parse(app, &fc_commands[9], own, FALSE, NULL, &argc, &argv)) {
        return FC_EXIT_USAGE;
    }
    rc = fc_signed_in(app);
    if (rc != 0) {
        return rc;
    }
    path = g_strdup_printf("/v1/calls?limit=%d", limit);
    rc = fc_get_print(app, path, "history", &answer);
    g_free(path);
    if (rc != 0) {
        return rc;
    }
    list = json_object_get_array_member(json_node_get_object(answer),
                                        "calls");
    for (i = 0; list && i < json_array_get_length(list); i++) {
        c = json_array_get_object_element(list, i);
        peer = json_object_has_member(c, "peer")
               && JSON_NODE_HOLDS_OBJECT(json_object_get_member(c, "peer"))
               ? json_object_get_object_member(c, "peer") : NULL;
        g_print("%s  %-8s %-5s %-16s %-9s %s\n",
                json_object_get_string_member_with_default(c, "created_at",
                                                           ""),
                json_object_get_string_member_with_default(c, "direction",
                                                           ""),
                json_object_get_string_member_with_default(c, "media", ""),
                peer ? json_object_get_string_member_with_default(
                           peer, "username", "?") : "?",
                json_object_get_string_member_with_default(c, "status", ""),
                json_object_get_boolean_member_with_default(c, "missed",
                                                            FALSE)
                ? "missed" : "");
    }
    json_node_unref(answer);
    return 0;
}


static int
fc_cmd_chat(fc_app_t *app, int argc, char **argv)
{
    char      **send = NULL;
    int         until = 0, rc;
    double      timeout = 0;
    GOptionEntry  own[] = {
        { "send", 0, 0, G_OPTION_ARG_STRING_ARRAY, &send,
          "send TEXT (repeatable); then stop unless --until-received",
          "TEXT" },
        { "until-received", 0, 0, G_OPTION_ARG_INT, &until,
          "stop once N messages have come in", "N" },
        { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &timeout,
          "give up after S seconds (exit 12)", "S" },
        { NULL }
    };

    if (!fc_parse(app, &fc_commands[6], own, FALSE,
                  "Without --send, lines read from the terminal are sent; "
                  "Ctrl-D ends.", &argc, &argv))
    {
        return FC_EXIT_USAGE;
    }
    if (argc != 2) {
        g_printerr("famcall-client chat: name one contact (see --help)\n");
        return FC_EXIT_USAGE;
    }
    rc = fc_signed_in(app);
    if (rc != 0) {
        return rc;
    }
    rc = fc_chat_run(app, argv[1], send, until, timeout);
    /* the strings stay referenced by the outbox until the loop ends */
    return rc;
}


static int
fc_check_media_opts(fc_app_t *app)
{
    if (app->opts.turn_transport
        && strcmp(app->opts.turn_transport, "udp") != 0
        && strcmp(app->opts.turn_transport, "tcp") != 0
        && strcmp(app->opts.turn_transport, "tls") != 0)
    {
        g_printerr("famcall-client: --turn-transport is udp, tcp or tls\n");
        return FC_EXIT_USAGE;
    }
    if (app->opts.latency_ms < 0 || app->opts.latency_ms > 5000
        || app->opts.duration_s < 0)
    {
        g_printerr("famcall-client: --latency is 0 to 5000 ms, --duration "
                   "positive\n");
        return FC_EXIT_USAGE;
    }
    if (app->opts.turn_ca) {
        GError  *err = NULL;

        app->turn_ca = g_tls_file_database_new(app->opts.turn_ca, &err);
        if (app->turn_ca == NULL) {
            g_printerr("famcall-client: --turn-ca: %s\n", err->message);
            g_clear_error(&err);
            return FC_EXIT_USAGE;
        }
    }
    return 0;
}


/* what a call or an answer needs before it starts: sound options, every
 * GStreamer element, and a session */
static int
fc_call_ready(fc_app_t *app)
{
    int  rc;

    rc = fc_check_media_opts(app);
    if (rc == 0) {
        rc = fc_pipeline_check_plugins(app);
    }
    if (rc == 0) {
        rc = fc_signed_in(app);
    }
    return rc;
}


static int
fc_cmd_call(fc_app_t *app, int argc, char **argv)
{
    int  rc;

    if (!fc_parse(app, &fc_commands[7], NULL, TRUE,
                  "In a call: q hangs up (or Ctrl-C), m mutes, v turns the "
                  "camera off and on.", &argc, &argv))
    {
        return FC_EXIT_USAGE;
    }
    if (argc != 2) {
        g_printerr("famcall-client call: name one contact (see --help)\n");
        return FC_EXIT_USAGE;
    }
    rc = fc_call_ready(app);
    return rc ? rc : fc_call_run(app, argv[1]);
}


static int
fc_cmd_answer(fc_app_t *app, int argc, char **argv)
{
    int  rc;
    GOptionEntry  own[] = {
        { "auto-answer", 'y', 0, G_OPTION_ARG_NONE, &app->opts.auto_answer,
          "answer without asking", NULL },
        { "from", 0, 0, G_OPTION_ARG_STRING, &app->opts.from,
          "only calls from this contact", "CONTACT" },
        { "wait", 0, 0, G_OPTION_ARG_DOUBLE, &app->opts.wait_s,
          "give up when nobody calls within S seconds (exit 12)", "S" },
        { NULL }
    };

    if (!fc_parse(app, &fc_commands[8], own, TRUE,
                  "Answers one call (y/n when it rings), then exits. In a "
                  "call: q hangs up (or Ctrl-C), m mutes, v turns the camera "
                  "off and on.", &argc, &argv))
    {
        return FC_EXIT_USAGE;
    }
    if (argc != 1) {
        g_printerr("famcall-client answer: no arguments (see --help)\n");
        return FC_EXIT_USAGE;
    }
    rc = fc_call_ready(app);
    return rc ? rc : fc_answer_run(app);
}


/*
 * libnice warns, as each call's agent goes, that TURN refreshes are still
 * alive (webrtcbin 1.22 does not close its agent asynchronously): noise to
 * a user, so only --verbose shows it.
 */
static void
fc_quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
    gpointer data)
{
    fc_log(data, "%s: %s", domain, message);
}


static void
fc_usage(FILE *to)
{
    const fc_command_t  *c;

    fprintf(to,
            "Usage: famcall-client COMMAND [OPTIONS]\n\n"
            "famcall from the command line: chat and 1:1 video calls.\n\n"
            "Commands:\n");
    for (c = fc_commands; c->name; c++) {
        fprintf(to, "  %-9s %-8s %s\n", c->name, c->args, c->summary);
    }
    fprintf(to, "\n`famcall-client COMMAND --help` shows a command's "
            "options.\n\n%s", fc_exit_help);
}


static void
fc_app_free(fc_app_t *app)
{
    fc_ws_close(app);
    g_clear_object(&app->http);
    g_free(app->token_path);
    g_free(app->access_token);
    g_free(app->refresh_token);
    g_free(app->user_id);
    g_free(app->username);
    g_free(app->conversation_id);
    g_free(app->chat_peer_id);
    g_free(app->chat_peer_name);
    fc_chat_free(app);
    if (app->ice_servers) {
        json_array_unref(app->ice_servers);
    }
    if (app->tunnels) {
        g_ptr_array_free(app->tunnels, TRUE);
    }
    g_clear_object(&app->turn_ca);
    g_free(app->opts.turn_ca);
    g_free(app->call.call_id);
    g_free(app->call.peer_id);
    g_free(app->call.peer_name);
    g_free(app->call.end_reason);
    g_free(app->call.held_type);
    g_free(app->call.held_sdp);
    g_free(app->call.net.local_type);
    g_free(app->call.net.remote_type);
    g_free(app->call.net.local_proto);
    g_queue_clear_full(&app->call.pending_remote,
                       (GDestroyNotify) json_object_unref);
    g_queue_clear_full(&app->call.pending_local,
                       (GDestroyNotify) json_object_unref);
    g_queue_clear_full(&app->call.early, fc_call_early_free);
    g_free(app->opts.server);
    g_free(app->opts.profile);
    g_free(app->opts.token_file);
    g_free(app->opts.turn_transport);
    g_free(app->opts.stats_json);
    g_free(app->opts.from);
    if (app->loop) {
        g_main_loop_unref(app->loop);
    }
}


int
main(int argc, char **argv)
{
    fc_app_t             app;
    const fc_command_t  *c;
    int                  rc;

    memset(&app, 0, sizeof(app));
    app.opts.latency_ms = 50;
    app.call.net.rtt_ms = -1;
    app.call.net.packet_loss = -1;
    g_queue_init(&app.call.pending_remote);
    g_queue_init(&app.call.pending_local);
    g_queue_init(&app.call.early);
    g_queue_init(&app.chat_outbox);

    if (argc < 2 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)
    {
        fc_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? FC_EXIT_USAGE : FC_EXIT_OK;
    }
    for (c = fc_commands; c->name; c++) {
        if (strcmp(c->name, argv[1]) == 0) {
            break;
        }
    }
    if (c->name == NULL) {
        g_printerr("famcall-client: no command '%s'\n\n", argv[1]);
        fc_usage(stderr);
        return FC_EXIT_USAGE;
    }

    gst_init(NULL, NULL);
    g_log_set_handler("libnice", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE,
                      fc_quiet_log, &app);
    app.command = c->name;
    app.loop = g_main_loop_new(NULL, FALSE);

    /* argv[1] becomes the program name of the command's own parse */
    rc = c->run(&app, argc - 1, argv + 1);
    if (rc == -1) {
        g_main_loop_run(app.loop);
        rc = app.exit_code;
    }
    fc_app_free(&app);
    return rc;
}
