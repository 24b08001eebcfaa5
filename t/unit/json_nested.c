/*
 * Unit tests: ngx_famcall_json.c's objects, arrays, booleans and string
 * byte limits, on a table shaped like the call signaling to come (an SDP of
 * up to 64 KB, ICE candidates of up to 1 KB).  Bad inputs first; then what
 * is accepted at the limits, and what is normalised in place, nested too.
 *
 * Documents are written with ' for " (q() swaps them back).
 */

#include <stdlib.h>

#include "tap.h"
#include "ngx_famcall_json.h"


#define SDP_MAX        65536
#define CANDIDATE_MAX  1024
#define CANDIDATES_MAX 16

#define CALL   "'call_id':'7c9e6679-7425-40de-944b-e07fc1f90ae7'"
#define DESC   "'description':{'type':'offer','sdp':'v=0'}"


static const char *check_sdp_type(const char *in, size_t len, char *out,
    size_t *outlen);


static const ngx_famcall_field_t  description[] = {
    { "type", NGX_FAMCALL_F_STRING, 1, 0, check_sdp_type, 0, 0, NULL },
    { "sdp", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, SDP_MAX, NULL },
    { "session", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  candidate[] = {
    { "candidate", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, CANDIDATE_MAX, NULL },
    { "sdpMid", NGX_FAMCALL_F_STRING, 0, 1, NULL, 0, 64, NULL },
    { "sdpMLineIndex", NGX_FAMCALL_F_INTEGER, 0, 1, NULL, 0, 255, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

/* an array's table: its one entry checks every element */
static const ngx_famcall_field_t  candidates[] = {
    { "candidate", NGX_FAMCALL_F_OBJECT, 0, 0, NULL, 0, 0, candidate },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  peer[] = {
    { "peer", NGX_FAMCALL_F_STRING, 0, 0, ngx_famcall_check_uuid, 0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  fields[] = {
    { "call_id", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_uuid,
      0, 0, NULL },
    { "description", NGX_FAMCALL_F_OBJECT, 1, 0, NULL, 0, 0, description },
    { "candidates", NGX_FAMCALL_F_ARRAY, 0, 0, NULL, 0, CANDIDATES_MAX,
      candidates },
    { "peers", NGX_FAMCALL_F_ARRAY, 0, 0, NULL, 1, 4, peer },
    { "video", NGX_FAMCALL_F_BOOLEAN, 0, 0, NULL, 0, 0, NULL },
    { "extra", NGX_FAMCALL_F_OBJECT, 0, 1, NULL, 0, 0, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


/* deep tables with long names: a path longer than err.path is cut */
#define LONG  "a_member_name_of_forty_characters_long__"

static const ngx_famcall_field_t  deep3[] = {
    { LONG "3", NGX_FAMCALL_F_INTEGER, 1, 0, NULL, 0, 1, NULL },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  deep2[] = {
    { LONG "2", NGX_FAMCALL_F_OBJECT, 1, 0, NULL, 0, 0, deep3 },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};

static const ngx_famcall_field_t  deep1[] = {
    { LONG "1", NGX_FAMCALL_F_OBJECT, 1, 0, NULL, 0, 0, deep2 },
    { NULL, 0, 0, 0, NULL, 0, 0, NULL }
};


static const char *
check_sdp_type(const char *in, size_t len, char *out, size_t *outlen)
{
    if (!((len == 5 && memcmp(in, "offer", 5) == 0)
          || (len == 6 && memcmp(in, "answer", 6) == 0)))
    {
        return "must be \"offer\" or \"answer\"";
    }

    memcpy(out, in, len);
    *outlen = len;

    return NULL;
}


/* s with ' for ", malloc'd */
static char *
q(const char *s)
{
    char  *r, *p;

    r = strdup(s);

    for (p = r; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }

    return r;
}


/* s repeated n times, malloc'd */
static char *
rep(const char *s, size_t n)
{
    char    *r;
    size_t   i, len;

    len = strlen(s);
    r = malloc(len * n + 1);

    for (i = 0; i < n; i++) {
        memcpy(r + i * len, s, len);
    }

    r[len * n] = '\0';

    return r;
}


/* the members of "{...}" (' for ") against table; the document, or NULL */
static json_t *
validate(const char *members, const ngx_famcall_field_t *table,
    ngx_famcall_verror_t *err, int *rc)
{
    char    *in, *doc;
    size_t   len;
    json_t  *root;

    len = strlen(members);
    in = malloc(len + 3);
    in[0] = '{';
    memcpy(in + 1, members, len);
    in[len + 1] = '}';
    in[len + 2] = '\0';

    doc = q(in);
    free(in);

    memset(err, 0xa5, sizeof(ngx_famcall_verror_t));

    root = ngx_famcall_json_parse(doc, strlen(doc), err);
    free(doc);

    if (root == NULL) {
        *rc = -2;
        return NULL;
    }

    *rc = ngx_famcall_json_validate(root, table, err);

    return root;
}


static void
bad(const char *name, const char *members, const char *code,
    const char *field, const char *message)
{
    int                    rc;
    json_t                *root;
    ngx_famcall_verror_t   err;

    root = validate(members, fields, &err, &rc);

    ok(rc == -1 && strcmp(err.code, code) == 0 && err.field != NULL
       && strcmp(err.field, field) == 0
       && (message == NULL || strcmp(err.message, message) == 0),
       "%s: %s %s", name, code, field);

    if (rc != -1) {
        printf("#   accepted\n");

    } else if (strcmp(err.code, code) != 0 || err.field == NULL
               || strcmp(err.field, field) != 0
               || (message && strcmp(err.message, message) != 0))
    {
        printf("#   got %s %s: %s\n", err.code,
               err.field ? err.field : "(none)", err.message);
    }

    json_decref(root);
}


/* accepted; want: the normalised document as sorted compact JSON, or NULL */
static void
good(const char *name, const char *members, const char *want)
{
    int                    rc;
    char                  *got, *w;
    json_t                *root;
    ngx_famcall_verror_t   err;

    root = validate(members, fields, &err, &rc);

    ok(rc == 0 && err.field == NULL, "%s: accepted", name);

    if (rc != 0) {
        printf("#   refused: %s %s: %s\n", err.code,
               err.field ? err.field : "(none)", err.message);
    }

    if (want != NULL && root != NULL) {
        got = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
        w = q(want);
        is_str(got, w, "  normalised in place");
        free(got);
        free(w);
    }

    json_decref(root);
}


static void
test_bad(void)
{
    char  *s, *m;

    /* objects */
    bad("object missing", CALL, "missing_field", "description",
        "a required field is missing");
    bad("object null", CALL ",'description':null", "missing_field",
        "description", NULL);
    bad("object as a string", CALL ",'description':'v=0'", "invalid_field",
        "description", "must be an object");
    bad("object as an array", CALL ",'description':[]", "invalid_field",
        "description", "must be an object");
    bad("object as a number", CALL ",'description':1", "invalid_field",
        "description", "must be an object");
    bad("member missing", CALL ",'description':{'type':'offer'}",
        "missing_field", "description.sdp", "a required field is missing");
    bad("member null", CALL ",'description':{'type':'offer','sdp':null}",
        "missing_field", "description.sdp", NULL);
    bad("member of the wrong type",
        CALL ",'description':{'type':'offer','sdp':5}", "invalid_field",
        "description.sdp", "must be a string");
    bad("member refused by its check",
        CALL ",'description':{'type':'pranswer','sdp':'v=0'}",
        "invalid_field", "description.type",
        "must be \"offer\" or \"answer\"");
    bad("optional member refused by its check",
        CALL ",'description':{'type':'offer','sdp':'v=0','session':'x'}",
        "invalid_field", "description.session", "must be a UUID");

    /* string byte limits: before the check, in bytes */
    bad("string under its minimum",
        CALL ",'description':{'type':'offer','sdp':''}", "invalid_field",
        "description.sdp", "is too short");

    s = rep("a", SDP_MAX + 1);
    m = malloc(SDP_MAX + 200);
    sprintf(m, CALL ",'description':{'type':'offer','sdp':'%s'}", s);
    bad("SDP of 64 KB + 1", m, "invalid_field", "description.sdp",
        "is too long");
    free(s);

    /* 513 two-byte characters: 1026 bytes */
    s = rep("\xc3\xa9", CANDIDATE_MAX / 2 + 1);
    sprintf(m, CALL "," DESC ",'candidates':[{'candidate':'%s'}]", s);
    bad("candidate of 1 KB + 2 in bytes, 513 characters", m, "invalid_field",
        "candidates[0].candidate", "is too long");
    free(s);

    /* arrays */
    bad("array as an object", CALL "," DESC ",'candidates':{}",
        "invalid_field", "candidates", "must be an array");
    bad("array as a string", CALL "," DESC ",'candidates':'a'",
        "invalid_field", "candidates", "must be an array");
    bad("array under its minimum count", CALL "," DESC ",'peers':[]",
        "invalid_field", "peers", "has too few elements");

    s = rep("{'candidate':'c'},", CANDIDATES_MAX + 1);
    s[strlen(s) - 1] = '\0';
    sprintf(m, CALL "," DESC ",'candidates':[%s]", s);
    bad("17 candidates", m, "invalid_field", "candidates",
        "has too many elements");
    free(s);

    bad("element of the wrong type",
        CALL "," DESC ",'candidates':[{'candidate':'a'},{'candidate':'b'},7]",
        "invalid_field", "candidates[2]", "must be an object");
    bad("element null", CALL "," DESC ",'candidates':[null]",
        "invalid_field", "candidates[0]", "must not be null");
    bad("element's member missing",
        CALL "," DESC ",'candidates':[{'candidate':'a'},{'sdpMid':'0'}]",
        "missing_field", "candidates[1].candidate", NULL);
    bad("element's member out of range",
        CALL "," DESC ",'candidates':[{'candidate':'a','sdpMLineIndex':256}]",
        "invalid_field", "candidates[0].sdpMLineIndex", "is out of range");
    bad("element's member too long",
        CALL "," DESC ",'candidates':[{'candidate':'a','sdpMid':'"
        "0123456789012345678901234567890123456789012345678901234567890123"
        "4'}]", "invalid_field", "candidates[0].sdpMid", "is too long");
    bad("string element refused by its check",
        CALL "," DESC ",'peers':['7c9e6679-7425-40de-944b-e07fc1f90ae7',"
        "'nope']", "invalid_field", "peers[1]", "must be a UUID");
    bad("string element of the wrong type", CALL "," DESC ",'peers':[{}]",
        "invalid_field", "peers[0]", "must be a string");

    /* booleans */
    bad("boolean as a string", CALL "," DESC ",'video':'yes'",
        "invalid_field", "video", "must be true or false");
    bad("boolean as a number", CALL "," DESC ",'video':1", "invalid_field",
        "video", "must be true or false");
    bad("boolean null", CALL "," DESC ",'video':null", "invalid_field",
        "video", "must not be null");

    /* the first bad field is the one reported, top-level fields first */
    bad("top level before nested",
        "'call_id':'x','description':{'type':'offer'}", "invalid_field",
        "call_id", "must be a UUID");

    free(m);
}


static void
test_path(void)
{
    int                    rc;
    char                  *m;
    json_t                *root;
    ngx_famcall_verror_t   err;

    m = malloc(400);
    sprintf(m, "'%s1':{'%s2':{'%s3':2}}", LONG, LONG, LONG);

    root = validate(m, deep1, &err, &rc);
    ok(rc == -1 && strcmp(err.code, "invalid_field") == 0
       && strlen(err.field) == NGX_FAMCALL_FIELD_PATH - 1
       && strncmp(err.field, LONG "1." LONG "2." LONG "3",
                  strlen(err.field)) == 0,
       "a path longer than err.path is cut: %s", rc == -1 ? err.field : "");
    json_decref(root);

    sprintf(m, "'%s1':{'%s2':{}}", LONG, LONG);
    root = validate(m, deep1, &err, &rc);
    ok(rc == -1 && strcmp(err.code, "missing_field") == 0
       && strlen(err.field) == NGX_FAMCALL_FIELD_PATH - 1,
       "a missing member deep down: the path is cut too");
    json_decref(root);

    sprintf(m, "'%s1':{'%s2':{'%s3':1}}", LONG, LONG, LONG);
    root = validate(m, deep1, &err, &rc);
    ok(rc == 0 && err.field == NULL, "three levels deep: accepted");
    json_decref(root);

    free(m);
}


static void
test_good(void)
{
    char  *s, *m;

    good("the smallest", CALL "," DESC,
         "{" CALL ",'description':{'sdp':'v=0','type':'offer'}}");
    good("optional arrays and booleans absent, unknown members kept",
         CALL ",'description':{'type':'answer','sdp':'v=0','x':[1]},'y':2",
         NULL);
    good("empty candidates", CALL "," DESC ",'candidates':[]", NULL);
    good("nullable object null", CALL "," DESC ",'extra':null", NULL);
    good("object without a table: any members",
         CALL "," DESC ",'extra':{'a':[{}]}", NULL);
    good("booleans", CALL "," DESC ",'video':false", NULL);
    good("nullable members of elements null",
         CALL "," DESC ",'candidates':[{'candidate':'a','sdpMid':null,"
         "'sdpMLineIndex':null}]", NULL);

    s = rep("a", SDP_MAX);
    m = malloc(SDP_MAX + 200);
    sprintf(m, CALL ",'description':{'type':'offer','sdp':'%s'}", s);
    good("SDP of exactly 64 KB", m, NULL);
    free(s);

    s = rep("\xc3\xa9", CANDIDATE_MAX / 2);
    sprintf(m, CALL "," DESC ",'candidates':[{'candidate':'%s',"
            "'sdpMid':'0','sdpMLineIndex':255}]", s);
    good("candidate of exactly 1 KB in bytes", m, NULL);
    free(s);

    s = rep("{'candidate':'c'},", CANDIDATES_MAX);
    s[strlen(s) - 1] = '\0';
    sprintf(m, CALL "," DESC ",'candidates':[%s]", s);
    good("16 candidates", m, NULL);
    free(s);

    /* checks normalise inside objects and arrays too */
    good("UUIDs lowercased in an object and in an array",
         "'call_id':'7C9E6679-7425-40DE-944B-E07FC1F90AE7',"
         "'description':{'sdp':'v=0','type':'offer',"
         "'session':'1B4E28BA-2FA1-41D2-883F-0016D3CCA427'},"
         "'peers':['1B4E28BA-2FA1-41D2-883F-0016D3CCA427',"
         "'7c9e6679-7425-40de-944b-e07fc1f90ae7']",
         "{" CALL ",'description':{'sdp':'v=0',"
         "'session':'1b4e28ba-2fa1-41d2-883f-0016d3cca427','type':'offer'},"
         "'peers':['1b4e28ba-2fa1-41d2-883f-0016d3cca427',"
         "'7c9e6679-7425-40de-944b-e07fc1f90ae7']}");

    free(m);
}


int
main(void)
{
    test_bad();
    test_path();
    test_good();

    return done_testing();
}
