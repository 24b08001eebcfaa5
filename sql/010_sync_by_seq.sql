-- Sync without an index on messages.txid: every send paid for keeping it up
-- (bench/sql/batch-cost.sh prices it), for the sake of sync alone.
--
-- What a cursor's snapshot s0 did not see of a conversation is exactly its
-- messages after the newest one s0 saw: only famcall_message_send_batch
-- inserts messages, and it holds the conversation row locked from before
-- it numbers them until it commits, so within a conversation seq order is
-- commit order, and a snapshot sees a prefix of it. sync finds that newest
-- seen message by walking the (conversation_id, seq) index back from the
-- newest message (as many steps as there are messages s0 did not see),
-- instead of scanning (conversation_id, txid) from s0's xmin. The rest of
-- famcall_sync (008) is unchanged.
drop index messages_conversation_txid_idx;

create or replace function famcall_sync(me uuid, since text, lim int)
returns table (status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    n      int := coalesce(lim, 200);
    s0     pg_snapshot;
    s1     pg_snapshot;
    k_tx   xid8;
    k_conv uuid;
    k_seq  bigint;
    first  boolean := true;
    msgs   jsonb;
    cnt    int;
    rcpts  jsonb := '[]';
    pres   jsonb := '[]';
begin
    if n < 1 or n > 500 then
        return query select 422, famcall_err('invalid_field',
            'must be an integer from 1 to 500', 'limit');
        return;
    end if;
    if not exists (select 1 from users u where u.id = me) then
        return query select 401, famcall_err('unauthorized',
            'this account no longer exists');
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
            'not a cursor from sync', 'since');
        return;
    end;

    select jsonb_agg(famcall_message_json(row(x.*)::messages)
                     order by x.txid, x.conversation_id, x.seq),
           count(*)
      into msgs, cnt
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

    return query select 200, jsonb_build_object(
        'messages', coalesce(msgs, '[]'),
        'receipts', rcpts,
        'presence', pres,
        'more', cnt = n,
        'cursor', case
            when cnt = n then
                (select coalesce(s0::text, '1:1:') || '~' || s1::text || '~'
                        || m.txid::text || '~' || m.conversation_id::text
                        || '~' || m.seq::text
                   from messages m
                  where m.id = (msgs->(n - 1)->>'id')::uuid)
            else s1::text
        end);
end
$$;
