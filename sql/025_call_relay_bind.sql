-- The relay without the database inside a node, in order, and long events
-- across nodes (docs/websocket.md "Relay", ngx_famcall_call_bind.h).
--
-- Bindings.  A node relays webrtc:* between two of its own sockets without
-- asking the row when it knows the call is accepted and which two sockets
-- are bound.  It learns that from the row itself: this trigger tells the
-- node, from the transaction that changed the row, when a call became
-- accepted or a side resumed from a new socket (node:call-bind, to the
-- caller's socket's worker), and when the sockets it named stopped being
-- the call's (node:call-unbind, to each of them): an end by any path (a
-- side's call:end, the sweeper's connection_lost, a deleted user), a
-- resume.  Lines of type node:* go to the node's hooks, never to a socket.
-- An AFTER ROW trigger fires at the end of its UPDATE, so its notification
-- comes before those the function sends after the update (call:accept,
-- call:end): the node has the binding before the caller hears of the
-- accept, and has dropped it before a side hears of the end.
--
-- The relay statement now takes the event's data as the module wrote it
-- (JSON in ASCII) and, to a peer on another node, notifies it in parts
-- when it is longer than a notification's payload (under 8000 bytes): the
-- notifications of one transaction are delivered together and in order,
-- and the peer's node puts the parts together (ngx_famcall_gw_bus.c).  A
-- 64 KB SDP crosses nodes without being stored.

create function famcall_call_bind_notify() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    lines  text[] := '{}';
    d      text;
begin
    if tg_op in ('UPDATE', 'DELETE') and old.status = 'accepted'
       and old.caller_src is not null and old.callee_src is not null
       and (tg_op = 'DELETE' or new.status <> 'accepted'
            or new.caller_src is distinct from old.caller_src
            or new.callee_src is distinct from old.callee_src) then
        d := old.id || ' ' || old.caller_id || ' ' || old.caller_src || ' '
             || old.callee_id || ' ' || old.callee_src;
        lines := lines
            || ('node:call-unbind ' || old.caller_id || ' ='
                || old.caller_src || ' ' || d)
            || ('node:call-unbind ' || old.callee_id || ' ='
                || old.callee_src || ' ' || d);
    end if;

    if tg_op = 'UPDATE' and new.status = 'accepted'
       and new.caller_src is not null and new.callee_src is not null
       and (old.status <> 'accepted'
            or new.caller_src is distinct from old.caller_src
            or new.callee_src is distinct from old.callee_src) then
        lines := lines
            || ('node:call-bind ' || new.caller_id || ' =' || new.caller_src
                || ' ' || new.id || ' ' || new.caller_id || ' '
                || new.caller_src || ' ' || new.callee_id || ' '
                || new.callee_src);
    end if;

    if cardinality(lines) > 0 then
        perform pg_notify('famcall', array_to_string(lines, chr(10)));
    end if;

    return null;
end
$$;

create trigger calls_bind_notify
    after update of status, caller_src, callee_src or delete on calls
    for each row execute function famcall_call_bind_notify();

-- A bus line, notified; in parts when it is longer than a notification
-- may be: "<type> <users> <src> ~<id>.<i>.<n> <piece>", the i-th of n
-- pieces of its data, all with the same id.  line's data must not be cut
-- inside a character: the relay's is ASCII.
create function famcall_notify_long(line text) returns void
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    f      text[];
    head   text;
    data   text;
    id     text;
    piece  int := 7600;
    n      int;
    i      int;
begin
    if octet_length(line) <= 7900 then
        perform pg_notify('famcall', line);
        return;
    end if;

    f := regexp_match(line, '^(\S+ \S+ \S+) (.*)$');
    if f is null then
        raise warning 'famcall: event too large to notify: %', left(line, 40);
        return;
    end if;

    head := f[1];
    data := f[2];
    id := replace(gen_random_uuid()::text, '-', '');
    n := (length(data) + piece - 1) / piece;

    for i in 1 .. n loop
        perform pg_notify('famcall', head || ' ~' || id || '.' || i || '.'
            || n || ' ' || substr(data, (i - 1) * piece + 1, piece));
    end loop;
end
$$;

drop function famcall_call_relay(uuid, uuid, text, text, text, text, int,
                                 text, uuid[]);

-- A relay of the event data (JSON text) from socket src of me on call
-- c_id: authorised from the row as in sql/020; to a peer on this node
-- (here) the line comes back in the third column, and the binding in the
-- fourth (the node keeps it unless it dropped one of the call's since it
-- sent the statement: ngx_famcall_call_bind.h); to another node it is
-- notified.  Errors as in sql/020; too_large no more.
create function famcall_call_relay(me uuid, c_id uuid, type text, data text,
                                   src text, here uuid[])
returns table (status int, body jsonb, local text, bind text)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c     calls;
    peer  uuid;
    psrc  text;
    line  text;
begin
    perform set_config('synchronous_commit', 'off', true);

    select * into c from calls k
     where k.id = c_id and (k.caller_id = me or k.callee_id = me);
    if not found then
        return query select 404, famcall_err('not_found', 'no such call'),
            null::text, null::text;
        return;
    end if;
    if c.status <> 'accepted' then
        return query select 409, famcall_err('wrong_state',
            'the call is ' || c.status || ': nothing is relayed'),
            null::text, null::text;
        return;
    end if;

    if c.caller_id = me and c.caller_src = src then
        peer := c.callee_id;
        psrc := c.callee_src;
    elsif c.callee_id = me and c.callee_src = src then
        peer := c.caller_id;
        psrc := c.caller_src;
    else
        return query select 409, famcall_err('not_bound',
            'this device is not the one in the call'),
            null::text, null::text;
        return;
    end if;

    line := type || ' ' || peer || ' =' || psrc || ' ' || data;

    -- a peer on this node: the node delivers it, and may keep the
    -- binding, so that the next relays of the call need no statement
    if split_part(psrc, '.', 1)::uuid = any (coalesce(here, '{}')) then
        return query select 200, null::jsonb, line,
            c.id || ' ' || c.caller_id || ' ' || c.caller_src || ' '
            || c.callee_id || ' ' || c.callee_src;
        return;
    end if;

    perform famcall_notify_long(line);
    return query select 200, null::jsonb, null::text, null::text;
end
$$;
