-- Group commit, set-based: a batch of sends is decided and inserted by three
-- statements for all items at once instead of one famcall_message_send call
-- per item (a plpgsql call's own overhead cost more than the item's insert;
-- 007 drops that function). The rules, in this order: 422 bad input, 404
-- not a member, 200/409 for a client_id already used, 403 blocked, 403
-- not_a_contact, 201; conversation rows and (sender, client_id) locks as
-- the single send took them.
create or replace function famcall_message_send_batch(items jsonb)
returns table (i int, status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
-- the plan of step 3 is kept, not made anew for each batch's values
set plan_cache_mode = force_generic_plan
as $$
declare
    got int[];
begin
    -- 1. The batch's conversation rows, locked in id order (no deadlocks
    --    between batches); from here their last_seq is ours.
    perform 1
       from conversations c
      where c.id in (select (v->>'conversation')::uuid
                       from jsonb_array_elements(items) v)
      order by c.id
        for update;

    -- 2. The (sender, client_id) locks famcall_message_send takes, without
    --    waiting: an item whose lock another transaction holds is being sent
    --    to another conversation right now (409). Taken in a statement of
    --    its own so that step 3's snapshot sees whatever committed before.
    got := array(
        select x.ord::int
          from jsonb_array_elements(items) with ordinality as x (v, ord)
         where pg_try_advisory_xact_lock(hashtextextended(
                   (x.v->>'me')::uuid::text || (x.v->>'client_id')::uuid::text,
                   4))
         order by x.ord);

    -- 3. Decide every item, insert the new ones with consecutive seqs per
    --    conversation, move last_seq once per conversation, answer.
    return query
    with it as (
        select x.ord::int as k,
               (x.v->>'me')::uuid as me,
               (x.v->>'conversation')::uuid as conv,
               (x.v->>'client_id')::uuid as cid,
               x.v->>'body' as txt
          from jsonb_array_elements(items) with ordinality as x (v, ord)
    ),
    ev as (
        select it.*, c.id as c_id, c.last_seq,
               case when c.user_lo = it.me then c.user_hi
                    else c.user_lo end as peer,
               e.id as e_id, e.conversation_id as e_conv,
               row_number() over (partition by it.me, it.cid
                                  order by it.k) as dup
          from it
          -- lateral + limit (which keeps the planner from flattening them into
          -- hash joins over whole tables): one index probe per item
          left join lateral (
                select c.* from conversations c
                 where c.id = it.conv
                   and (c.user_lo = it.me or c.user_hi = it.me)
                 limit 1) c on true
          left join lateral (
                select m.id, m.conversation_id from messages m
                 where m.sender_id = it.me and m.client_id = it.cid
                 limit 1) e on true
    ),
    decided as (
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
                   when ev.dup > 1 then 0      -- decided by the first one
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
    ins as (
        insert into messages (conversation_id, seq, sender_id, client_id, body)
        select n.c_id, n.seq, n.me, n.cid, n.txt
          from numbered n
         order by n.c_id, n.seq
        on conflict on constraint messages_sender_client_key do nothing
        returning *
    ),
    bump as (
        update conversations c
           set last_seq = x.mx
          from (select ins.conversation_id, max(ins.seq) as mx
                  from ins group by ins.conversation_id) x
         where c.id = x.conversation_id
    )
    select d.k,
           case
               when d.st = 201 and n.id is not null then 201
               when d.st in (201, 0) and n.id is not null
                    and n.conversation_id = d.c_id then 200
               when d.st in (201, 0) then 409
               when d.st in (4031, 4032) then 403
               else d.st
           end,
           case
               when d.st in (201, 0) and n.id is not null
                    and n.conversation_id = d.c_id then famcall_message_json(row(n.*)::messages)
               when d.st in (201, 0) or d.st = 409 then famcall_err(
                   'client_id_reused',
                   'this client_id was used for another conversation',
                   'client_id')
               when d.st = 200 then (select famcall_message_json(m)
                                       from messages m where m.id = d.e_id)
               when d.st = 404 then famcall_err('not_found',
                   'no such conversation')
               when d.st = 4031 then famcall_err('blocked',
                   'one of you has blocked the other')
               when d.st = 4032 then famcall_err('not_a_contact',
                   'you can only talk to accepted contacts')
               else famcall_err('invalid_field',
                   'must be 1 to 4000 characters, not blank', 'body')
           end
      from decided d
      left join ins n on n.sender_id = d.me and n.client_id = d.cid
     order by d.k;
end
$$;
