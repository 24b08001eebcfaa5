#!/usr/bin/env bash
# What listing a page of messages costs PostgreSQL, in instructions
# (callgrind; the cluster and the method: bench/sql/cost-lib.sh).
#
#   bench/sql/list-cost.sh [PAGE_SIZE ...]      (default: 50)
#
# K1 and K2 calls of LIST_FN(me, conversation, null, null, size): the newest
# page of a conversation with at least 100 messages, as its sender (the
# steady state of GET /v1/conversations/{id}/messages: nothing left to mark
# delivered), body rendered as text as the worker receives it. The base is
# the same statement calling a function that does nothing.
# Env: LIST_FN (famcall_messages_list), LIST_K1 (10), LIST_K2 (30), COST_SQL
#      (a variant under another name, for LIST_FN), COST_KEEP=1.
set -euo pipefail

. "$(dirname "$0")/cost-lib.sh"

fn=${LIST_FN:-famcall_messages_list}
k1=${LIST_K1:-10}
k2=${LIST_K2:-30}
sizes=${*:-50}

base=$(mktemp)
cat > "$base" <<'SQL'
create function cost_list_base(me uuid, conversation uuid, before_seq bigint,
                               after_seq bigint, lim int)
    returns table (status int, body text)
    language sql as $$ select 200, '{}'::text $$;
create table cost_list as
    select row_number() over (order by p.i) as j, p.a, p.conv
      from cost_pairs p
     where (select count(*) from messages m where m.conversation_id = p.conv) >= 100;
-- once each, as a later page view finds it
select count(*) from cost_list l, famcall_messages_list(l.a, l.conv, null, null, 50);
SQL
cost_setup "$base"
rm -f "$base"

# k pages of n through function f, as statements
pages() {
    local f=$1 n=$2 k=$3 j
    for ((j = 1; j <= k; j++)); do
        echo "select octet_length(x.body::text) from cost_list l, $f(l.a, l.conv, null, null, $n) x where l.j = $(( (j * 7) % 50 + 1 ));"
    done
}

echo "instructions per page listed through $fn (callgrind; K = $k1 and $k2 pages)"
for n in $sizes; do
    c=$(cost_per_run pages cost_list_base "$fn" "$n" "$k1" "$k2")
    printf "  pages of %3d: %11d per page, %8d per message\n" "$n" "$c" $((c / n))
done
