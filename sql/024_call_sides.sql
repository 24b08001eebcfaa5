-- Calls, continued (docs/websocket.md "Calls"): a side's devices agree on
-- what the call is.  A user may hang up or cancel from another of its
-- devices than the call's bound one, or take the call over from another
-- device (call:resume); 019 and 021 told only the other side, so the bound
-- device went on showing a call that was over, or no longer its own.  Now
-- that device hears it too: call:end, call:cancel, or
-- call:answered_elsewhere when another device of its user took the call.

create or replace function famcall_call_stop(me uuid, c_id uuid, what text,
                                             src text)
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
        -- the callee's devices but this one stop ringing
        perform famcall_notify_lines(array[
            famcall_event_line(ev, array[c.caller_id], '=' || c.caller_src, d),
            famcall_event_line(ev, array[c.callee_id], src, d)]);
    else
        -- and the caller's inviting device, when another one cancelled
        perform famcall_notify_lines(array[
            famcall_event_line(ev, array[c.callee_id], null, d)]
            || case when c.caller_src <> src
               then array[famcall_event_line(ev, array[c.caller_id],
                              '=' || c.caller_src, d)]
               else '{}'::text[] end);
    end if;

    return query select 200, jsonb_build_object('call_id', c.id,
        'status', c.status);
end
$$;

create or replace function famcall_call_end(me uuid, c_id uuid, reason text,
                                            src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c     calls;
    peer  uuid;
    psrc  text;
    own   text;
    d     jsonb;
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
        own := c.caller_src;
    else
        peer := c.caller_id;
        psrc := c.caller_src;
        own := c.callee_src;
    end if;

    d := jsonb_build_object('call_id', c.id, 'reason', c.end_reason);
    perform famcall_notify_lines(array[
        famcall_event_line('call:end', array[peer], '=' || psrc, d)]
        || case when own <> src
           then array[famcall_event_line('call:end', array[me], '=' || own,
                                         d)]
           else '{}'::text[] end);

    return query select 200, jsonb_build_object('call_id', c.id,
        'status', c.status, 'reason', c.end_reason);
end
$$;

-- call:resume (021), now taking the row lock first: the side's device it
-- replaces is read under it, so two devices resuming at once each tell
-- the one they replace.
create or replace function famcall_call_resume(me uuid, c_id uuid, src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c     calls;
    old   text;
    peer  uuid;
    psrc  text;
    d     jsonb;
begin
    select * into c from calls k
     where k.id = c_id and (k.caller_id = me or k.callee_id = me)
       for update;
    if not found then
        return query select 404, famcall_err('not_found', 'no such call');
        return;
    end if;
    if c.status <> 'accepted' then
        return query select 409, famcall_call_state_err(c, 'resume');
        return;
    end if;

    if c.caller_id = me then
        old := c.caller_src;
    else
        old := c.callee_src;
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
     where k.id = c_id
    returning * into c;

    if c.caller_id = me then
        peer := c.callee_id;
        psrc := c.callee_src;
    else
        peer := c.caller_id;
        psrc := c.caller_src;
    end if;

    d := jsonb_build_object('call_id', c.id);
    perform famcall_notify_lines(array[
        famcall_event_line('call:resume', array[peer], '=' || psrc, d)]
        || case when old <> src
           then array[famcall_event_line('call:answered_elsewhere',
                          array[me], '=' || old, d)]
           else '{}'::text[] end);

    return query select 200, jsonb_build_object('call_id', c.id,
        'status', c.status, 'media', c.media,
        'role', case when c.caller_id = me then 'caller' else 'callee' end);
end
$$;
