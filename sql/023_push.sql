-- Push notifications (docs/api.md "Devices", docs/push.md): the devices a
-- user registers, and the outbox rows written in the same transaction as
-- their cause, for the dispatcher (dispatcher/) to deliver.
--
-- The message send batch (sql/013) and the call statements (sql/019,
-- sql/021) are not rewritten: triggers on messages and calls write the
-- push rows, so whichever statement stores a message or moves a call, its
-- pushes commit or roll back with it, and those files keep one owner.
--
-- Who gets a push: a recipient with no live socket on any node, that is,
-- no presence row (sql/008: a worker's row lives while the user has a
-- socket there; a dead worker's rows are swept).  A user with a socket
-- gets the event on it and no push.
--
-- Deleting a user deletes their devices (001's FK) and their outbox rows
-- (the FKs below); logging a session out deletes the device it registered.

-- The session (refresh family, the access token's sid) that registered the
-- device: logout revokes the family, and the device goes with it.  The
-- VoIP token (iOS PushKit) rings an incoming call through APNs.
alter table devices
    add column session_id uuid references refresh_families on delete cascade,
    add column voip_token text;
create index devices_session_idx on devices (session_id);
-- a VoIP token belongs to one device, as a push token does (001)
create unique index devices_voip_token_key on devices (voip_token);

-- A push row names its device (the token is read when it is sent, so a
-- token refreshed meanwhile is used) and its user; sms rows name neither.
-- call_id: the call a ringing push or its cancel is about.
-- collapse_key: a newer push with the same key replaces an older one on
-- the phone.  expires_at: past it the row is not sent (nor worth sending).
-- parked_at: given up (expired, dropped, or too many tries; last_error
-- says which).  leased_until: a dispatcher is sending it until then.
alter table outbox
    add column user_id      uuid references users on delete cascade,
    add column device_id    uuid references devices on delete cascade,
    add column call_id      uuid references calls on delete cascade,
    add column collapse_key text,
    add column expires_at   timestamptz,
    add column parked_at    timestamptz,
    add column leased_until timestamptz;
create index outbox_device_idx on outbox (device_id, id)
    where delivered_at is null and parked_at is null;
create index outbox_call_idx on outbox (call_id) where call_id is not null;
create index outbox_user_idx on outbox (user_id);

-- What a message push says (famcall_push_preview, written by the push
-- module as its workers start): the sender's name and the text, or only
-- "New message".  No row: no preview, the side that shows less.
create table push_settings (
    id      boolean primary key default true check (id),
    preview boolean not null,
    updated_at timestamptz not null default now()
);

create function famcall_push_configure(preview boolean)
returns table (status int, body jsonb)
language sql
as $$
    insert into public.push_settings (preview) values (preview)
    on conflict (id) do update set preview = excluded.preview,
                                   updated_at = now()
     where push_settings.preview is distinct from excluded.preview;
    select 204, null::jsonb
$$;

-- The device object the API answers with.
create function famcall_device_json(d devices) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'id', d.id,
        'platform', d.platform,
        'provider', d.provider,
        'push_token', d.push_token,
        'voip_token', d.voip_token,
        'created_at', public.famcall_ts(d.created_at),
        'last_active_at', public.famcall_ts(d.last_active_at))
$$;

-- POST /v1/devices.  A token (or VoIP token) registered by another user
-- moves to me: a shared family tablet pushes for whoever signed in last.
-- The old device row is deleted, not handed over, so the pushes still
-- queued for its previous user go with it instead of reaching me.  My own
-- token registered again keeps its row (id) and is refreshed.  201 device.
create function famcall_device_register(me uuid, sid uuid, platform text,
                                        provider text, token text,
                                        voip text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    d devices;
begin
    if not exists (select 1 from users u where u.id = me) then
        return query select 401, famcall_err('unauthorized',
            'this account no longer exists');
        return;
    end if;
    if voip is not null and platform <> 'ios' then
        return query select 422, famcall_err('invalid_field',
            'only an iOS device has a VoIP token', 'voip_token');
        return;
    end if;
    if provider = 'apns' and platform <> 'ios' then
        return query select 422, famcall_err('invalid_field',
            'APNs serves iOS devices only', 'provider');
        return;
    end if;

    -- the token pair is unique: serialise registrations of one token
    perform pg_advisory_xact_lock(9, hashtext(provider || ':' || token));

    delete from devices x
     where ((x.provider = famcall_device_register.provider
             and x.push_token = token)
            or x.voip_token = voip)
       and x.user_id <> me;

    -- my own row for the token, or the one that had this VoIP token
    select * into d from devices x
     where x.user_id = me
       and ((x.provider = famcall_device_register.provider
             and x.push_token = token)
            or x.voip_token = voip)
     order by (x.provider = famcall_device_register.provider
               and x.push_token = token) desc
     limit 1
       for update;

    if found then
        -- another of my rows may hold the VoIP token
        delete from devices x
         where x.user_id = me and x.voip_token = voip and x.id <> d.id;
        update devices x
           set platform = famcall_device_register.platform,
               provider = famcall_device_register.provider,
               push_token = token, voip_token = voip,
               session_id = sid, last_active_at = now()
         where x.id = d.id
        returning * into d;
    else
        insert into devices (user_id, session_id, platform, provider,
                             push_token, voip_token)
        values (me, sid, platform, provider, token, voip)
        returning * into d;
    end if;

    return query select 201, famcall_device_json(d);
end
$$;

-- GET /v1/devices: mine, newest first.
create function famcall_devices_list(me uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select 200, jsonb_build_object('devices', coalesce(
        (select jsonb_agg(public.famcall_device_json(d)
                          order by d.created_at desc, d.id)
           from public.devices d where d.user_id = me), '[]'::jsonb))
$$;

-- DELETE /v1/devices/{id}: 204, or 404 for a device that is not mine.
create function famcall_device_remove(me uuid, d_id uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
begin
    delete from devices d where d.id = d_id and d.user_id = me;
    if not found then
        return query select 404, famcall_err('not_found', 'no such device');
        return;
    end if;
    return query select 204, null::jsonb;
end
$$;

-- Logout (and a revoked family: a reused refresh token) ends the session,
-- and its device stops getting pushes.
create function famcall_push_session_end() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
begin
    delete from devices d where d.session_id = new.id;
    return null;
end
$$;

create trigger refresh_families_push_device
    after update of revoked_at on refresh_families
    for each row
    when (old.revoked_at is null and new.revoked_at is not null)
    execute function famcall_push_session_end();

-- Unread messages of u in all their conversations: the badge.
create function famcall_push_badge(u uuid) returns int
language sql stable
as $$
    select count(*)::int
      from public.conversation_members x
      join public.messages m on m.conversation_id = x.conversation_id
                            and m.seq > x.last_read_seq
     where x.user_id = u and m.sender_id <> u
$$;

-- New messages (one statement of the send batch, sql/013): one push per
-- device of each recipient with no socket open anywhere.  A statement
-- trigger with the statement's rows, so a batch of 256 sends costs one
-- trigger call; most recipients are online and cost an index probe.
create function famcall_push_messages() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    preview boolean := coalesce((select s.preview from push_settings s),
                                false);
begin
    insert into outbox (kind, user_id, device_id, collapse_key, expires_at,
                        payload)
    select 'push', r.user_id, d.id, 'conv:' || r.conversation_id,
           now() + interval '1 day',
           jsonb_build_object(
               'type', 'message',
               'conversation_id', r.conversation_id,
               'message_id', r.id,
               'seq', r.seq,
               'sender_id', r.sender_id,
               'title', case when preview then s.display_name
                             else 'famcall' end,
               'body', case when preview then
                                case when char_length(r.body) > 178
                                     then left(r.body, 177) || '…'
                                     else r.body end
                            else 'New message' end,
               'badge', famcall_push_badge(r.user_id))
      from (select m.*, cm.user_id
              from new_messages m
              join conversation_members cm
                on cm.conversation_id = m.conversation_id
               and cm.user_id <> m.sender_id
             where exists (select 1 from devices d
                            where d.user_id = cm.user_id)
               and not exists (select 1 from presence p
                                where p.user_id = cm.user_id)) r
      join users s on s.id = r.sender_id
      join devices d on d.user_id = r.user_id
     order by r.conversation_id, r.seq, d.id;
    return null;
end
$$;

create trigger messages_push
    after insert on messages
    referencing new table as new_messages
    for each statement
    execute function famcall_push_messages();

-- A call that starts ringing: a push to each device of the callee when no
-- socket of theirs is open (one that is gets call:invite), living only as
-- long as the call rings.  Calls stored busy ring nobody.
create function famcall_push_call_invite() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
begin
    if exists (select 1 from presence p where p.user_id = new.callee_id) then
        return null;
    end if;

    insert into outbox (kind, user_id, device_id, call_id, collapse_key,
                        expires_at, payload)
    select 'push', new.callee_id, d.id, new.id, 'call:' || new.id,
           new.ring_deadline,
           jsonb_build_object(
               'type', 'call',
               'call_id', new.id,
               'media', new.media,
               'from', famcall_public_user_json(u),
               'title', u.display_name,
               'body', case when new.media = 'video'
                            then 'Incoming video call'
                            else 'Incoming call' end,
               'expires_at', famcall_ts(new.ring_deadline))
      from devices d, users u
     where d.user_id = new.callee_id and u.id = new.caller_id
     order by d.id;
    return null;
end
$$;

create trigger calls_push_invite
    after insert on calls
    for each row
    when (new.status = 'ringing')
    execute function famcall_push_call_invite();

-- A call that stops ringing (answered on some device, rejected, cancelled,
-- rung out, failed): its ring pushes still queued are dropped (parked with
-- the reason), and each device whose ring push was sent, or is being sent
-- right now (leased by a dispatcher), gets the cancelling push, so the
-- phone stops ringing.  A dispatcher holds a row's lock only while it
-- leases it: this update waits for that, then sees the lease and leaves
-- the row to it.
create function famcall_push_call_stop() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    reason text := case new.status
                       when 'accepted' then 'answered_elsewhere'
                       when 'missed' then 'timeout'
                       else coalesce(new.end_reason, new.status) end;
begin
    if not exists (select 1 from outbox o where o.call_id = new.id) then
        return null;
    end if;

    update outbox o
       set parked_at = now(), last_error = 'call ' || reason
     where o.call_id = new.id
       and o.delivered_at is null and o.parked_at is null
       and o.leased_until is null;

    insert into outbox (kind, user_id, device_id, call_id, collapse_key,
                        expires_at, payload)
    select 'push', new.callee_id, o.device_id, new.id, 'call:' || new.id,
           greatest(coalesce(old.ring_deadline, now()), now())
               + interval '1 minute',
           jsonb_build_object('type', 'call_cancel', 'call_id', new.id,
                              'reason', reason)
      from (select distinct o.device_id from outbox o
             where o.call_id = new.id
               and o.payload->>'type' = 'call'
               and o.device_id is not null
               and (o.delivered_at is not null
                    or o.leased_until is not null)) o
     order by o.device_id;
    return null;
end
$$;

create trigger calls_push_stop
    after update of status on calls
    for each row
    when (old.status = 'ringing' and new.status <> 'ringing')
    execute function famcall_push_call_stop();

-- Every statement that queues rows wakes the dispatchers (LISTEN
-- famcall_outbox), from its own transaction: they hear of a row only once
-- it is committed.  Identical notifications of one transaction are
-- delivered once.
create function famcall_outbox_wake() returns trigger
language plpgsql
as $$
begin
    if exists (select 1 from new_rows) then
        perform pg_notify('famcall_outbox', '');
    end if;
    return null;
end
$$;

create trigger outbox_wake
    after insert on outbox
    referencing new table as new_rows
    for each statement
    execute function famcall_outbox_wake();
