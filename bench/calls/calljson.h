/*
 * callload: the few fields it reads from a server's frame, by their path
 * in the JSON object (famcall's events and the PeerJS server's messages).
 */

#ifndef CALLJSON_H
#define CALLJSON_H

#include <stddef.h>


enum {
    J_TYPE,             /* type */
    J_REF,              /* ref */
    J_CALL_ID,          /* data.call_id */
    J_CANDIDATE,        /* data.candidate */
    J_STATUS,           /* data.status */
    J_USER_ID,          /* data.user_id */
    J_FROM_ID,          /* data.from.id: who calls, in call:invite */
    J_CODE,             /* error.code */
    J_MESSAGE,          /* error.message */
    J_SRC,              /* src: the PeerJS sender's id */
    J_P_CANDIDATE,      /* payload.candidate.candidate */
    J_P_MSG,            /* payload.msg: a PeerJS error */
    J_N
};

/* the string fields of one frame (NUL-terminated copies, valid until the
 * next call; NULL where absent or not a string), or NULL when the frame is
 * not one JSON object */
const char **cj_parse(const unsigned char *p, size_t n);

#endif
