-- The realtime gateway's side of the database (docs/websocket.md).
--
-- PostgreSQL is the bus: every live event is a NOTIFY on channel "famcall",
-- issued by the transaction that wrote it, so nothing is delivered that was
-- not stored. Each nginx worker LISTENs and hands events to its own sockets.
-- A notification's payload (at most 8000 bytes) is one event per line,
--
--     <type> <user id>,<user id>,... <source socket or -> <data as JSON>
--
-- the users to deliver to, and the socket not to (the sender has its ack).
-- Lines, not one JSON document: a worker reads every notification of every
-- node, and this way it parses no JSON to route an event (it frames the
-- data text as it is: {"type": <type>, "data": <data>}). A batch of sends
-- is one commit and as few notifications as its lines fit in; an event too
-- big for one is sent by reference ("message:ref ... {"id": ...}": the
-- workers that have its users fetch it).

-- Sync cursors are snapshots: every message and member row remembers the
-- transaction that wrote it last.
alter table messages
    add column txid xid8 not null default pg_current_xact_id();
create index messages_conversation_txid_idx on messages (conversation_id, txid);

alter table conversation_members
    add column txid xid8 not null default pg_current_xact_id();

-- One row per nginx worker process with a gateway, and per user with a socket
-- open on it: a user is online while they have a presence row anywhere.
create table gateway_instances (
    id           uuid primary key,
    host         text not null,
    pid          int not null,
    started_at   timestamptz not null default now(),
    heartbeat_at timestamptz not null default now()
);

create table presence (
    user_id     uuid not null references users on delete cascade,
    instance_id uuid not null references gateway_instances on delete cascade,
    since       timestamptz not null default now(),
    primary key (user_id, instance_id)
);
create index presence_instance_idx on presence (instance_id);

-- One event as a notification line.
create function famcall_event_line(type text, users uuid[], src text,
                                   data jsonb)
returns text
language sql immutable
as $$
    select type || ' ' || array_to_string(users, ',') || ' '
           || coalesce(nullif(src, ''), '-') || ' ' || data::text
$$;

-- Notify lines, as few notifications as fit under the payload limit.
create function famcall_notify_lines(lines text[]) returns void
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    line  text;
    buf   text := '';
    f     text[];
begin
    foreach line in array coalesce(lines, '{}') loop
        if octet_length(line) > 7900 then
            -- only a message can be that big: announce it by id (jsonb
            -- text puts the shortest key, "id", first)
            f := regexp_match(line,
                     '^message:new (\S+) (\S+) \{"id": "([0-9a-f-]{36})"');
            if f is null then
                raise warning 'famcall: event too large to notify: %',
                    left(line, 40);
                continue;
            end if;
            line := 'message:ref ' || f[1] || ' ' || f[2]
                    || ' {"id": "' || f[3] || '"}';
        end if;
        if octet_length(buf) + octet_length(line) >= 7900 then
            perform pg_notify('famcall', buf);
            buf := '';
        end if;
        buf := case when buf = '' then line else buf || chr(10) || line end;
    end loop;
    if buf <> '' then
        perform pg_notify('famcall', buf);
    end if;
end
$$;

