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

    { "famcall_user_search",
      FAMCALL_FN("famcall_user_search", "$1::uuid, $2::text"), 2 },

    { "famcall_contacts_list",
      FAMCALL_FN("famcall_contacts_list", "$1::uuid"), 1 },

    { "famcall_contact_request",
      FAMCALL_FN("famcall_contact_request",
                 "$1::uuid, $2::uuid, $3::text, $4::text"), 4 },

    { "famcall_contact_accept",
      FAMCALL_FN("famcall_contact_accept", "$1::uuid, $2::uuid"), 2 },

    { "famcall_contact_remove",
      FAMCALL_FN("famcall_contact_remove", "$1::uuid, $2::uuid"), 2 },

    { "famcall_blocks_list", FAMCALL_FN("famcall_blocks_list", "$1::uuid"), 1 },

    { "famcall_block", FAMCALL_FN("famcall_block", "$1::uuid, $2::uuid"), 2 },

    { "famcall_unblock",
      FAMCALL_FN("famcall_unblock", "$1::uuid, $2::uuid"), 2 },

    { "famcall_report",
      FAMCALL_FN("famcall_report",
                 "$1::uuid, $2::uuid, $3::text, $4::text, $5::uuid"), 5 },

    { "famcall_conversations_list",
      FAMCALL_FN("famcall_conversations_list", "$1::uuid"), 1 },

    { "famcall_conversation_open",
      FAMCALL_FN("famcall_conversation_open", "$1::uuid, $2::uuid"), 2 },

    { "famcall_messages_list",
      FAMCALL_FN("famcall_messages_list",
                 "$1::uuid, $2::uuid, $3::bigint, $4::bigint, $5::int"), 5 },

    { "famcall_conversation_read",
      FAMCALL_FN("famcall_conversation_read",
                 "$1::uuid, $2::uuid, $3::bigint"), 3 },

    /* group commit: one row (i, status, body) per item of the arrays */
    { "famcall_message_send_batch",
      "SELECT i, status, body FROM famcall_message_send_batch($1::uuid[], "
      "$2::uuid[], $3::uuid[], $4::text[], $5::text[])", 5 },

    /* the realtime gateway (sql/008_realtime.sql) */
    { "famcall_listen", "LISTEN famcall", 0 },

    { "famcall_message_get", FAMCALL_FN("famcall_message_get", "$1::uuid"),
      1 },

    { "famcall_receipt",
      FAMCALL_FN("famcall_receipt",
                 "$1::uuid, $2::uuid, $3::text, $4::bigint, $5::text"), 5 },

    { "famcall_typing",
      FAMCALL_FN("famcall_typing", "$1::uuid, $2::uuid, $3::text, $4::text"),
      4 },

    { "famcall_sync", FAMCALL_FN("famcall_sync", "$1::uuid, $2::text, $3::int"),
      3 },

    /* sql/014_presence_batch.sql */
    { "famcall_presence_batch",
      FAMCALL_FN("famcall_presence_batch",
                 "$1::uuid, $2::uuid[], $3::boolean[]"), 3 },

    { "famcall_instance_register",
      FAMCALL_FN("famcall_instance_register", "$1::uuid, $2::text, $3::int"),
      3 },

    { "famcall_instance_sweep",
      FAMCALL_FN("famcall_instance_sweep", "$1::uuid"), 1 },
};


const ngx_uint_t  ngx_famcall_nstatements =
    sizeof(ngx_famcall_statements) / sizeof(ngx_famcall_statements[0]);


/* one entry per ngx_famcall_sql_e value, or the build fails */
typedef char ngx_famcall_statements_match_enum[
    (sizeof(ngx_famcall_statements) / sizeof(ngx_famcall_statements[0])
     == NGX_FAMCALL_SQL_COUNT) ? 1 : -1];
