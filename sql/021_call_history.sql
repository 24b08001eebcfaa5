-- Calls, continued (docs/websocket.md "Calls", docs/api.md "Calls"): the
-- reconnect grace, the history and each side's quality report.
--
-- Reconnect grace.  A side of an accepted call is lost when its bound
-- socket's worker no longer has a presence row of that user (sql/008: a
-- worker's row goes when the user's last socket there closes, or when the
-- worker or its node is swept as dead).  The sweeper stamps the side's
-- lost_at, clears it when the row is back, and ends the call with
-- connection_lost once a side stayed lost past the grace.  A participant
-- that comes back, on any node, sends call:resume from its new socket:
-- that socket becomes the side's bound device and the peer's hears
-- call:resume (and renegotiates: an ICE restart).

alter table calls
    add column caller_lost_at timestamptz,
    add column callee_lost_at timestamptz;

-- the sweeper's walk over the calls going on
create index calls_accepted_idx on calls (id) where status = 'accepted';

-- history pages: newest first, per side (001's indexes on (user, created_at))

-- A participant's quality report, once per participant (docs/api.md).
create table call_stats (
    call_id             uuid not null references calls on delete cascade,
    user_id             uuid not null references users on delete cascade,
    local_type          text check (local_type in
                            ('host', 'srflx', 'prflx', 'relay')),
    remote_type         text check (remote_type in
                            ('host', 'srflx', 'prflx', 'relay')),
    rtt_ms              int,
    packet_loss         real check (packet_loss between 0 and 1),
    bitrate_in          bigint,
    bitrate_out         bigint,
    setup_ringing_ms    int,
    setup_ice_ms        int,
    setup_first_frame_ms int,
    created_at          timestamptz not null default now(),
    primary key (call_id, user_id)
);
create index call_stats_user_idx on call_stats (user_id);

-- Whether the bound socket src of user u is gone: its worker has no
-- presence row of u.
create function famcall_call_src_gone(u uuid, src text) returns boolean
language sql stable
as $$
    select src is null or not exists (
        select 1 from public.presence p
         where p.user_id = u
           and p.instance_id = pg_catalog.split_part(src, '.', 1)::uuid)
$$;

drop function famcall_call_sweep(int);

-- The sweeper (019), now also for accepted calls: a side whose bound
-- socket is gone is stamped lost; lost past grace_ms, the call ends with
-- connection_lost and both bound sockets hear call:end.
create function famcall_call_sweep(lim int, grace_ms int)
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

    -- the lost stamps follow the presence rows
    update calls k
       set caller_lost_at = case when g.caller_gone
                                 then coalesce(k.caller_lost_at, now()) end,
           callee_lost_at = case when g.callee_gone
                                 then coalesce(k.callee_lost_at, now()) end
      from (select x.id,
                   famcall_call_src_gone(x.caller_id, x.caller_src)
                       as caller_gone,
                   famcall_call_src_gone(x.callee_id, x.callee_src)
                       as callee_gone
              from calls x
             where x.status = 'accepted'
             limit lim * 10
               for update skip locked) g
     where k.id = g.id
       and ((k.caller_lost_at is null) = g.caller_gone
            or (k.callee_lost_at is null) = g.callee_gone);

    for c in
        update calls k
           set status = 'ended', ended_at = now(),
               end_reason = 'connection_lost'
         where k.id in (select x.id from calls x
                         where x.status = 'accepted'
                           and least(x.caller_lost_at, x.callee_lost_at)
                               <= now() - make_interval(
                                             secs => grace_ms / 1000.0)
                         limit lim
                           for update skip locked)
        returning k.*
    loop
        d := jsonb_build_object('call_id', c.id, 'reason', 'connection_lost');
        evs := evs
            || famcall_event_line('call:end', array[c.caller_id],
                   '=' || c.caller_src, d)
            || famcall_event_line('call:end', array[c.callee_id],
                   '=' || c.callee_src, d);
        n := n + 1;
    end loop;

    if n > 0 then
        perform famcall_notify_lines(evs);
    end if;

    return query select 200, jsonb_build_object('ended', n);
end
$$;

-- call:resume: a participant's new socket src takes its side of an
-- accepted call back (after a reconnect, or from another device); the
-- peer's bound socket hears call:resume.
create function famcall_call_resume(me uuid, c_id uuid, src text)
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
       set caller_src = case when k.caller_id = me then src
                             else k.caller_src end,
           caller_lost_at = case when k.caller_id = me then null
                                 else k.caller_lost_at end,
           callee_src = case when k.callee_id = me then src
                             else k.callee_src end,
           callee_lost_at = case when k.callee_id = me then null
                                 else k.callee_lost_at end
     where k.id = c_id and k.status = 'accepted'
    returning * into c;
    if not found then
        c := famcall_call_of(c_id, me);
        return query select 409, famcall_call_state_err(c, 'resume');
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
        famcall_event_line('call:resume', array[peer], '=' || psrc,
            jsonb_build_object('call_id', c.id))]);

    return query select 200, jsonb_build_object('call_id', c.id,
        'status', c.status, 'media', c.media,
        'role', case when c.caller_id = me then 'caller' else 'callee' end);
