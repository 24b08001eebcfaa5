#!/usr/bin/env bash
# Self-test of callload (no famcall, no database; a few seconds): its relay
# against the PeerJS server of bench/calls/package.json (every candidate
# delivered once to the pair's other side, latencies and kernel receive
# times there, the socket's subprotocol-free handshake), merge of its
# summaries (counters and the setup histograms), and refusals of bad input.
# famcall's own modes (relay, setup) need a stack: bench/selftest.sh runs
# make bench-calls on tiny rates for them.
# Usage: bench/calls/selftest.sh      exits non-zero on the first failure
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$dir/../.." && pwd)
tmp=$(mktemp -d /tmp/callload-selftest-XXXX)
pj=
cleanup() {
    if [ -n "$pj" ]; then
        kill "$pj" 2> /dev/null || true
        wait "$pj" 2> /dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "not ok: $*" >&2; exit 1; }
val() { awk -F= -v k="$2" '$1 == k {print $2}' "$1"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cc -O2 -std=c99 -Wall -Wextra -Werror -o "$tmp/callload" "$dir"/*.c \
    "$top"/bench/ws/{wsconn,wsloop,wsstats}.c -ljwt -lyajl -lcrypto
c=$tmp/callload

if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.famcall-lock" 2> /dev/null; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error > /dev/null)
    cp "$dir/package-lock.json" "$dir/node_modules/.famcall-lock"
fi

python3 - "$tmp/pairs" <<'PY'
import sys, uuid
with open(sys.argv[1], "w") as f:
    for _ in range(100):
        f.write(" ".join(str(uuid.uuid4()) for _ in range(5)) + "\n")
PY

p=$(port)
node "$dir/peerjs.mjs" "$p" > "$tmp/pj.out" 2>&1 &
pj=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$p/" && break
    sleep 0.1
done

# 100 pairs, 2 s at 600/s, the sending side alternating: 1200 candidates
"$c" peerjs --pairs "$tmp/pairs" --port "$p" --rate 600 --seconds 2 --src 127.36.0.1 \
    --nsrc 4 > "$tmp/relay" || fail "peerjs exited $?: $(cat "$tmp/relay")"
[ "$(val "$tmp/relay" connected)" = 200 ] || fail "connected $(val "$tmp/relay" connected)"
for k in sent delivered stamped; do
    [ "$(val "$tmp/relay" $k)" = 1200 ] || fail "$k $(val "$tmp/relay" $k), want 1200"
done
for k in errors foreign duplicated not_delivered skipped bad_handshake dropped; do
    [ "$(val "$tmp/relay" $k)" = 0 ] || fail "$k $(val "$tmp/relay" $k)"
done
[ "$(val "$tmp/relay" closed_clean)" = 200 ] || fail "clean closes $(val "$tmp/relay" closed_clean)"
awk -F= '{ v[$1] = $2 } END { exit !(v["lat_p99_ms"] > 0 && v["lat_sock_p99_ms"] <= v["lat_p99_ms"] &&
                                     v["tl_target_us"] == 5000 && v["timeline"] != "") }' "$tmp/relay" ||
    fail "latencies: $(grep -E '^(lat_|tl_target|timeline)' "$tmp/relay")"
echo "ok - peerjs: 1200 candidates over 100 pairs, each delivered once; p99 $(val "$tmp/relay" lat_p99_ms) ms"

# a peer id already connected is refused by PeerJS (ID-TAKEN with another
# token): counted as an error and a failed run
"$c" peerjs --pairs "$tmp/pairs" --port "$p" --rate 10 --seconds 1 --count 1 \
    --src 127.37.0.1 > "$tmp/one" 2> /dev/null || fail "a lone pair failed"
sed -n 1p "$tmp/pairs" | awk '{ x = "00000000-0000-4000-8000-000000000000"; print $1, x, $3, x, $5 }' > "$tmp/taken"
"$c" peerjs --pairs "$tmp/pairs" --port "$p" --rate 10 --seconds 3 --count 1 \
    --src 127.37.0.1 --wait-go > "$tmp/first" 2> /dev/null &
first=$!
until grep -q '^# phase=ready' "$tmp/first" 2> /dev/null; do sleep 0.1; done
if "$c" peerjs --pairs "$tmp/taken" --port "$p" --rate 10 --seconds 1 --count 1 \
       --src 127.38.0.1 --drain 1 > "$tmp/taken.out" 2> /dev/null; then
    fail "a taken peer id ran clean"
fi
kill -USR1 "$first"
wait "$first" || fail "the first holder of the id failed"
echo "ok - peerjs: a taken id fails the run"

# merge: counters add, histograms (setup, cycle among them) merge
printf 'mode=setup\nsetups=2\nsetups_window=2\nsend_ms=1000\nsetup_hist=10:1,100:1\nsetup_max_us=100\ncycle_hist=100:2\ncycle_max_us=100\n' > "$tmp/m0"
printf 'mode=setup\nsetups=1\nsetups_window=1\nsend_ms=1000\nsetup_hist=10:1\nsetup_max_us=10\ncycle_hist=120:1\ncycle_max_us=120\n' > "$tmp/m1"
"$c" merge "$tmp/m0" "$tmp/m1" > "$tmp/m"
[ "$(val "$tmp/m" setups)" = 3 ] && [ "$(val "$tmp/m" setup_hist)" = 10:2,100:1 ] &&
    [ "$(val "$tmp/m" cycle_hist)" = 100:2,120:1 ] && [ "$(val "$tmp/m" setup_p50_ms)" = 0.010 ] && [ "$(val "$tmp/m" cycle_max_ms)" = 0.120 ] ||
    fail "merge: $(grep -E '^(setups|setup_|cycle_)' "$tmp/m")"
printf 'mode=setup\nsetup_hist=10:x\n' > "$tmp/bad"
"$c" merge "$tmp/bad" > /dev/null 2>&1 && fail "a bad histogram merged"
echo "ok - merge: setups and their histograms"

# refusals, before any socket: exit 2
for args in "" "dance" "relay --pairs $tmp/pairs --port $p --rate 10 --seconds 1" \
            "peerjs --pairs $tmp/pairs --port $p --rate 0 --seconds 1" \
            "peerjs --pairs $tmp/pairs --port $p --rate 10 --seconds 1 --host 10.0.0.1" \
            "peerjs --pairs $tmp/no-such --port $p --rate 10 --seconds 1" \
            "peerjs --pairs $tmp/pairs --port $p --rate 10 --seconds 1 --offset 99 --count 2"; do
    set +e
    # shellcheck disable=SC2086
    "$c" $args > /dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "callload $args: exit $rc, want 2"
done
echo "ok - refusals: no secret for famcall, bad rate, a non-loopback host, missing or short pairs"
