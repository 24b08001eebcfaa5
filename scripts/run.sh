#!/usr/bin/env bash
# `make run`: the whole local stack in the foreground. PostgreSQL (a cluster
# under $FAMCALL_DATA_DIR/pg), migrations, coturn, nginx with the famcall
# module and the push dispatcher; Ctrl-C stops everything it started.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
module=${1:?usage: run.sh MODULE_SO [PUSHD]}
pushd_bin=${2:-$top/build/pushd/famcall-pushd}

export FAMCALL_DATA_DIR=${FAMCALL_DATA_DIR:-$top/var}
export FAMCALL_HTTP_PORT=${FAMCALL_HTTP_PORT:-8080}
export FAMCALL_PG_PORT=${FAMCALL_PG_PORT:-5433}
export FAMCALL_TURN_PORT=${FAMCALL_TURN_PORT:-3478}
export FAMCALL_BIND=${FAMCALL_BIND:-127.0.0.1}

data=$FAMCALL_DATA_DIR
mkdir -p "$data/log" "$data/nginx-tmp"

# secrets made once per data dir and kept; nginx refuses a TURN secret that
# other users can read, so an older one is closed up too
[ -s "$data/jwt.key" ] || (umask 077; openssl rand -hex 32 > "$data/jwt.key")
[ -s "$data/turn.key" ] || (umask 077; openssl rand -hex 32 > "$data/turn.key")
chmod 0600 "$data/turn.key"

pids=()
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "stopping..."
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2> /dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2> /dev/null || true
    done
    "$top/scripts/pg.sh" stop "$data/pg" || true
}
trap 'stopping=1; stop_all' INT TERM
trap stop_all EXIT

"$top/scripts/pg.sh" init "$data/pg" "$FAMCALL_PG_PORT"
"$top/scripts/pg.sh" start "$data/pg" "$FAMCALL_PG_PORT"

PGHOST=127.0.0.1 PGPORT=$FAMCALL_PG_PORT PGUSER=famcall PGDATABASE=famcall \
    "$top/scripts/migrate.sh"

# coturn on $FAMCALL_BIND: its configuration (with the secret) is a 0600
# file under the data dir, never the command line
"$top/scripts/turn.sh" > "$data/log/turnserver-stdout.log" 2>&1 &
pids+=($!)

"$top/scripts/render-conf.sh" "$module" > "$data/nginx.conf"
nginx -q -t -p "$data" -c "$data/nginx.conf" -e "$data/log/nginx-error.log"
nginx -p "$data" -c "$data/nginx.conf" -e "$data/log/nginx-error.log" &
pids+=($!)

# the push dispatcher: Expo's public endpoints by default; FCM and APNs
# keys (docs/push.md) go in $data/pushd.local.conf, kept across runs
{
    echo "# written by scripts/run.sh: add settings to pushd.local.conf"
    echo "db host=127.0.0.1 port=$FAMCALL_PG_PORT dbname=famcall user=famcall"
    [ -e "$data/pushd.local.conf" ] && cat "$data/pushd.local.conf"
} > "$data/pushd.conf"
"$pushd_bin" -c "$data/pushd.conf" >> "$data/log/pushd.log" 2>&1 &
pids+=($!)

sleep 0.5
cat <<MSG

famcall is running (Ctrl-C stops it)
  API + WebSocket  http://$FAMCALL_BIND:$FAMCALL_HTTP_PORT/v1/   (health: /healthz)
  TURN             turn:$FAMCALL_BIND:$FAMCALL_TURN_PORT (UDP and TCP; GET /v1/turn)
  PostgreSQL       postgresql://famcall@127.0.0.1:$FAMCALL_PG_PORT/famcall
  one-time codes   $data/sms.log
  push dispatcher  $data/pushd.conf (yours: pushd.local.conf), log/pushd.log
  logs             $data/log/

MSG

# Until Ctrl-C (which reaches the services too) or a service ends by itself;
# either way everything else is stopped on the way out.
wait -n "${pids[@]}" || true
[ -n "${stopping:-}" ] || echo "a service has stopped (logs: $data/log/)" >&2
