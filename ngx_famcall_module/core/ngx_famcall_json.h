/*
 * famcall: request bodies and their fields, checked from a table.
 * Pure C over jansson (no nginx headers), so t/unit/ tests it directly.
 *
 * A route declares its fields once:
 *
 *     static const ngx_famcall_field_t  fields[] = {
 *         { "email", NGX_FAMCALL_F_STRING, 1, 0, ngx_famcall_check_email },
 *         ...
 *         { NULL, 0, 0, 0, NULL }
 *     };
 *
 * and ngx_famcall_json_validate() gives every route the same answers:
 * missing_field, invalid_field (with the field's name), and the value
 * normalised in place in the document.  Unknown fields are ignored.
 */

#ifndef _NGX_FAMCALL_JSON_H_INCLUDED_
#define _NGX_FAMCALL_JSON_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_famcall_validate.h"


typedef enum {
    NGX_FAMCALL_F_STRING = 1,
    NGX_FAMCALL_F_INTEGER
} ngx_famcall_field_type_e;


typedef struct {
    const char                *name;
    ngx_famcall_field_type_e   type;
    unsigned                   required:1;
    unsigned                   nullable:1;   /* JSON null is a value */
    ngx_famcall_check_pt       check;        /* strings only; may be NULL */
    long long                  min;          /* integers only */
    long long                  max;
} ngx_famcall_field_t;


typedef struct {
    const char                *code;
    const char                *message;
    const char                *field;
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