end
$$;

-- GET /v1/calls: me's calls, newest first, before a time (exclusive), at
-- most lim; each with the other party and whether it was missed (an
-- incoming call that was never answered).
create function famcall_calls_page(me uuid, before timestamptz, lim int)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select 200, jsonb_build_object('calls', coalesce(
        (select jsonb_agg(public.famcall_call_json(x.c)
                          || jsonb_build_object(
                              'direction', case when (x.c).caller_id = me
                                                then 'outgoing'
                                                else 'incoming' end,
                              'missed', (x.c).callee_id = me
                                        and (x.c).answered_at is null
                                        and (x.c).status not in
                                            ('ringing', 'rejected'),
                              'peer', public.famcall_public_user_json(u))
                          order by (x.c).created_at desc, (x.c).id desc)
           from (select k as c from (
                     (select k from public.calls k
                       where k.caller_id = me
                         and (before is null or k.created_at < before)
                       order by k.created_at desc limit lim)
                     union all
                     (select k from public.calls k
                       where k.callee_id = me
                         and (before is null or k.created_at < before)
                       order by k.created_at desc limit lim)) y (k)
                  order by (y.k).created_at desc, (y.k).id desc
                  limit lim) x
           join public.users u
             on u.id = case when (x.c).caller_id = me then (x.c).callee_id
                            else (x.c).caller_id end),
        '[]'::jsonb))
$$;

-- before: RFC 3339 text (the module checked its characters); a time that
-- is not one (a 31st of February) is a 422, not an error.
create function famcall_calls_list(me uuid, before text, lim int)
returns table (status int, body jsonb)
language plpgsql stable rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    t timestamptz;
begin
    if lim is null or lim < 1 or lim > 100 then
        return query select 422, famcall_err('invalid_field',
            'must be an integer from 1 to 100', 'limit');
        return;
    end if;
    begin
        t := before::timestamptz;
    exception when others then
        return query select 422, famcall_err('invalid_field',
            'must be an RFC 3339 time', 'before');
        return;
    end;
    return query select * from famcall_calls_page(me, t, lim);
end
$$;

-- POST /v1/calls/{id}/stats: the module checked the fields' types and
-- bounds (but packet_loss, a number from 0 to 1, checked here).  Once per
-- participant, once the call has ended.
create function famcall_call_stats(me uuid, c_id uuid, s jsonb)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c     calls;
    loss  real;
begin
    c := famcall_call_of(c_id, me);
    if c.id is null then
        return query select 404, famcall_err('not_found', 'no such call');
        return;
    end if;

    if s ? 'packet_loss' then
        if jsonb_typeof(s->'packet_loss') <> 'number'
           or (s->>'packet_loss')::numeric not between 0 and 1 then
            return query select 422, famcall_err('invalid_field',
                'must be a number from 0 to 1', 'packet_loss');
            return;
        end if;
        loss := (s->>'packet_loss')::real;
    end if;

    if c.ended_at is null then
        return query select 409, famcall_err('wrong_state',
            'report a call once it has ended');
        return;
    end if;

    insert into call_stats (call_id, user_id, local_type, remote_type,
                            rtt_ms, packet_loss, bitrate_in, bitrate_out,
                            setup_ringing_ms, setup_ice_ms,
                            setup_first_frame_ms)
    values (c.id, me, s->'selected_pair'->>'local_type',
            s->'selected_pair'->>'remote_type',
            (s->>'rtt_ms')::int, loss, (s->>'bitrate_in')::bigint,
            (s->>'bitrate_out')::bigint,
            (s->'setup_ms'->>'ringing')::int,
            (s->'setup_ms'->>'ice_connected')::int,
            (s->'setup_ms'->>'first_frame')::int)
    on conflict do nothing;
    if not found then
        return query select 409, famcall_err('already_reported',
            'this call''s report was sent already');
        return;
    end if;

    return query select 204, null::jsonb;
end
$$;
