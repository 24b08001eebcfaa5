-- Calls, continued (docs/websocket.md "Reconnect grace"): the sweeper
-- looks at every call going on.  021's pass over accepted calls took the
-- first lim * 10 of them (1,000) and locked them, every round of every
-- worker: past a thousand calls going on, the others were never looked at,
-- so a side lost there never ended its call, and the thousand were locked
-- every second against their own accept, end and resume.
--
-- Now one pass at a time, and at most one a second wherever the
-- sweepers run (a gate row, taken with SKIP LOCKED: a sweeper that finds it
-- taken or recent skips the pass), reads every accepted call without
-- locking it and updates only the rows whose lost stamps change.  The
-- stamps follow the bound sockets at that moment: a row whose bound socket
-- changed meanwhile (a resume) is left to the next pass.

create table call_sweep_gate (
    id            int primary key check (id = 1),
    lost_pass_at  timestamptz not null
);
insert into call_sweep_gate values (1, '-infinity');

create or replace function famcall_call_sweep(lim int, grace_ms int)
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

    -- the lost stamps follow the bound sockets, in one pass at a time
    perform 1 from call_sweep_gate s
     where s.id = 1 and s.lost_pass_at <= now() - interval '1 second'
       for update skip locked;
    if found then
        update call_sweep_gate s set lost_pass_at = now() where s.id = 1;

        -- worked out once, unlocked; only the changes are joined back
        with g as materialized (
            select x.id, x.caller_src, x.callee_src,
                   x.caller_lost_at, x.callee_lost_at,
                   famcall_call_src_gone(x.caller_id, x.caller_src)
                       as caller_gone,
                   famcall_call_src_gone(x.callee_id, x.callee_src)
                       as callee_gone
              from calls x
             where x.status = 'accepted'),
        ch as materialized (
            select g.* from g
             where (g.caller_lost_at is null) = g.caller_gone
                or (g.callee_lost_at is null) = g.callee_gone)
        update calls k
           set caller_lost_at = case when ch.caller_gone
                                     then coalesce(k.caller_lost_at, now())
                                end,
               callee_lost_at = case when ch.callee_gone
                                     then coalesce(k.callee_lost_at, now())
                                end
          from ch
         where k.id = ch.id
           and k.status = 'accepted'
           and k.caller_src is not distinct from ch.caller_src
           and k.callee_src is not distinct from ch.callee_src;
    end if;

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
