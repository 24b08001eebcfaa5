#!/usr/bin/env bash
# What autovacuum's analyze of a table every send writes costs, and whether
# the plans that read it change, at each statistics target of the columns
# that keep statistics (sql/016, sql/017). A throwaway cluster:
#
#   bench/sql/analyze-cost.sh conversations [TARGET ...]   (100 10 0)
#       USERS users (100,000) in about 2 x PER conversations each (10: 1M
#       conversations, 96 MB); user_lo and user_hi.
#   bench/sql/analyze-cost.sh messages [TARGET ...]        (100 30 10)
#       PAIRS conversations (50,000, bench/ws/setup.sql) with MESSAGES
#       messages (3M, bench/ws/history.sql: 451 MB, 60 a conversation);
#       conversation_id, sender_id and seq. shared_buffers 2 GB.
#
# For each target: the analyze five times (wall time: one backend's CPU,
# the fastest runs are its cost), the distinct values estimated, and the
# generic plans (as a cached statement, a function or a cascade runs
# them) of the queries on the table; a target whose plans differ from the
# first target's shows the difference. COST_KEEP=1 keeps the cluster's
# directory (bench/sql/cost-lib.sh).
set -euo pipefail

table=${1:-}
case $table in
conversations) defaults=(100 10 0); columns=(user_lo user_hi) ;;
messages)      defaults=(100 30 10); columns=(conversation_id sender_id seq) ;;
*) echo "usage: $0 conversations|messages [TARGET ...]" >&2; exit 2 ;;
esac
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${defaults[@]}")
for t in "${targets[@]}"; do
    [[ $t =~ ^[0-9]+$ ]] || { echo "$0: a target is a number, not '$t'" >&2; exit 2; }
done
for v in USERS PER PAIRS MESSAGES; do
    [[ ${!v:-1} =~ ^[1-9][0-9]*$ ]] || { echo "$0: $v is a count, not '${!v}'" >&2; exit 2; }
done

. "$(dirname "$0")/cost-lib.sh"
cost_cluster "shared_buffers = 2GB"

z=00000000-0000-0000-0000-000000000000

load_conversations() {
    # user i talks with users i + k * 7919 (mod USERS), k = 1..PER: every
    # user is in about 2 x PER conversations, as user_lo in some and
    # user_hi in others
    psql -X -q -v ON_ERROR_STOP=1 -v users="${USERS:-100000}" -v per="${PER:-10}" <<'SQL'
create temp table u as
select i, gen_random_uuid() as id from generate_series(1, :users) i;
insert into users (id, phone, display_name, username)
select id, '+1555' || lpad(i::text, 8, '0'), 'user' || i, 'user' || i from u;
insert into conversations (user_lo, user_hi)
select least(a.id, b.id), greatest(a.id, b.id)
  from generate_series(1, :per) k
  join u a on true
  join u b on b.i = (a.i + k * 7919) % :users + 1
    on conflict do nothing;
SQL
}

plans_conversations() {
    cat <<SQL
prepare by_lo(uuid) as delete from conversations c where c.user_lo = \$1;
prepare by_hi(uuid) as delete from conversations c where c.user_hi = \$1;
prepare by_pair(uuid, uuid) as
    select c.id from conversations c where c.user_lo = \$1 and c.user_hi = \$2;
prepare by_id(uuid, uuid) as
    select c.id from conversations c
     where c.id = \$1 and (c.user_lo = \$2 or c.user_hi = \$2);
\echo '  by user_lo:'
explain execute by_lo('$z');
\echo '  by user_hi:'
explain execute by_hi('$z');
\echo '  by pair:'
explain execute by_pair('$z', '$z');
\echo '  by id and user:'
explain execute by_id('$z', '$z');
SQL
}

