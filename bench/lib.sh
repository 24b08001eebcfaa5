# Sourced by the bench scripts: a throwaway famcall stack on free loopback
# ports (PostgreSQL with synchronous_commit on, nginx with the module) plus a
# plain `return 200` server in the same nginx as the peer to compare with.
#   bench_start MODULE_SO [EXTRA_HTTP_CONF]
# sets: data, api (base URL), plain (peer URL), PG* for psql; tears all down
# at exit unless BENCH_KEEP is set. Env: BENCH_POOL (famcall_db_pool_size, 2),
# FAMCALL_WORKERS (2), BENCH_TURN (1: coturn too, bench_turn_start).

bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_stop() {
    bench_steal_stop
    bench_waits_stop
    bench_flush_stop
    [ -n "${bench_autogroup:-}" ] && echo "$bench_autogroup" > "$bench_autogroup_knob"
    # the master we started, whether or not it wrote its pid file yet: one
    # left running would hold the caller's stdout (bench/selftest.sh reads
    # it to the end)
    if [ -n "${bench_nginx_pid:-}" ]; then
        kill -QUIT "$bench_nginx_pid" 2> /dev/null || true
        for _ in $(seq 50); do
            kill -0 "$bench_nginx_pid" 2> /dev/null || break
            sleep 0.1
        done
        kill -KILL "$bench_nginx_pid" 2> /dev/null || true
        bench_nginx_pid=
    fi
    if [ -n "${bench_turn_pid:-}" ]; then
        kill "$bench_turn_pid" 2> /dev/null || true
        wait "$bench_turn_pid" 2> /dev/null || true
        bench_turn_pid=
    fi
    "$bench_top/scripts/pg.sh" stop "$data/pg" > /dev/null 2>&1 || true
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$data"
}

# Linux's scheduler autogroups put PostgreSQL (its own session) in one group
# and wrk + nginx in another, and then starves single backends for hundreds of
# milliseconds under full load: tails that measure the desktop-oriented
# scheduler, not famcall. Measure with autogroups off when we may (root), and
# put the setting back afterwards. BENCH_AUTOGROUP=keep leaves it alone.
bench_autogroup_knob=/proc/sys/kernel/sched_autogroup_enabled
bench_autogroup_off() {
    [ "${BENCH_AUTOGROUP:-off}" = keep ] && return 0
    [ -w "$bench_autogroup_knob" ] || return 0
    bench_autogroup=$(cat "$bench_autogroup_knob")
    echo 0 > "$bench_autogroup_knob"
}

# A new cluster creates, zero-fills and fsyncs a new 16 MB WAL segment every
# couple of seconds at 10,000 sends/s, and every commit waits meanwhile; a
# cluster that has been running recycles old segments instead. Make this one
# like that: keep 1 GB of segments, and put 600 MB of WAL through them first.
# BENCH_WAL_WARM=0 skips it.
bench_wal_warm() {
    [ "${BENCH_WAL_WARM:-1}" = 1 ] || return 0
    psql -X -q -c "alter system set min_wal_size = '1GB'" \
         -c "alter system set max_wal_size = '4GB'" -c 'select pg_reload_conf()' \
         -c 'create table bench_wal_warm as
                 select g, repeat($$x$$, 100) as pad from generate_series(1, 4000000) g' \
         -c 'drop table bench_wal_warm' -c checkpoint -c checkpoint > /dev/null
}

# BENCH_SHARED_BUFFERS (say 2GB): PostgreSQL's shared buffers for the run,
# and a restart to take them. Unset, the cluster keeps the 128 MB default,
# so that runs compare with the figures recorded. With 128 MB the buffer
# pool is full of dirty pages after about 20 s at 10,000 sends/s, and from
# then on the batch backends write pages out themselves, inside their
# transactions (the report's "buffers written out ... by backends").
bench_pg_size() {
    [ -n "${BENCH_SHARED_BUFFERS:-}" ] || return 0
    psql -X -q -c "alter system set shared_buffers = '$BENCH_SHARED_BUFFERS'"
    "$bench_top/scripts/pg.sh" stop "$data/pg" > /dev/null
    "$bench_top/scripts/pg.sh" start "$data/pg" "$FAMCALL_PG_PORT" > /dev/null
}

