/*
 * famcall-client: the HTTP API and the token file.
 *
 * Requests are synchronous: the commands that make them wait for the answer
 * anyway, and during a call the only ones are GET /v1/turn before it and
 * the quality report after it. The token file holds the server, both
 * tokens and the user; it is written 0600 (in a 0700 directory) and
 * rewritten whenever a refresh spends the old refresh token.
 */

#include "fc.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* refresh this long before the access token expires */
#define FC_REFRESH_MARGIN  60

static char *fc_default_token_path(const char *profile);
static void fc_api_default_server(fc_app_t *app);
static gboolean fc_profile_ok(const char *profile);


void
fc_api_init(fc_app_t *app)
{
    app->http = soup_session_new_with_options("timeout", 15,
                                              "user-agent", "famcall-client/1",
                                              NULL);
    if (app->opts.server == NULL && g_getenv("FAMCALL_SERVER")) {
        app->opts.server = g_strdup(g_getenv("FAMCALL_SERVER"));
    }
    if (app->opts.token_file) {
        app->token_path = g_strdup(app->opts.token_file);
    } else {
        app->token_path = fc_default_token_path(app->opts.profile);
    }
}


/* no --server, no $FAMCALL_SERVER, none stored: the local stack */
static void
fc_api_default_server(fc_app_t *app)
{
    gsize  n;

    if (app->opts.server == NULL) {
        app->opts.server = g_strdup("http://127.0.0.1:8080");
    }
    n = strlen(app->opts.server);
    while (n > 0 && app->opts.server[n - 1] == '/') {
        app->opts.server[--n] = '\0';
    }
}


static gboolean
fc_profile_ok(const char *profile)
{
    const char  *p;

    if (profile == NULL || *profile == '\0' || strlen(profile) > 64) {
        return FALSE;
    }
    for (p = profile; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.') {
            return FALSE;
        }
    }
    return profile[0] != '.';
}


static char *
fc_default_token_path(const char *profile)
{
    const char  *name = profile ? profile : g_getenv("FAMCALL_PROFILE");

    if (name == NULL) {
        name = "default";
    }
    if (!fc_profile_ok(name)) {
        return NULL;
    }
    return g_strdup_printf("%s/famcall/%s.json", g_get_user_config_dir(),
                           name);
}


/*
 * Load the token file, if any: 0 when there was one, FC_EXIT_AUTH when
 * there is nothing to sign in with. The server named on the command line
 * wins over the stored one; a token for another server is not used.
 */
int
fc_api_load_tokens(fc_app_t *app)
{
    JsonParser  *parser;
    JsonObject  *o, *user;
    GError      *err = NULL;
    const char  *server;
    struct stat  st;

    if (app->token_path == NULL) {
        g_printerr("famcall-client: bad --profile (letters, digits, . _ -)\n");
        return FC_EXIT_USAGE;
    }
    if (stat(app->token_path, &st) != 0) {
        fc_api_default_server(app);
        return FC_EXIT_AUTH;
    }
    if (st.st_mode & 077) {
        /* someone widened it: narrow it again rather than leak tokens */
        chmod(app->token_path, 0600);
    }

    parser = json_parser_new();
    if (!json_parser_load_from_file(parser, app->token_path, &err)
        || !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
    {
        g_printerr("famcall-client: %s: unreadable token file%s%s\n",
                   app->token_path, err ? ": " : "", err ? err->message : "");
        g_clear_error(&err);
        g_object_unref(parser);
        return FC_EXIT_AUTH;
    }
    o = json_node_get_object(json_parser_get_root(parser));

    server = json_object_get_string_member_with_default(o, "server", NULL);
    if (app->opts.server == NULL && server) {
        app->opts.server = g_strdup(server);

    } else if (server && app->opts.server
               && strcmp(server, app->opts.server) != 0)
    {
        g_object_unref(parser);
        return FC_EXIT_AUTH;
    }

    g_free(app->access_token);
    g_free(app->refresh_token);
    app->access_token = g_strdup(
        json_object_get_string_member_with_default(o, "access_token", NULL));
    app->refresh_token = g_strdup(
        json_object_get_string_member_with_default(o, "refresh_token", NULL));
    app->access_expires = json_object_get_int_member_with_default(
        o, "access_expires_at", 0);

    if (json_object_has_member(o, "user")
        && JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "user")))
    {
        user = json_object_get_object_member(o, "user");
        g_free(app->user_id);
        g_free(app->username);
        app->user_id = g_strdup(
            json_object_get_string_member_with_default(user, "id", NULL));
        app->username = g_strdup(
            json_object_get_string_member_with_default(user, "username",
                                                       NULL));
    }
    g_object_unref(parser);
    fc_api_default_server(app);

    return app->refresh_token ? 0 : FC_EXIT_AUTH;
}


