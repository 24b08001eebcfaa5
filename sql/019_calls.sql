-- Call signaling: the state machine of a 1:1 call (docs/websocket.md,
-- "Calls").  The calls row (001) is the truth; every transition is one
-- function, one round trip, and a conditional update of status, so "the
-- first device to accept wins" holds across workers and nodes.  Each
-- function tells the sockets concerned with bus lines (sql/008) from the
-- same transaction, so nothing is announced that did not commit.
--
--     ringing --accept--> accepted --end--> ended
--        |--reject--> rejected
--        |--cancel--> cancelled
--        '--ring deadline (sweeper)--> missed (end_reason timeout)
--     (an invite to someone already in a call is stored as busy)
--
-- A call has two bound devices, by their socket's src ("<instance>.<id>",
-- as on the bus): the caller's socket that invited, and the callee's that
-- accepted.  Events for one device go to that socket alone (src "=<src>").
--
-- Lock order: an invite takes the advisory lock of each of the two users
-- (class 7, in id order) before it reads their calls, so a user enters at
-- most one ringing or accepted call, and the pair lock (3, sql/003) is not
-- needed: the two user locks already serialise both directions of a pair
-- (glare).  Transitions of an existing call lock only its row (the
-- conditional update); the sweeper takes rows with SKIP LOCKED, so any
-- number of workers of any node may run it at once.
--
-- Errors: not_found (no such call, or not yours: one answer for both, as
-- for conversations), wrong_state (the call is not in a state for that
-- event, or you are not the side that may send it), answered_elsewhere.

alter table calls
    add column caller_src    text,
    add column callee_src    text,
    add column ring_deadline timestamptz;

-- the calls still going: the busy check, and the sweeper's walk
create index calls_caller_active_idx on calls (caller_id)
    where status in ('ringing', 'accepted');
create index calls_callee_active_idx on calls (callee_id)
    where status in ('ringing', 'accepted');
create index calls_ringing_deadline_idx on calls (ring_deadline)
    where status = 'ringing';

-- The call object clients see.
create function famcall_call_json(c calls) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'call_id', c.id,
        'caller_id', c.caller_id,
        'callee_id', c.callee_id,
        'media', c.media,
        'status', c.status,
        'created_at', public.famcall_ts(c.created_at),
        'answered_at', public.famcall_ts(c.answered_at),
        'ended_at', public.famcall_ts(c.ended_at),
        'end_reason', c.end_reason)
$$;

-- Whether u is in a call that still rings or goes on.
create function famcall_call_active(u uuid) returns boolean
language sql stable
as $$
    select exists (select 1 from public.calls c
                    where c.caller_id = u
                      and c.status in ('ringing', 'accepted'))
        or exists (select 1 from public.calls c
                    where c.callee_id = u
                      and c.status in ('ringing', 'accepted'))
$$;

-- One user's calls serialise on this lock (class 7); take both sides' in
-- id order.
create function famcall_call_user_locks(a uuid, b uuid) returns void
language sql
as $$
    select pg_catalog.pg_advisory_xact_lock(7,
               pg_catalog.hashtext(least(a, b)::text)),
           pg_catalog.pg_advisory_xact_lock(7,
               pg_catalog.hashtext(greatest(a, b)::text))
$$;

-- An accept: the callee's socket src takes the ringing call c.  Returns
-- the accepted row, or nothing when another device (or a cancel, a
-- timeout) got there first.  Tells the caller's bound socket (call:accept)
-- and the callee's other sockets (call:answered_elsewhere).
create function famcall_call_take(c_id uuid, me uuid, src text)
returns calls
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c calls;
begin
    update calls k
       set status = 'accepted', answered_at = now(), callee_src = src,
           answered_device = src, ring_deadline = null
     where k.id = c_id and k.callee_id = me and k.status = 'ringing'
    returning * into c;
    if not found then
        return null;
    end if;

    perform famcall_notify_lines(array[
        famcall_event_line('call:accept', array[c.caller_id],
            '=' || c.caller_src,
            jsonb_build_object('call_id', c.id, 'media', c.media)),
        famcall_event_line('call:answered_elsewhere', array[c.callee_id],
            src, jsonb_build_object('call_id', c.id))]);
    return c;
end
$$;

