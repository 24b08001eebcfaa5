/*
 * famcall: request bodies and their fields, checked from a table.
 * Pure C over jansson (no nginx headers), so t/unit/ tests it directly.
 *
 * A route declares its fields once:
 *
 *     static const ngx_famcall_field_t  fields[] = {
 *         { "email", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_email,
 *           0, 0, NULL },
 *         ...
 *         { NULL, 0, 0, 0, NULL, 0, 0, NULL }
 *     };
 *
 * and ngx_famcall_json_validate() gives every route the same answers:
 * missing_field, invalid_field (with the field's name), and the value
 * normalised in place in the document.  Unknown fields are ignored.
 *
 * Objects and arrays nest: an object field has its own table of members,
 * an array field a one-entry table for every element (its name is only
 * used in errors), so a WebRTC description reads
 *
 *     static const ngx_famcall_field_t  description[] = {
 *         { "type", NGX_FAMCALL_F_STRING, 1, 0, check_sdp_type, 0, 0, NULL },
 *         { "sdp", NGX_FAMCALL_F_STRING, 1, 0, NULL, 1, 65536, NULL },
 *         { NULL, 0, 0, 0, NULL, 0, 0, NULL }
 *     };
 *
 *     { "description", NGX_FAMCALL_F_OBJECT, 1, 0, NULL, 0, 0, description }
 *
 * and an error in it names its path: "description.sdp", "candidates[2]".
 */

#ifndef _NGX_FAMCALL_JSON_H_INCLUDED_
#define _NGX_FAMCALL_JSON_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_famcall_validate.h"


typedef enum {
    NGX_FAMCALL_F_STRING = 1,
    NGX_FAMCALL_F_INTEGER,
    NGX_FAMCALL_F_BOOLEAN,
    NGX_FAMCALL_F_OBJECT,
    NGX_FAMCALL_F_ARRAY
} ngx_famcall_field_type_e;


typedef struct ngx_famcall_field_s  ngx_famcall_field_t;

struct ngx_famcall_field_s {
    const char                 *name;
    ngx_famcall_field_type_e    type;
    unsigned                    required:1;
    unsigned                    nullable:1;  /* JSON null is a value */
    ngx_famcall_check_pt        check;       /* strings only; may be NULL */

    /*
     * integers: the range; strings: the length in bytes, checked before
     * check runs (max 0: no limit); arrays: the number of elements (max 0:
     * no limit)
     */
    long long                   min;
    long long                   max;

    /* objects: their members; arrays: the element, the one entry */
    const ngx_famcall_field_t  *fields;
};


#define NGX_FAMCALL_FIELD_PATH  96


typedef struct {
    const char                 *code;
    const char                 *message;
    const char                 *field;       /* the table's name, or path */
    char                        path[NGX_FAMCALL_FIELD_PATH];
} ngx_famcall_verror_t;


/* a JSON object, or NULL with err set to invalid_json */
json_t *ngx_famcall_json_parse(const char *buf, size_t len,
    ngx_famcall_verror_t *err);

/* 0, or -1 with err set */
int ngx_famcall_json_validate(json_t *obj, const ngx_famcall_field_t *fields,
    ngx_famcall_verror_t *err);

/* the string value of a member, or NULL (absent, null or not a string) */
const char *ngx_famcall_json_string(json_t *obj, const char *name);


#endif /* _NGX_FAMCALL_JSON_H_INCLUDED_ */