-- The batch of sends (006), now also announcing what it stored: message:new
-- to both users, except the socket that sent it (an item's optional "src").
-- Same rules and answers as 006; the decision query is unchanged but for
-- the extra columns it hands to the announcement.
create or replace function famcall_message_send_batch(items jsonb)
returns table (i int, status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
-- the plans are kept, not made anew for each batch's values
set plan_cache_mode = force_generic_plan
-- Every table here is reached by key. A plan is kept for the connection's
-- life, and one made while messages was small (a new database, analyzed)
-- scanned all of messages for each client_id long after it had grown, and
-- sends slowed to a fraction of the rate they came in at.
set enable_seqscan = off
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
            events := events || famcall_event_line('message:new',
                array[r.me, r.peer], r.src #>> '{}', r.answer);
        end if;
    end loop;

    if cardinality(events) > 0 then
        perform famcall_notify_lines(events);
    end if;
end
$$;

-- A worker fetches a message that was announced by reference (too big).
create function famcall_message_get(id uuid)
returns table (status int, body jsonb)
language sql stable
set search_path = pg_catalog, public, pg_temp
as $$
    select 200, famcall_message_json(m) from messages m
     where m.id = famcall_message_get.id
$$;

-- Receipts: whenever a member's delivered or read pointer moves (listing over
-- HTTP, POST .../read, the socket's message:delivered / message:read), the
-- row remembers the transaction (for sync) and both members' sockets hear of
-- it, except the socket that moved it (famcall.src, set by famcall_receipt).
create function famcall_member_stamp() returns trigger
language plpgsql
as $$
begin
    new.txid := pg_current_xact_id();
    return new;
end
$$;

create trigger conversation_members_stamp
    before update of last_read_seq, last_delivered_seq on conversation_members
    for each row
    when (new.last_read_seq is distinct from old.last_read_seq
          or new.last_delivered_seq is distinct from old.last_delivered_seq)
    execute function famcall_member_stamp();

create function famcall_member_announce() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    users  uuid[];
    src    text := current_setting('famcall.src', true);
    evs    text[] := '{}';
begin
    select array[c.user_lo, c.user_hi] into users
      from conversations c where c.id = new.conversation_id;

    if new.last_delivered_seq > old.last_delivered_seq then
        evs := evs || famcall_event_line('message:delivered', users, src,
            jsonb_build_object('conversation_id', new.conversation_id,
                               'user_id', new.user_id,
                               'up_to_seq', new.last_delivered_seq));
    end if;
    if new.last_read_seq > old.last_read_seq then
        evs := evs || famcall_event_line('message:read', users, src,
            jsonb_build_object('conversation_id', new.conversation_id,
                               'user_id', new.user_id,
                               'up_to_seq', new.last_read_seq));
    end if;

    perform famcall_notify_lines(evs);
    return null;
end
$$;

create trigger conversation_members_announce
    after update of last_read_seq, last_delivered_seq on conversation_members
    for each row
    when (new.last_read_seq > old.last_read_seq
          or new.last_delivered_seq > old.last_delivered_seq)
    execute function famcall_member_announce();

-- A member's read or delivered pointer, moved forward to up_to_seq (never
-- past the conversation's last seq, never back), with read_at / delivered_at
-- set on the other side's messages it passes. Reading delivers too. One
-- function for both, and for POST .../read (famcall_conversation_read, from
-- 003, now calls it) and the socket's receipts.
create function famcall_pointer_move(me uuid, conversation uuid,
                                     up_to_seq bigint, is_read boolean)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    cur   bigint;
    last  bigint;
    ptr   bigint;
begin
    if up_to_seq is null or up_to_seq < 0 then
        return query select 422, famcall_err('invalid_field',
            'must be a non-negative integer', 'up_to_seq');
        return;
    end if;

    select case when is_read then cm.last_read_seq
                else cm.last_delivered_seq end, c.last_seq
      into cur, last
      from conversation_members cm
      join conversations c on c.id = cm.conversation_id
     where cm.conversation_id = famcall_pointer_move.conversation
       and cm.user_id = me;
    if not found then
        return query select 404, famcall_err('not_found',
            'no such conversation');
        return;
    end if;

    ptr := least(up_to_seq, last);
    if ptr > cur then
        -- again under the row lock: a concurrent move may have gone further
        select case when is_read then cm.last_read_seq
                    else cm.last_delivered_seq end
          into cur
          from conversation_members cm
         where cm.conversation_id = famcall_pointer_move.conversation
           and cm.user_id = me
           for no key update;
        if ptr > cur then
            update conversation_members cm
               set last_read_seq = case when is_read then ptr
                                        else cm.last_read_seq end,
                   last_delivered_seq = greatest(cm.last_delivered_seq, ptr)
             where cm.conversation_id = famcall_pointer_move.conversation
               and cm.user_id = me;

            -- everything up to cur was marked when the pointer got there
            update messages m
               set read_at = case when is_read then now() else m.read_at end,
                   delivered_at = coalesce(m.delivered_at, now())
             where m.conversation_id = famcall_pointer_move.conversation
               and m.seq > cur and m.seq <= ptr
               and m.sender_id <> me
               and (case when is_read then m.read_at
                         else m.delivered_at end) is null;
        end if;
    end if;

    return query select 204, null::jsonb;
end
$$;

create or replace function famcall_conversation_read(me uuid,
    conversation uuid, up_to_seq bigint)
returns table (status int, body jsonb)
language sql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
    select * from famcall_pointer_move(me, conversation, up_to_seq, true)
$$;

-- A receipt from a socket: kind is 'delivered' or 'read'; src is the socket.
create function famcall_receipt(me uuid, conversation uuid, kind text,
                                up_to_seq bigint, src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
begin
    perform set_config('famcall.src', coalesce(src, ''), true);
    return query select * from famcall_pointer_move(me, conversation,
                                                    up_to_seq, kind = 'read');
end
$$;

-- typing: not stored; to the other member, if they may talk at all.
create function famcall_typing(me uuid, conversation uuid, state text,
                               src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    peer uuid;
begin
    select case when c.user_lo = me then c.user_hi else c.user_lo end
      into peer
      from conversations c
     where c.id = conversation and (c.user_lo = me or c.user_hi = me);
    if not found then
        return query select 404, famcall_err('not_found',
            'no such conversation');
        return;
    end if;
    if famcall_blocked_either(me, peer) then
        return query select 403, famcall_err('blocked',
            'one of you has blocked the other');
        return;
    end if;

    perform famcall_notify_lines(array[famcall_event_line('typing',
        array[peer], src,
        jsonb_build_object('conversation_id', conversation, 'user_id', me,
                           'state', state))]);
    return query select 204, null::jsonb;
end
$$;

-- Presence. The accepted contacts of me (a block removes the contact, so
-- never across a block) hear it, in chunks of recipients.
create function famcall_presence_announce(me uuid, online boolean,
                                          last_seen timestamptz)
returns void
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    evs text[];
begin
    select array_agg(famcall_event_line('presence', g.users, null,
               jsonb_build_object('user_id', me, 'online', online,
                                  'last_seen', famcall_ts(last_seen))))
      into evs
      from (select array_agg(k.contact_id) as users
              from (select k.contact_id,
                           (row_number() over ()) / 150 as grp
                      from contacts k
                     where k.user_id = me and k.status = 'accepted'
                       and not famcall_blocked_either(me, k.contact_id)) k
             group by k.grp) g;

    perform famcall_notify_lines(evs);
end
$$;

-- A worker's first socket of user me opened (online) or its last one closed.
create function famcall_presence(instance uuid, me uuid, online boolean)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    others  boolean;
    seen    timestamptz;
begin
    -- one user's presence changes one at a time, so the first up and the
    -- last down are each seen by exactly one transaction
    perform pg_advisory_xact_lock(hashtextextended(me::text, 5));

    if online then
        insert into presence (user_id, instance_id) values (me, instance)
            on conflict do nothing;
        if not found then
            return query select 204, null::jsonb;
            return;
        end if;
    else
        delete from presence p where p.user_id = me and p.instance_id = instance;
        if not found then
            return query select 204, null::jsonb;
            return;
        end if;
    end if;

    others := exists (select 1 from presence p
                       where p.user_id = me and p.instance_id <> instance);
    if not others then
        if not online then
            update users u set last_seen_at = now() where u.id = me
            returning u.last_seen_at into seen;
        else
            select u.last_seen_at into seen from users u where u.id = me;
        end if;
        perform famcall_presence_announce(me, online, seen);
    end if;

    return query select 204, null::jsonb;
end
$$;

-- A gateway instance is gone (it exited, or it died: its host saw the pid
-- gone, or it stopped beating): its users without another socket go offline.
create function famcall_instance_sweep(instance uuid)
returns table (status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    u uuid;
begin
    for u in select p.user_id from presence p
              where p.instance_id = instance order by p.user_id loop
        perform famcall_presence(instance, u, false);
    end loop;
    delete from gateway_instances g where g.id = instance;
    return query select 204, null::jsonb;
end
$$;

-- A worker starts: it registers, and hears of the other instances on its host
-- (it checks whether their pids live) and of any instance anywhere that has
-- not beaten for 3 minutes (swept here).
create function famcall_instance_register(instance uuid, host text, pid int)
returns table (status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    g uuid;
begin
    insert into gateway_instances (id, host, pid)
        values (instance, famcall_instance_register.host,
                famcall_instance_register.pid)
        on conflict (id) do update set heartbeat_at = now();

    for g in select x.id from gateway_instances x
              where x.heartbeat_at < now() - interval '3 minutes' loop
        perform famcall_instance_sweep(g);
    end loop;

    return query select 200, coalesce(jsonb_agg(jsonb_build_object(
            'id', x.id, 'pid', x.pid)), '[]')
      from gateway_instances x
     where x.host = famcall_instance_register.host and x.id <> instance;
end
$$;

-- sync: what a device missed since its cursor (docs/websocket.md).
-- A cursor is "S" (a snapshot: everything visible in it was returned) or,
-- between the pages of one sync, "S0~S1~txid~conversation~seq" (everything
-- visible in S1 and not in S0, after that key, is still to come).
create function famcall_sync(me uuid, since text, lim int)
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
              join messages m on m.conversation_id = cm.conversation_id
             where cm.user_id = me
               and (s0 is null or m.txid >= pg_snapshot_xmin(s0))
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
