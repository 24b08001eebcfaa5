#!/usr/bin/env bash
# `make demo`: against a running `make run`, two headless clients sign up,
# become contacts, chat, and place a short video call; then one line per
# side says what it decoded. Exits non-zero if either side got nothing.
#
# Usage: demo.sh PATH/TO/famcall-client
# Reads FAMCALL_HTTP_PORT (8080), FAMCALL_BIND (127.0.0.1), DEMO_SECONDS (8).
set -euo pipefail

client=${1:?usage: demo.sh PATH/TO/famcall-client}
server=http://${FAMCALL_BIND:-127.0.0.1}:${FAMCALL_HTTP_PORT:-8080}
secs=${DEMO_SECONDS:-8}

if ! curl -fsS -o /dev/null "$server/healthz"; then
    echo "demo: no famcall at $server: start it with \`make run\` first" >&2
    exit 1
fi

work=$(mktemp -d /tmp/famcall-demo-XXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# the demo's own token files, not the user's
export XDG_CONFIG_HOME=$work/config FAMCALL_SERVER=$server
unset FAMCALL_PROFILE
export FAMCALL_PASSWORD="demo password $RANDOM$RANDOM"
tag=$(date +%s)$RANDOM
fc() { "$client" "$@"; }

for who in alice bob; do
    fc signup --profile "$who" --email "$who.$tag@example.com" \
        --username "${who}_$tag" --display-name "${who^}" > /dev/null
done
fc add --profile alice "bob_$tag" > /dev/null
fc add --profile bob "alice_$tag" > /dev/null

fc chat --profile bob "alice_$tag" --until-received 1 --timeout 20 \
    > "$work/bob-chat.out" &
pids+=($!)
fc chat --profile alice "bob_$tag" --send "Hi Bob, calling you now" \
    > /dev/null
wait "${pids[-1]}"
sed 's/^/bob got: /' "$work/bob-chat.out"

fc answer --profile bob --auto-answer --headless --test-media --wait 30 \
    --stats-json "$work/bob.json" > "$work/bob.out" 2>&1 &
pids+=($!)
bob=$!
sleep 1      # bob's socket opens, so the call rings at once
rc=0
fc call --profile alice "bob_$tag" --headless --test-media \
    --duration "$secs" --stats-json "$work/alice.json" \
    > "$work/alice.out" 2>&1 || rc=$?
wait "$bob" || rc=$((rc ? rc : $?))

status=0
for who in alice bob; do
    if [ ! -s "$work/$who.json" ]; then
        echo "$who: no call figures"; cat "$work/$who.out"; status=1; continue
    fi
    read -r v a < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["video_frames_received"], s["audio_buffers_received"])' "$work/$who.json")
    echo "$who: $v video frames, $a audio buffers decoded"
    if [ "$v" -eq 0 ] || [ "$a" -eq 0 ]; then status=1; fi
done
[ "$rc" -eq 0 ] || { echo "demo: a client exited $rc" >&2; status=1; }
exit $status