# BENCH_PG_SET="name=value ...": PostgreSQL settings for an experiment
# (alter system, then a reload), say synchronous_commit=off to see what the
# commit's flush costs a run. Runs recorded as the target's figures use none.
bench_pg_set() {
    local kv
    for kv in ${BENCH_PG_SET:-}; do
        psql -X -q -c "alter system set ${kv%%=*} = '${kv#*=}'" > /dev/null
    done
    [ -z "${BENCH_PG_SET:-}" ] || psql -X -q -c 'select pg_reload_conf()' > /dev/null
}

# bench_wait_http URL: true once URL answers 2xx, false after 10 s
bench_wait_http() {
    local _
    for _ in $(seq 100); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    return 1
}

# BENCH_TURN=1: coturn through scripts/turn.sh (as make run and the test
# harness start it) on a free loopback port with 200 relay ports of its own
# in 50000-64999 (coturn skips busy ones), its secret in turn.key, so that
# nginx serves GET /v1/turn; bench_stop ends it
bench_turn_start() {
    local min=$((50000 + 200 * (RANDOM % 75)))
    export FAMCALL_TURN_PORT=$(bench_free_port)
    (umask 077; openssl rand -hex 32 > "$data/turn.key")
    FAMCALL_TURN_RELAY_PORTS=$min-$((min + 199)) FAMCALL_BIND=127.0.0.1 \
        "$bench_top/scripts/turn.sh" > "$data/log/turnserver-stdout.log" 2>&1 &
    bench_turn_pid=$!
    for _ in $(seq 150); do
        (exec 3<> "/dev/tcp/127.0.0.1/$FAMCALL_TURN_PORT") 2> /dev/null && return 0
        kill -0 "$bench_turn_pid" 2> /dev/null ||
            { echo "coturn exited at startup:" >&2; cat "$data/log/turnserver"*.log >&2; exit 1; }
        sleep 0.1
    done
    echo "coturn did not listen on port $FAMCALL_TURN_PORT" >&2
    exit 1
}

bench_start() {
    local module=$1 extra=${2:-} plain_port

    bench_autogroup_off
    data=$(mktemp -d /tmp/famcall-bench-XXXX)
    chmod 755 "$data"       # PostgreSQL runs as its own user
    trap bench_stop EXIT

    export FAMCALL_DATA_DIR=$data
    export FAMCALL_HTTP_PORT=$(bench_free_port)
    export FAMCALL_PG_PORT=$(bench_free_port)
    plain_port=$(bench_free_port)
    mkdir -p "$data/log" "$data/nginx-tmp"

    "$bench_top/scripts/pg.sh" init "$data/pg" "$FAMCALL_PG_PORT" > /dev/null
    "$bench_top/scripts/pg.sh" start "$data/pg" "$FAMCALL_PG_PORT" > /dev/null
    export PGHOST=127.0.0.1 PGPORT=$FAMCALL_PG_PORT PGUSER=famcall PGDATABASE=famcall
    bench_pg_size
    "$bench_top/scripts/migrate.sh" > /dev/null
    bench_wal_warm
    psql -X -q -c "alter system set log_autovacuum_min_duration = 0" \
         -c "alter system set track_wal_io_timing = on" \
         -c 'select pg_reload_conf()' > /dev/null
    bench_pg_set
    openssl rand -hex 32 > "$data/jwt.key"
    [ "${BENCH_TURN:-0}" = 1 ] && bench_turn_start

    cat > "$data/extra.conf" <<CONF
$extra
server {
    listen 127.0.0.1:$plain_port;
    access_log off;
    location / { return 200 "ok\n"; }
}
CONF

    "$bench_top/scripts/render-conf.sh" "$module" \
        | sed -e 's|access_log .*;|access_log off;|' \
              -e "s|famcall_db_pool_size [0-9]*;|famcall_db_pool_size ${BENCH_POOL:-2};|" \
        > "$data/nginx.conf"
    nginx -p "$data" -c "$data/nginx.conf" -e "$data/log/nginx-error.log" &
    bench_nginx_pid=$!
    # up when it answers (daemon off: $! is the master)
    bench_wait_http "http://127.0.0.1:$plain_port/" ||
        { echo "nginx did not start:" >&2; tail -5 "$data/log/nginx-error.log" >&2; exit 1; }

    api=http://127.0.0.1:$FAMCALL_HTTP_PORT
    plain=http://127.0.0.1:$plain_port/
}

