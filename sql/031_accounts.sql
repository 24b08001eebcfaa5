-- Accounts for real life (issue 25): invites by SMS, deleting an account,
-- exporting one's data, and which version of the privacy policy and terms a
-- user accepted.  Same conventions as 002: one function per API call, one
-- row (status int, body), errors returned and not raised.
--
-- Deleting an account removes the users row, so everything that references
-- it goes by ON DELETE CASCADE, and a valid access token outliving the
-- account gets 401 from every function (as famcall_me answers).  The
-- messages the user wrote stay with the people they wrote to: each of the
-- user's conversations with someone still there is handed, with its
-- messages and calls, to a tombstone, a users row of its own (a new id, no
-- email, phone, username or avatar, display_name "Deleted account",
-- deleted_at set) that blocks each of those people, so every existing rule
-- (no contact request, no message, no call, no new conversation, not found
-- by search) treats it as gone.  Nothing keeps the old id.
--
-- Advisory lock keys (two-int form, first int = class): 11 = invites of a
-- user, 12 = invites to a phone.

alter table users
    add column deleted_at        timestamptz,
    add column legal_version     text,
    add column legal_accepted_at timestamptz;

alter table users
    drop constraint users_email_or_phone,
    add constraint users_email_or_phone
        check (email is not null or phone is not null
               or deleted_at is not null);

-- What others see of a user; a tombstone says it is one.
create or replace function famcall_public_user_json(u users) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'id', u.id,
        'username', u.username,
        'display_name', u.display_name,
        'avatar_url', u.avatar_url)
        || case when u.deleted_at is null then '{}'::jsonb
                else '{"deleted": true}'::jsonb end
$$;


-- Invites --------------------------------------------------------------------

-- A pending invite: one per inviter and phone; removed when withdrawn or when
-- someone signs up with the phone.
create table invites (
    id         uuid primary key default gen_random_uuid(),
    inviter_id uuid not null references users on delete cascade,
    phone      text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    name       text check (char_length(name) between 1 and 64),
    created_at timestamptz not null default now(),
    constraint invites_inviter_phone_key unique (inviter_id, phone)
);
create index invites_phone_idx on invites (phone);

-- Every invite made, for the limits: per inviter within a window, and one
-- SMS per phone within an interval whoever asks.  An inviter who deletes
-- their account leaves an anonymous row, so their invitee is not texted
-- again the same day.
create table invite_sends (
    id         bigserial primary key,
    inviter_id uuid references users on delete set null,
    phone      text not null,
    sms        boolean not null,
    created_at timestamptz not null default now()
);
create index invite_sends_inviter_idx on invite_sends (inviter_id, created_at);
create index invite_sends_phone_idx on invite_sends (phone, created_at);

-- Numbers that asked never to get an invite (a reply STOP): the operator
-- fills it (scripts/invite-stop.sh).  It is about a number, not an account:
-- deleting an account keeps it.
create table invite_optouts (
    phone      text primary key check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    created_at timestamptz not null default now()
);

create function famcall_invite_json(i invites) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'id', i.id,
        'phone', i.phone,
        'name', i.name,
        'created_at', public.famcall_ts(i.created_at))
$$;

