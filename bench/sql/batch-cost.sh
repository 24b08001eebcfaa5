#!/usr/bin/env bash
# What a batch of sends costs PostgreSQL, in instructions (callgrind): a
# count that repeats run after run, unlike time on a shared 2-core VM.
#
#   bench/sql/batch-cost.sh [N_ITEMS ...]      (default: 1 20 100)
#
# A throwaway cluster with the migrations, 1,000 pairs of contacts
# (bench/ws/setup.sql) and 200,000 messages already sent; then, for each
# size N, PostgreSQL in single-user mode under callgrind runs K1 and K2
# batches of N sends (famcall_message_send_batch, synchronous_commit off: the
# fsync is not CPU) on fresh copies of that cluster. (count(K2) - count(K1)) /
# (K2 - K1) is one batch, start-up and the first plans cancelled out. The
# batches' items are built in SQL by the same statement; BASE, the same
# statement calling a function that does nothing, is subtracted.
# Env: BATCH_FN (famcall_message_send_batch), BATCH_K1 (10), BATCH_K2 (30),
#      BATCH_SQL (a file run after the migrations: a variant of the
#      function under another name, to hold against the original with
#      BATCH_FN), BATCH_KEEP=1 keeps the directory.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
fn=${BATCH_FN:-famcall_message_send_batch}
k1=${BATCH_K1:-10}
k2=${BATCH_K2:-30}
sizes=${*:-1 20 100}
pgbin=/usr/lib/postgresql/15/bin

command -v valgrind > /dev/null || { echo "$0: needs valgrind" >&2; exit 1; }

dir=$(mktemp -d /tmp/famcall-cost-XXXX)
chmod 755 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    "$top/scripts/pg.sh" stop "$dir/pg" > /dev/null 2>&1 || true
    [ -n "${BATCH_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=famcall PGDATABASE=famcall
"$top/scripts/pg.sh" init "$dir/pg" "$port" > /dev/null
"$top/scripts/pg.sh" start "$dir/pg" "$port" > /dev/null
"$top/scripts/migrate.sh" > /dev/null
[ -z "${BATCH_SQL:-}" ] || psql -X -q -v ON_ERROR_STOP=1 -f "$BATCH_SQL"
psql -X -q -At -v ON_ERROR_STOP=1 -v pairs=1000 -v tag=cost \
     -f "$top/bench/ws/setup.sql" > /dev/null
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
create table cost_pairs as
    select row_number() over (order by c.id) as i, c.user_lo as a, c.id as conv
      from conversations c;
create index on cost_pairs (i);
create function cost_base(items jsonb) returns table (i int)
    language sql as $$ select 1 $$;
SQL

# item j of a batch of n starting at pair s: a sends to its conversation
items() {
    echo "(select jsonb_agg(jsonb_build_object('me', a, 'conversation', conv,
        'client_id', gen_random_uuid(), 'body', 'hello from the benchmark'))
        from cost_pairs where i between $1 and $1 + $2 - 1)"
}

# 200,000 messages first: the indexes as deep as a used database's
for ((j = 0; j < 2000; j++)); do
    echo "select count(*) from $fn($(items $(( (j * 37) % 900 + 1 )) 100));"
done | PGOPTIONS='-c synchronous_commit=off' psql -X -q -At -v ON_ERROR_STOP=1 > /dev/null
psql -X -q -c 'vacuum analyze' -c checkpoint
"$top/scripts/pg.sh" stop "$dir/pg" > /dev/null
[ "$(id -u)" = 0 ] && chown -R postgres: "$dir"

# callgrind's instruction count of k batches of n through function f
count() {
    local f=$1 n=$2 k=$3 j
    rm -rf "$dir/run"
    cp -a "$dir/pg" "$dir/run"
    {
        echo "set synchronous_commit = off;"
        for ((j = 1; j <= k; j++)); do
            echo "select count(*) from $f($(items $(( (j * 37) % 900 + 1 )) "$n"));" | tr '\n' ' '
            echo
        done
    } > "$dir/in.sql"
    chmod 644 "$dir/in.sql"
    local run=()
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    (cd / && "${run[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$pgbin/postgres" --single -D "$dir/run" famcall < "$dir/in.sql" \
        > "$dir/out.txt" 2> "$dir/err.txt")
    grep -q 'ERROR' "$dir/out.txt" "$dir/err.txt" && { cat "$dir/out.txt" >&2; exit 1; }
    grep -o 'Collected : [0-9]*' "$dir/err.txt" | awk '{ print $3 }'
}

echo "instructions per batch of sends through $fn (callgrind; K = $k1 and $k2 batches)"
for n in $sizes; do
    b1=$(count cost_base "$n" "$k1"); b2=$(count cost_base "$n" "$k2")
    f1=$(count "$fn" "$n" "$k1"); f2=$(count "$fn" "$n" "$k2")
    awk -v n="$n" -v b="$(( (b2 - b1) / (k2 - k1) ))" -v f="$(( (f2 - f1) / (k2 - k1) ))" '
        BEGIN { printf "  %4d items: %11d per batch, %8d per item\n", n, f - b, (f - b) / n }'
done
