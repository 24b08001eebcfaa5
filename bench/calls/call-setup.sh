#!/usr/bin/env bash
# Call setup with the GStreamer client (issue 20; make bench-call-setup):
# SETUP_CALLS consecutive calls between two headless famcall-clients
# (--test-media) on a throwaway stack with coturn (bench/lib.sh), in each
# of SETUP_MODES:
#   direct     on loopback, host candidates;
#   relay-tcp  --relay-only --turn-transport tcp on both sides: through
#              coturn over TCP (libnice's UDP TURN to 127.0.0.1 never
#              arrives, docs/websocket.md; the NAT cells with UDP relays are
#              t/51's namespaces).
# Each call: bob answers (--auto-answer, --from alice), alice calls once
# bob's socket is up, hangs up SETUP_HOLD seconds after the answer; both
# write --stats-json. Reported per mode, p50 and p95 over the calls: invite
# to call:ringing (the caller's), answer to ICE connected and answer to the
# first decoded remote video frame, for each side; DESIGN.md's target is
# answer to first frame under 500 ms on loopback, under 1 s through TURN.
# Usage: bench/calls/call-setup.sh MODULE_SO CLIENT   (make bench-call-setup)
# Env (defaults): SETUP_CALLS (20), SETUP_MODES ("direct relay-tcp"),
#   SETUP_HOLD (1).
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

module=$(realpath "${1:?usage: bench/calls/call-setup.sh MODULE_SO CLIENT}")
client=$(realpath "${2:?usage: bench/calls/call-setup.sh MODULE_SO CLIENT}")
ncalls=${SETUP_CALLS:-20}
modes=${SETUP_MODES:-direct relay-tcp}
hold=${SETUP_HOLD:-1}
case $ncalls$hold in *[!0-9]*|'') echo "SETUP_CALLS, SETUP_HOLD: whole numbers" >&2; exit 2 ;; esac
[ "$ncalls" -ge 2 ] || { echo "SETUP_CALLS: at least 2" >&2; exit 2; }
for m in $modes; do
    case $m in direct|relay-tcp) ;; *) echo "unknown mode $m (direct, relay-tcp)" >&2; exit 2 ;; esac
done
[ -x "$client" ] || { echo "no famcall-client at $client: make client" >&2; exit 1; }

export BENCH_TURN=1
# 40 calls a minute and more: the invite limit (10 a minute) raised for the run
bench_start "$module" "famcall_call_invite_rate 10000;"

setup_pids=()
setup_stop() {
    local p
    for p in "${setup_pids[@]}"; do kill "$p" 2> /dev/null || true; done
    bench_stop
}
trap setup_stop EXIT

export XDG_CONFIG_HOME=$data/client-config FAMCALL_SERVER=$api
unset FAMCALL_PROFILE FAMCALL_PASSWORD
fc() { "$client" "$@" < /dev/null; }

bench_machine
echo "code: $(git -C "$bench_top" log -1 --format='%h %s' 2> /dev/null || echo '?')$(
      git -C "$bench_top" diff --quiet HEAD 2> /dev/null || echo ' (with changes not committed)')"
echo "client: $client; GStreamer $(gst-inspect-1.0 --version 2> /dev/null | sed -n 's/^GStreamer //p' | head -1)"

for who in alice bob; do
    fc signup --profile "$who" --email "$who@example.com" --username "$who" \
        --display-name "$who" --password 'correct horse battery' > "$data/signup-$who.out" 2>&1 ||
        { echo "signup $who failed:" >&2; cat "$data/signup-$who.out" >&2; exit 1; }
done
fc add --profile alice bob > /dev/null && fc add --profile bob alice > /dev/null ||
    { echo "alice and bob could not become contacts" >&2; exit 1; }
bob_id=$(psql -X -At -c "select id from users where username = 'bob'")
bench_settle