/* write what we hold now (tokens may be NULL: keep the user as it is) */
static int
fc_api_write(fc_app_t *app)
{
    JsonBuilder  *b;
    JsonNode     *root;
    char         *text, *dir;
    GError       *err = NULL;
    int           rc = 0;

    dir = g_path_get_dirname(app->token_path);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_printerr("famcall-client: cannot create %s: %s\n", dir,
                   g_strerror(errno));
        g_free(dir);
        return FC_EXIT_ERROR;
    }
    g_free(dir);

    b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "server");
    json_builder_add_string_value(b, app->opts.server);
    json_builder_set_member_name(b, "access_token");
    json_builder_add_string_value(b, app->access_token);
    json_builder_set_member_name(b, "refresh_token");
    json_builder_add_string_value(b, app->refresh_token);
    json_builder_set_member_name(b, "access_expires_at");
    json_builder_add_int_value(b, app->access_expires);
    json_builder_set_member_name(b, "user");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, app->user_id);
    json_builder_set_member_name(b, "username");
    json_builder_add_string_value(b, app->username);
    json_builder_end_object(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    text = json_to_string(root, TRUE);

    /* written to a temporary file created 0600, then renamed over */
    if (!g_file_set_contents_full(app->token_path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                  &err))
    {
        g_printerr("famcall-client: cannot write %s: %s\n", app->token_path,
                   err->message);
        g_clear_error(&err);
        rc = FC_EXIT_ERROR;
    }
    g_free(text);
    json_node_unref(root);
    g_object_unref(b);
    return rc;
}


/* a token answer ({access_token, refresh_token, expires_in, user?}) */
int
fc_api_save_tokens(fc_app_t *app, JsonObject *tokens)
{
    JsonObject  *user;

    g_free(app->access_token);
    g_free(app->refresh_token);
    app->access_token = g_strdup(json_object_get_string_member_with_default(
        tokens, "access_token", NULL));
    app->refresh_token = g_strdup(json_object_get_string_member_with_default(
        tokens, "refresh_token", NULL));
    app->access_expires = g_get_real_time() / G_USEC_PER_SEC
        + json_object_get_int_member_with_default(tokens, "expires_in", 900);

    if (json_object_has_member(tokens, "user")
        && JSON_NODE_HOLDS_OBJECT(json_object_get_member(tokens, "user")))
    {
        user = json_object_get_object_member(tokens, "user");
        g_free(app->user_id);
        g_free(app->username);
        app->user_id = g_strdup(json_object_get_string_member_with_default(
            user, "id", NULL));
        app->username = g_strdup(json_object_get_string_member_with_default(
            user, "username", NULL));
    }
    if (app->access_token == NULL || app->refresh_token == NULL) {
        g_printerr("famcall-client: the server's answer has no tokens\n");
        return FC_EXIT_ERROR;
    }
    return fc_api_write(app);
}


void
fc_api_forget_tokens(fc_app_t *app)
{
    if (app->token_path) {
        g_unlink(app->token_path);
    }
}


/*
 * An access token good for at least FC_REFRESH_MARGIN seconds more,
 * refreshing (and rewriting the file) when needed.
 */
int
fc_api_fresh_token(fc_app_t *app)
{
    JsonBuilder  *b;
    JsonNode     *body, *answer = NULL;
    guint         status = 0;
    int           rc;

    if (app->refresh_token == NULL) {
        return FC_EXIT_AUTH;
    }
    if (app->access_token
        && app->access_expires - FC_REFRESH_MARGIN
           > g_get_real_time() / G_USEC_PER_SEC)
    {
        return 0;
    }

    b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "refresh_token");
    json_builder_add_string_value(b, app->refresh_token);
    json_builder_end_object(b);
    body = json_builder_get_root(b);
    g_object_unref(b);

    rc = fc_api_request(app, "POST", "/v1/auth/refresh", body, FALSE,
                        &status, &answer);
    json_node_unref(body);
    if (rc != 0) {
        return rc;
    }
    if (status != 200 || !JSON_NODE_HOLDS_OBJECT(answer)) {
        g_printerr("famcall-client: the session ended (%s): log in again\n",
                   fc_api_error_code(answer));
        if (answer) {
            json_node_unref(answer);
        }
        return FC_EXIT_AUTH;
    }
    fc_log(app, "access token refreshed");
    rc = fc_api_save_tokens(app, json_node_get_object(answer));
    json_node_unref(answer);
    return rc;
}


/*
 * One request. Returns 0 with *status and *answer (the JSON body or NULL)
 * when the server answered, FC_EXIT_NETWORK when it could not be reached.
 * With auth, a token is refreshed first when it is about to expire, and
 * once more when the server answers 401 anyway (it may have been revoked
 * and reissued by another of our runs).
 */