-- call:invite.  me invites callee from socket src; ring_ms: the ring
-- timeout; per_minute: invites a user may place in a minute.
-- 200 {call_id, status}: status ringing (the callee's sockets got
-- call:invite), busy (one of the two was in a call already: the caller's
-- socket gets call:busy too), or accepted: glare, the callee was calling
-- me at that moment, and this invite answered that call (its call_id).
create function famcall_call_invite(me uuid, callee uuid, media text,
                                    src text, ring_ms int, per_minute int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c       calls;
    g       calls;
    caller  users;
    busy    text;
begin
    if callee = me then
        return query select 422, famcall_err('invalid_field',
            'you cannot call yourself', 'to_user_id');
        return;
    end if;
    if media is null or media not in ('video', 'audio') then
        return query select 422, famcall_err('invalid_field',
            'must be "video" or "audio"', 'media');
        return;
    end if;

    select * into caller from users u where u.id = me;
    if not found then
        return query select 401, famcall_err('unauthorized',
            'this account no longer exists');
        return;
    end if;
    if not exists (select 1 from users u where u.id = callee) then
        return query select 404, famcall_err('not_found', 'no such user');
        return;
    end if;

    perform famcall_call_user_locks(me, callee);

    if famcall_blocked_either(me, callee) then
        return query select 403, famcall_err('blocked',
            'one of you has blocked the other');
        return;
    end if;
    if not exists (select 1 from contacts k
                    where k.user_id = me and k.contact_id = callee
                      and k.status = 'accepted') then
        return query select 403, famcall_err('not_a_contact',
            'you can only call accepted contacts');
        return;
    end if;

    if (select count(*) from calls k
         where k.caller_id = me
           and k.created_at > now() - interval '1 minute') >= per_minute then
        return query select 429, famcall_err('rate_limited',
            'too many calls placed in the last minute');
        return;
    end if;

    -- Glare: the callee is ringing me right now.  Two calls would ring
    -- both and neither would be answered; this invite answers that call
    -- instead, from this socket, and the two are in one call.
    select * into g from calls k
     where k.caller_id = callee and k.callee_id = me and k.status = 'ringing';
    if found then
        g := famcall_call_take(g.id, me, src);
        if g.id is not null then
            return query select 200, jsonb_build_object(
                'call_id', g.id, 'status', 'accepted', 'glare', true,
                'media', g.media);
            return;
        end if;
    end if;

    if famcall_call_active(callee) then
        busy := 'callee_busy';
    elsif famcall_call_active(me) then
        busy := 'caller_busy';
    end if;

    insert into calls (caller_id, callee_id, media, status, caller_src,
                       ring_deadline, ended_at, end_reason)
    values (me, callee, media,
            case when busy is null then 'ringing' else 'busy' end, src,
            case when busy is null
                 then now() + make_interval(secs => ring_ms / 1000.0) end,
            case when busy is null then null else now() end, busy)
    returning * into c;

    if busy is not null then
        perform famcall_notify_lines(array[
            famcall_event_line('call:busy', array[me], '=' || src,
                jsonb_build_object('call_id', c.id, 'reason', busy))]);
        return query select 200, jsonb_build_object(
            'call_id', c.id, 'status', 'busy', 'reason', busy);
        return;
    end if;

    -- Every socket of the callee rings, on any node.  The caller hears
    -- call:ringing when the callee is online (a presence row: a socket
    -- open somewhere), from this same transaction.
    perform famcall_notify_lines(array[
        famcall_event_line('call:invite', array[callee], null,
            jsonb_build_object('call_id', c.id,
                'from', famcall_public_user_json(caller),
                'media', c.media,
                'expires_at', famcall_ts(c.ring_deadline)))]
        || case when exists (select 1 from presence p
                              where p.user_id = callee)
           then array[famcall_event_line('call:ringing', array[me],
                    '=' || src, jsonb_build_object('call_id', c.id))]
           else '{}'::text[] end);

    return query select 200, jsonb_build_object(
        'call_id', c.id, 'status', 'ringing',
        'expires_at', famcall_ts(c.ring_deadline));
end
$$;

-- The call c_id as me sees it, or null: not a call of me's.
create function famcall_call_of(c_id uuid, me uuid) returns calls
language sql stable
as $$
    select k.* from public.calls k
     where k.id = c_id and (k.caller_id = me or k.callee_id = me)
$$;

-- The error for an event on call c that its status refuses.
create function famcall_call_state_err(c calls, what text) returns jsonb
language sql stable
as $$
    select public.famcall_err(
        case when what = 'accept' and c.status = 'accepted'
             then 'answered_elsewhere' else 'wrong_state' end,
        'the call is ' || c.status || ': call:' || what || ' is refused')
$$;

-- call:accept from the callee's socket src.
create function famcall_call_accept(me uuid, c_id uuid, src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c calls;
begin
    c := famcall_call_of(c_id, me);
    if c.id is null then
        return query select 404, famcall_err('not_found', 'no such call');
        return;
    end if;
    if c.callee_id <> me then
        return query select 409, famcall_err('wrong_state',
            'only the callee accepts a call');
        return;
    end if;

    c := famcall_call_take(c_id, me, src);
    if c.id is null then
        c := famcall_call_of(c_id, me);
        return query select 409, famcall_call_state_err(c, 'accept');
        return;
    end if;

    return query select 200, jsonb_build_object('call_id', c.id,
        'status', 'accepted', 'media', c.media);
end
$$;

-- call:reject (the callee, while it rings) and call:cancel (the caller,
-- while it rings).  The other side hears it: the caller's bound socket,
-- or every socket of the callee; the callee's other sockets stop ringing.
create function famcall_call_stop(me uuid, c_id uuid, what text, src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c    calls;
    ev   text := 'call:' || what;
    d    jsonb;
begin
    c := famcall_call_of(c_id, me);
    if c.id is null then
        return query select 404, famcall_err('not_found', 'no such call');
        return;
    end if;
    if (what = 'reject' and c.callee_id <> me)
       or (what = 'cancel' and c.caller_id <> me) then
        return query select 409, famcall_err('wrong_state',
            case when what = 'reject' then 'only the callee rejects a call'
                 else 'only the caller cancels a call' end);
        return;
    end if;

    update calls k
       set status = case when what = 'reject' then 'rejected'
                         else 'cancelled' end,
           ended_at = now(),
           end_reason = case when what = 'reject' then 'rejected'
                             else 'cancelled' end,
           ring_deadline = null
     where k.id = c_id and k.status = 'ringing'
    returning * into c;
    if not found then
        c := famcall_call_of(c_id, me);
        return query select 409, famcall_call_state_err(c, what);
        return;
    end if;

    d := jsonb_build_object('call_id', c.id);
    if what = 'reject' then
        perform famcall_notify_lines(array[
            famcall_event_line(ev, array[c.caller_id], '=' || c.caller_src, d),
            famcall_event_line(ev, array[c.callee_id], src, d)]);
    else
        perform famcall_notify_lines(array[
            famcall_event_line(ev, array[c.callee_id], null, d)]);
    end if;

    return query select 200, jsonb_build_object('call_id', c.id,
        'status', c.status);
end
$$;

-- call:end, by either side of an accepted call, with a reason (checked by
-- the module: a short word).  The other side's bound socket hears it.
create function famcall_call_end(me uuid, c_id uuid, reason text, src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c     calls;
    peer  uuid;
    psrc  text;
begin
    c := famcall_call_of(c_id, me);
    if c.id is null then
        return query select 404, famcall_err('not_found', 'no such call');
        return;
    end if;

    update calls k
       set status = 'ended', ended_at = now(),
           end_reason = coalesce(reason, 'hangup')
     where k.id = c_id and k.status = 'accepted'
    returning * into c;
    if not found then
        c := famcall_call_of(c_id, me);
        return query select 409, famcall_call_state_err(c, 'end');
        return;
    end if;

    if c.caller_id = me then
        peer := c.callee_id;
        psrc := c.callee_src;
    else
        peer := c.caller_id;
        psrc := c.caller_src;
    end if;

    perform famcall_notify_lines(array[
        famcall_event_line('call:end', array[peer], '=' || psrc,
            jsonb_build_object('call_id', c.id, 'reason', c.end_reason))]);

    return query select 200, jsonb_build_object('call_id', c.id,
        'status', c.status, 'reason', c.end_reason);
end
$$;

-- The sweeper: calls still ringing past their deadline are missed
-- (end_reason timeout); both sides hear call:timeout (the caller's bound
-- socket, every socket of the callee).  Any worker of any node runs it on
-- a timer; SKIP LOCKED lets them run side by side, each ending different
-- calls, so a call ends on time whichever nodes are alive.  At most lim
-- calls a round; 200 {"ended": n}.
create function famcall_call_sweep(lim int)
returns table (status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    evs  text[] := '{}';
    c    calls;
    n    int := 0;
    d    jsonb;
begin
    for c in
        update calls k
           set status = 'missed', ended_at = now(), end_reason = 'timeout',
               ring_deadline = null
         where k.id in (select x.id from calls x
                         where x.status = 'ringing'
                           and x.ring_deadline <= now()
                         order by x.ring_deadline
                         limit lim
                           for update skip locked)
        returning k.*
    loop
        d := jsonb_build_object('call_id', c.id);
        evs := evs
            || famcall_event_line('call:timeout', array[c.caller_id],
                   '=' || c.caller_src, d)
            || famcall_event_line('call:timeout', array[c.callee_id], null, d);
        n := n + 1;
    end loop;

    if n > 0 then
        perform famcall_notify_lines(evs);
    end if;

    return query select 200, jsonb_build_object('ended', n);
end
$$;
