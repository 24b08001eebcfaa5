-- Accounts: one SQL function per API call (docs/api.md, "SQL functions").
--
-- Each returns one row (status int, body jsonb). Errors are returned, not raised:
-- status >= 400 and body the error envelope. That is deliberate: what a failing
-- call must still write (a revoked refresh family, a counted OTP attempt) commits
-- with the caller's transaction. Callers run these in autocommit (or commit
-- whatever the status); they must not roll back on a 4xx.
--
-- The functions refer to their parameters as <function>.<name> (the parameter names
-- are the spec's and clash with column names; plpgsql's default
-- variable_conflict = error turns any unqualified clash into an error).
-- Advisory lock keys (two-int form, first int = class): 1 = OTP phone, 2 = OTP ip.

-- RFC 3339, UTC, microseconds, 'Z'.
create function famcall_ts(ts timestamptz) returns text
language sql stable strict parallel safe
as $$
    select to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- {"error": {"code", "message"[, "field"]}}
create function famcall_err(code text, message text, field text default null)
returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object('error',
        jsonb_build_object('code', code, 'message', message)
        || case when field is null then '{}'::jsonb
                else jsonb_build_object('field', field) end)
$$;

-- The API's user object.
create function famcall_user_json(u users) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'id', u.id,
        'username', u.username,
        'display_name', u.display_name,
        'avatar_url', u.avatar_url,
        'email', u.email,
        'phone', u.phone,
        'created_at', famcall_ts(u.created_at))
$$;

-- A new refresh family for user_id with its first token; returns the family id.
create function famcall_family_new(user_id uuid, refresh_hash text,
                                   refresh_ttl_s int)
returns uuid
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    fam uuid;
begin
    insert into refresh_families (user_id)
    values (famcall_family_new.user_id)
    returning id into fam;

    insert into refresh_tokens (family_id, user_id, token_hash, expires_at)
    values (fam, famcall_family_new.user_id, famcall_family_new.refresh_hash,
            now() + make_interval(secs => famcall_family_new.refresh_ttl_s));

    return fam;
end
$$;

-- Revoke a family and every token in it. The caller holds the family's row lock.
create function famcall_family_revoke(family_id uuid) returns void
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
begin
    update refresh_families f
       set revoked_at = now()
     where f.id = famcall_family_revoke.family_id and f.revoked_at is null;

    update refresh_tokens t
       set revoked_at = now()
     where t.family_id = famcall_family_revoke.family_id and t.revoked_at is null;
end
$$;

