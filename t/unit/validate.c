/*
 * Unit tests: ngx_famcall_validate.c and the table-driven body checks of
 * ngx_famcall_json.c.
 */

#include <stdlib.h>

#include "tap.h"
#include "ngx_famcall_json.h"
#include "ngx_famcall_validate.h"


typedef struct {
    ngx_famcall_check_pt   check;
    const char            *name;
    const char            *in;
    const char            *out;     /* normalised; NULL: must be refused */
} check_case_t;


static const check_case_t  cases[] = {
    { ngx_famcall_check_email, "email", "alice@example.com", "alice@example.com" },
    { ngx_famcall_check_email, "email", "  Alice@Example.COM ", "alice@example.com" },
    { ngx_famcall_check_email, "email", "a@b.co", "a@b.co" },
    { ngx_famcall_check_email, "email", "alice", NULL },
    { ngx_famcall_check_email, "email", "alice@", NULL },
    { ngx_famcall_check_email, "email", "@example.com", NULL },
    { ngx_famcall_check_email, "email", "a@@example.com", NULL },
    { ngx_famcall_check_email, "email", "a@b@example.com", NULL },
    { ngx_famcall_check_email, "email", "al ice@example.com", NULL },
    { ngx_famcall_check_email, "email", "alice@localhost", NULL },
    { ngx_famcall_check_email, "email", "alice@example.", NULL },
    { ngx_famcall_check_email, "email", "alice@.com", NULL },
    { ngx_famcall_check_email, "email", "a\x01" "b@example.com", NULL },

    { ngx_famcall_check_password, "password", "12345678", "12345678" },
    { ngx_famcall_check_password, "password", "1234567", NULL },
    /* 8 characters, 16 bytes: counted in characters */
    { ngx_famcall_check_password, "password",
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" },

    { ngx_famcall_check_display_name, "display_name", " Grandma ", "Grandma" },
    { ngx_famcall_check_display_name, "display_name", "   ", NULL },
    { ngx_famcall_check_display_name, "display_name", "a\tb", NULL },
    { ngx_famcall_check_display_name, "display_name", "\xf0\x9f\x91\xb5 Nana",
      "\xf0\x9f\x91\xb5 Nana" },

    { ngx_famcall_check_username, "username", "Alice_1.x", "alice_1.x" },
    { ngx_famcall_check_username, "username", "ab", NULL },
    { ngx_famcall_check_username, "username", "abcdefghijabcdefghijabcdefghijabc", NULL },
    { ngx_famcall_check_username, "username", "abcdefghijabcdefghijabcdefghijab",
      "abcdefghijabcdefghijabcdefghijab" },
    { ngx_famcall_check_username, "username", "al-ice", NULL },
    { ngx_famcall_check_username, "username", "al ice", NULL },

    { ngx_famcall_check_phone, "phone", "+14155550123", "+14155550123" },
    { ngx_famcall_check_phone, "phone", "14155550123", NULL },
    { ngx_famcall_check_phone, "phone", "+04155550123", NULL },
    { ngx_famcall_check_phone, "phone", "+1415555", "+1415555" },
    { ngx_famcall_check_phone, "phone", "+141555", NULL },
    { ngx_famcall_check_phone, "phone", "+1234567890123456", NULL },
    { ngx_famcall_check_phone, "phone", "+1 415 555 0123", NULL },

    { ngx_famcall_check_url, "url", "https://cdn.example/a.png", "https://cdn.example/a.png" },
    { ngx_famcall_check_url, "url", "http://x.example", "http://x.example" },
    { ngx_famcall_check_url, "url", "javascript:alert(1)", NULL },
    { ngx_famcall_check_url, "url", "https://", NULL },
    { ngx_famcall_check_url, "url", "https:///path", NULL },
    { ngx_famcall_check_url, "url", "https://a b", NULL },

    { ngx_famcall_check_otp_code, "code", "012345", "012345" },
    { ngx_famcall_check_otp_code, "code", "12345", NULL },
    { ngx_famcall_check_otp_code, "code", "12345a", NULL },

    { ngx_famcall_check_refresh_token, "refresh",
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234",
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234" },
    { ngx_famcall_check_refresh_token, "refresh",
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ+/01234", NULL },
    { ngx_famcall_check_refresh_token, "refresh", "short", NULL },

    { ngx_famcall_check_uuid, "uuid", "0B6E5B2C-1D3A-4C5E-9F00-1234567890AB",
      "0b6e5b2c-1d3a-4c5e-9f00-1234567890ab" },
    { ngx_famcall_check_uuid, "uuid", "0b6e5b2c1d3a4c5e9f001234567890ab", NULL },
    { ngx_famcall_check_uuid, "uuid", "0b6e5b2c-1d3a-4c5e-9f00-1234567890ag", NULL },

    { ngx_famcall_check_message_body, "body", "  hi  ", "  hi  " },
    { ngx_famcall_check_message_body, "body", "", NULL },
    { ngx_famcall_check_message_body, "body", " \n\t ", NULL },
    { ngx_famcall_check_message_body, "body", "\xf0\x9f\x91\x8b", "\xf0\x9f\x91\x8b" },

    { ngx_famcall_check_report_reason, "reason", "spam", "spam" },
    { ngx_famcall_check_report_reason, "reason", "impersonation", "impersonation" },
    { ngx_famcall_check_report_reason, "reason", "Spam", NULL },
    { ngx_famcall_check_report_reason, "reason", "spamx", NULL },
    { ngx_famcall_check_report_reason, "reason", "", NULL },

    { ngx_famcall_check_report_text, "text", " rude ", "rude" },

    { ngx_famcall_check_search_prefix, "prefix", "Al", "al" },
    { ngx_famcall_check_search_prefix, "prefix", "a_.", "a_." },
    { ngx_famcall_check_search_prefix, "prefix", "a", NULL },
    { ngx_famcall_check_search_prefix, "prefix", "a%", NULL },
    { ngx_famcall_check_search_prefix, "prefix", "a b", NULL },
    { ngx_famcall_check_search_prefix, "prefix", "abcdefghijabcdefghijabcdefghijabc", NULL },

    { NULL, NULL, NULL, NULL }
};


static void
test_checks(void)
{
    char                *out;
    size_t               len, outlen;
    const char          *msg;
    const check_case_t  *c;

    for (c = cases; c->check; c++) {
        len = strlen(c->in);
        out = malloc(len + 1);
        msg = c->check(c->in, len, out, &outlen);

        if (c->out == NULL) {
            ok(msg != NULL, "%s refuses '%s'", c->name, c->in);

        } else {
            ok(msg == NULL && outlen == strlen(c->out)
               && memcmp(out, c->out, outlen) == 0,
               "%s accepts '%s'", c->name, c->in);
        }

        free(out);
    }

    /* a long password: 129 characters */
    out = malloc(200);
    memset(out, 'x', 129);
    ok(ngx_famcall_check_password(out, 129, out, &outlen)
       != NULL, "password refuses 129 characters");
    free(out);

    /* message bodies: 4000 characters, counted as characters */
    {
        char    big[4 * 4001 + 1];
        char   *o = malloc(sizeof(big));
        size_t  i;

        for (i = 0; i < 4000; i++) {
            memcpy(big + 4 * i, "\xf0\x9f\x91\x8b", 4);
        }
        ok(ngx_famcall_check_message_body(big, 4 * 4000, o, &outlen) == NULL,
           "body of 4000 four-byte characters accepted");
        memcpy(big + 4 * 4000, "\xf0\x9f\x91\x8b", 4);
        ok(ngx_famcall_check_message_body(big, 4 * 4001, o, &outlen) != NULL,
           "body of 4001 characters refused");
        free(o);
    }
}


static const ngx_famcall_field_t  fields[] = {
    { "email", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_email,
      0, 0, NULL },
    { "avatar_url", NGX_FAMCALL_F_STRING, 0, 1, ngx_famcall_check_url,
      0, 0, NULL },
    { "name", NGX_FAMCALL_F_STRING, 0, 0, NULL, 0, 0, NULL },
    { "limit", NGX_FAMCALL_F_INTEGER, 0, 0, NULL, 1, 100, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


static void
expect(const char *body, const char *code, const char *field,
    const char *name)
{
    json_t                *doc;
    ngx_famcall_verror_t   err;
    int                    rc;

    doc = ngx_famcall_json_parse(body, strlen(body), &err);

    if (doc == NULL) {
        ok(code != NULL && strcmp(err.code, code) == 0, "%s: %s", name,
           err.code);
        return;
    }

    rc = ngx_famcall_json_validate(doc, fields, &err);

    if (code == NULL) {
        ok(rc == 0, "%s: accepted", name);

    } else {
        ok(rc != 0 && strcmp(err.code, code) == 0
           && ((field == NULL && err.field == NULL)
               || (field && err.field && strcmp(field, err.field) == 0)),
           "%s: %s %s", name, code, field ? field : "");
    }

    json_decref(doc);
}


static void
test_bodies(void)
{
    json_t                *doc;
    ngx_famcall_verror_t   err;
    char                   deep[200];
    int                    i;

    expect("{\"email\":\"a@b.co\"}", NULL, NULL, "minimal body");
    expect("{\"email\":\"a@b.co\",\"unknown\":[1,2]}", NULL, NULL,
           "unknown fields ignored");
    expect("{\"email\":\"a@b.co\",\"avatar_url\":null}", NULL, NULL,
           "nullable field may be null");
    expect("not json", "invalid_json", NULL, "malformed JSON");
    expect("[1,2]", "invalid_json", NULL, "array body");
    expect("\"str\"", "invalid_json", NULL, "string body");
    expect("{\"email\":\"a@b.co\",\"email\":\"c@d.co\"}", "invalid_json",
           NULL, "duplicate keys");
    expect("{}", "missing_field", "email", "missing required field");
    expect("{\"email\":null}", "missing_field", "email", "required null");
    expect("{\"email\":42}", "invalid_field", "email", "wrong type");
    expect("{\"email\":\"nope\"}", "invalid_field", "email", "bad format");
    expect("{\"email\":\"a@b.co\",\"name\":null}", "invalid_field", "name",
           "null for a non-nullable optional field");
    expect("{\"email\":\"a@b.co\",\"limit\":0}", "invalid_field", "limit",
           "integer under range");
    expect("{\"email\":\"a@b.co\",\"limit\":\"5\"}", "invalid_field",
           "limit", "integer as string");
    expect("{\"email\":\"a@b.co\",\"limit\":100}", NULL, NULL,
           "integer at range end");

    for (i = 0; i < 40; i++) {
        deep[i] = '[';
    }
    strcpy(deep + 40, "1");
    for (i = 0; i < 40; i++) {
        deep[41 + i] = ']';
    }
    deep[81] = '\0';

    {
        char  body[300];

        snprintf(body, sizeof(body), "{\"email\":\"a@b.co\",\"x\":%s}", deep);
        expect(body, "invalid_json", NULL, "nesting too deep");
    }

    /* normalisation is written back into the document */
    doc = ngx_famcall_json_parse("{\"email\":\" A@B.CO \"}", 20, &err);
    ok(doc != NULL && ngx_famcall_json_validate(doc, fields, &err) == 0,
       "normalising body validates");
    is_str(ngx_famcall_json_string(doc, "email"), "a@b.co",
           "normalised value stored in the document");
    json_decref(doc);
}


int
main(void)
{
    test_checks();
    test_bodies();

    return done_testing();
}
