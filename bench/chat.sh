#!/usr/bin/env bash
# famcall chat benchmark over HTTP: messages sent (each persisted and
# committed before its 201) per second with p50/p99, spread over many
# conversations, then listing a conversation page. The peer, plain nginx
# `return 200` on the same workers, is measured in the same run.
# Usage: bench/chat.sh MODULE_SO
# Env: BENCH_DURATION (10s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#      BENCH_PAIRS (40 conversations), BENCH_POOL (famcall_db_pool_size, 2),
#      FAMCALL_WORKERS (2).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
module=${1:?usage: bench/chat.sh MODULE_SO}
dur=${BENCH_DURATION:-10s}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
npairs=${BENCH_PAIRS:-40}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

data=$(mktemp -d /tmp/famcall-bench-XXXX)
chmod 755 "$data"       # PostgreSQL runs as its own user
export FAMCALL_DATA_DIR=$data
export FAMCALL_HTTP_PORT=$(free_port)
export FAMCALL_PG_PORT=$(free_port)
plain_port=$(free_port)
mkdir -p "$data/log" "$data/nginx-tmp"

cleanup() {
    [ -s "$data/nginx.pid" ] && kill -QUIT "$(cat "$data/nginx.pid")" 2> /dev/null || true
    sleep 0.5
    "$top/scripts/pg.sh" stop "$data/pg" > /dev/null 2>&1 || true
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$data"
}
trap cleanup EXIT

"$top/scripts/pg.sh" init "$data/pg" "$FAMCALL_PG_PORT" > /dev/null
"$top/scripts/pg.sh" start "$data/pg" "$FAMCALL_PG_PORT" > /dev/null
export PGHOST=127.0.0.1 PGPORT=$FAMCALL_PG_PORT PGUSER=famcall PGDATABASE=famcall
"$top/scripts/migrate.sh" > /dev/null
openssl rand -hex 32 > "$data/jwt.key"

cat > "$data/extra.conf" <<CONF
famcall_password_opslimit 1;
famcall_password_memlimit 8m;
server {
    listen 127.0.0.1:$plain_port;
    access_log off;
    location / { return 200 "ok\n"; }
}
CONF

"$top/scripts/render-conf.sh" "$module" \
    | sed -e 's|access_log .*;|access_log off;|' \
          -e "s|famcall_db_pool_size [0-9]*;|famcall_db_pool_size ${BENCH_POOL:-2};|" \
    > "$data/nginx.conf"
nginx -p "$data" -c "$data/nginx.conf" -e "$data/log/nginx-error.log" &
sleep 1

api=http://127.0.0.1:$FAMCALL_HTTP_PORT
# pairs of contacts, each with a conversation: a Lua table for wrk
python3 "$top/bench/chat_setup.py" "$api" "$npairs" > "$data/pairs.lua"

export BENCH_PAIRS_FILE=$data/pairs.lua
run() {
    local name=$1; shift
    echo "== $name"
    wrk -t"$threads" -c"$conns" -d"$dur" --latency "$@" | tee "$data/$name.txt" \
        | grep -E 'Requests/sec|Non-2xx|Socket errors| 50%| 99%'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "nginx workers: ${FAMCALL_WORKERS:-2}, db pool ${BENCH_POOL:-2} per worker;" \
     "$npairs conversations; wrk -t$threads -c$conns -d$dur"
run plain "http://127.0.0.1:$plain_port/"

before=$(psql -X -At -c 'select count(*) from messages')
t0=$(date +%s.%N)
run send -s "$top/bench/chat_send.lua" "$api"
t1=$(date +%s.%N)
after=$(psql -X -At -c 'select count(*) from messages')
python3 -c "print('persisted: %d messages, %.0f per second (wall clock of the wrk run)' % ($after - $before, ($after - $before) / ($t1 - $t0)))"
psql -X -At -c "select 'seq check: ' || count(*) || ' conversations, ' ||
    sum(case when m.n = c.last_seq and m.mx = c.last_seq then 1 else 0 end) ||
    ' with seq exactly 1..last_seq'
    from conversations c
    join (select conversation_id, count(*) n, max(seq) mx from messages
          group by conversation_id) m on m.conversation_id = c.id"

run list -s "$top/bench/chat_list.lua" "$api"