# bench_wrk NAME ARGS...: one wrk run, its summary lines, the full output kept
bench_wrk() {
    local name=$1; shift
    echo "== $name"
    bench_cpu_mark
    wrk -t"$threads" -c"$conns" -d"$dur" --latency "$@" | tee "$data/$name.txt" \
        | grep -E 'Requests/sec|Non-2xx|Socket errors| 50%| 99%'
    bench_cpu_report
}

# The machine's CPU between bench_cpu_mark and bench_cpu_report, from
# /proc/stat: busy, idle and steal (time the hypervisor gave to others while
# we were runnable). This VM's host is shared: runs with steal above a few
# percent measure the neighbours too, and their tails are longer. Steal
# comes in bursts that stall everything at once, so the report also gives
# it second by second (ms of CPU taken from both cores together), to hold
# against the latency timeline.
bench_cpu_mark() {
    # Write back every dirty page first: the kernel writes a page back 30 s
    # after it was dirtied (vm.dirty_expire_centisecs), so the setup's files
    # (pairs.txt and the like, megabytes) went to the disk in the middle of
    # a run, and the WAL's fsyncs waited behind them
    sync
    bench_cpu0=$(head -1 /proc/stat)
    bench_t0=$(date +%s.%N)
    bench_pglog0=$(stat -c %s "$data/log/postgresql.log" 2> /dev/null || echo 0)
    bench_bufs0=$(bench_bufs)
    bench_wal0=$(bench_wal)
    bench_procs > "$data/procs0.txt"
    bench_steal_stop
    bench_waits_start
    bench_flush_start
    # field 9 of the cpu line is steal, in USER_HZ (100/s) ticks; the waits
    # for a core are nginx's and PostgreSQL's, summed over their processes
    : > "$data/runwait.txt"
    (
        declare -A w0
        bench_run_waits w0
        read -r _ _ _ _ _ _ _ _ prev _ < /proc/stat
        while sleep 1; do
            read -r _ _ _ _ _ _ _ _ now _ < /proc/stat
            printf '%d ' $(( (now - prev) * 10 ))
            bench_run_waits w0
            printf '%d ' "$bench_run_waited" >> "$data/runwait.txt"
            prev=$now
        done > "$data/steal.txt"
    ) &
    bench_steal_pid=$!
    disown "$bench_steal_pid"
}