# true while bob has a socket open somewhere (a presence row, sql/008)
bob_online() {
    [ "$(psql -X -At -c "select count(*) from presence where user_id = '$bob_id'")" != 0 ]
}
wait_for() {    # wait_for WHAT SECONDS CMD...
    local what=$1 t=$2 _
    shift 2
    for _ in $(seq $((t * 20))); do "$@" && return 0; sleep 0.05; done
    echo "timed out waiting for $what" >&2
    return 1
}
bob_offline() { ! bob_online; }

for mode in $modes; do
    opts=(--headless --test-media)
    [ "$mode" = relay-tcp ] && opts+=(--relay-only --turn-transport tcp)
    echo "== $mode: $ncalls calls, each held ${hold}s after the answer"
    bench_cpu_mark
    failed=0
    for ((i = 1; i <= ncalls; i++)); do
        out=$data/$mode-$i
        wait_for "bob's last socket to close" 10 bob_offline
        fc answer --profile bob --auto-answer --from alice --wait 30 "${opts[@]}" \
            --stats-json "$out.bob.json" > "$out.bob.out" 2>&1 &
        bob=$!
        setup_pids=("$bob")
        wait_for "bob's socket" 15 bob_online
        fc call --profile alice bob --duration "$hold" "${opts[@]}" \
            --stats-json "$out.alice.json" > "$out.alice.out" 2>&1 &
        alice=$!
        setup_pids+=("$alice")
        rc_a=0 rc_b=0
        wait "$alice" || rc_a=$?
        wait "$bob" || rc_b=$?
        setup_pids=()
        if [ "$rc_a" != 0 ] || [ "$rc_b" != 0 ]; then
            failed=$((failed + 1))
            echo "  call $i: caller exit $rc_a, callee exit $rc_b"
            tail -n 2 "$out.alice.out" "$out.bob.out" | sed 's/^/    /' || true
        fi
    done
    bench_cpu_report > "$data/$mode.host"
    grep 'cpu:' "$data/$mode.host" || true
    echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    python3 - "$data" "$mode" "$ncalls" <<'PY' || bench_unsound "$mode: a call failed, or its figures are missing"
import json, sys
data, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]
rows, bad, pairs = {}, 0, {}
for i in range(1, n + 1):
    for side in ("alice", "bob"):
        try:
            s = json.load(open("%s/%s-%d.%s.json" % (data, mode, i, side)))
        except (OSError, ValueError):
            bad += 1
            continue
        sp = s.get("selected_pair") or {}
        pairs[(sp.get("local_type"), sp.get("remote_type"), sp.get("protocol"))] = \
            pairs.get((sp.get("local_type"), sp.get("remote_type"), sp.get("protocol")), 0) + 1
        if mode == "relay-tcp" and sp.get("local_type") != "relay":
            bad += 1
        for k, v in (s.get("setup_ms") or {}).items():
            if k == "ringing" and side == "bob":
                continue
            if v is None:
                bad += 1
            else:
                rows.setdefault((k, side), []).append(v)
names = {"ringing": "invite -> call:ringing", "ice_connected": "answer -> ICE connected",
         "first_frame": "answer -> first frame"}
for k in ("ringing", "ice_connected", "first_frame"):
    for side in ("alice", "bob"):
        v = rows.get((k, side))
        if v:
            print("  %-24s %-6s (%s) p50 %6.0f ms, p95 %6.0f ms, max %6.0f ms over %d calls"
                  % (names[k], side, "caller" if side == "alice" else "callee",
                     pct(v, 50), pct(v, 95), max(v), len(v)))
print("  selected pairs (local/remote/protocol): " +
      ", ".join("%s/%s/%s %d" % (k + (c,)) for k, c in sorted(pairs.items(), key=str)))
sys.exit(1 if bad else 0)
PY
    [ "$failed" = 0 ] || bench_unsound "$mode: $failed of $ncalls calls failed"
done
bench_verdict