-- POST /v1/auth/signup. email/display_name/username arrive validated and
-- normalised; a taken email or username is 409 (also when a concurrent signup
-- wins the race: the unique constraints decide).
create function famcall_signup(email text, password_hash text, display_name text,
                               username text, refresh_hash text,
                               refresh_ttl_s int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    u          users;
    fam        uuid;
    cname      text;
begin
    begin
        insert into users (email, password_hash, display_name, username)
        values (lower(famcall_signup.email), famcall_signup.password_hash,
                famcall_signup.display_name, famcall_signup.username)
        returning * into u;
    exception when unique_violation then
        get stacked diagnostics cname = constraint_name;
        if cname = 'users_email_key' then
            return query select 409, famcall_err('email_taken',
                'an account with this email already exists', 'email');
        elsif cname = 'users_username_key' then
            return query select 409, famcall_err('username_taken',
                'this username is taken', 'username');
        else
            raise;
        end if;
        return;
    end;

    fam := famcall_family_new(u.id, famcall_signup.refresh_hash,
                              famcall_signup.refresh_ttl_s);
    return query select 201, jsonb_build_object('user', famcall_user_json(u),
                                                'family_id', fam);
end
$$;

-- POST /v1/auth/login, step 1: the stored hash to verify (in nginx's thread pool).
-- 404 for an unknown email and for an account without a password alike.
create function famcall_login_lookup(email text)
returns table (status int, body jsonb)
language plpgsql rows 1 stable
set search_path = pg_catalog, public, pg_temp
as $$
declare
    u users;
begin
    select * into u from users
     where users.email = lower(famcall_login_lookup.email)
       and users.password_hash is not null;
    if not found then
        return query select 404, famcall_err('invalid_credentials',
            'wrong email or password');
        return;
    end if;
    return query select 200, jsonb_build_object('user_id', u.id,
                                                'password_hash', u.password_hash);
end
$$;

-- POST /v1/auth/login, step 2 (after the password matched): a new family.
-- 401 invalid_credentials if the user was deleted in between.
create function famcall_session_create(user_id uuid, refresh_hash text,
                                       refresh_ttl_s int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    u   users;
    fam uuid;
begin
    select * into u from users where users.id = famcall_session_create.user_id;
    if not found then
        return query select 401, famcall_err('invalid_credentials',
            'wrong email or password');
        return;
    end if;
    fam := famcall_family_new(u.id, famcall_session_create.refresh_hash,
                              famcall_session_create.refresh_ttl_s);
    return query select 200, jsonb_build_object('user', famcall_user_json(u),
                                                'family_id', fam);
end
$$;

-- POST /v1/auth/refresh: spend old_hash, issue new_hash in the same family.
create function famcall_refresh(old_hash text, new_hash text, refresh_ttl_s int,
                                grace_s int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    fam refresh_families;
    tok refresh_tokens;
    u   users;
begin
    -- Lock order everywhere: the family row, then its token rows.
    select f.* into fam
      from refresh_families f
     where f.id = (select t.family_id from refresh_tokens t
                    where t.token_hash = famcall_refresh.old_hash)
       for update;
    if found then
        select t.* into tok
          from refresh_tokens t
         where t.token_hash = famcall_refresh.old_hash
           for update;
    end if;

    if fam.id is null or tok.id is null
       or tok.revoked_at is not null or fam.revoked_at is not null
       or tok.expires_at <= now() then
        return query select 401, famcall_err('invalid_refresh_token',
            'the refresh token is unknown, expired or revoked');
        return;
    end if;

    if tok.used_at is not null then
        if tok.used_at <= now() - make_interval(secs => famcall_refresh.grace_s)
           or tok.regraced_at is not null
        then
            -- A spent token outside the grace window, or reused a second time
            -- within it: treat it as stolen and end the session. This is
            -- returned, not raised, so it commits.
            perform famcall_family_revoke(fam.id);
            return query select 401, famcall_err('refresh_token_reused',
                'the refresh token was already used; the session is revoked');
            return;
        end if;
        -- Within the grace window (measured from the first use, so retries
        -- cannot extend it), once: a client retrying after it lost the
        -- response to its first refresh. Issue another token in the same
        -- family; the one issued first stays valid too (the client may or may
        -- not have it).
        update refresh_tokens t set regraced_at = now() where t.id = tok.id;
    else
        update refresh_tokens t set used_at = now() where t.id = tok.id;
    end if;

    insert into refresh_tokens (family_id, user_id, token_hash, expires_at)
    values (fam.id, tok.user_id, famcall_refresh.new_hash,
            now() + make_interval(secs => famcall_refresh.refresh_ttl_s));

    select * into u from users where users.id = tok.user_id;
    return query select 200, jsonb_build_object('user', famcall_user_json(u),
                                                'family_id', fam.id);
end
$$;

-- POST /v1/auth/logout: revoke the token's whole family. 204 (body null) also for
-- an unknown token.
create function famcall_logout(hash text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    fam uuid;
begin
    select f.id into fam
      from refresh_families f
     where f.id = (select t.family_id from refresh_tokens t
                    where t.token_hash = famcall_logout.hash)
       for update;
    if found then
        perform famcall_family_revoke(fam);
    end if;
    return query select 204, null::jsonb;
end
$$;

-- GET /v1/me
-- The hottest read: plain SQL (no plpgsql, no SET clause) so the planner
-- inlines it into one index probe.
create function famcall_me(user_id uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select case when u.id is null then 401 else 200 end,
           case when u.id is null then famcall_err('unauthorized', 'no such user')
                else famcall_user_json(u) end
      from (select famcall_me.user_id) k (id)
      left join public.users u on u.id = k.id
$$;

-- PATCH /v1/me. patch holds only validated keys among display_name, username and
-- avatar_url; a key that is absent keeps its column, avatar_url null clears it.
create function famcall_me_update(user_id uuid, patch jsonb)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    p  jsonb := famcall_me_update.patch;
    u  users;
    cname      text;
begin
    if p is null or jsonb_typeof(p) <> 'object'
       or not (p ?| array['display_name', 'username', 'avatar_url']) then
        return query select 422, famcall_err('missing_field',
            'nothing to update: give display_name, username or avatar_url');
        return;
    end if;
    if p ? 'display_name' and jsonb_typeof(p->'display_name') <> 'string' then
        return query select 422, famcall_err('invalid_field',
            'display_name must be a string', 'display_name');
        return;
    end if;
    if p ? 'username' and jsonb_typeof(p->'username') <> 'string' then
        return query select 422, famcall_err('invalid_field',
            'username must be a string', 'username');
        return;
    end if;
    if p ? 'avatar_url' and jsonb_typeof(p->'avatar_url') not in ('string', 'null')
    then
        return query select 422, famcall_err('invalid_field',
            'avatar_url must be a string or null', 'avatar_url');
        return;
    end if;

    begin
        update users
           set display_name = case when p ? 'display_name'
                                   then p->>'display_name'
                                   else users.display_name end,
               username     = case when p ? 'username'
                                   then p->>'username'
                                   else users.username end,
               avatar_url   = case when p ? 'avatar_url'
                                   then p->>'avatar_url'
                                   else users.avatar_url end,
               updated_at   = now()
         where users.id = famcall_me_update.user_id
        returning * into u;
    exception when unique_violation then
        get stacked diagnostics cname = constraint_name;
        if cname = 'users_username_key' then
            return query select 409, famcall_err('username_taken',
                'this username is taken', 'username');
            return;
        end if;
        raise;
    end;

    if u.id is null then
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;
    return query select 200, famcall_user_json(u);
end
$$;

-- Seconds until enough of the sends counted in a window leave it for one more to
-- fit: the (n - max + 1)-th oldest (normally the oldest) must leave. At least 1.
create function famcall_otp_retry_after(times timestamptz[], max_n int,
                                        window_s int)
returns int
language sql stable
as $$
    select greatest(1, coalesce(
        ceil(extract(epoch from
            times[cardinality(times) - greatest(max_n, 0) + 1]
            + make_interval(secs => window_s) - now())),
        window_s))::int
$$;

-- POST /v1/auth/otp/request. code_hash is the HMAC of the new code; outbox is the
-- SMS payload to queue (webhook driver) or null (log driver).
create function famcall_otp_request(phone text, ip text, code_hash text,
                                    ttl_s int, phone_max int,
                                    phone_window_s int, ip_max int,
                                    ip_window_s int, outbox jsonb)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    by_phone timestamptz[];   -- sends in the phone's window, oldest first
    by_ip    timestamptz[];   -- sends in the ip's window, oldest first
    retry    int := 0;
begin
    -- Concurrent requests for one phone (or from one ip) take turns, so the
    -- limits hold under races. Always phone first, then ip: no deadlock.
    perform pg_advisory_xact_lock(1, hashtext(famcall_otp_request.phone));
    perform pg_advisory_xact_lock(2, hashtext(famcall_otp_request.ip));

    select coalesce(array_agg(c.created_at order by c.created_at), '{}')
      into by_phone
      from otp_codes c
     where c.phone = famcall_otp_request.phone
       and c.created_at > now()
                          - make_interval(secs => famcall_otp_request.phone_window_s);
    select coalesce(array_agg(c.created_at order by c.created_at), '{}')
      into by_ip
      from otp_codes c
     where c.ip = famcall_otp_request.ip
       and c.created_at > now()
                          - make_interval(secs => famcall_otp_request.ip_window_s);

    if cardinality(by_phone) >= famcall_otp_request.phone_max then
        retry := famcall_otp_retry_after(by_phone, famcall_otp_request.phone_max,
                                         famcall_otp_request.phone_window_s);
    end if;
    if cardinality(by_ip) >= famcall_otp_request.ip_max then
        retry := greatest(retry,
                          famcall_otp_retry_after(by_ip, famcall_otp_request.ip_max,
                                                  famcall_otp_request.ip_window_s));
    end if;
    if retry > 0 then
        return query select 429, jsonb_set(
            famcall_err('rate_limited',
                        'too many codes requested; try again later'),
            '{error,retry_after}', to_jsonb(retry));
        return;
    end if;

    -- A new code replaces the phone's earlier live ones.
    update otp_codes c
       set killed_at = now()
     where c.phone = famcall_otp_request.phone
       and c.consumed_at is null and c.killed_at is null;

    insert into otp_codes (phone, ip, code_hash, expires_at)
    values (famcall_otp_request.phone, famcall_otp_request.ip,
            famcall_otp_request.code_hash,
            now() + make_interval(secs => famcall_otp_request.ttl_s));

    if famcall_otp_request.outbox is not null then
        insert into outbox (kind, payload)
        values ('sms', famcall_otp_request.outbox);
    end if;

    return query select 202, jsonb_build_object('expires_in',
                                                famcall_otp_request.ttl_s);
end
$$;

-- POST /v1/auth/otp/verify. display_name is null when the client sent none.
create function famcall_otp_verify(phone text, code_hash text, display_name text,
                                   refresh_hash text, refresh_ttl_s int,
                                   max_attempts int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c        otp_codes;
    u        users;
    fam      uuid;
    is_new   boolean := false;
    left_    int;
begin
    -- The phone's live code (requests kill older ones), locked: guesses at one
    -- code take turns, so the attempt count is exact.
    select * into c
      from otp_codes
     where otp_codes.phone = famcall_otp_verify.phone
       and otp_codes.consumed_at is null and otp_codes.killed_at is null
     order by otp_codes.created_at desc, otp_codes.id desc
     limit 1
       for update;

    if not found or c.expires_at <= now() then
        return query select 401, famcall_err('code_expired',
            'no valid code for this phone; request a new one');
        return;
    end if;

    if c.attempts >= famcall_otp_verify.max_attempts then
        return query select 429, famcall_err('too_many_attempts',
            'too many wrong codes; request a new one');
        return;
    end if;

    if c.code_hash <> famcall_otp_verify.code_hash then
        -- counted even though an error is returned: it commits
        update otp_codes set attempts = attempts + 1 where otp_codes.id = c.id;
        left_ := famcall_otp_verify.max_attempts - (c.attempts + 1);
        if left_ <= 0 then
            return query select 429, famcall_err('too_many_attempts',
                'too many wrong codes; request a new one');
        else
            return query select 401, jsonb_set(
                famcall_err('invalid_code', 'wrong code', 'code'),
                '{error,attempts_left}', to_jsonb(left_));
        end if;
        return;
    end if;

    select * into u from users where users.phone = famcall_otp_verify.phone;
    if not found then
        if famcall_otp_verify.display_name is null then
            -- The right code, but a new account needs a name: the code stays
            -- live and no attempt is counted, so the client can ask and resend.
            return query select 422, famcall_err('missing_field',
                'display_name is required to create an account',
                'display_name');
            return;
        end if;
        insert into users (phone, display_name)
        values (famcall_otp_verify.phone, famcall_otp_verify.display_name)
        on conflict on constraint users_phone_key do nothing
        returning * into u;
        is_new := found;
        if not is_new then    -- created concurrently by another path
            select * into u from users where users.phone = famcall_otp_verify.phone;
        end if;
    end if;

    update otp_codes set consumed_at = now() where otp_codes.id = c.id;
    fam := famcall_family_new(u.id, famcall_otp_verify.refresh_hash,
                              famcall_otp_verify.refresh_ttl_s);
    return query select 200, jsonb_build_object('user', famcall_user_json(u),
                                                'family_id', fam,
                                                'new_user', is_new);
end
$$;
