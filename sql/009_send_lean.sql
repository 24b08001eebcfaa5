-- Sending, leaner: PostgreSQL's CPU per message is what bounds sends per
-- second on a small machine, and callgrind on a backend (instructions, not
-- time: bench/sql/batch-cost.sh) showed where the batch of 008 spent it:
--   * nearly a fifth on the two foreign-key checks of messages (a query per
--     row each);
--   * the input re-parsed where each jsonb field was used (uuid casts in
--     the lookups' index keys, evaluated again on every rescan);
--   * ON CONFLICT's extra index probe and WAL record, for a conflict the
--     (sender, client_id) lock already rules out;
--   * the answer built as jsonb and printed twice (reply and notification).
-- This version costs about 40% less a message. What it changes, with the
-- rules and answers as they were (t/13, t/21 hold them):
--   1. the items are parsed once, into typed arrays, by jsonb_to_recordset;
--   2. the conversation rows are locked and read in one statement, and the
--      main statement joins what that read instead of looking them up again;
--   3. no ON CONFLICT (see the insert);
--   4. the answer is text: famcall_message_json's exact output for a new
--      row, written once and used for both the reply and the notification.
-- The function returns body as text now (the worker reads text either way).

-- messages lose their foreign keys. Only famcall_message_send_batch inserts
-- messages, and it holds the conversation row locked and has checked the
-- sender is its member, so the checks could never fail; they cost a third
-- of the insert. What they also did, cascading deletes, a trigger does: a
-- conversation's messages go with it, and a user's go with their
-- conversations (users -> conversations cascades, and a sender is always a
-- member). reports.message_id still references messages.
alter table messages
    drop constraint messages_conversation_id_fkey,
    drop constraint messages_sender_id_fkey;

create function famcall_conversation_purge() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
begin
    delete from messages m using gone g where m.conversation_id = g.id;
    return null;
end
$$;

create trigger conversations_purge_messages
    after delete on conversations
    referencing old table as gone
    for each statement
    execute function famcall_conversation_purge();

drop function famcall_message_send_batch(jsonb);

-- famcall_event_line (008) from text: the users already joined by commas
-- and data that is JSON text (the batch writes its answers as text, and
-- array_to_string over array[me, peer] was a visible part of a message's
-- cost).
-- The uuid[] / jsonb one now calls it, so the line format is written once.
create function famcall_event_line(type text, users text, src text,
                                   data text)
returns text
language sql immutable
as $$
    select type || ' ' || users || ' ' || coalesce(nullif(src, ''), '-')
           || ' ' || data
$$;

create or replace function famcall_event_line(type text, users uuid[],
                                              src text, data jsonb)
returns text
language sql immutable
as $$
    select public.famcall_event_line(type, array_to_string(users, ','), src,
                                     data::text)
$$;

-- A stored message as famcall_message_json's text, for the batch's rare
-- "already sent" answer. Its SET keeps it a call, not inlined: the batch's
-- executor start stays small.
create function famcall_message_text(id uuid) returns text
language sql stable
set search_path = pg_catalog, public, pg_temp
as $$
    select famcall_message_json(m)::text from messages m
     where m.id = famcall_message_text.id
$$;

-- The batch of sends: one row (i, status, body) per item of
-- [{"me", "conversation", "client_id", "body"[, "src"]}, ...], i from 1;
-- 422 bad input, 404 not a member, 200/409 for a client_id already used,
-- 403 blocked, 403 not_a_contact, 201; message:new announced to both users
-- (except the socket src) in the same transaction.
create function famcall_message_send_batch(items jsonb)
returns table (i int, status int, body text)
language plpgsql
set search_path = pg_catalog, public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
declare
    a_me    uuid[];
    a_conv  uuid[];
    a_cid   uuid[];
    a_txt   text[];
    a_src   text[];
    c_id    uuid[];
    c_lo    uuid[];
    c_hi    uuid[];
    c_last  bigint[];
    got     int[];
    -- a new row's sent_at is now(), the same for the whole transaction
    sent_ts text := famcall_ts(now());
begin
    -- 1. The items, parsed once into arrays (every later step reads these;
    --    the worker has checked the ids are uuids). One function scan into
    --    one aggregate: the arrays keep the items' order.
    select array_agg(x.me), array_agg(x.conversation), array_agg(x.client_id),
           array_agg(x.body), array_agg(x.src)
      into a_me, a_conv, a_cid, a_txt, a_src
      from jsonb_to_recordset(items)
           as x (me uuid, conversation uuid, client_id uuid, body text,
                 src text);

    -- 2. The conversation rows, locked in id order (batches never deadlock)
    --    and read: their last_seq is ours until commit.
    select array_agg(c.id), array_agg(c.user_lo), array_agg(c.user_hi),
           array_agg(c.last_seq)
      into c_id, c_lo, c_hi, c_last
      from (select c.id, c.user_lo, c.user_hi, c.last_seq
              from conversations c
             where c.id = any (a_conv)
             order by c.id
               for update) c;

    -- 3. (sender, client_id) locks, without waiting: an item whose lock
    --    another transaction holds is being sent right now (409). Its own
    --    statement, so that step 4's snapshot sees whatever committed first.
    got := array(
        select x.k::int
          from unnest(a_me, a_cid) with ordinality as x (me, cid, k)
         where x.cid is not null
           and pg_try_advisory_xact_lock(uuid_hash_extended(x.cid,
                   uuid_hash_extended(x.me, 4))));

    -- 4. Decide, number, insert, answer, announce: one statement.
    return query
    with it as (
        select x.k::int as k, x.me, x.conv, x.cid, x.txt, x.src,
               c.id as c_id, c.last_seq,
               case when c.lo = x.me then c.hi else c.lo end as peer
          from unnest(a_me, a_conv, a_cid, a_txt, a_src)
               with ordinality as x (me, conv, cid, txt, src, k)
          left join unnest(c_id, c_lo, c_hi, c_last) as c (id, lo, hi, last_seq)
            on c.id = x.conv and (c.lo = x.me or c.hi = x.me)
    ),
    ev as (
        select it.*, e.id as e_id, e.conversation_id as e_conv,
               row_number() over (partition by it.me, it.cid
                                  order by it.k) as dup
          from it
          left join lateral (
                select m.id, m.conversation_id from messages m
                 where m.sender_id = it.me and m.client_id = it.cid
                 limit 1) e on true
    ),
    decided as materialized (
        select ev.*,
               case
                   when ev.cid is null or ev.txt is null
                        or ev.txt !~ '[^[:space:]]'
                        or char_length(ev.txt) > 4000 then 422
                   when ev.c_id is null then 404
                   when ev.e_id is not null then
                       case when ev.e_conv = ev.c_id then 200 else 409 end
                   when exists (select 1 from blocks b
                                 where (b.blocker_id = ev.me
                                        and b.blocked_id = ev.peer)
                                    or (b.blocker_id = ev.peer
                                        and b.blocked_id = ev.me)) then 4031
                   when not exists (select 1 from contacts k
                                     where k.user_id = ev.me
                                       and k.contact_id = ev.peer
                                       and k.status = 'accepted') then 4032
                   when not (ev.k = any (got)) then 409
                   when ev.dup > 1 then 0
                   else 201
               end as st
          from ev
    ),
    numbered as (
        select d.k, d.c_id, d.me, d.cid, d.txt,
               d.last_seq + row_number() over (partition by d.c_id
                                               order by d.k) as seq
          from decided d
         where d.st = 201
    ),
    -- no ON CONFLICT: step 3's lock and this statement's snapshot rule out
    -- a concurrent (sender, client_id), and decided dropped the repeats
    -- within the batch (dup > 1)
    ins as (
        insert into messages (conversation_id, seq, sender_id, client_id, body)
        select n.c_id, n.seq, n.me, n.cid, n.txt
          from numbered n
         order by n.c_id, n.seq
        returning messages.id, messages.conversation_id, messages.sender_id,
                  messages.client_id, messages.seq, messages.body
    ),
    bump as (
        update conversations c
           set last_seq = x.mx
          from (select n.c_id, max(n.seq) as mx
                  from numbered n group by n.c_id) x
         where c.id = x.c_id
    ),
    answered as (
    select d.k, d.me, d.peer, d.src,
           case
               when d.st = 201 then 201
               when d.st = 0 and n.conversation_id = d.c_id then 200
               when d.st = 0 then 409
               when d.st in (4031, 4032) then 403
               else d.st
           end as code,
           case
               -- famcall_message_json's text, as a new row has it
               when d.st in (201, 0) and n.conversation_id = d.c_id then
                    '{"id": "' || n.id || '", "seq": ' || n.seq
                    || ', "body": ' || to_json(n.body)::text
                    || ', "read_at": null, "sent_at": "' || sent_ts
                    || '", "client_id": "' || n.client_id
                    || '", "sender_id": "' || n.sender_id
                    || '", "delivered_at": null, "conversation_id": "'
                    || n.conversation_id || '"}'
               -- the rest as constants: famcall_err's output, written out
               -- (famcall_err is stable, so its inlined jsonb building was
               -- compiled again at every batch's executor start)
               when d.st in (0, 409) then
                   '{"error": {"code": "client_id_reused", "field": "client_id", '
                   '"message": "this client_id was used for another conversation"}}'
               when d.st = 200 then famcall_message_text(d.e_id)
               when d.st = 404 then
                   '{"error": {"code": "not_found", '
                   '"message": "no such conversation"}}'
               when d.st = 4031 then
                   '{"error": {"code": "blocked", '
                   '"message": "one of you has blocked the other"}}'
               when d.st = 4032 then
                   '{"error": {"code": "not_a_contact", '
                   '"message": "you can only talk to accepted contacts"}}'
               else
                   '{"error": {"code": "invalid_field", "field": "body", '
                   '"message": "must be 1 to 4000 characters, not blank"}}'
           end as answer
      from decided d
      left join ins n on n.sender_id = d.me and n.client_id = d.cid
    ),
    announced as (
        select famcall_notify_lines(array(
            select famcall_event_line('message:new',
                                      a.me || ',' || a.peer, a.src, a.answer)
              from answered a where a.code = 201 order by a.k)) as done
    )
    select a.k, a.code, a.answer from answered a, announced order by a.k;
end
$$;
