-- The batch of sends takes its items as arrays, one per field, instead of
-- one JSON document. The worker wrote the document with jansson (an object
-- per item, then the array dumped) and PostgreSQL parsed it twice: jsonb_in
-- for the parameter, then jsonb_to_recordset into typed arrays. Arrays are
-- read by array_in straight into uuid[] and text[], and the worker writes
-- them without building JSON (ngx_famcall_batch.c), which saves nginx a
-- JSON tree per batch and PostgreSQL a parse per item
-- (bench/sql/batch-cost.sh counts the batch a few percent cheaper).
--
-- Same rules, steps 2-4 and answers as sql/009 (t/13 and t/21 hold them);
-- only step 1, the parsing, is gone, and the rows come back unsorted (the
-- worker finds an item's row by i), which saves a sort per batch. Item k
-- is element k of every array; the arrays have one length (unnest pads a
-- shorter one with NULLs, which the rules answer 422 or 404).

drop function famcall_message_send_batch(jsonb);

-- The batch of sends: one row (i, status, body), in no order, per item k of
-- the arrays (sender, conversation, client_id, body, source socket), i = k;
-- 422 bad input, 404 not a member, 200/409 for a client_id already used,
-- 403 blocked, 403 not_a_contact, 201; message:new announced to both users
-- (except the socket src) in the same transaction.
create function famcall_message_send_batch(a_me uuid[], a_conv uuid[],
                                           a_cid uuid[], a_txt text[],
                                           a_src text[])
returns table (i int, status int, body text)
language plpgsql
set search_path = pg_catalog, public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
declare
    c_id    uuid[];
    c_lo    uuid[];
    c_hi    uuid[];
    c_last  bigint[];
    got     int[];
    -- a new row's sent_at is now(), the same for the whole transaction
    sent_ts text := famcall_ts(now());
begin
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
    -- in no order: the worker finds each item's row by i (sql/009 sorted
    -- them, a sort for nothing)
    select a.k, a.code, a.answer from answered a, announced;
end
$$;
