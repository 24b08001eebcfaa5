-- The message trigger of sql/023 runs inside the send batch (sql/013),
-- whose SET enable_seqscan = off it inherits: every plan with a scan the
-- planner prices as disabled costs past jit_above_cost, and each batch
-- paid a JIT compilation (an empty batch took 9 ms instead of 0.3, and a
-- connection's first one 80 ms instead of 6, enough for the pool to call
-- a fresh connection stuck and open a spare).  The trigger's own queries
-- are index probes by key either way: it plans with its own settings and
-- never compiles.  A statement that stored no message (the warm-up's
-- empty batch, a batch of refused sends) stops at once.

create or replace function famcall_push_messages() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
set jit = off
set enable_seqscan = on
as $$
declare
    preview boolean;
begin
    if not exists (select 1 from new_messages) then
        return null;
    end if;

    preview := coalesce((select s.preview from push_settings s), false);

    insert into outbox (kind, user_id, device_id, collapse_key, expires_at,
                        payload)
    select 'push', r.user_id, d.id, 'conv:' || r.conversation_id,
           now() + interval '1 day',
           jsonb_build_object(
               'type', 'message',
               'conversation_id', r.conversation_id,
               'message_id', r.id,
               'seq', r.seq,
               'sender_id', r.sender_id,
               'title', case when preview then s.display_name
                             else 'famcall' end,
               'body', case when preview then
                                case when char_length(r.body) > 178
                                     then left(r.body, 177) || '…'
                                     else r.body end
                            else 'New message' end,
               'badge', famcall_push_badge(r.user_id))
      from (select m.*, cm.user_id
              from new_messages m
              join conversation_members cm
                on cm.conversation_id = m.conversation_id
               and cm.user_id <> m.sender_id
             where exists (select 1 from devices d
                            where d.user_id = cm.user_id)
               and not exists (select 1 from presence p
                                where p.user_id = cm.user_id)) r
      join users s on s.id = r.sender_id
      join devices d on d.user_id = r.user_id
     order by r.conversation_id, r.seq, d.id;
    return null;
end
$$;

-- the others run in the call statements, which set nothing, but a
-- caller's settings must not make them compile either
alter function famcall_push_call_invite() set jit = off;
alter function famcall_push_call_stop() set jit = off;
alter function famcall_outbox_wake() set jit = off;

-- The badge counted every unread message of the user (sql/023): a push to
-- someone with thousands unread walked them all, once per push.  A
-- badge says "99+" past a hundred anyway: each conversation counts up to
-- 100, an index range of (conversation_id, seq) past the read pointer.
create or replace function famcall_push_badge(u uuid) returns int
language sql stable
set jit = off
as $$
    select least(coalesce(sum(n.c), 0), 100)::int
      from public.conversation_members x
      cross join lateral (
          select count(*) as c
            from (select 1 from public.messages m
                   where m.conversation_id = x.conversation_id
                     and m.seq > x.last_read_seq
                     and m.sender_id <> u
                   limit 100) k) n
     where x.user_id = u
$$;
