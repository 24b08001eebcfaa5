-- WebRTC signaling between a call's two bound devices (docs/websocket.md,
-- "Relay"): webrtc:offer, webrtc:answer, webrtc:ice.  Never stored: the
-- function authorises the relay from the calls row (019) and either hands
-- the event's bus line back to the node that asked, when the peer's bound
-- socket is on one of its workers (here, as sql/018 does for typing), or
-- notifies it.  A relay is ephemeral, so its transaction does not wait for
-- the WAL flush (synchronous_commit off for this transaction only); a
-- relay lost in a crash is one the peers retry, and call state changes
-- still commit durably.
--
-- Errors: not_found (no such call, or not yours: a third user's candidates
-- end here), wrong_state (the call is not accepted: an offer before the
-- answer, or after the end), not_bound (a device of a participant that is
-- not the call's bound device), too_large (an event over the bus's
-- payload limit, to a peer on another node).

create function famcall_call_relay(me uuid, c_id uuid, type text, sdp text,
                                   candidate text, sdp_mid text,
                                   sdp_mline_index int, src text, here uuid[])
returns table (status int, body jsonb, local text)
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
            null::text;
        return;
    end if;
    if c.status <> 'accepted' then
        return query select 409, famcall_err('wrong_state',
            'the call is ' || c.status || ': nothing is relayed'), null::text;
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
            'this device is not the one in the call'), null::text;
        return;
    end if;

    line := famcall_event_line(type, array[peer], '=' || psrc,
        case when type = 'webrtc:ice' then
            jsonb_build_object('call_id', c.id, 'candidate', candidate,
                               'sdp_mid', sdp_mid,
                               'sdp_mline_index', sdp_mline_index)
        else
            jsonb_build_object('call_id', c.id, 'sdp', sdp)
        end);

    -- this node's workers pass an event to one another in one datagram
    -- (60 KB, ngx_famcall_ipc.h), the bus in one notification (8000 bytes)
    if split_part(psrc, '.', 1)::uuid = any (coalesce(here, '{}')) then
        if octet_length(line) > 60 * 1024 - 200 then
            return query select 413, famcall_err('too_large',
                'too large to relay', 'sdp'), null::text;
            return;
        end if;
        return query select 200, null::jsonb, line;
        return;
    end if;

    if octet_length(line) > 7900 then
        return query select 413, famcall_err('too_large',
            'too large to reach the other side''s node', 'sdp'), null::text;
        return;
    end if;

    perform pg_notify('famcall', line);
    return query select 200, null::jsonb, null::text;
end
$$;
