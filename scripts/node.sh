#!/usr/bin/env bash
# `make node`: one more nginx node on a running `make run` stack: the same
# database, JWT key and TURN secret, its own port ($FAMCALL_HTTP_PORT, which
# must differ from the first node's) and its own logs under
# $FAMCALL_DATA_DIR/node-<port>. In the foreground; Ctrl-C stops it.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
module=${1:?usage: node.sh MODULE_SO}

stack=${FAMCALL_DATA_DIR:-$top/var}
port=${FAMCALL_HTTP_PORT:?set FAMCALL_HTTP_PORT to the new node\'s port}
: "${FAMCALL_PG_PORT:=5433}"

if ! PGHOST=127.0.0.1 PGPORT=$FAMCALL_PG_PORT PGUSER=famcall \
     psql -X -q -d famcall -c 'select 1' > /dev/null 2>&1; then
    echo "no famcall database on 127.0.0.1:$FAMCALL_PG_PORT: start \`make run\` first" >&2
    exit 1
fi
[ -s "$stack/jwt.key" ] || { echo "no $stack/jwt.key: start \`make run\` first" >&2; exit 1; }

node=$stack/node-$port
mkdir -p "$node/log" "$node/nginx-tmp"
ln -sf "$stack/jwt.key" "$node/jwt.key"
[ ! -e "$stack/turn.key" ] || ln -sf "$stack/turn.key" "$node/turn.key"
[ -e "$node/extra.conf" ] || : > "$node/extra.conf"

FAMCALL_DATA_DIR=$node FAMCALL_HTTP_PORT=$port FAMCALL_PG_PORT=$FAMCALL_PG_PORT \
    "$top/scripts/render-conf.sh" "$module" > "$node/nginx.conf"
nginx -q -t -p "$node" -c "$node/nginx.conf" -e "$node/log/nginx-error.log"

echo "famcall node on http://127.0.0.1:$port/ (database 127.0.0.1:$FAMCALL_PG_PORT); Ctrl-C stops it"
trap 'kill -QUIT $pid 2> /dev/null; wait $pid 2> /dev/null' INT TERM
nginx -p "$node" -c "$node/nginx.conf" -e "$node/log/nginx-error.log" &
pid=$!
wait $pid