int
fc_api_request(fc_app_t *app, const char *method, const char *path,
    JsonNode *body, gboolean auth, guint *status, JsonNode **answer)
{
    SoupMessage  *msg;
    GBytes       *res;
    JsonParser   *parser;
    GError       *err = NULL;
    char         *url, *text, *hdr;
    gsize         len;
    int           rc, attempt;

    *answer = NULL;
    *status = 0;
    fc_api_default_server(app);

    for (attempt = 0; attempt < 2; attempt++) {
        if (auth) {
            if (attempt == 1) {
                app->access_expires = 0;
            }
            rc = fc_api_fresh_token(app);
            if (rc != 0) {
                return rc;
            }
        }

        url = g_strconcat(app->opts.server, path, NULL);
        msg = soup_message_new(method, url);
        if (msg == NULL) {
            g_printerr("famcall-client: bad server URL: %s\n", url);
            g_free(url);
            return FC_EXIT_USAGE;
        }
        g_free(url);

        if (auth) {
            hdr = g_strconcat("Bearer ", app->access_token, NULL);
            soup_message_headers_replace(
                soup_message_get_request_headers(msg), "Authorization", hdr);
            g_free(hdr);
        }
        if (body) {
            text = json_to_string(body, FALSE);
            res = g_bytes_new_take(text, strlen(text));
            soup_message_set_request_body_from_bytes(msg, "application/json",
                                                     res);
            g_bytes_unref(res);
        }

        res = soup_session_send_and_read(app->http, msg, NULL, &err);
        if (res == NULL) {
            g_printerr("famcall-client: %s: %s\n", app->opts.server,
                       err->message);
            g_clear_error(&err);
            g_object_unref(msg);
            return FC_EXIT_NETWORK;
        }
        *status = soup_message_get_status(msg);
        g_object_unref(msg);

        if (*status == 401 && auth && attempt == 0) {
            g_bytes_unref(res);
            continue;
        }

        text = (char *) g_bytes_get_data(res, &len);
        if (len > 0) {
            parser = json_parser_new();
            if (json_parser_load_from_data(parser, text, len, NULL)
                && json_parser_get_root(parser))
            {
                *answer = json_node_copy(json_parser_get_root(parser));
            }
            g_object_unref(parser);
        }
        g_bytes_unref(res);
        return 0;
    }
    return FC_EXIT_AUTH;
}


int
fc_api_exit_for(guint status)
{
    if (status == 401) {
        return FC_EXIT_AUTH;
    }
    if (status >= 400 && status < 500) {
        return FC_EXIT_REFUSED;
    }
    return status >= 500 ? FC_EXIT_NETWORK : FC_EXIT_ERROR;
}


static JsonObject *
fc_api_error_object(JsonNode *answer)
{
    JsonObject  *o;

    if (answer == NULL || !JSON_NODE_HOLDS_OBJECT(answer)) {
        return NULL;
    }
    o = json_node_get_object(answer);
    if (!json_object_has_member(o, "error")
        || !JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "error")))
    {
        return NULL;
    }
    return json_object_get_object_member(o, "error");
}


const char *
fc_api_error_code(JsonNode *answer)
{
    JsonObject  *e = fc_api_error_object(answer);

    return e ? json_object_get_string_member_with_default(e, "code", "?")
             : "no error body";
}


const char *
fc_api_error_message(JsonNode *answer)
{
    JsonObject  *e = fc_api_error_object(answer);

    return e ? json_object_get_string_member_with_default(e, "message", "")
             : "";
}


/*
 * A contact by username, phone (+E.164) or user id, among the accepted
 * ones: *id and *name (the display name) on success.
 */
int
fc_api_find_contact(fc_app_t *app, const char *who, char **id, char **name)
{
    JsonNode     *answer;
    JsonObject   *c, *u;
    JsonArray    *list;
    guint         status, i;
    int           rc;
    const char   *uid, *uname;

    rc = fc_api_request(app, "GET", "/v1/contacts", NULL, TRUE, &status,
                        &answer);
    if (rc != 0) {
        return rc;
    }
    if (status != 200 || !JSON_NODE_HOLDS_OBJECT(answer)) {
        g_printerr("famcall-client: contacts: %u %s\n", status,
                   fc_api_error_code(answer));
        if (answer) {
            json_node_unref(answer);
        }
        return fc_api_exit_for(status);
    }

    list = json_object_get_array_member(json_node_get_object(answer),
                                        "contacts");
    rc = FC_EXIT_REFUSED;
    for (i = 0; list && i < json_array_get_length(list); i++) {
        c = json_array_get_object_element(list, i);
        u = json_object_get_object_member(c, "user");
        uid = json_object_get_string_member_with_default(u, "id", "");
        uname = json_object_get_string_member_with_default(u, "username", "");
        if (g_ascii_strcasecmp(uname, who) != 0 && strcmp(uid, who) != 0) {
            continue;
        }
        if (strcmp(json_object_get_string_member_with_default(c, "status",
                                                              ""),
                   "accepted") != 0)
        {
            g_printerr("famcall-client: %s has not accepted yet\n", who);
            break;
        }
        *id = g_strdup(uid);
        *name = g_strdup(json_object_get_string_member_with_default(
            u, "display_name", uname));
        rc = 0;
        break;
    }
    if (rc != 0 && i == (list ? json_array_get_length(list) : 0)) {
        g_printerr("famcall-client: %s is not among your contacts "
                   "(famcall-client add %s)\n", who, who);
    }
    json_node_unref(answer);
    return rc;
}
