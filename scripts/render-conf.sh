#!/usr/bin/env bash
# Print an nginx.conf for famcall from conf/famcall.conf.in.
# Usage: render-conf.sh MODULE_SO > nginx.conf
# Reads FAMCALL_DATA_DIR, FAMCALL_HTTP_PORT, FAMCALL_PG_PORT and optionally
# FAMCALL_BIND (127.0.0.1), FAMCALL_TURN_PORT (3478), FAMCALL_WORKERS (2),
# FAMCALL_LOG_LEVEL (warn), FAMCALL_EXTRA_CONF (a file of extra http-level
# directives; default: none).
# GET /v1/turn is configured when the data dir has turn.key (the secret
# scripts/turn.sh gives coturn): its URIs name coturn on $FAMCALL_BIND. Without
# the key those lines stay commented out and the route answers 503.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
module=${1:?usage: render-conf.sh MODULE_SO}
data=${FAMCALL_DATA_DIR:?FAMCALL_DATA_DIR is not set}
extra=${FAMCALL_EXTRA_CONF:-$data/extra.conf}
[ -e "$extra" ] || : > "$extra"
bind=${FAMCALL_BIND:-127.0.0.1}
turn_host=$bind
case $bind in *:*) turn_host="[$bind]" ;; esac     # IPv6 in a URI
turn=""
[ -s "$data/turn.key" ] || turn="# "

sed -e "s|@MODULE@|$module|g" \
    -e "s|@WORKERS@|${FAMCALL_WORKERS:-2}|g" \
    -e "s|@DATA_DIR@|$data|g" \
    -e "s|@LOG_LEVEL@|${FAMCALL_LOG_LEVEL:-warn}|g" \
    -e "s|@PG_HOST@|127.0.0.1|g" \
    -e "s|@PG_PORT@|${FAMCALL_PG_PORT:?}|g" \
    -e "s|@HTTP_PORT@|${FAMCALL_HTTP_PORT:?}|g" \
    -e "s|@BIND@|$turn_host|g" \
    -e "s|@TURN@|$turn|g" \
    -e "s|@TURN_HOST@|$turn_host|g" \
    -e "s|@TURN_PORT@|${FAMCALL_TURN_PORT:-3478}|g" \
    -e "s|@EXTRA_CONF@|$extra|g" \
    "$top/conf/famcall.conf.in"