# bench_run_waits ARRAY: how long nginx's and PostgreSQL's processes waited
# runnable for a core since the last call with ARRAY (pid -> microseconds
# waited so far, from /proc/PID/schedstat), in ms, into bench_run_waited (not
# printed: ARRAY must be updated in the caller's shell); processes new since
# then count from their first sight
bench_run_waits() {
    local -n seen=$1
    local f pid comm w total=0
    declare -A now
    for f in /proc/[0-9]*/schedstat; do
        pid=${f#/proc/}; pid=${pid%/schedstat}
        read -r comm 2> /dev/null < "/proc/$pid/comm" || continue
        case $comm in nginx|postgres) ;; *) continue ;; esac
        read -r _ w _ 2> /dev/null < "$f" || continue
        now[$pid]=$(( w / 1000 ))
        [ -n "${seen[$pid]:-}" ] && total=$(( total + now[$pid] - seen[$pid] ))
    done
    seen=()
    for pid in "${!now[@]}"; do seen[$pid]=${now[$pid]}; done
    bench_run_waited=$(( total / 1000 ))
}
bench_steal_stop() {
    [ -n "${bench_steal_pid:-}" ] || return 0
    kill "$bench_steal_pid" 2> /dev/null || true
    bench_steal_pid=
}
bench_cpu_report() {
    bench_steal_stop
    bench_waits_stop
    bench_flush_stop
    printf '%s\n%s\n' "$bench_cpu0" "$(head -1 /proc/stat)" | awk '
        { for (i = 2; i <= 9; i++) v[NR, i] = $i }
        END {
            for (i = 2; i <= 9; i++) { d[i] = v[2, i] - v[1, i]; t += d[i] }
            if (t <= 0) exit
            printf "  cpu: busy %.0f%%, idle %.0f%%, steal %.0f%% of both cores\n",
                100 * (d[2] + d[3] + d[4] + d[7] + d[8]) / t,
                100 * (d[5] + d[6]) / t, 100 * d[9] / t
        }'
    if [ -s "$data/steal.txt" ]; then
        echo "  steal by second, ms of CPU:"
        { cat "$data/steal.txt"; echo; } | fold -s -w 72 | sed 's/^/    /'
    fi
    if [ -s "$data/runwait.txt" ]; then
        echo "  waits for a core by second, nginx's and PostgreSQL's processes together, ms:"
        { cat "$data/runwait.txt"; echo; } | fold -s -w 72 | sed 's/^/    /'
        rm -f "$data/runwait.txt"
    fi
    bench_procs_report
    bench_autovacuum_report
    bench_waits_report
    bench_flush_report
    printf '%s %s\n' "$bench_wal0" "$(bench_wal)" | awk '$1 != "" && NF == 10 {
        printf "  WAL: %d records, %d full-page images, %.0f MB, %d flushes",
            $6 - $1, $7 - $2, ($8 - $3) / 1048576, $9 - $4
        if ($10 > $5 && $9 > $4)
            printf " of %.2f ms on average", ($10 - $5) / ($9 - $4)
        printf "\n" }'
    printf '%s %s\n' "$bench_bufs0" "$(bench_bufs)" | awk '$1 != "" && NF == 6 {
        printf "  buffers written out: %d by backends (in their queries), %d by the background writer, %d by checkpoints\n",
            $4 - $1, $5 - $2, $6 - $3 }'
}

# pg_stat_wal's records, full-page images, bytes, syncs and their time (the
# syncs are mostly the commits' flushes; a run starts right after a
# checkpoint, so the first change to each page in it logs the whole page)
bench_wal() {
    psql -X -At -F ' ' -c 'select wal_records, wal_fpi, wal_bytes, wal_sync,
                                  wal_sync_time from pg_stat_wal' 2> /dev/null || true
}

