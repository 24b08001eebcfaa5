-- DELETE /v1/me: an account goes, in one transaction (the rules are at the
-- top of sql/031_accounts.sql).  The module checks the proof first: a
-- password it verifies itself (Argon2id on its thread pool), or a one-time
-- code for the account's phone, which is checked here as
-- famcall_otp_verify checks it (a wrong code counts as an attempt, and
-- commits).

-- What the proof is checked against: the password hash and the phone.
-- Internal: the module never answers it to a client.
create function famcall_account_proof(me uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select case when u.id is null then 401 else 200 end,
           case when u.id is null
                then public.famcall_err('unauthorized', 'no such user')
                else jsonb_build_object('password_hash', u.password_hash,
                                        'phone', u.phone) end
      from (select $1) k (id)
      left join public.users u on u.id = k.id
$$;

-- The account me and what is theirs.  code_hash: the HMAC of the one-time
-- code for the account's phone, or null when the module verified the
-- password.  204; 401 for a wrong, expired or spent code (or a gone
-- account); 429 after max_attempts wrong codes.
create function famcall_account_delete(me uuid, code_hash text,
                                       max_attempts int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    u      users;
    oc     otp_codes;
    k      calls;
    tomb   uuid;
    peers  uuid[];
    evs    text[];
    left_  int;
begin
    select * into u from users where users.id = $1 for update;
    if not found then
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;

    if $2 is not null then
        select * into oc from otp_codes c
         where c.phone = u.phone
           and c.consumed_at is null and c.killed_at is null
         order by c.created_at desc, c.id desc
         limit 1
           for update;
        if not found or oc.expires_at <= now() then
            return query select 401, famcall_err('code_expired',
                'no valid code for this phone; request a new one', 'code');
            return;
        end if;
        if oc.attempts >= $3 then
            return query select 429, famcall_err('too_many_attempts',
                'too many wrong codes; request a new one', 'code');
            return;
        end if;
        if oc.code_hash <> $2 then
            update otp_codes set attempts = attempts + 1
             where otp_codes.id = oc.id;
            left_ := $3 - (oc.attempts + 1);
            if left_ <= 0 then
                return query select 429, famcall_err('too_many_attempts',
                    'too many wrong codes; request a new one', 'code');
            else
                return query select 401, jsonb_set(
                    famcall_err('invalid_code', 'wrong code', 'code'),
                    '{error,attempts_left}', to_jsonb(left_));
            end if;
            return;
        end if;
    end if;

    -- Their calls end through the calls' own transitions, so the other
    -- side hears them as it would hear a hang-up.
    for k in select * from calls c
              where (c.caller_id = u.id or c.callee_id = u.id)
                and c.status in ('ringing', 'accepted')
    loop
        if k.status = 'accepted' then
            perform famcall_call_end(u.id, k.id, 'account_deleted', null);
        elsif k.caller_id = u.id then
            perform famcall_call_stop(u.id, k.id, 'cancel', null);
        else
            perform famcall_call_stop(u.id, k.id, 'reject', null);
        end if;
    end loop;

    -- Every socket of the user, on every node, hears session:revoked and
    -- is closed (4003); their contacts see them go offline.
    evs := array[famcall_event_line('session:revoked', array[u.id], null,
                     '{"reason": "account_deleted"}'::jsonb)];
    if exists (select 1 from presence p where p.user_id = u.id) then
        evs := evs || famcall_presence_lines(u.id, false, null);
    end if;
    perform famcall_notify_lines(evs);

    -- Pushes queued for the people the user knew that name the user (a
    -- message's sender, a call's caller: sql/023), found through their
    -- recipients' index.
    delete from outbox o
     where o.kind = 'push'
       and o.user_id in (select ct.contact_id from contacts ct
                          where ct.user_id = u.id
                         union
                         select case when c.user_lo = u.id then c.user_hi
                                     else c.user_lo end
                           from conversations c
                          where c.user_lo = u.id or c.user_hi = u.id
                         union
                         select case when c.caller_id = u.id then c.callee_id
                                     else c.caller_id end
                           from calls c
                          where c.caller_id = u.id or c.callee_id = u.id)
       and (o.payload->>'sender_id' = u.id::text
            or o.payload->'from'->>'id' = u.id::text);

    -- Conversations nobody would read again go: empty ones, and those whose
    -- other side is a tombstone already (their messages go with them, by
    -- the trigger of sql/009); and such a tombstone that stands in nothing
    -- else goes too.
    select coalesce(array_agg(distinct x.peer), '{}')
      into peers
      from (select case when c.user_lo = u.id then c.user_hi
                        else c.user_lo end
              from conversations c
             where c.user_lo = u.id or c.user_hi = u.id
            union all
            select case when c.caller_id = u.id then c.callee_id
                        else c.caller_id end
              from calls c
             where c.caller_id = u.id or c.callee_id = u.id) x (peer);

    delete from conversations c
     where (c.user_lo = u.id or c.user_hi = u.id)
       and (c.last_seq = 0
            or exists (select 1 from users p
                        where p.id = case when c.user_lo = u.id
                                          then c.user_hi else c.user_lo end
                          and p.deleted_at is not null));

    delete from users t
     where t.id = any (peers) and t.deleted_at is not null
       and not exists (select 1 from conversations c
                        where c.user_lo = t.id or c.user_hi = t.id)
       and not exists (select 1 from calls c
                        where (c.caller_id = t.id or c.callee_id = t.id)
                          and c.caller_id <> u.id and c.callee_id <> u.id);

    -- The people still there keep their conversations and call history
    -- with the user, with a tombstone in the user's place.
    select coalesce(array_agg(distinct x.peer), '{}')
      into peers
      from (select case when c.user_lo = u.id then c.user_hi
                        else c.user_lo end
              from conversations c
             where c.user_lo = u.id or c.user_hi = u.id
            union all
            select case when c.caller_id = u.id then c.callee_id
                        else c.caller_id end
              from calls c
             where c.caller_id = u.id or c.callee_id = u.id) x (peer)
      join users p on p.id = x.peer and p.deleted_at is null;

    if cardinality(peers) > 0 then
        insert into users (display_name, deleted_at)
        values ('Deleted account', now())
        returning id into tomb;

        update messages m set sender_id = tomb where m.sender_id = u.id;
        update conversation_members cm set user_id = tomb
         where cm.user_id = u.id;
        update conversations c
           set user_lo = least(tomb, case when c.user_lo = u.id
                                          then c.user_hi else c.user_lo end),
               user_hi = greatest(tomb, case when c.user_lo = u.id
                                             then c.user_hi else c.user_lo end)
         where c.user_lo = u.id or c.user_hi = u.id;

        -- but for the user's own quality reports and devices
        delete from call_stats s where s.user_id = u.id;
        update calls c
           set caller_id = tomb, caller_src = null, caller_lost_at = null
         where c.caller_id = u.id and c.callee_id = any (peers);
        update calls c
           set callee_id = tomb, callee_src = null, callee_lost_at = null,
               answered_device = null
         where c.callee_id = u.id and c.caller_id = any (peers);

        -- the tombstone has blocked them: no contact request, message,
        -- call or conversation with it
        insert into blocks (blocker_id, blocked_id)
        select tomb, unnest(peers)
        on conflict do nothing;
    end if;

    -- What names the user outside the rows that reference them: the codes
    -- and SMS sent to their phone, invites to it, and the record of them.
    if u.phone is not null then
        delete from otp_codes c where c.phone = u.phone;
        delete from outbox o
         where o.kind = 'sms' and o.payload->>'to' = u.phone;
        delete from invites i where i.phone = u.phone;
        delete from invite_sends s where s.phone = u.phone;
    end if;

    -- The rest goes with the row: sessions, contacts, blocks, reports,
    -- calls with nobody left, devices, presence, invites, exports.
    delete from users where users.id = u.id;

    return query select 204, null::jsonb;
end
$$;
