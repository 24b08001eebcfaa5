-- The batch of sends as in 008, but for how it locks the batch's
-- conversations: by index, not by scanning them all.
create or replace function famcall_message_send_batch(items jsonb)
returns table (i int, status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    got     int[];
    r       record;
    events  text[] := '{}';
begin
    -- = any (array): an index probe per id; "in (select ...)" was planned
    -- (generic plan, 100 rows guessed) as a hash join over a sequential
    -- scan of every conversation, once per batch
    perform 1
       from conversations c
      where c.id = any (array(select (v->>'conversation')::uuid
                                from jsonb_array_elements(items) v))
      order by c.id
        for update;

    got := array(
        select x.ord::int
          from jsonb_array_elements(items) with ordinality as x (v, ord)
         where pg_try_advisory_xact_lock(hashtextextended(
                   (x.v->>'me')::uuid::text || (x.v->>'client_id')::uuid::text,
                   4))
         order by x.ord);

    for r in
    with it as (
        select x.ord::int as k,
               (x.v->>'me')::uuid as me,
               (x.v->>'conversation')::uuid as conv,
               (x.v->>'client_id')::uuid as cid,
               x.v->>'body' as txt,
               x.v->'src' as src
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
    select d.k, d.me, d.peer, d.src,
           case
               when d.st = 201 and n.id is not null then 201
               when d.st in (201, 0) and n.id is not null
                    and n.conversation_id = d.c_id then 200
               when d.st in (201, 0) then 409
               when d.st in (4031, 4032) then 403
               else d.st
           end as code,
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
           end as answer
      from decided d
      left join ins n on n.sender_id = d.me and n.client_id = d.cid
     order by d.k
    loop
        i := r.k;
        status := r.code;
        body := r.answer;
        return next;

        -- (a text[] grows in place; a jsonb array would be copied per item)
        if r.code = 201 then
            events := events || jsonb_build_object('t', 'message:new',
                'u', jsonb_build_array(r.me, r.peer), 'x', r.src,
                'd', r.answer)::text;
        end if;
    end loop;

    if cardinality(events) > 0 then
        perform famcall_notify_texts(events);
    end if;
end
$$;