# Every process's CPU so far, "pid ticks what wait runs" (utime + stime from
# /proc/PID/stat, in USER_HZ ticks; from /proc/PID/schedstat, the time its
# main thread waited runnable for a core, in microseconds, and the times it
# was given one). what: nginx, wsload, wrk, or for
# PostgreSQL "pool" (the workers' query connections: the send batches and
# the rest), "listen" (their LISTEN connections), "psql" (the bench's own
# sampling) or "server" (background processes).
bench_procs() {
    local pid stat cmd what f w
    declare -A q
    while read -r pid what; do
        q[$pid]=$what
    done < <(psql -X -At -F ' ' -c "select pid, case
                 when query like 'LISTEN%' then 'listen'
                 when application_name = 'psql' then 'psql'
                 else 'pool' end
            from pg_stat_activity where backend_type = 'client backend'" 2> /dev/null)
    for stat in /proc/[0-9]*/stat; do
        pid=${stat#/proc/}; pid=${pid%/stat}
        read -r -a f 2> /dev/null < "$stat" || continue
        # fields 14, 15 (utime, stime); comm (field 2) has no spaces here
        [ "${#f[@]}" -gt 15 ] || continue
        case ${f[1]} in
            "(nginx)") cmd=nginx ;;
            "(postgres)") cmd=postgres:${q[$pid]:-server} ;;
            "(wsload)") cmd=wsload ;;
            "(wrk)") cmd=wrk ;;
            *) continue ;;
        esac
        read -r -a w 2> /dev/null < "/proc/$pid/schedstat" || w=(0 0 0)
        echo "$pid $(( f[13] + f[14] )) $cmd $(( w[1] / 1000 )) ${w[2]}"
    done
}
# CPU each kind of process used since bench_cpu_mark, in seconds, and how
# long it waited for a core, in all and per turn on a core: at 85% busy, a
# message's path wakes 6 or 7 processes, and each may wait (processes that
# ended meanwhile, autovacuum workers say, are not in it)
bench_procs_report() {
    bench_procs > "$data/procs1.txt"
    echo "  CPU seconds by process:" $(awk '
        NR == FNR { t0[$1] = $2; next }
        { use[$3] += $2 - t0[$1] }
        END { for (w in use) if (use[w] > 0) printf "%s %.1f,\n", w, use[w] / 100 }
    ' "$data/procs0.txt" "$data/procs1.txt" | sort) | sed 's/,$//'
    echo "  waiting for a core, seconds (ms per turn on one):" $(awk '
        NR == FNR { w0[$1] = $4; r0[$1] = $5; next }
        ($1 in w0) && $5 > r0[$1] { wait[$3] += $4 - w0[$1]; runs[$3] += $5 - r0[$1] }
        END { for (w in wait) if (runs[w] > 1000)
                  printf "%s %.1f (%.2f),\n", w, wait[w] / 1e6, wait[w] / runs[w] / 1e3 }
    ' "$data/procs0.txt" "$data/procs1.txt" | sort) | sed 's/,$//'
    rm -f "$data/procs0.txt" "$data/procs1.txt"
}

# pg_stat_bgwriter's buffers_backend, buffers_clean, buffers_checkpoint
bench_bufs() {
    psql -X -At -F ' ' -c 'select buffers_backend, buffers_clean, buffers_checkpoint
                             from pg_stat_bgwriter' 2> /dev/null || true
}

# bench_sample NAME SECONDS SQL: a psql runs SQL every SECONDS into
# $data/NAME.txt (space-separated rows) until bench_sample_stop NAME.
bench_sample() {
    local pid
    printf '%s;\n\\watch %s\n' "$3" "$2" \
        | psql -X -At -F ' ' > "$data/$1.txt" 2> /dev/null &
    pid=$!
    disown "$pid"
    printf -v "bench_sample_$1" '%s' "$pid"
}
bench_sample_stop() {
    local var="bench_sample_$1"
    [ -n "${!var:-}" ] || return 0
    kill "${!var}" 2> /dev/null || true
    printf -v "$var" '%s' ''
}

# The WAL flushes as they went: every commit that stores a message waits for
# its flush, and a notifying commit holds the NOTIFY lock meanwhile, so one
# slow flush (the host's disk) stalls every send. A psql samples pg_stat_wal
# every 100 ms (bench_start turns track_wal_io_timing on). A backend adds
# its counts to pg_stat_wal at most once a second (PostgreSQL 15), so a
# sample's increase is mostly one backend's flushes since its last report:
# the report gives, per second, the slowest such mean flush time in ms,
# which places a slow flush to within about a second.
bench_flush_start() {
    bench_sample flush 0.1 "select extract(epoch from clock_timestamp()),
        wal_sync, wal_sync_time from pg_stat_wal"
}
bench_flush_stop() { bench_sample_stop flush; }
bench_flush_report() {
    [ -s "$data/flush.txt" ] || return 0
    echo "  WAL flush by second, ms: the slowest mean a backend reported in it:"
    awk -v t0="$bench_t0" '
        NF == 3 && $1 ~ /^[0-9.]+$/ {
            if (seen && $2 > n0) {
                s = int($1 - t0)
                if (s >= 0) {
                    m = ($3 - t0ms) / ($2 - n0)
                    if (m > worst[s]) worst[s] = m
                    if (s > last) last = s
                }
            }
            seen = 1; n0 = $2; t0ms = $3
        }
        END {
            for (i = 0; i <= last; i++) printf "%.1f ", worst[i]
            print ""
        }' "$data/flush.txt" | fold -s -w 72 | sed 's/^/    /'
    rm -f "$data/flush.txt"
}

# BENCH_WAITS=1: what the send batches wait on, second by second. A psql
# samples pg_stat_activity every 10 ms (about 1% of a core); the report gives,
# per second, the share of samples of an active batch backend in the WAL
# fsync (IO:WALSync) and on a lock (the NOTIFY lock is Lock:object, a
# conversation row another batch holds is Lock:transactionid), the rest
# being on a CPU or waiting for one.
bench_waits_start() {
    [ "${BENCH_WAITS:-0}" = 1 ] || return 0
    bench_sample waits 0.01 "select extract(epoch from clock_timestamp()),
            coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-')
       from pg_stat_activity
      where query like '%famcall_message_send_batch%' and state = 'active'
        and pid <> pg_backend_pid()"
}
bench_waits_stop() { bench_sample_stop waits; }
bench_waits_report() {
    [ -s "$data/waits.txt" ] || return 0
    echo "  batch backends by second, % of samples in WAL fsync/on a lock:"
    awk -v t0="$bench_t0" '
        $1 ~ /^[0-9.]+$/ {
            s = int($1 - t0); if (s < 0) next
            n[s]++; if (s > last) last = s
            if ($2 == "IO:WALSync") w[s]++
            else if ($2 ~ /^Lock:/) l[s]++
        }
        END {
            for (i = 0; i <= last; i++)
                printf "%d/%d ", n[i] ? 100 * w[i] / n[i] : 0, n[i] ? 100 * l[i] / n[i] : 0
            print ""
        }' "$data/waits.txt" | fold -s -w 72 | sed 's/^/    /'
    rm -f "$data/waits.txt"
}

# What autovacuum did since bench_cpu_mark (bench_start has PostgreSQL log
# every run of it), in seconds from the mark: a pass over a table that grows
# by thousands of rows a second takes a good part of a core for a while.
bench_autovacuum_report() {
    tail -c +$((bench_pglog0 + 1)) "$data/log/postgresql.log" 2> /dev/null \
        | awk -v t0="$bench_t0" '
            /automatic (vacuum|analyze) of table/ {
                split($2, hms, ":")
                cmd = "date -u -d \"" $1 "\" +%s"; cmd | getline day; close(cmd)
                t = day + hms[1] * 3600 + hms[2] * 60 + hms[3]
                what = $0; sub(/.*automatic /, "", what); gsub(/"/, "", what)
                line = line sprintf("%s%s at %.1f s", n++ ? "; " : "", what, t - t0)
            }
            /system usage: CPU/ && n && !done[n]++ {
                sub(/.*elapsed: /, ""); line = line " (" $0 ")"
            }
            END { if (n) print "  autovacuum during the run: " line }' \
        | fold -s -w 76 | sed '2,$s/^/    /'
}

# After a bench's own setup and before it measures: analyze what the setup
# loaded and checkpoint, so that the run does not measure autovacuum's first
# pass over freshly loaded tables (it lands in the run's first seconds
# otherwise) nor a checkpoint the setup caused.
bench_settle() {
    psql -X -q -c 'vacuum analyze' -c checkpoint
}

# Whether a run did what its report says, apart from its figures: a
# message lost, refused or delivered twice, a gap in a conversation's seqs,
# an error in nginx's log make its figures void. bench_unsound WHY says so
# in the report and the run goes on; bench_verdict, last, exits 1 if
# anything was said. `make bench-selftest` judges the bench scripts by
# these exit statuses alone, never by the wording of their reports.
bench_unsound_n=0
bench_unsound() {
    echo "NOT SOUND: $*"
    bench_unsound_n=$((bench_unsound_n + 1))
}
bench_verdict() {
    [ "$bench_unsound_n" = 0 ] && return 0
    echo "$bench_unsound_n problem(s) above: this run's figures do not count" >&2
    exit 1
}

# Every conversation's seqs must be exactly 1..last_seq after a run: no gap,
# no duplicate, and some messages stored. One line; PREFIX (optional) goes
# before it.
bench_seq_check() {
    local n exact
    read -r n exact < <(psql -X -At -F ' ' -c "select count(*),
        coalesce(sum(case when m.n = c.last_seq and m.mx = c.last_seq then 1 else 0 end), 0)
        from conversations c
        join (select conversation_id, count(*) n, max(seq) mx from messages
              group by conversation_id) m on m.conversation_id = c.id")
    echo "${1:-}seq check: $n conversations, $exact with seq exactly 1..last_seq"
    [ "$n" -gt 0 ] || bench_unsound "no messages stored"
    [ "$exact" = "$n" ] || bench_unsound "$((n - exact)) conversations with a gap or a duplicate seq"
}

bench_machine() {
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
         "sched_autogroup_enabled=$(cat "$bench_autogroup_knob" 2> /dev/null || echo '?')"
    bench_pg_set_report
}

# the BENCH_PG_SET settings as the server has them now (read back, so the
# line shows what took, not what was asked)
bench_pg_set_report() {
    local kv got=()
    [ -n "${BENCH_PG_SET:-}" ] || return 0
    for kv in $BENCH_PG_SET; do
        got+=("${kv%%=*}=$(psql -X -At -c "select current_setting('${kv%%=*}')")")
    done
    echo "PostgreSQL set for this experiment: ${got[*]}"
}

# What nginx logged at error level or above since bench_log_mark: in node 1's
# log from the mark on, and in any other log given
bench_log_mark() { log_mark=$(stat -c %s "$data/log/nginx-error.log" 2> /dev/null || echo 0); }
bench_nginx_errors() {
    local n
    { tail -c +$((log_mark + 1)) "$data/log/nginx-error.log"; cat "$@" /dev/null; } 2> /dev/null \
        | grep -E '\[(alert|crit|emerg|error)\]' > "$data/errors.txt" || true
    n=$(wc -l < "$data/errors.txt")
    echo "nginx error log: $n lines at error level or above"
    [ "$n" = 0 ] && return 0
    tail -3 "$data/errors.txt" | sed 's/^/    /'
    bench_unsound "nginx logged $n lines at error level or above"
}

# Node 1 with N fresh workers of worker_connections C: a reload, then wait
# until only the new workers are left and each has registered its gateway
# instance (it does once its database connections are up, sql/008); a run
# must not go on measuring other workers than it says
bench_workers() {
    local n=$1 wc=$2 old now pids
    master=$(cat "$data/nginx.pid")
    old=$(pgrep -P "$master" | sort)
    sed -i -e "s|^worker_processes .*;|worker_processes $n;|" \
           -e "s|worker_connections [0-9]*;|worker_connections $wc;|" "$data/nginx.conf"
    nginx -p "$data" -c "$data/nginx.conf" -e "$data/log/nginx-error.log" -s reload
    for _ in $(seq 300); do
        now=$(pgrep -P "$master" | sort)
        [ "$(echo "$now" | wc -l)" = "$n" ] && [ -z "$(comm -12 <(echo "$old") <(echo "$now"))" ] && break
        now=
        sleep 0.1
    done
    [ -n "$now" ] || { echo "nginx reload: not $n fresh workers after 30 s" >&2; exit 1; }
    pids=$(echo "$now" | paste -sd,)
    for _ in $(seq 300); do
        [ "$(psql -X -At -c "select count(*) from gateway_instances where pid in ($pids)")" = "$n" ] && return 0
        sleep 0.1
    done
    echo "nginx reload: the $n new workers did not register within 30 s" >&2
    exit 1
}

# bench_node2_start MODULE_SO N CONF: a second nginx node on this stack's
# database and key (scripts/node.sh) with N workers and CONF as its extra
# http-level directives, on a free port; sets port2 and node2_pid (node.sh's:
# bench_node2_stop stops the node), and returns once it answers and each of
# its workers has registered its gateway instance (as bench_workers)
bench_node2_start() {
    local module=$1 n=$2 conf=$3 pids=
    port2=$(bench_free_port)
    mkdir -p "$data/node-$port2"
    printf '%s\n' "$conf" > "$data/node-$port2/extra.conf"
    FAMCALL_WORKERS=$n FAMCALL_DATA_DIR=$data FAMCALL_HTTP_PORT=$port2 \
        "$bench_top/scripts/node.sh" "$module" > "$data/node2.out" 2>&1 &
    node2_pid=$!
    bench_wait_http "http://127.0.0.1:$port2/healthz" ||
        { echo "node 2 did not start:" >&2; cat "$data/node2.out" >&2; exit 1; }
    for _ in $(seq 300); do
        pids=$(pgrep -P "$(cat "$data/node-$port2/nginx.pid")" | paste -sd,)
        [ -n "$pids" ] &&
            [ "$(psql -X -At -c "select count(*) from gateway_instances where pid in ($pids)")" = "$n" ] &&
            return 0
        sleep 0.1
    done
    echo "node 2: its $n workers did not register within 30 s" >&2
    exit 1
}
bench_node2_stop() {
    [ -n "${node2_pid:-}" ] || return 0
    kill "$node2_pid" 2> /dev/null || true
    wait "$node2_pid" 2> /dev/null || true
    node2_pid=
}
