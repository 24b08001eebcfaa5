#!/usr/bin/env bash
# What a batch of sends costs PostgreSQL, in instructions (callgrind; the
# cluster and the method: bench/sql/cost-lib.sh).
#
#   bench/sql/batch-cost.sh [N_ITEMS ...]      (default: 1 20 100)
#
# For each size N, K1 and K2 batches of N sends through BATCH_FN
# (synchronous_commit off: the fsync is not CPU). The batches' items are
# built in SQL by the same statement, as the array literals the worker
# sends; the base is that statement calling a function that does nothing
# with them, so a batch's cost includes parsing its literals, as binding the
# worker's parameters does.
# Env: BATCH_FN (famcall_message_send_batch), BATCH_K1 (10), BATCH_K2 (30),
#      COST_SQL (a variant of the function under another name, to hold
#      against the original with BATCH_FN), COST_KEEP=1 keeps the directory.
set -euo pipefail

. "$(dirname "$0")/cost-lib.sh"

fn=${BATCH_FN:-famcall_message_send_batch}
k1=${BATCH_K1:-10}
k2=${BATCH_K2:-30}
sizes=${*:-1 20 100}

base=$(mktemp)
cat > "$base" <<'SQL'
create function cost_base(me text, conv text, cid text, body text, src text)
    returns table (i int) language sql as $$ select 1 $$;
SQL
cost_setup "$base"
rm -f "$base"

# k batches of n through function f, as a file of statements (the base
# takes the array literals as text: parsing them is part of a batch's cost)
batches() {
    local f=$1 n=$2 k=$3 j cast=cast
    [ "$f" = cost_base ] && cast=
    echo "set synchronous_commit = off;"
    for ((j = 1; j <= k; j++)); do
        echo "select count(*) from $f($(cost_items $(( (j * 37) % 900 + 1 )) "$n" $cast));"
    done
}

echo "instructions per batch of sends through $fn (callgrind; K = $k1 and $k2 batches)"
for n in $sizes; do
    c=$(cost_per_run batches cost_base "$fn" "$n" "$k1" "$k2")
    printf "  %4d items: %11d per batch, %8d per item\n" "$n" "$c" $((c / n))
done
