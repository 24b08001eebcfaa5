#!/usr/bin/env bash
# famcall calls benchmark (docs/benchmarks.md), with bench/calls/callload
# on a throwaway stack (bench/lib.sh):
#   relay  at each of CALLS_RATES: CALLS_PAIRS real calls (contacts: a
#          invites, b accepts) on one node, then webrtc:ice between each
#          call's two bound devices at that offered rate for CALLS_SECONDS:
#          relayed per second, send -> peer p50/p99, server CPU (nginx and
#          PostgreSQL, this stack's processes only) per relayed message;
#          then the PeerJS server (npm peer, bench/calls/package.json) doing
#          the same job at the same rate with the same generator: CANDIDATE
#          messages between two connected peers, its CPU per message;
#   nodes  the same relays with each call's callee on a second node
#          (scripts/node.sh: the same database), CALLS_NODE_WORKERS workers
#          each: what the bus carries;
#   setup  call setups (invite -> accept -> end) at each of
#          CALLS_SETUP_RATES for CALLS_SETUP_SECONDS over CALLS_SETUP_PAIRS
#          pairs: setups per second, their latencies, and what each cost
#          the database (CPU, commits, WAL records and bytes).
# Every call of a run has its own pairs of users (no history carried from
# one run to the next); the invite rate limit is raised for the run
# (famcall_call_invite_rate 10000).
# Usage: bench/calls/run.sh MODULE_SO            (make bench-calls)
# Env (defaults): CALLS_PARTS ("relay nodes setup"), CALLS_RATES ("5000
#   20000 50000"), CALLS_SECONDS (10), CALLS_PAIRS (1000), CALLS_WARMUP (1:
#   seconds of relays left out of the latency figures), CALLS_DRAIN (10),
#   CALLS_WORKERS (2: node 1's workers in relay and setup),
#   CALLS_NODE_WORKERS (1: each node's in nodes, so that the two have as many
#   as one node), CALLS_PEERJS (1: 0 leaves PeerJS out), CALLS_SETUP_RATES
#   ("100 300"), CALLS_SETUP_SECONDS (10), CALLS_SETUP_PAIRS (300),
#   CALLS_PROCS (2: callload processes, each with its share of the pairs and
#   of the rate: one process offers about 20,000 relays a second here),
#   CALLS_CONF (http-level directives for every node: an experiment, named
#   in the report), BENCH_POOL (2).
# Quick: CALLS_RATES=1000 CALLS_SECONDS=3 CALLS_PAIRS=50 CALLS_SETUP_RATES=50
#   CALLS_SETUP_SECONDS=3 CALLS_SETUP_PAIRS=50 bench/calls/run.sh ...
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

module=$(realpath "${1:?usage: bench/calls/run.sh MODULE_SO}")
parts=${CALLS_PARTS:-relay nodes setup}
rates=${CALLS_RATES:-5000 20000 50000}
secs=${CALLS_SECONDS:-10}
npairs=${CALLS_PAIRS:-1000}
warmup=${CALLS_WARMUP:-1}
drain=${CALLS_DRAIN:-10}
node_workers=${CALLS_NODE_WORKERS:-1}
peerjs=${CALLS_PEERJS:-1}
setup_rates=${CALLS_SETUP_RATES:-100 300}
setup_secs=${CALLS_SETUP_SECONDS:-10}
setup_pairs=${CALLS_SETUP_PAIRS:-300}
procs=${CALLS_PROCS:-2}
for v in $rates $setup_rates $secs $setup_secs $npairs $setup_pairs $warmup $drain $procs; do
    case $v in
        ''|*[!0-9.]*|*.*.*) echo "CALLS_*: a number, not '$v'" >&2; exit 2 ;;
    esac
done
[ "$procs" -ge 1 ] 2> /dev/null || { echo "CALLS_PROCS: at least 1, not '$procs'" >&2; exit 2; }
for p in $parts; do
    case $p in relay|nodes|setup) ;; *) echo "unknown part $p (relay, nodes, setup)" >&2; exit 2 ;; esac
done
[ "$(awk -v s="$secs" -v w="$warmup" 'BEGIN { print (w < s) }')" = 1 ] ||
    { echo "CALLS_WARMUP ($warmup) must be shorter than CALLS_SECONDS ($secs)" >&2; exit 2; }

