#!/usr/bin/env bash
# Self-test of wsload against bench/ws/fake_server.pl (no famcall server, no
# database): the handshake and its checks, tokens, pongs (the fake pings
# every second and closes with 4000 a socket silent for 3), chat across two
# ports with every message acked and delivered once, merge, and refusals.
# Usage: bench/ws/selftest.sh      exits non-zero on the first failure
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/wsload-selftest-XXXX)
fake=
cleanup() {
    [ -n "$fake" ] && kill "$fake" 2> /dev/null && wait "$fake" 2> /dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "not ok: $*" >&2; exit 1; }
# value of key $2 in summary file $1
val() { awk -F= -v k="$2" '$1 == k {print $2}' "$1"; }

cc -O2 -std=c99 -Wall -Wextra -Werror -o "$tmp/wsload" "$top"/bench/ws/{wsload,wsconn,wsloop,wsstats}.c \
    -ljwt -ljansson -lyajl -lcrypto
openssl rand -hex 32 > "$tmp/key"
openssl rand -hex 32 > "$tmp/otherkey"
python3 - "$tmp/pairs" <<'PY'
import sys, uuid
with open(sys.argv[1], "w") as f:
    for _ in range(300):
        f.write(" ".join(str(uuid.uuid4()) for _ in range(5)) + "\n")
PY
awk '{ print $1, $2; print $3, $4 }' "$tmp/pairs" > "$tmp/users"

p1=$(port) p2=$(port)
perl "$top/bench/ws/fake_server.pl" --pairs "$tmp/pairs" --secret "$tmp/key" \
    --listen "http://127.0.0.1:$p1" --listen "http://127.0.0.1:$p2" --ping 1 --idle 3 \
    > "$tmp/fake.out" 2> "$tmp/fake.err" &
fake=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$p2/" && break
    sleep 0.1
done

w=$tmp/wsload
common=(--secret "$tmp/key" --nsrc 4)

# hold 400 sockets for 5 s: longer than the fake's idle limit, so only
# answered pings keep them
"$w" hold --users "$tmp/users" "${common[@]}" --port "$p1" --count 400 --seconds 5 \
    --src 127.31.0.1 > "$tmp/hold" || fail "hold exited $?"
[ "$(val "$tmp/hold" connected)" = 400 ] || fail "hold: connected $(val "$tmp/hold" connected)"
[ "$(val "$tmp/hold" server_closed)" = 0 ] || fail "hold: closed by the server (pongs?)"
[ "$(val "$tmp/hold" pings)" -ge 1200 ] || fail "hold: only $(val "$tmp/hold" pings) pings"
[ "$(val "$tmp/hold" closed_clean)" = 400 ] || fail "hold: clean closes $(val "$tmp/hold" closed_clean)"
echo "ok - hold: 400 sockets, pongs keep them, clean closes"

# chat: two processes, sides on two ports, started together with SIGUSR1;
# the first one traces its deliveries
pids=()
for i in 0 1; do
    trace=()
    [ "$i" = 0 ] && trace=(--trace "$tmp/trace0")
    "$w" chat --pairs "$tmp/pairs" "${common[@]}" --port-a "$p1" --port-b "$p2" \
        --offset $((100 * i)) --count 100 --rate 300 --seconds 3 --src "127.3$((2 + i)).0.1" \
        --wait-go "${trace[@]}" > "$tmp/chat$i" &
    pids+=($!)
done
for i in 0 1; do
    until grep -q '^# phase=ready' "$tmp/chat$i" 2> /dev/null; do
        kill -0 "${pids[$i]}" || fail "chat $i ended early"
        sleep 0.1
    done
done
kill -USR1 "${pids[@]}"
for p in "${pids[@]}"; do wait "$p" || fail "chat exited non-zero"; done
"$w" merge "$tmp/chat0" "$tmp/chat1" > "$tmp/chat"
for k in sent acked delivered; do
    [ "$(val "$tmp/chat" $k)" = 1800 ] || fail "chat: $k $(val "$tmp/chat" $k), want 1800"
