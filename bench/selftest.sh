#!/usr/bin/env bash
# The bench scripts still work (make bench-selftest; not part of make test,
# which tests the product). Each step is judged by its exit status alone:
#   - wsload's self-test against a stand-in server (bench/ws/selftest.sh;
#     the suite runs it too, t/30-wsload.t);
#   - callload's self-test against the PeerJS server (bench/calls/selftest.sh);
#   - tiny runs of make bench, of bench/chat.sh and of every part of
#     make bench-ws and make bench-calls, with the options a real run may
#     use: each must come out sound (every message acked and delivered
#     once, seqs gapless, every call set up and ended, nothing at error
#     level in nginx's log: bench_unsound in bench/lib.sh);
#   - tiny runs of bench/sql/analyze-cost.sh;
#   - bad input refused with exit 2 before anything starts.
# Figures are not looked at: speed is for the benchmarks themselves.
# Usage: bench/selftest.sh MODULE_SO [CLIENT]   prints ok/not ok per step;
# exits 1 if any failed, with the last lines of its output. CLIENT
# (famcall-client) adds a tiny make bench-call-setup.
# BENCH_SELFTEST_KEEP=1 keeps the steps' logs.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
module=$(realpath "${1:?usage: bench/selftest.sh MODULE_SO [CLIENT]}")
client=${2:+$(realpath "$2")}
logs=$(mktemp -d /tmp/famcall-bench-selftest-XXXX)
trap '[ -n "${BENCH_SELFTEST_KEEP:-}" ] || rm -rf "$logs"' EXIT
cd "$top"

# small and quick, and the machine's scheduler setting left alone
export BENCH_WAL_WARM=0 BENCH_AUTOGROUP=keep BENCH_SHARED_BUFFERS=256MB

n=0 failed=0
# step NAME WANT CMD...: run CMD (its output to a log); ok when it exits WANT
step() {
    local name=$1 want=$2 rc
    shift 2
    n=$((n + 1))
    "$@" > "$logs/$n.log" 2>&1 < /dev/null
    rc=$?
    if [ "$rc" = "$want" ]; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name: exit $rc, want $want"
        { grep '^NOT SOUND' "$logs/$n.log"; tail -30 "$logs/$n.log"; } | sed 's/^/#   /'
        failed=$((failed + 1))
    fi
}

step 'wsload against the stand-in server' 0 bench/ws/selftest.sh

step 'make bench, 2 s runs' 0 \
    env BENCH_DURATION=2s BENCH_CONNECTIONS=8 bench/run.sh "$module"

step 'bench/chat.sh, 2 s runs' 0 \
    env BENCH_DURATION=2s BENCH_PAIRS=4 BENCH_CONNECTIONS=8 bench/chat.sh "$module"

# every part, with waits sampled, PostgreSQL and nginx settings of an
# experiment, and a database with messages before the runs
step 'make bench-ws: chat, nodes and hold, 2 s each' 0 \
    env WS_PARTS='chat nodes hold' WS_RATE=400 WS_SECONDS=2 WS_PAIRS=40 \
        WS_CONNS=80 WS_DRAIN=5 WS_PROCS=2 WS_WORKERS=2 WS_HOLD=2 BENCH_WAITS=1 \
        BENCH_PG_SET='commit_delay=7 synchronous_commit=on' \
        WS_CONF='famcall_send_streams 1;' WS_HISTORY=400 \
        bench/ws/run.sh "$module"

step 'callload against the PeerJS server' 0 bench/calls/selftest.sh

# every part: real calls set up, relayed on one node (beside PeerJS) and
# across two, setups, each sound
step 'make bench-calls: relay, nodes and setup, 2 s each' 0 \
    env CALLS_PARTS='relay nodes setup' CALLS_RATES=300 CALLS_SECONDS=2 CALLS_PAIRS=20 \
        CALLS_WARMUP=0.5 CALLS_DRAIN=5 CALLS_SETUP_RATES=20 CALLS_SETUP_SECONDS=2 \
        CALLS_SETUP_PAIRS=20 CALLS_CONF='famcall_call_sweep_interval 2s;' \
        bench/calls/run.sh "$module"

# two calls each way, when the client is built (make bench-selftest builds it)
[ -z "$client" ] || step 'make bench-call-setup: 2 calls direct and through coturn' 0 \
    env SETUP_CALLS=2 bench/calls/call-setup.sh "$module" "$client"

step 'analyze-cost.sh conversations at targets 10 and 0' 0 \
    env USERS=3000 PER=2 bench/sql/analyze-cost.sh conversations 10 0
step 'analyze-cost.sh messages at target 30' 0 \
    env PAIRS=200 MESSAGES=6000 bench/sql/analyze-cost.sh messages 30

step 'WS_HISTORY=3M refused' 2 env WS_HISTORY=3M bench/ws/run.sh "$module"
step 'CALLS_RATES=5k refused' 2 env CALLS_RATES=5k bench/calls/run.sh "$module"
step 'a part bench-calls does not know refused' 2 env CALLS_PARTS=chat bench/calls/run.sh "$module"
step 'a mode bench-call-setup does not know refused' 2 \
    env SETUP_MODES=carrier-pigeon bench/calls/call-setup.sh "$module" "${client:-/nonexistent}"
step 'a statistics target 10x refused' 2 bench/sql/analyze-cost.sh messages 10x
step 'a table analyze-cost.sh does not know refused' 2 bench/sql/analyze-cost.sh users
step 'MESSAGES=3M refused' 2 env MESSAGES=3M bench/sql/analyze-cost.sh messages

echo "1..$n"
[ "$failed" = 0 ] || { echo "# $failed of $n failed" >&2; exit 1; }
