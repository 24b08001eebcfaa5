/*
 * famcall: every SQL statement the module sends, prepared lazily on each
 * connection.  The logic lives in the sql/ functions they call, so each API
 * call is one round trip.  Order follows ngx_famcall_sql_e.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_famcall.h"


#define FAMCALL_FN(fn, args)                                                 \
    "SELECT status, body FROM " fn "(" args ")"


const ngx_famcall_stmt_t  ngx_famcall_statements[] = {

    { "famcall_ping", "SELECT 1", 0 },

    { "famcall_signup",
      FAMCALL_FN("famcall_signup",
                 "$1::text, $2::text, $3::text, $4::text, $5::text, $6::int"),
      6 },

    { "famcall_login_lookup",
      FAMCALL_FN("famcall_login_lookup", "$1::text"), 1 },

    { "famcall_session_create",
      FAMCALL_FN("famcall_session_create", "$1::uuid, $2::text, $3::int"),
      3 },

    { "famcall_refresh",
      FAMCALL_FN("famcall_refresh", "$1::text, $2::text, $3::int, $4::int"),
      4 },

    { "famcall_logout", FAMCALL_FN("famcall_logout", "$1::text"), 1 },

    { "famcall_me", FAMCALL_FN("famcall_me", "$1::uuid"), 1 },

    { "famcall_me_update",
      FAMCALL_FN("famcall_me_update", "$1::uuid, $2::jsonb"), 2 },

    { "famcall_otp_request",
      FAMCALL_FN("famcall_otp_request",
                 "$1::text, $2::text, $3::text, $4::int, $5::int, $6::int,"
                 " $7::int, $8::int, $9::jsonb"),
      9 },

    { "famcall_otp_verify",
      FAMCALL_FN("famcall_otp_verify",
                 "$1::text, $2::text, $3::text, $4::text, $5::int, $6::int"),
      6 },
};


const ngx_uint_t  ngx_famcall_nstatements =
    sizeof(ngx_famcall_statements) / sizeof(ngx_famcall_statements[0]);