load_messages() {
    psql -X -q -At -v ON_ERROR_STOP=1 -v pairs="${PAIRS:-50000}" \
         -f "$cost_top/bench/ws/setup.sql" > /dev/null
    psql -X -q -v ON_ERROR_STOP=1 -v n="${MESSAGES:-3000000}" \
         -f "$cost_top/bench/ws/history.sql"
}

# the statements of sql/003-013 that read messages by a key, as their
# functions run them
plans_messages() {
    cat <<SQL
prepare page(uuid, bigint, int) as
    select m from messages m
     where m.conversation_id = \$1 and m.seq < \$2 order by m.seq desc limit \$3;
prepare receipts(uuid, bigint, bigint, uuid) as
    update messages m set delivered_at = now()
     where m.conversation_id = \$1 and m.seq between \$2 and \$3
       and m.sender_id <> \$4 and m.delivered_at is null;
prepare sync(uuid, pg_snapshot, pg_snapshot, int) as
    select m.* from conversation_members cm
     cross join lateral (
           select case when \$2 is null then 0 else coalesce((
                      select v.seq from messages v
                       where v.conversation_id = cm.conversation_id
                         and pg_visible_in_snapshot(v.txid, \$2)
                       order by v.seq desc limit 1), 0) end as seen) b
      join messages m on m.conversation_id = cm.conversation_id
                     and m.seq > b.seen
     where cm.user_id = \$1
       and pg_visible_in_snapshot(m.txid, \$3)
       and (\$2 is null or not pg_visible_in_snapshot(m.txid, \$2))
     order by m.txid, m.conversation_id, m.seq limit \$4;
prepare purge(uuid[]) as
    delete from messages m where m.conversation_id = any (\$1);
prepare by_client_id(uuid, uuid) as
    select m.id from messages m where m.sender_id = \$1 and m.client_id = \$2;
\echo '  a page of a conversation:'
explain execute page('$z', 100, 50);
\echo '  receipts:'
explain execute receipts('$z', 1, 50, '$z');
\echo '  sync:'
explain execute sync('$z', pg_current_snapshot(), pg_current_snapshot(), 200);
\echo '  purge:'
explain execute purge('{$z}');
\echo '  (sender, client_id):'
explain execute by_client_id('$z', '$z');
SQL
}

plans() {
    { echo 'set plan_cache_mode = force_generic_plan;'; "plans_$table"; } |
        psql -X -q -v ON_ERROR_STOP=1 |
        sed -e 's/  (cost=[^)]*)//' -e 's/ *$//' |
        grep -v '^-*$\|QUERY PLAN\|rows)$'
}

"load_$table"
psql -X -q -c 'vacuum analyze'
psql -X -At -F ' ' -c "select count(*) || ' rows in $table,',
                              pg_size_pretty(pg_relation_size('$table'))
                         from $table"

first=
for t in "${targets[@]}"; do
    set_targets=$(printf "alter column %s set statistics $t, " "${columns[@]}")
    # without the last target's rows (a column at 0 keeps them otherwise)
    psql -X -q -c "delete from pg_statistic where starelid = '$table'::regclass" \
         -c "alter table $table ${set_targets%, }"
    ms=$(for k in 1 2 3 4 5; do
             psql -X -q -c '\timing on' -c "analyze $table" |
                 awk '/^Time:/ { printf "%.1f ", $2 }'
         done)
    echo "target $t: analyze $table, ms: $ms"
    echo "  distinct values estimated: $(psql -X -At -F '=' -c "
        select attname, n_distinct from pg_stats
         where tablename = '$table' order by attname" | tr '\n' ' ')"
    plans > "$dir/plans.$t"
    if [ -z "$first" ]; then
        first=$t
        cat "$dir/plans.$t"
    elif cmp -s "$dir/plans.$first" "$dir/plans.$t"; then
        echo "  the same plans as at target $first"
    else
        echo "  plans against target $first:"
        diff "$dir/plans.$first" "$dir/plans.$t" | sed 's/^/  /' || true
    fi
done
