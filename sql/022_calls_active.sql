-- call:active (docs/websocket.md, "Calls"): the calls a user is in right
-- now, for a socket that has just opened.  A device that connects while a
-- call rings for it learns of the call here (the invite's bus line went
-- out before the socket was there), and a participant back after a drop
-- learns which call to call:resume.  At most one is ringing or accepted
-- per user as caller or callee (019's per-user locks), so the list is
-- short; the partial indexes of 019 find it.
create function famcall_calls_active(me uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select 200, jsonb_build_object('calls', coalesce(
        (select jsonb_agg(public.famcall_call_json(k)
                          || jsonb_build_object(
                              'direction', case when k.caller_id = me
                                                then 'outgoing'
                                                else 'incoming' end,
                              'from', public.famcall_public_user_json(u),
                              'expires_at',
                                  public.famcall_ts(k.ring_deadline))
                          order by k.created_at)
           from public.calls k
           join public.users u on u.id = k.caller_id
          where (k.caller_id = me or k.callee_id = me)
            and k.status in ('ringing', 'accepted')),
        '[]'::jsonb))
$$;