-- POST /v1/invites.  201 {"invite"} (and "sms": the text to send, for the
-- module's log driver, which it removes from the answer), 200 {"invite"}
-- when the caller already invites that phone, 200 {"user"} when the phone
-- is someone's the caller may find (exactly what search shows; a user who
-- blocked the caller is not shown, and the phone is then invited as any
-- other, without an SMS), 429 past the caller's limit, 422 their own phone.
-- The SMS goes out only to a number nobody has texted an invite within
-- phone_interval_s, that is not on the STOP list and has no account; when
-- it does not, the answer is the same.  webhook: the webhook driver's URL
-- (an outbox row in this transaction), or null.
create function famcall_invite_create(me uuid, phone text, name text,
                                      user_max int, user_window_s int,
                                      phone_interval_s int, link text,
                                      webhook text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    p      text := famcall_invite_create.phone;
    u      users;
    t      users;
    i      invites;
    sends  timestamptz[];
    sms    boolean;
    text_  text;
begin
    select * into u from users where users.id = famcall_invite_create.me;
    if not found then
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;
    if u.phone = p then
        return query select 422, famcall_err('invalid_field',
            'this is your own number', 'phone');
        return;
    end if;

    select * into t from users where users.phone = p;
    if found and not exists (select 1 from blocks b
                              where b.blocker_id = t.id
                                and b.blocked_id = u.id) then
        return query select 200, jsonb_build_object('user',
            famcall_public_user_json(t));
        return;
    end if;

    -- an inviter's invites take turns, then a phone's: the limits hold
    -- under races, and the order is always the same (no deadlock)
    perform pg_advisory_xact_lock(11, hashtext(u.id::text));
    perform pg_advisory_xact_lock(12, hashtext(p));

    select * into i from invites
     where invites.inviter_id = u.id and invites.phone = p;
    if found then
        return query select 200, jsonb_build_object('invite',
            famcall_invite_json(i));
        return;
    end if;

    select coalesce(array_agg(s.created_at order by s.created_at), '{}')
      into sends
      from invite_sends s
     where s.inviter_id = u.id
       and s.created_at > now() - make_interval(
               secs => famcall_invite_create.user_window_s);
    if cardinality(sends) >= famcall_invite_create.user_max then
        return query select 429, jsonb_set(
            famcall_err('rate_limited',
                        'too many invites; try again later'),
            '{error,retry_after}',
            to_jsonb(famcall_otp_retry_after(sends,
                         famcall_invite_create.user_max,
                         famcall_invite_create.user_window_s)));
        return;
    end if;

    -- the rows past every window are of no more use
    delete from invite_sends s
     where (s.inviter_id = u.id or s.phone = p)
       and s.created_at < now() - make_interval(secs => greatest(
               famcall_invite_create.user_window_s,
               famcall_invite_create.phone_interval_s));

    sms := t.id is null
           and not exists (select 1 from invite_optouts o where o.phone = p)
           and not exists (
               select 1 from invite_sends s
                where s.phone = p and s.sms
                  and s.created_at > now() - make_interval(
                          secs => famcall_invite_create.phone_interval_s));

    insert into invite_sends (inviter_id, phone, sms) values (u.id, p, sms);
    insert into invites (inviter_id, phone, name)
    values (u.id, p, famcall_invite_create.name)
    returning * into i;

    if sms then
        text_ := u.display_name || ' invites you to famcall: '
                 || famcall_invite_create.link;
        if famcall_invite_create.webhook is not null then
            insert into outbox (kind, payload)
            values ('sms', jsonb_build_object('to', p, 'body', text_,
                        'webhook', famcall_invite_create.webhook));
            text_ := null;
        end if;
    end if;

    return query select 201, jsonb_build_object('invite',
        famcall_invite_json(i), 'sms', text_);
end
$$;

-- GET /v1/invites: the caller's pending invites, newest first.
create function famcall_invites_list(me uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select 200, jsonb_build_object('invites', coalesce(
        (select jsonb_agg(public.famcall_invite_json(i)
                          order by i.created_at desc, i.id)
           from public.invites i
          where i.inviter_id = famcall_invites_list.me), '[]'::jsonb))
$$;

-- DELETE /v1/invites/{id}: 204; 404 when it is not one of the caller's.
create function famcall_invite_delete(me uuid, invite uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
begin
    delete from invites i
     where i.id = famcall_invite_delete.invite
       and i.inviter_id = famcall_invite_delete.me;
    if not found then
        return query select 404, famcall_err('not_found', 'no such invite');
        return;
    end if;
    return query select 204, null::jsonb;
end
$$;

-- Someone signs up with an invited phone: each inviter (but one either of
-- them blocked) gets them as a contact, requested by the newcomer and
-- already accepted, and hears contact:accepted; the invites are done.
create function famcall_invites_accept() returns trigger
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    i    invites;
    c    contacts;
    evs  text[] := '{}';
begin
    for i in select * from invites where invites.phone = new.phone
              order by invites.inviter_id
    loop
        if famcall_blocked_either(i.inviter_id, new.id) then
            continue;
        end if;
        insert into contacts (user_id, contact_id, status, requested_by,
                              accepted_at)
        values (i.inviter_id, new.id, 'accepted', new.id, now()),
               (new.id, i.inviter_id, 'accepted', new.id, now())
        on conflict do nothing;
        select * into c from contacts k
         where k.user_id = i.inviter_id and k.contact_id = new.id;
        evs := evs || famcall_event_line('contact:accepted',
                                         array[i.inviter_id], null,
                                         famcall_contact_json(c, new));
    end loop;

    delete from invites where invites.phone = new.phone;
    perform famcall_notify_lines(evs);
    return null;
end
$$;

create trigger users_invites_accept
    after insert on users
    for each row
    when (new.phone is not null)
    execute function famcall_invites_accept();


-- The privacy policy and terms ------------------------------------------------

-- Sign-up, by email or by phone, records the version of the policy and terms
-- the deployment shows (famcall_legal_version; null when it sets none).
create function famcall_signup(email text, password_hash text,
                               display_name text, username text,
                               refresh_hash text, refresh_ttl_s int,
                               legal_version text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    r  record;
begin
    select * into r from famcall_signup($1, $2, $3, $4, $5, $6) s;
    if r.status = 201 and $7 is not null then
        update users set legal_version = $7, legal_accepted_at = now()
         where users.id = (r.body->'user'->>'id')::uuid;
    end if;
    return query select r.status, r.body;
end
$$;

create function famcall_otp_verify(phone text, code_hash text,
                                   display_name text, refresh_hash text,
                                   refresh_ttl_s int, max_attempts int,
                                   legal_version text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    r  record;
begin
    select * into r from famcall_otp_verify($1, $2, $3, $4, $5, $6) s;
    if r.status = 200 and (r.body->>'new_user')::boolean
       and $7 is not null then
        update users set legal_version = $7, legal_accepted_at = now()
         where users.id = (r.body->'user'->>'id')::uuid;
    end if;
    return query select r.status, r.body;
end
$$;

-- GET /v1/me with the version the deployment shows: "legal" says which the
-- user accepted and whether they must accept the current one.  Without a
-- configured version (null) the answer is famcall_me's.
create function famcall_me(user_id uuid, legal_version text)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select case when u.id is null then 401 else 200 end,
           case when u.id is null
                then public.famcall_err('unauthorized', 'no such user')
                when $2 is null then public.famcall_user_json(u)
                else public.famcall_user_json(u) || jsonb_build_object(
                    'legal', jsonb_build_object(
                        'accepted_version', u.legal_version,
                        'accepted_at', public.famcall_ts(u.legal_accepted_at),
                        'current_version', $2,
                        'accept_required', u.legal_version is distinct from $2))
           end
      from (select $1) k (id)
      left join public.users u on u.id = k.id
$$;

-- POST /v1/me/legal {"version"}: the user accepts the current version; 409
-- when it is not the one the deployment shows now.
create function famcall_legal_accept(me uuid, version text, current_ text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    u  users;
begin
    if $3 is null or $2 is distinct from $3 then
        return query select 409, famcall_err('version_mismatch',
            'that is not the current version; fetch GET /v1/legal', 'version');
        return;
    end if;
    update users set legal_version = $2, legal_accepted_at = now()
     where users.id = $1
    returning * into u;
    if not found then
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;
    return query select 200, jsonb_build_object(
        'accepted_version', u.legal_version,
        'accepted_at', famcall_ts(u.legal_accepted_at),
        'current_version', $3,
        'accept_required', false);
end
$$;