calls_dir=$(cd "$(dirname "$0")" && pwd)

# the PeerJS server's packages, as the lockfile pins them (again only when
# the lockfile changed since)
if [ "$peerjs" = 1 ] && [[ " $parts " = *" relay "* ]] &&
   ! cmp -s "$calls_dir/package-lock.json" "$calls_dir/node_modules/.famcall-lock" 2> /dev/null; then
    (cd "$calls_dir" && npm ci --no-audit --no-fund --loglevel=error > /dev/null) ||
        { echo "npm ci in bench/calls failed" >&2; exit 1; }
    cp "$calls_dir/package-lock.json" "$calls_dir/node_modules/.famcall-lock"
fi

conf="famcall_call_invite_rate 10000; ${CALLS_CONF:-}"
export FAMCALL_WORKERS=${CALLS_WORKERS:-2}
bench_start "$module" "$conf"
[ -z "${CALLS_CONF:-}" ] || echo "nginx set for this run: $CALLS_CONF"

calls_pids=() pj_pid=
calls_stop() {
    local p
    for p in "${calls_pids[@]}"; do kill "$p" 2> /dev/null || true; done
    [ -z "$pj_pid" ] || { kill "$pj_pid" 2> /dev/null; wait "$pj_pid" 2> /dev/null; } || true
    bench_node2_stop
    bench_stop
}
trap calls_stop EXIT

callload=$data/callload
cc -O2 -std=c99 -Wall -Wextra -o "$callload" "$calls_dir"/*.c \
    "$bench_top"/bench/ws/{wsconn,wsloop,wsstats}.c -ljwt -lyajl -lcrypto

# users: a fresh set of pairs for every run of callload
nrelay=0
for p in $parts; do
    case $p in relay|nodes) nrelay=$((nrelay + $(wc -w <<< "$rates"))) ;; esac
done
nsetup=0
[[ " $parts " = *" setup "* ]] && nsetup=$(wc -w <<< "$setup_rates")
total=$((nrelay * npairs + nsetup * setup_pairs))
psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 -v pairs="$total" -v tag=call \
    -f "$bench_top/bench/ws/setup.sql" > "$data/pairs.txt"
bench_settle
next_pair=0

port1=$FAMCALL_HTTP_PORT
chat_wc=$(sed -n 's/.*worker_connections \([0-9]*\);.*/\1/p' "$data/nginx.conf" | head -1)
bench_machine
echo "code: $(git -C "$bench_top" log -1 --format='%h %s' 2> /dev/null || echo '?')$(
      git -C "$bench_top" diff --quiet HEAD 2> /dev/null || echo ' (with changes not committed)')"
echo "$total pairs of users (accepted contacts) set up; callload: $(nproc) cores shared with nginx, PostgreSQL and PeerJS"

# CPU ticks (USER_HZ) used so far by this stack's processes, a line "pid
# kind ticks" each, kind nginx, postgres, psql (the bench's own sampling
# connections, not counted), peerjs or callload; other people's nginx and
# PostgreSQL on the machine are not in it
calls_cpu() {
    local m pg p f
    declare -A kind
    for m in "$(cat "$data/nginx.pid" 2> /dev/null)" \
             "$( [ -n "${port2:-}" ] && cat "$data/node-$port2/nginx.pid" 2> /dev/null)"; do
        [ -n "$m" ] || continue
        for p in "$m" $(pgrep -P "$m"); do kind[$p]=nginx; done
    done
    pg=$(head -1 "$data/pg/postmaster.pid" 2> /dev/null)
    for p in "$pg" $(pgrep -P "$pg"); do kind[$p]=postgres; done
    for p in $(psql -X -At -c "select pid from pg_stat_activity where application_name = 'psql'"); do
        kind[$p]=psql
    done
    [ -z "$pj_pid" ] || kind[$pj_pid]=peerjs
    for p in "${calls_pids[@]}"; do kind[$p]=callload; done
    for p in "${!kind[@]}"; do
        read -r -a f 2> /dev/null < "/proc/$p/stat" || continue
        echo "$p ${kind[$p]} $(( f[13] + f[14] ))"
    done
}

