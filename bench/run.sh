#!/usr/bin/env bash
# famcall API benchmark: wrk against GET /v1/me (JWT check + one query),
# POST /v1/auth/login (Argon2id at the production cost) and, as the peer in
# the same run, plain nginx `return 200` served by the same nginx workers.
# Usage: bench/run.sh MODULE_SO      (make bench)
# Env: BENCH_DURATION (10s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#      BENCH_POOL (famcall_db_pool_size, 2), FAMCALL_WORKERS (2).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

module=${1:?usage: bench/run.sh MODULE_SO}
dur=${BENCH_DURATION:-10s}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}

bench_start "$module"

curl -sf -o "$data/signup.json" "$api/v1/auth/signup" \
    -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"benchmark secret","display_name":"Bench","username":"bench"}'
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$data/signup.json")

bench_machine
echo "nginx workers: ${FAMCALL_WORKERS:-2}, db pool ${BENCH_POOL:-2} per worker; wrk -t$threads -c$conns -d$dur"
bench_wrk plain "$plain"
bench_wrk me -H "Authorization: Bearer $token" "$api/v1/me"
bench_wrk login -s "$bench_top/bench/login.lua" "$api/v1/auth/login"
