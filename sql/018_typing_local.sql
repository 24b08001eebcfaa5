-- typing, delivered by the node itself when it can.
--
-- A typing event is not stored, and a NOTIFY is not free: PostgreSQL
-- serialises the commits of notifying transactions (the send batches'
-- among them), and wakes the LISTEN of every node. So the caller says which
-- worker instances are its own node's (here), and when every socket of the
-- peer is on one of them (its presence rows), nothing is notified: the
-- event's bus line comes back in the row's third column, `local`, and the
-- node delivers it to the peer's sockets, on whichever of its workers
-- (ngx_famcall_gw_deliver.h). A peer with no presence row (none yet: rows
-- are written in batches, just after a socket opens) or one anywhere else
-- is notified, as before.
--
-- What may be missed: a socket of the peer that opened on another node so
-- recently that its presence row is not written yet. Typing is ephemeral
-- (the next keystroke sends another); a message never takes this path.

drop function famcall_typing(uuid, uuid, text, text);

create function famcall_typing(me uuid, conversation uuid, state text,
                               src text, here uuid[])
returns table (status int, body jsonb, local text)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    peer uuid;
    line text;
begin
    select case when c.user_lo = me then c.user_hi else c.user_lo end
      into peer
      from conversations c
     where c.id = conversation and (c.user_lo = me or c.user_hi = me);
    if not found then
        return query select 404, famcall_err('not_found',
            'no such conversation'), null::text;
        return;
    end if;
    if famcall_blocked_either(me, peer) then
        return query select 403, famcall_err('blocked',
            'one of you has blocked the other'), null::text;
        return;
    end if;

    line := famcall_event_line('typing', array[peer], src,
        jsonb_build_object('conversation_id', conversation, 'user_id', me,
                           'state', state));

    if exists (select 1 from presence p where p.user_id = peer)
       and not exists (select 1 from presence p
                        where p.user_id = peer
                          and p.instance_id <> all (coalesce(here, '{}')))
    then
        return query select 204, null::jsonb, line;
        return;
    end if;

    perform famcall_notify_lines(array[line]);
    return query select 204, null::jsonb, null::text;
end
$$;
