-- famcall data model. Later migrations add functions, indexes and columns; the
-- tables below are the whole model of the 1:1 chat and calling service.
--
-- Conventions: UUID ids from gen_random_uuid() (built into PostgreSQL 13+),
-- bigserial where an id never leaves the server, timestamptz everywhere, and every
-- reference to a user ON DELETE CASCADE so deleting a user removes what is theirs.
-- Input is validated by the nginx module; the checks here are the last line.

-- Users. An account has an email (with a password) or a phone (OTP), or both.
create table users (
    id            uuid primary key default gen_random_uuid(),
    email         text,           -- trimmed, lowercased by the API
    phone         text,           -- E.164
    password_hash text,           -- Argon2id (libsodium string); null: OTP only
    display_name  text not null,
    -- collation "C" whatever the database's, so a btree serves prefix search
    -- (username like 'abc%')
    username      text collate "C",
    avatar_url    text,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    last_seen_at  timestamptz,
    constraint users_email_key unique (email),
    constraint users_phone_key unique (phone),
    constraint users_username_key unique (username),
    constraint users_email_or_phone check (email is not null or phone is not null),
    constraint users_email_lower check (email = lower(email)),
    constraint users_phone_e164 check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    constraint users_username_format check (username ~ '^[a-z0-9_.]{3,32}$'),
    constraint users_display_name_length
        check (char_length(display_name) between 1 and 64),
    constraint users_avatar_url_length check (octet_length(avatar_url) <= 2048)
);

-- Refresh-token families: one per login (signup, login, OTP verify), i.e. one
-- signed-in device session; its id is the access token's "sid" claim. Rotation
-- and revocation of a family lock this row first, which serialises them: a
-- token issued by a concurrent refresh can never escape a revocation.
create table refresh_families (
    id         uuid primary key default gen_random_uuid(),
    user_id    uuid not null references users on delete cascade,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);
create index refresh_families_user_idx on refresh_families (user_id);

-- Refresh tokens, stored as SHA-256 hex. Each refresh spends one (used_at) and
-- issues the next in the same family.
create table refresh_tokens (
    id         bigserial primary key,
    family_id  uuid not null references refresh_families on delete cascade,
    user_id    uuid not null references users on delete cascade,
    token_hash text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at    timestamptz,
    regraced_at timestamptz,            -- its one reuse within the grace window
    revoked_at timestamptz,
    constraint refresh_tokens_token_hash_key unique (token_hash)
);
create index refresh_tokens_family_idx on refresh_tokens (family_id);
create index refresh_tokens_user_idx on refresh_tokens (user_id);

-- One-time codes, HMAC-SHA256 hex. Rows are kept (consumed or killed) for as long
-- as the longest rate-limit window: the send limits count them.
create table otp_codes (
    id          bigserial primary key,
    phone       text not null,
    ip          text not null,
    code_hash   text not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    attempts    int not null default 0,
    consumed_at timestamptz,    -- verified successfully
    killed_at   timestamptz     -- replaced by a newer request for the phone
);
create index otp_codes_phone_idx on otp_codes (phone, created_at);
create index otp_codes_ip_idx on otp_codes (ip, created_at);

-- Contacts: one row per direction, (me, them) and (them, me), written together
-- with the same status and requested_by. The frequent questions ("my contacts",
-- "may A call B", "who sees my presence") are then one index range scan or
-- lookup keyed by the asking user; only request/accept/delete (rare) write two.
create table contacts (
    user_id      uuid not null references users on delete cascade,
    contact_id   uuid not null references users on delete cascade,
    status       text not null check (status in ('pending', 'accepted')),
    requested_by uuid not null references users on delete cascade,
    created_at   timestamptz not null default now(),
    accepted_at  timestamptz,
    primary key (user_id, contact_id),
    check (user_id <> contact_id),
    check (requested_by in (user_id, contact_id)),
    check ((status = 'accepted') = (accepted_at is not null))
);

create table blocks (
    blocker_id uuid not null references users on delete cascade,
    blocked_id uuid not null references users on delete cascade,
    created_at timestamptz not null default now(),
    primary key (blocker_id, blocked_id),
    check (blocker_id <> blocked_id)
);
-- "who has blocked me" (search, presence and contact filtering)
create index blocks_blocked_idx on blocks (blocked_id);

