# Sourced by bench/sql/*-cost.sh: throwaway clusters, and what a statement
# costs PostgreSQL in instructions (callgrind), a count that repeats run
# after run, unlike time on a shared 2-core VM.
#
#   cost_cluster [LINE ...]
#                     a throwaway cluster in $dir/pg, running, with the
#                     migrations and the libpq environment set; each LINE
#                     goes into its postgresql.conf first ("shared_buffers =
#                     2GB"); stopped and removed at exit
#   cost_setup        a throwaway cluster (left stopped in $dir/pg) with the
#                     migrations, COST_SQL if set (a file run after them: a
#                     variant of a function under another name, to hold
#                     against the original), 1,000 pairs of contacts
#                     (bench/ws/setup.sql, table cost_pairs (i, a, conv):
#                     pair i's user a and their conversation) and 200,000
#                     messages sent through famcall_message_send_batch, so
#                     the indexes are as deep as a used database's
#   cost_setup FILE   the same, then FILE's SQL (the script's own base
#                     function, say) before the checkpoint
#   cost_count FILE   callgrind's instruction count of PostgreSQL in
#                     single-user mode running FILE's statements (one per
#                     line) on a fresh copy of that cluster
#
#   cost_per_run WRITE BASE FN N K1 K2
#                     one run of FN at size N, in instructions: WRITE F N K
#                     prints K runs of function F at size N as statements;
#                     K1 and K2 runs of FN and of BASE (the same statement
#                     calling a function that does nothing) are counted, and
#                     ((f2 - f1) - (b2 - b1)) / (K2 - K1) cancels start-up
#                     and first plans out
# COST_KEEP=1 keeps the directory.

cost_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cost_pgbin=/usr/lib/postgresql/15/bin

cost_cluster() {
    local port
    dir=$(mktemp -d /tmp/famcall-cost-XXXX)
    chmod 755 "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    trap cost_cleanup EXIT

    export PGHOST=127.0.0.1 PGPORT=$port PGUSER=famcall PGDATABASE=famcall
    "$cost_top/scripts/pg.sh" init "$dir/pg" "$port" > /dev/null
    [ $# = 0 ] || printf '%s\n' "$@" >> "$dir/pg/postgresql.conf"
    "$cost_top/scripts/pg.sh" start "$dir/pg" "$port" > /dev/null
    "$cost_top/scripts/migrate.sh" > /dev/null
}

cost_setup() {
    local j
    command -v valgrind > /dev/null || { echo "$0: needs valgrind" >&2; exit 1; }
    cost_cluster
    [ -z "${COST_SQL:-}" ] || psql -X -q -v ON_ERROR_STOP=1 -f "$COST_SQL"
    psql -X -q -At -v ON_ERROR_STOP=1 -v pairs=1000 -v tag=cost \
         -f "$cost_top/bench/ws/setup.sql" > /dev/null
    psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
create table cost_pairs as
    select row_number() over (order by c.id) as i, c.user_lo as a, c.id as conv
      from conversations c;
create index on cost_pairs (i);
SQL
    for ((j = 0; j < 2000; j++)); do
        echo "select count(*) from famcall_message_send_batch($(cost_items $(( (j * 37) % 900 + 1 )) 100 cast));"
    done | PGOPTIONS='-c synchronous_commit=off' psql -X -q -At -v ON_ERROR_STOP=1 > /dev/null
    [ -z "${1:-}" ] || psql -X -q -v ON_ERROR_STOP=1 -f "$1"
    psql -X -q -c 'vacuum analyze' -c checkpoint
    "$cost_top/scripts/pg.sh" stop "$dir/pg" > /dev/null
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    return 0
}

cost_cleanup() {
    "$cost_top/scripts/pg.sh" stop "$dir/pg" > /dev/null 2>&1 || true
    [ -n "${COST_KEEP:-}" ] || rm -rf "$dir"
}

# the items of a batch of n sends from pairs s.. (s + n - 1), a sending to
# their conversation, as famcall_message_send_batch's five arguments: array
# literals (text), as the worker sends them; with a third argument "cast",
# cast to the parameters' types (uuid[] and text[]), which parses them, as
# binding the worker's parameters does
cost_items() {
    local from="from cost_pairs where i between $1 and $1 + $2 - 1" u= t=
    [ "${3:-}" = cast ] && u='::uuid[]' t='::text[]'
    echo "(select array_agg(a order by i)::text $from)$u,
        (select array_agg(conv order by i)::text $from)$u,
        (select array_agg(gen_random_uuid())::text $from)$u,
        (select array_agg('hello from the benchmark' || i)::text $from)$t,
        (select array_agg('1:2:' || i)::text $from)$t" | tr '\n' ' '
}

cost_count() {
    local run=()
    rm -rf "$dir/run"
    cp -a "$dir/pg" "$dir/run"
    cp "$1" "$dir/in.sql"
    chmod 644 "$dir/in.sql"
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    (cd / && "${run[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$cost_pgbin/postgres" --single -D "$dir/run" famcall < "$dir/in.sql" \
        > "$dir/out.txt" 2> "$dir/err.txt")
    grep -q 'ERROR' "$dir/out.txt" "$dir/err.txt" && { cat "$dir/out.txt" >&2; exit 1; }
    grep -o 'Collected : [0-9]*' "$dir/err.txt" | awk '{ print $3 }'
}

cost_per_run() {
    local write=$1 base=$2 fn=$3 n=$4 k1=$5 k2=$6 f k c=()
    for f in "$base" "$fn"; do
        for k in "$k1" "$k2"; do
            "$write" "$f" "$n" "$k" > "$dir/stmts.sql"
            c+=("$(cost_count "$dir/stmts.sql")")
        done
    done
    echo $(( ((c[3] - c[2]) - (c[1] - c[0])) / (k2 - k1) ))
}
