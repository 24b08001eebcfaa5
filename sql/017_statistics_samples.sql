-- Smaller statistics samples on the two tables every send writes.
--
-- Under load autovacuum analyzes both at every round (once a minute):
-- `conversations` because every send updates its last_seq, `messages`
-- every 10% of growth, which at 10,000 sends/s is every round up to a
-- table of 6M rows. An analyze's cost is its sample, 300 rows per unit of
-- the largest statistics target of the table's columns, and on a busy node
-- the round's analyzes come out of the sends' latency in the second they
-- run (docs/benchmarks.md, "What we learned").
--
-- Since sql/016 the only columns with statistics are those whose estimates
-- can steer a plan: how many rows a conversation, a sender or a user has.
-- bench/sql/analyze-cost.sh times the analyze and prints the generic plans
-- of the queries on each table at several targets:
--
-- - conversations (user_lo, user_hi: the cascades of deleting a user; the
--   pair and the id are unique keys), 1M of them over 100,000 users: at
--   target 10 the same plans as at 100, and an analyze a fifth as long.
-- - messages (conversation_id, sender_id, seq), 3M over 50,000
--   conversations: at target 30 the same plans as at 100 (a page, the
--   receipts, sync, the purge, the (sender, client_id) lookup), and an
--   analyze a third as long. A conversation's rows are estimated at 240
--   against 90 at 100, for 60; at target 10 it would be 660, too far from
--   the truth to leave plans to.

alter table conversations
    alter column user_lo set statistics 10,
    alter column user_hi set statistics 10;

alter table messages
    alter column conversation_id set statistics 30,
    alter column sender_id       set statistics 30,
    alter column seq             set statistics 30;