-- Conversations. Only 1:1 for now: the pair is stored ordered, so there is at
-- most one conversation per pair of users.
create table conversations (
    id         uuid primary key default gen_random_uuid(),
    kind       text not null default '1:1' check (kind in ('1:1')),
    user_lo    uuid references users on delete cascade,
    user_hi    uuid references users on delete cascade,
    last_seq   bigint not null default 0,   -- seq of the newest message
    created_at timestamptz not null default now(),
    constraint conversations_pair_key unique (user_lo, user_hi),
    check (kind <> '1:1' or (user_lo is not null and user_hi is not null
                             and user_lo < user_hi))
);
create index conversations_user_hi_idx on conversations (user_hi);

create table conversation_members (
    conversation_id    uuid not null references conversations on delete cascade,
    user_id            uuid not null references users on delete cascade,
    last_read_seq      bigint not null default 0,
    last_delivered_seq bigint not null default 0,
    joined_at          timestamptz not null default now(),
    primary key (conversation_id, user_id)
);
create index conversation_members_user_idx on conversation_members (user_id);

-- Messages. seq is strictly increasing within a conversation (taken from
-- conversations.last_seq); client_id is the sender's idempotency key.
create table messages (
    id              uuid primary key default gen_random_uuid(),
    conversation_id uuid not null references conversations on delete cascade,
    seq             bigint not null,
    sender_id       uuid not null references users on delete cascade,
    client_id       uuid not null,
    body            text not null,
    sent_at         timestamptz not null default now(),
    delivered_at    timestamptz,
    read_at         timestamptz,
    constraint messages_conversation_seq_key unique (conversation_id, seq),
    constraint messages_sender_client_key unique (sender_id, client_id)
);

create table reports (
    id          uuid primary key default gen_random_uuid(),
    reporter_id uuid not null references users on delete cascade,
    reported_id uuid not null references users on delete cascade,
    reason      text not null check (reason in
                    ('spam', 'harassment', 'inappropriate', 'impersonation',
                     'other')),
    -- the report outlives the message it points at
    message_id  uuid references messages on delete set null,
    body        text,
    created_at  timestamptz not null default now()
);
create index reports_reported_idx on reports (reported_id, created_at);
create index reports_reporter_idx on reports (reporter_id);

-- Calls. Signaling (SDP, ICE) is never stored; state changes are conditional
-- updates of status, so the first device to accept wins across workers and nodes.
create table calls (
    id              uuid primary key default gen_random_uuid(),
    caller_id       uuid not null references users on delete cascade,
    callee_id       uuid not null references users on delete cascade,
    media           text not null check (media in ('video', 'audio')),
    status          text not null default 'ringing' check (status in
                        ('ringing', 'accepted', 'rejected', 'cancelled', 'missed',
                         'busy', 'ended', 'failed')),
    created_at      timestamptz not null default now(),
    answered_at     timestamptz,
    ended_at        timestamptz,
    end_reason      text,
    answered_device text,
    check (caller_id <> callee_id)
);
create index calls_caller_idx on calls (caller_id, created_at);
create index calls_callee_idx on calls (callee_id, created_at);

-- Push targets.
create table devices (
    id             uuid primary key default gen_random_uuid(),
    user_id        uuid not null references users on delete cascade,
    platform       text not null check (platform in
                       ('android', 'ios', 'web', 'desktop')),
    provider       text not null check (provider in ('expo', 'fcm', 'apns')),
    push_token     text not null,
    created_at     timestamptz not null default now(),
    last_active_at timestamptz not null default now(),
    constraint devices_provider_token_key unique (provider, push_token)
);
create index devices_user_idx on devices (user_id);

-- Outbox: pushes and SMS, written in the same transaction as their cause and
-- delivered by the dispatcher with retries (attempts, next_attempt_at).
create table outbox (
    id              bigserial primary key,
    kind            text not null,          -- 'sms', 'push', ...
    payload         jsonb not null,
    created_at      timestamptz not null default now(),
    attempts        int not null default 0,
    next_attempt_at timestamptz not null default now(),
    delivered_at    timestamptz,
    last_error      text
);
create index outbox_pending_idx on outbox (next_attempt_at)
    where delivered_at is null;
