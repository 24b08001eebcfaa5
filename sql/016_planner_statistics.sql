-- Planner statistics only for the columns a plan can use, on the two tables
-- every send writes.
--
-- Under load autovacuum analyzes both tables at every round (once a
-- minute): `conversations` because every send updates its last_seq (an
-- update counts as a change, though none moves anything a plan looks at),
-- `messages` while it is young (every 10% of growth). An analyze samples
-- 30,000 rows and sorts them column by column, and on a busy node the
-- core it takes comes out of the sends' latency in the second it runs
-- (docs/benchmarks.md, "What we learned"). Every query on these tables
-- reaches its rows by key (the primary keys, (conversation_id, seq),
-- (sender_id, client_id), (user_lo, user_hi), user_hi), so the only
-- estimates that can steer a plan are how many rows a conversation, a
-- sender or a user has. Those columns keep their statistics; the others
-- (ids, bodies, client ids, times, xids, counters) are no longer gathered.
-- An analyze of either table is a quarter to a third cheaper for it
-- (bench/sql/analyze-cost.sh measures one).

alter table messages
    alter column id           set statistics 0,
    alter column client_id    set statistics 0,
    alter column body         set statistics 0,
    alter column sent_at      set statistics 0,
    alter column delivered_at set statistics 0,
    alter column read_at      set statistics 0,
    alter column txid         set statistics 0;

alter table conversations
    alter column id         set statistics 0,
    alter column kind       set statistics 0,
    alter column last_seq   set statistics 0,
    alter column created_at set statistics 0;
