#!/usr/bin/env bash
# famcall API benchmark: wrk against GET /v1/me (JWT check + one query),
# POST /v1/auth/login (Argon2id at the configured cost) and, as the peer in
# the same run, plain nginx `return 200` served by the same nginx workers.
# Usage: bench/run.sh MODULE_SO      (make bench)
# Env: BENCH_DURATION (10s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#      FAMCALL_WORKERS (2), BENCH_POOL (famcall_db_pool_size, 2).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
module=${1:?usage: bench/run.sh MODULE_SO}
dur=${BENCH_DURATION:-10s}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}

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
PGHOST=127.0.0.1 PGPORT=$FAMCALL_PG_PORT PGUSER=famcall PGDATABASE=famcall \
    "$top/scripts/migrate.sh" > /dev/null
openssl rand -hex 32 > "$data/jwt.key"

# the peer: plain nginx in the same workers, on its own port
cat > "$data/extra.conf" <<CONF
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
curl -sf -o "$data/signup.json" "$api/v1/auth/signup" \
    -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"benchmark secret","display_name":"Bench","username":"bench"}'
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$data/signup.json")

run() {
    local name=$1; shift
    echo "== $name"
    wrk -t"$threads" -c"$conns" -d"$dur" --latency "$@" | tee "$data/$name.txt" \
        | grep -E 'Requests/sec|Non-2xx|Socket errors| 50%| 99%'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "nginx workers: ${FAMCALL_WORKERS:-2}, db pool ${BENCH_POOL:-2} per worker; wrk -t$threads -c$conns -d$dur"
run plain "http://127.0.0.1:$plain_port/"
run me -H "Authorization: Bearer $token" "$api/v1/me"
run login -s "$top/bench/login.lua" "$api/v1/auth/login"