# seconds of CPU by kind between two calls_cpu listings (a process new in
# the second counts from 0): "nginx S postgres S peerjs S callload S"
calls_cpu_used() {
    awk 'NR == FNR { t0[$1] = $3; next }
         { used[$2] += $3 - t0[$1] }
         END { printf "nginx %.2f postgres %.2f peerjs %.2f callload %.2f\n",
                   used["nginx"] / 100, used["postgres"] / 100, used["peerjs"] / 100, used["callload"] / 100 }' "$1" "$2"
}

# the WAL's insert position now (calls_db), and what was written between
# two such positions, read back with pg_waldump (exact, where PostgreSQL
# 15's statistics views lag by up to a second): "commits records bytes",
# commits being the transactions that wrote a commit record
calls_db() {
    psql -X -At -c 'select pg_current_wal_insert_lsn()'
}
calls_wal() {
    local end=$2
    # the WAL writer flushes within its delay: wait for the end to be on disk
    for _ in $(seq 50); do
        [ "$(psql -X -At -c "select pg_current_wal_flush_lsn() >= '$end'")" = t ] && break
        sleep 0.1
    done
    /usr/lib/postgresql/15/bin/pg_waldump -p "$data/pg/pg_wal" -s "$1" -e "$end" --stats=record 2> /dev/null |
        awk '$1 == "Transaction/COMMIT" { c = $2 } $1 == "Total" { n = $2; b = $(NF - 1) }
             END { printf "%d %d %d\n", c, n, b }'
}

# wait until callload (pid $1) printed "# phase=$3" in $2
calls_wait_phase() {
    while ! grep -q "^# phase=$3" "$2" 2> /dev/null; do
        kill -0 "$1" 2> /dev/null ||
            { echo "callload $1 ended before $3:" >&2; cat "$2" "$2.err" >&2; exit 1; }
        sleep 0.05
    done
}

