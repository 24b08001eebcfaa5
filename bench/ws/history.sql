-- Older messages for the benchmark's database (bench/ws/run.sh, WS_HISTORY),
-- loaded after setup.sql:
--
--   psql -X -q -v ON_ERROR_STOP=1 -v n=3000000 -f bench/ws/history.sql
--
-- About n messages spread evenly over every conversation, as if its two
-- users had been writing to each other for a month, so that a run meets a
-- used `messages` table (indexes some levels deep; autovacuum's thresholds
-- of a big table: analyze after 10% more rows, not at every round) instead
-- of an empty one. Written straight into the tables, in key order and with
-- made-up ids that ascend, so the load takes seconds (3M rows in about 35 s
-- here; 80 s with random ids); a run's own ids are random, as in service.
-- Each conversation's last_seq moves past its history, so a run's messages
-- follow on and the seq check still holds.

set synchronous_commit = off;

select greatest(1, :n / count(*)) as per_conv from conversations \gset

begin;

insert into messages (id, conversation_id, seq, sender_id, client_id, body,
                      sent_at)
select ('00000000-0000-4000-8000-' || lpad(to_hex(h.i), 12, '0'))::uuid,
       h.conv, h.last_seq + h.s,
       case when h.s % 2 = 0 then h.user_lo else h.user_hi end,
       ('00000000-0000-4000-9000-' || lpad(to_hex(h.i), 12, '0'))::uuid,
       'an older message, number ' || h.s,
       now() - interval '30 days' + h.s * (interval '30 days' / :per_conv)
  from (select c.id as conv, c.user_lo, c.user_hi, c.last_seq, s.s,
               row_number() over (order by c.id, s.s) as i
          from conversations c
         cross join generate_series(1, :per_conv) as s (s)) h
 order by h.i;

update conversations set last_seq = last_seq + :per_conv;

commit;
