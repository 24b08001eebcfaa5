-- Calls, continued (docs/websocket.md "Calls", "Reconnect grace"): a bound
-- socket that closes while its user keeps another socket on the same
-- worker.  021 tells a side is lost by its user's presence row on the
-- bound socket's worker, and that row stays while any socket of the user
-- is open there, so such a side was never lost and the call never ended.
-- The worker now tells the database when a socket closes while its user
-- stays on the worker (ngx_http_famcall_calls_module.c); the socket is
-- remembered as closed if it is bound to an accepted call, and a side
-- whose bound socket is closed is gone (the sweeper stamps it lost, and
-- past the grace the call ends) until a call:resume binds another socket.
-- A src names one socket for good ("<instance>.<id>", ids never reused),
-- so nothing needs clearing when the side resumes.

create table call_closed_sockets (
    src        text primary key,
    closed_at  timestamptz not null default now()
);

-- 021's, with the closed sockets
create or replace function famcall_call_src_gone(u uuid, src text)
returns boolean
language sql stable
as $$
    select famcall_call_src_gone.src is null
        or exists (select 1 from public.call_closed_sockets k
                    where k.src = famcall_call_src_gone.src)
        or not exists (
            select 1 from public.presence p
             where p.user_id = u
               and p.instance_id = pg_catalog.split_part(
                       famcall_call_src_gone.src, '.', 1)::uuid)
$$;

-- The socket src of user me closed; its user has other sockets on the
-- same worker.  Remembered only when it is an accepted call's bound
-- socket; remembered sockets of calls long over are dropped here too.
create function famcall_call_socket_closed(me uuid, src text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
begin
    delete from call_closed_sockets k
     where k.closed_at < now() - interval '1 hour';

    insert into call_closed_sockets (src)
    select famcall_call_socket_closed.src
     where exists (select 1 from calls c
                    where c.status = 'accepted'
                      and ((c.caller_id = me
                            and c.caller_src = famcall_call_socket_closed.src)
                           or (c.callee_id = me
                               and c.callee_src
                                   = famcall_call_socket_closed.src)))
    on conflict do nothing;

    return query select 204, null::jsonb;
end
$$;
