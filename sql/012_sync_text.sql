-- Sync pages written as text, like listing (sql/011): the messages through
-- famcall_message_text, the page's object in jsonb's own key order and
-- spacing, so the bytes are what the jsonb version printed (t/21 checks
-- body::jsonb::text = body). A message costs a third as much as text as it
-- did as jsonb (sql/011, bench/sql/list-cost.sh); a sync page holds up to
-- 500, and a restart means one sync per reconnecting socket. The
-- cursor, the receipts, the presence and every rule are as in sql/010.

drop function famcall_sync(uuid, text, int);

create function famcall_sync(me uuid, since text, lim int)
returns table (status int, body text)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    n       int := coalesce(lim, 200);
    s0      pg_snapshot;
    s1      pg_snapshot;
    k_tx    xid8;
    k_conv  uuid;
    k_seq   bigint;
    first   boolean := true;
    msgs    text;
    cnt     int;
    last_id uuid;
    rcpts   jsonb := '[]';
    pres    jsonb := '[]';
    cur     text;
begin
    if n < 1 or n > 500 then
        return query select 422, famcall_err('invalid_field',
            'must be an integer from 1 to 500', 'limit')::text;
        return;
    end if;
    if not exists (select 1 from users u where u.id = me) then
        return query select 401, famcall_err('unauthorized',
            'this account no longer exists')::text;
        return;
    end if;

    begin
        if since is null then
            s0 := null;
            s1 := pg_current_snapshot();
        elsif position('~' in since) = 0 then
            s0 := since::pg_snapshot;
            s1 := pg_current_snapshot();
        else
            s0 := split_part(since, '~', 1)::pg_snapshot;
            s1 := split_part(since, '~', 2)::pg_snapshot;
            k_tx := split_part(since, '~', 3)::xid8;
            k_conv := split_part(since, '~', 4)::uuid;
            k_seq := split_part(since, '~', 5)::bigint;
            first := false;
        end if;
    exception when others then
        return query select 422, famcall_err('invalid_field',
            'not a cursor from sync', 'since')::text;
        return;
    end;

    select string_agg(famcall_message_text(row(x.*)::messages), ', '
                      order by x.txid, x.conversation_id, x.seq),
           count(*),
           (array_agg(x.id order by x.txid desc, x.conversation_id desc,
                      x.seq desc))[1]
      into msgs, cnt, last_id
      from (select m.*
              from conversation_members cm
              cross join lateral (
                    select case when s0 is null then 0 else coalesce((
                               select v.seq from messages v
                                where v.conversation_id = cm.conversation_id
                                  and pg_visible_in_snapshot(v.txid, s0)
                                order by v.seq desc
                                limit 1), 0) end as seen) b
              join messages m on m.conversation_id = cm.conversation_id
                             and m.seq > b.seen
             where cm.user_id = me
               and pg_visible_in_snapshot(m.txid, s1)
               and (s0 is null or not pg_visible_in_snapshot(m.txid, s0))
               and (k_tx is null
                    or (m.txid, m.conversation_id, m.seq)
                       > (k_tx, k_conv, k_seq))
             order by m.txid, m.conversation_id, m.seq
             limit n) x;

    if first then
        select coalesce(jsonb_agg(jsonb_build_object(
                   'conversation_id', o.conversation_id, 'user_id', o.user_id,
                   'delivered_seq', o.last_delivered_seq,
                   'read_seq', o.last_read_seq)), '[]')
          into rcpts
          from conversation_members cm
          join conversation_members o on o.conversation_id = cm.conversation_id
         where cm.user_id = me
           and pg_visible_in_snapshot(o.txid, s1)
           and (s0 is null or not pg_visible_in_snapshot(o.txid, s0))
           and (o.last_delivered_seq > 0 or o.last_read_seq > 0);

        select coalesce(jsonb_agg(jsonb_build_object(
                   'user_id', k.contact_id,
                   'online', exists (select 1 from presence p
                                      where p.user_id = k.contact_id),
                   'last_seen', famcall_ts(u.last_seen_at))), '[]')
          into pres
          from contacts k join users u on u.id = k.contact_id
         where k.user_id = me and k.status = 'accepted';
    end if;

    if cnt = n then
        select coalesce(s0::text, '1:1:') || '~' || s1::text || '~'
               || m.txid::text || '~' || m.conversation_id::text
               || '~' || m.seq::text
          into cur
          from messages m
         where m.id = last_id;
    else
        cur := s1::text;
    end if;

    -- jsonb's key order: by length, then bytes
    return query select 200,
        '{"more": ' || (cnt = n)::text
        || ', "cursor": ' || coalesce(to_json(cur)::text, 'null')
        || ', "messages": [' || coalesce(msgs, '') || ']'
        || ', "presence": ' || pres::text
        || ', "receipts": ' || rcpts::text || '}';
end
$$;