done
for k in errors foreign echoed not_acked not_delivered dropped; do
    [ "$(val "$tmp/chat" $k)" = 0 ] || fail "chat: $k $(val "$tmp/chat" $k)"
done
[ -n "$(val "$tmp/chat" lat_p99_ms)" ] || fail "chat: no latency"
# every delivery's kernel receive time was there, and no later than the read
[ "$(val "$tmp/chat" stamped)" = 1800 ] || fail "chat: stamped $(val "$tmp/chat" stamped), want 1800"
awk -F= '{ v[$1] = $2 } END { exit !(v["lat_sock_p99_ms"] > 0 && v["lat_sock_p99_ms"] <= v["lat_p99_ms"] &&
                                     v["lat_sock_max_ms"] <= v["lat_max_ms"]) }' "$tmp/chat" \
    || fail "chat: socket latency not within the read latency"
# the trace: its start, then a line per delivery to the first process's
# sockets, sent after the start, none slower than the slowest counted
awk -v max="$(val "$tmp/chat0" lat_max_ms)" '
    NR == 1 { if ($1 != "#" || $2 != "t_send0") { bad = 1; exit } t0 = $3; next }
    NF != 2 || $1 < t0 || $2 > max * 1000 + 1 { bad = 1; exit }
    END { exit bad || NR != 901 }' "$tmp/trace0" || fail "chat: trace $(head -c 200 "$tmp/trace0")"
# a trace it cannot write stops it before it connects
if "$w" chat --pairs "$tmp/pairs" "${common[@]}" --port-a "$p1" --count 1 --seconds 1 \
       --trace "$tmp/no-such-dir/trace" > /dev/null 2> "$tmp/trace-err"; then
    fail "chat: ran with a trace it cannot write"
fi
grep -q "cannot open the trace file $tmp/no-such-dir/trace" "$tmp/trace-err" ||
    fail "chat: $(cat "$tmp/trace-err")"
echo "ok - chat: 1800 sent over two ports, acked and delivered once; merge; trace; p99 $(val "$tmp/chat" lat_p99_ms) ms"

# merge adds the seconds up (summaries written by hand, known sums):
# deliveries, latency sums and deliveries over 25 ms add, maxima take the
# higher; a timeline without the count over 25 ms is refused
printf 'mode=chat\nsent=3\ntimeline=2:30000:20000:0,3:90000:40000:2\n' > "$tmp/tl0"
printf 'mode=chat\nsent=2\ntimeline=1:26000:26000:1\n' > "$tmp/tl1"
"$w" merge "$tmp/tl0" "$tmp/tl1" > "$tmp/tl"
[ "$(val "$tmp/tl" timeline)" = 3:56000:26000:1,3:90000:40000:2 ] ||
    fail "merged timeline $(val "$tmp/tl" timeline)"
printf 'mode=chat\nsent=1\ntimeline=1:1000:1000\n' > "$tmp/tl2"
"$w" merge "$tmp/tl2" > /dev/null 2>&1 && fail "a timeline of three fields merged"
echo "ok - merge: timelines added second by second, with the deliveries over 25 ms"

# a token signed with another key is refused (401), and counted so
"$w" hold --users "$tmp/users" --secret "$tmp/otherkey" --port "$p1" --count 5 --seconds 1 \
    --src 127.35.0.1 > "$tmp/bad" 2> /dev/null && fail "refused sockets exit 0"
[ "$(val "$tmp/bad" refused)" = 5 ] || fail "refused $(val "$tmp/bad" refused), want 5"
echo "ok - bad token: refused"

# the token's claims, as ngx_famcall_token.c issues them
claims=$("$w" token --users "$tmp/users" --secret "$tmp/key" | cut -d. -f2 | tr '_-' '/+' |
         python3 -c 'import base64,sys; s=sys.stdin.read().strip(); print(base64.b64decode(s + "=" * (-len(s) % 4)).decode())')
python3 -c 'import json,sys; c=json.loads(sys.argv[1]); assert c["iss"]=="famcall" and set(c)=={"iss","sub","sid","iat","exp"}, c' "$claims" ||
    fail "token claims: $claims"
echo "ok - token: $claims"