# calls_one NAME MODE PORT_A PORT_B PAIRS RATE SECONDS SRC_OCTET [ARGS]: one
# callload run, measured from its go to its drained phase; its summary in
# $data/NAME.sum, the CPU per kind in $data/NAME.cpu (calls_cpu_used), the
# WAL written in $data/NAME.wal (calls_wal), the host in NAME.host
calls_one() {
    local name=$1 mode=$2 pa=$3 pb=$4 n=$5 rate=$6 s=$7 oct=$8 from p per cnt files=() pid
    shift 8
    # famcall's runs each on pairs of their own; PeerJS on the last run's
    # (PeerJS keeps nothing of a peer once it is gone)
    from=$next_pair
    if [ "$mode" = peerjs ]; then from=$((next_pair - n)); else next_pair=$((next_pair + n)); fi
    # CALLS_PROCS processes, each its share of the pairs and of the rate
    per=$(( (n + procs - 1) / procs ))
    calls_pids=()
    for ((p = 0; p < procs && p * per < n; p++)); do
        cnt=$(( n - p * per < per ? n - p * per : per ))
        "$callload" "$mode" --pairs "$data/pairs.txt" --secret "$data/jwt.key" \
            --port-a "$pa" --port-b "$pb" --offset $((from + p * per)) --count "$cnt" \
            --rate "$(awk -v r="$rate" -v c="$cnt" -v n="$n" 'BEGIN { print r * c / n }')" \
            --seconds "$s" --drain "$drain" --wait-go \
            --src "127.$oct.$p.1" --nsrc 4 "$@" > "$data/$name-$p.out" 2> "$data/$name-$p.out.err" &
        calls_pids+=($!)
        files+=("$data/$name-$p.out")
    done
    for ((p = 0; p < ${#calls_pids[@]}; p++)); do
        calls_wait_phase "${calls_pids[$p]}" "${files[$p]}" ready
    done
    echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg)" > "$data/$name.host"
    bench_cpu_mark
    calls_cpu > "$data/$name.cpu0"
    calls_db > "$data/$name.db"
    kill -USR1 "${calls_pids[@]}"
    for ((p = 0; p < ${#calls_pids[@]}; p++)); do
        calls_wait_phase "${calls_pids[$p]}" "${files[$p]}" drained
    done
    calls_cpu > "$data/$name.cpu1"
    calls_wal "$(cat "$data/$name.db")" "$(calls_db)" > "$data/$name.wal"
    calls_cpu_used "$data/$name.cpu0" "$data/$name.cpu1" > "$data/$name.cpu"
    bench_cpu_report >> "$data/$name.host"
    for pid in "${calls_pids[@]}"; do wait "$pid" || true; done
    calls_pids=()
    "$callload" merge "${files[@]}" > "$data/$name.sum"
    for p in "${files[@]}"; do
        [ -s "$p.err" ] && sed 's/^/    /' "$p.err" | head -12
    done
    true
}

# the relay figures of a run: WHO names the server
calls_relay_report() {
    local name=$1 who=$2
    awk -F= -v who="$who" -v secs="$secs" -v cpu="$(cat "$data/$name.cpu")" '
        { v[$1] = $2 }
        END {
            split(cpu, c, " ")      # nginx S postgres S peerjs S callload S
            ng = c[2]; pg = c[4]; pj = c[6]
            d = v["delivered"]
            if (who == "PeerJS")
                printf "  %s: sent %d, delivered %d; not delivered after the drain %d; to the wrong socket %d, twice %d, not sent %d\n",
                    who, v["sent"], d, v["not_delivered"], v["foreign"], v["duplicated"], v["skipped"]
            else
                printf "  %s: sent %d, delivered %d, acked %d, refused (error) %d; unanswered after the drain %d; acked, not delivered %d; to the wrong socket %d, twice %d, not sent %d\n",
                    who, v["sent"], d, v["acked"], v["errors"], v["not_acked"], v["not_delivered"], v["foreign"], v["duplicated"], v["skipped"]
            if (v["not_acked"] + (who == "PeerJS" ? v["not_delivered"] : 0) + v["errors"] > 0)
                printf "  OVERLOADED: the server did not keep up with this rate (its figures are its capacity, not a clean run)\n"
            if (v["refused_done"] > 0)
                printf "  SERVER: %d relays or call:ends were refused with an error and carried out all the same\n", v["refused_done"]
            printf "  relayed while sending: %.0f/s (offered %.0f/s)\n", v["delivered_per_s"], v["sent_per_s"]
            printf "  send -> peer  p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms (after the first %.1f s)\n",
                v["lat_p50_ms"], v["lat_p90_ms"], v["lat_p99_ms"], v["lat_p999_ms"], v["lat_max_ms"], v["warmup_ms"] / 1000
            printf "    to the socket p50 %.2f ms, p99 %.2f ms (kernel receive time)\n", v["lat_sock_p50_ms"], v["lat_sock_p99_ms"]
            if (v["acked"] > 0)
                printf "  send -> ack   p50 %.2f ms, p99 %.2f ms\n", v["ack_p50_ms"], v["ack_p99_ms"]
            n = split(v["timeline"], t, ",")
            w = int((v["warmup_ms"] + 999) / 1000); met = 0; m = 0
            printf "  by second of sending, mean/max ms:"
            for (i = 1; i <= n; i++) {
                split(t[i], x, ":")
                printf "%s %.2f/%.1f", (i - 1) % 8 ? "" : "\n   ", x[1] ? x[2] / x[1] / 1000 : 0, x[3] / 1000
                if (i > w && i <= secs) { m++; if (100 * x[4] < x[1]) met++ }
            }
            printf "\n  seconds meeting p99 < %g ms: %d of %d after the warm-up\n", v["tl_target_us"] / 1000, met, m
            if (who == "PeerJS")
                printf "  server CPU: PeerJS %.2f s: %.2f us per relayed message\n", pj, d ? pj * 1e6 / d : 0
            else
                printf "  server CPU: nginx %.2f s, PostgreSQL %.2f s: %.2f us per relayed message (nginx %.2f, PostgreSQL %.2f)\n",
                    ng, pg, d ? (ng + pg) * 1e6 / d : 0, d ? ng * 1e6 / d : 0, d ? pg * 1e6 / d : 0
            printf "  generator: behind schedule at most %.1f ms, CPU %.1f s\n", v["behind_max_us"] / 1000, v["cpu_ms"] / 1000
        }' "$data/$name.sum"
    cat "$data/$name.host"
    # the summary line for the table at the end
    awk -F= -v cpu="$(cat "$data/$name.cpu")" -v who="$who" '
        { v[$1] = $2 }
        END {
            split(cpu, c, " ")
            s = who == "PeerJS" ? c[6] : c[2] + c[4]
            printf "%.0f %.2f %.2f %.0f\n", v["delivered_per_s"], v["lat_p99_ms"], v["delivered"] ? s * 1e6 / v["delivered"] : 0, v["sent_per_s"]
        }' "$data/$name.sum" > "$data/$name.line"
    # every relay delivered went once to its call's other side, every one
    # acked was delivered (famcall), every call set up and ended; relays
    # refused or still queued under overload are figures, not faults, and
    # so are refusals that were carried out (SERVER above: the server's to
    # fix, not the run's)
    awk -F= -v who="$who" '{ v[$1] = $2 } END {
        bad = v["foreign"] + v["duplicated"] + v["skipped"] + v["calls_failed"]
        # a relay acked and not delivered is lost, unless the server was
        # overloaded: then it may still be in the queue of the bus
        if (who != "PeerJS") bad += (v["errors"] + v["not_acked"] ? 0 : v["not_delivered"]) + (v["calls_ready"] != v["wanted"] / 2) + (v["calls_ended"] != v["wanted"] / 2)
        exit !(v["sent"] > 0 && v["connected"] == v["wanted"] && bad == 0) }' "$data/$name.sum" ||
        bench_unsound "$name: a call not set up or not ended, or a relay lost, misdelivered or doubled"
}

# the calls of the last LIMIT pairs ended by hangup, and nothing else stored
calls_check_rows() {
    local want=$1 got
    got=$(psql -X -At -c "select count(*) filter (where status = 'ended' and end_reason = 'hangup')
                                 || ' ' || count(*) from calls")
    echo "  calls rows: ${got% *} ended by hangup of ${got#* } in all (want $want in all)"
    [ "$got" = "$want $want" ] || bench_unsound "calls rows: $got, want $want ended by hangup"
}

summary=()
relay_rate() {
    local part=$1 rate=$2 pb=$3 oct=$4 peer_line
    bench_log_mark
    calls_one "$part-$rate" relay "$port1" "$pb" "$npairs" "$rate" "$secs" "$oct" --warmup "$warmup"
    echo "== $part at $rate/s offered"
    calls_relay_report "$part-$rate" famcall
    calls_total=$((calls_total + npairs))
    calls_check_rows "$calls_total"
    bench_nginx_errors ${port2:+"$data/node-$port2/log/nginx-error.log"}
    peer_line="-"
    if [ "$part" = relay ] && [ "$peerjs" = 1 ]; then
        calls_one "peerjs-$rate" peerjs "$pj_port" "$pj_port" "$npairs" "$rate" "$secs" $((oct + 1)) --warmup "$warmup"
        echo "== PeerJS at $rate/s offered, same generator"
        calls_relay_report "peerjs-$rate" PeerJS
        peer_line=$(cat "$data/peerjs-$rate.line")
    fi
    summary+=("$part $rate $(cat "$data/$part-$rate.line") $peer_line")
}

calls_total=0
for part in $parts; do case $part in
relay)
    bench_workers "$FAMCALL_WORKERS" "$chat_wc"
    if [ "$peerjs" = 1 ]; then
        pj_port=$(bench_free_port)
        node "$calls_dir/peerjs.mjs" "$pj_port" > "$data/peerjs.out" 2>&1 &
        pj_pid=$!
        bench_wait_http "http://127.0.0.1:$pj_port/" ||
            { echo "the PeerJS server did not start:" >&2; cat "$data/peerjs.out" >&2; exit 1; }
        echo "$(head -1 "$data/peerjs.out") (npm peer $(node -p "require('$calls_dir/node_modules/peer/package.json').version"))"
    fi
    echo "== relay, one node ($FAMCALL_WORKERS workers): $npairs calls, ${secs}s per rate"
    oct=40
    for rate in $rates; do relay_rate relay "$rate" "$port1" "$oct"; oct=$((oct + 2)); done
    if [ -n "$pj_pid" ]; then kill "$pj_pid"; wait "$pj_pid" 2> /dev/null || true; pj_pid=; fi
    ;;
nodes)
    bench_workers "$node_workers" "$chat_wc"
    bench_node2_start "$module" "$node_workers" "$conf"
    echo "== relay, two nodes: callers on :$port1, callees on :$port2 (same database)," \
         "$node_workers worker(s) each: $npairs calls, ${secs}s per rate"
    oct=60
    for rate in $rates; do relay_rate nodes "$rate" "$port2" "$oct"; oct=$((oct + 2)); done
    bench_node2_stop
    port2=
    ;;
setup)
    bench_workers "$FAMCALL_WORKERS" "$chat_wc"
    echo "== call setups, one node ($FAMCALL_WORKERS workers): $setup_pairs pairs, ${setup_secs}s per rate"
    oct=80
    for rate in $setup_rates; do
        bench_log_mark
        calls_one "setup-$rate" setup "$port1" "$port1" "$setup_pairs" "$rate" "$setup_secs" "$oct"
        oct=$((oct + 1))
        echo "== setups at $rate/s offered"
        awk -F= -v cpu="$(cat "$data/setup-$rate.cpu")" -v db="$(cat "$data/setup-$rate.wal")" '
            { v[$1] = $2 }
            END {
                split(cpu, c, " "); split(db, d, " ")
                ng = c[2]; pg = c[4]; s = v["setups"]
                printf "  offered %d, done %d (invite, accept, end: both sides heard each), not offered (no idle pair) %d, failed %d, not finished %d\n",
                    v["sent"] + v["skipped"], s, v["skipped"], v["calls_failed"], v["not_delivered"]
                printf "  setups done while offering: %.1f/s; call:ringing heard %d\n", v["setups_per_s"], v["ringing"]
                printf "  invite -> caller hears call:accept  p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                    v["setup_p50_ms"], v["setup_p90_ms"], v["setup_p99_ms"], v["setup_max_ms"]
                printf "  invite -> both heard the end        p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                    v["cycle_p50_ms"], v["cycle_p99_ms"], v["cycle_max_ms"]
                if (s > 0) {
                    printf "  per setup: PostgreSQL %.0f us of CPU, %.1f commits, %.1f WAL records, %.0f WAL bytes (pg_waldump, the whole run); nginx %.0f us of CPU\n",
                        pg * 1e6 / s, d[1] / s, d[2] / s, d[3] / s, ng * 1e6 / s
                }
                printf "  generator: behind schedule at most %.1f ms, CPU %.1f s\n", v["behind_max_us"] / 1000, v["cpu_ms"] / 1000
                printf "%.1f %.2f %.2f %.0f\n", v["setups_per_s"], v["setup_p99_ms"], v["cycle_p99_ms"], s ? pg * 1e6 / s : 0 > "/dev/stderr"
            }' "$data/setup-$rate.sum" 2> "$data/setup-$rate.line"
        cat "$data/setup-$rate.host"
        awk -F= '{ v[$1] = $2 } END {
            exit !(v["setups"] > 0 && v["connected"] == v["wanted"] && v["calls_failed"] + v["not_delivered"] + v["foreign"] == 0) }' \
            "$data/setup-$rate.sum" ||
            bench_unsound "setup-$rate: a setup failed or did not finish"
        calls_total=$((calls_total + $(awk -F= '$1 == "sent" { print $2 }' "$data/setup-$rate.sum")))
        calls_check_rows "$calls_total"
        bench_nginx_errors
        summary+=("setup $rate $(cat "$data/setup-$rate.line")")
    done
    ;;
esac; done

echo "== summary"
for line in "${summary[@]}"; do
    set -- $line
    case $1 in
    setup) printf '  setups at %s/s: %s/s done, p99 invite -> accepted %s ms, whole cycle %s ms; PostgreSQL %s us of CPU per setup\n' "$2" "$3" "$4" "$5" "$6" ;;
    *) printf '  %-6s %6s/s: famcall %s/s relayed (%s/s sent), p99 %s ms, %s us of server CPU per message' \
           "$1" "$2" "$3" "$6" "$4" "$5"
       if [ "$7" != - ]; then
           printf '; PeerJS %s/s (%s/s sent), p99 %s ms, %s us; famcall/PeerJS CPU %s' "$7" "${10}" "$8" "$9" \
               "$(awk -v a="$5" -v b="$9" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), (b > 0 ? a / b : 0) }')"
       fi
       echo ;;
    esac
done
bench_verdict
