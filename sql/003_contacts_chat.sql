-- Contacts, blocks, reports, conversations and messages: one SQL function per
-- API call (docs/api.md, "Contacts, blocks, reports, conversations, messages").
--
-- Same conventions as 002_accounts.sql: each function returns one row
-- (status int, body jsonb), errors are returned (status >= 400, body the error
-- envelope), never raised; parameters are referred to as <function>.<name>.
-- Read-only list/search functions are plain SQL with schema-qualified names and
-- no SET clause (so the planner can inline them); the others are plpgsql with a
-- pinned search_path.
--
-- Lock order (no cycles, so no deadlocks between these functions):
--   - contact request/accept/remove and block serialise per pair of users on
--     advisory lock (3, hash of the ordered pair) before reading the pair's
--     contacts and blocks, so two people asking each other at once end up
--     accepted, and a block cannot interleave with a request;
--   - a send locks its conversation row first (FOR NO KEY UPDATE; the batch,
--     famcall_message_send_batch, locks several in one global order), then
--     inserts its message;
--   - list (delivered marks) and read lock the caller's conversation_members
--     row first, then the peer's messages (rows only this caller updates).
-- Advisory lock keys (two-int form, first int = class): 3 = contact pair.
-- Single bigint form: hashtextextended(sender || client_id, 4), a send's
-- idempotency key while it is being inserted (famcall_message_send).
--
-- The functions that insert rows pointing at the caller (contact request,
-- block, report, conversation open) answer 401 unauthorized when the caller's
-- account is gone, as famcall_me does, instead of raising a foreign key error.

-- Indexes for the rules below and for ON DELETE cascades that would otherwise
-- scan whole tables (deleting a user removes their conversations and messages;
-- every deleted message nulls reports.message_id).
create index contacts_contact_idx on contacts (contact_id);
create index contacts_requested_by_idx on contacts (requested_by);
create index reports_message_idx on reports (message_id)
    where message_id is not null;

-- The public user object: what other users see (never email or phone).
create function famcall_public_user_json(u users) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'id', u.id,
        'username', u.username,
        'display_name', u.display_name,
        'avatar_url', u.avatar_url)
$$;

-- The message object.
create function famcall_message_json(m messages) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'id', m.id,
        'conversation_id', m.conversation_id,
        'seq', m.seq,
        'sender_id', m.sender_id,
        'client_id', m.client_id,
        'body', m.body,
        'sent_at', public.famcall_ts(m.sent_at),
        'delivered_at', public.famcall_ts(m.delivered_at),
        'read_at', public.famcall_ts(m.read_at))
$$;

-- The contact object of row c (c.user_id's side), u being c.contact_id.
create function famcall_contact_json(c contacts, u users) returns jsonb
language sql stable parallel safe
as $$
    select jsonb_build_object(
        'user', public.famcall_public_user_json(u),
        'status', c.status,
        'direction', case when c.requested_by = c.user_id then 'outgoing'
                          else 'incoming' end,
        'created_at', public.famcall_ts(c.created_at),
        'accepted_at', public.famcall_ts(c.accepted_at))
$$;

-- Serialise contact and block changes between a and b (either order).
create function famcall_pair_lock(a uuid, b uuid) returns void
language sql
as $$
    select pg_catalog.pg_advisory_xact_lock(3, pg_catalog.hashtext(
        least(a, b)::text || greatest(a, b)::text))
$$;

-- Whether either of a and b has blocked the other.
create function famcall_blocked_either(a uuid, b uuid) returns boolean
language sql stable
as $$
    select exists (select 1 from public.blocks k
                    where k.blocker_id = a and k.blocked_id = b)
        or exists (select 1 from public.blocks k
                    where k.blocker_id = b and k.blocked_id = a)
$$;

-- The caller's conversations as API objects, with the sort key of the list
-- (newest message, else creation). Plain SQL: inlined into its callers, where
-- a filter on id is pushed down to the membership key.
create function famcall_conversation_view(me uuid)
returns table (id uuid, activity timestamptz, obj jsonb)
language sql stable
as $$
    select c.id,
           coalesce(lm.sent_at, c.created_at),
           jsonb_build_object(
               'id', c.id,
               'kind', c.kind,
               'peer', public.famcall_public_user_json(p),
               'last_seq', c.last_seq,
               'last_read_seq', cm.last_read_seq,
               'unread_count',
                   (select count(*)
                      from public.messages um
                     where um.conversation_id = c.id
                       and um.seq > cm.last_read_seq
                       and um.sender_id <> famcall_conversation_view.me),
               'last_message', case when lm.id is null then null
                                    else public.famcall_message_json(lm) end,
               'created_at', public.famcall_ts(c.created_at))
      from public.conversation_members cm
      join public.conversations c on c.id = cm.conversation_id
      join public.users p
        on p.id = case when c.user_lo = famcall_conversation_view.me
                       then c.user_hi else c.user_lo end
      left join public.messages lm
        on lm.conversation_id = c.id and lm.seq = c.last_seq
     where cm.user_id = famcall_conversation_view.me
$$;

-- GET /v1/users/search?q=. q arrives validated: '+E164' (exact phone match) or
-- a lowercase username prefix of 2..32 of [a-z0-9_.]. The prefix is a range
-- on the username index (collation "C", byte order): every username starting
-- with q sorts in [q, q || '~') since '~' is above all of [a-z0-9_.]; no LIKE,
-- so '_' and '.' are plain characters and a generic plan still uses the index.
-- Ordered by username, which puts an exact match first (a string sorts before
-- its extensions), so the index order serves the limit.
create function famcall_user_search(me uuid, q text)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select case when k.ok then 200 else 422 end,
           case when not k.ok then
               public.famcall_err('invalid_field',
                   'search with q: a username prefix or a phone number', 'q')
           else jsonb_build_object('users', coalesce(
               (select jsonb_agg(public.famcall_public_user_json(f.u)
                                 order by (f.u).username)
                  from (select u
                          from public.users u
                         where k.phone
                           and u.phone = famcall_user_search.q
                           and u.id <> famcall_user_search.me
                           and not exists (
                               select 1 from public.blocks b
                                where b.blocker_id = u.id
                                  and b.blocked_id = famcall_user_search.me)
                        union all
                        (select u
                           from public.users u
                          where not k.phone
                            and u.username >= famcall_user_search.q
                            and u.username < famcall_user_search.q || '~'
                            and starts_with(u.username, famcall_user_search.q)
                            and u.id <> famcall_user_search.me
                            and not exists (
                                select 1 from public.blocks b
                                 where b.blocker_id = u.id
                                   and b.blocked_id = famcall_user_search.me)
                          order by u.username
                          limit 20)) f),
               '[]'::jsonb))
           end
      from (select coalesce(q ~ '^\+[1-9][0-9]{6,14}$', false) as phone,
                   coalesce(q ~ '^\+[1-9][0-9]{6,14}$'
                            or q ~ '^[a-z0-9_.]{2,}$', false) as ok
              from (select famcall_user_search.q) x (q)) k
$$;

-- GET /v1/contacts: accepted first, then pending; by display name (ignoring
-- case).
create function famcall_contacts_list(me uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select 200, jsonb_build_object('contacts', coalesce(
        (select jsonb_agg(public.famcall_contact_json(c, u)
                          order by c.status = 'accepted' desc,
                                   lower(u.display_name), u.display_name, u.id)
           from public.contacts c
           join public.users u on u.id = c.contact_id
          where c.user_id = famcall_contacts_list.me),
        '[]'::jsonb))
$$;

-- POST /v1/contacts. Exactly one of user_id, username (lowercase), phone is
-- not null. 201 new request, or accepted when the other side had asked; 200
-- the existing contact as it stands; 404 no such user or that user blocked the
-- caller (the same answer); 409 the caller blocked them; 422 yourself or not
-- exactly one key.
create function famcall_contact_request(me uuid, user_id uuid, username text,
                                        phone text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    fld  text;
    t    users;
    c    contacts;
begin
    if not exists (select 1 from users u
                    where u.id = famcall_contact_request.me) then
        -- a valid token outliving its account (as famcall_me answers)
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;
    if (famcall_contact_request.user_id is not null)::int
       + (famcall_contact_request.username is not null)::int
       + (famcall_contact_request.phone is not null)::int <> 1 then
        return query select 422, famcall_err('invalid_field',
            'send exactly one of user_id, username, phone');
        return;
    end if;

    if famcall_contact_request.user_id is not null then
        fld := 'user_id';
        select * into t from users
         where users.id = famcall_contact_request.user_id;
    elsif famcall_contact_request.username is not null then
        fld := 'username';
        select * into t from users
         where users.username = famcall_contact_request.username;
    else
        fld := 'phone';
        select * into t from users
         where users.phone = famcall_contact_request.phone;
    end if;

    if t.id = famcall_contact_request.me then
        return query select 422, famcall_err('invalid_field',
            'must be another user', fld);
        return;
    end if;

    if t.id is not null then
        perform famcall_pair_lock(famcall_contact_request.me, t.id);
    end if;

    if t.id is null or exists (
        select 1 from blocks b
         where b.blocker_id = t.id and b.blocked_id = famcall_contact_request.me)
    then
        return query select 404, famcall_err('not_found', 'no such user', fld);
        return;
    end if;

    if exists (
        select 1 from blocks b
         where b.blocker_id = famcall_contact_request.me and b.blocked_id = t.id)
    then
        return query select 409, famcall_err('blocked',
            'you blocked this user; unblock them first');
        return;
    end if;

    select * into c from contacts k
     where k.user_id = famcall_contact_request.me and k.contact_id = t.id;

    if found then
        if c.status = 'pending' and c.requested_by = t.id then
            -- asking back accepts
            update contacts k
               set status = 'accepted', accepted_at = now()
             where (k.user_id = famcall_contact_request.me and k.contact_id = t.id)
                or (k.user_id = t.id and k.contact_id = famcall_contact_request.me);
            select * into c from contacts k
             where k.user_id = famcall_contact_request.me and k.contact_id = t.id;
            return query select 201, famcall_contact_json(c, t);
            return;
        end if;
        return query select 200, famcall_contact_json(c, t);
        return;
    end if;

    insert into contacts (user_id, contact_id, status, requested_by)
    values (famcall_contact_request.me, t.id, 'pending',
            famcall_contact_request.me),
           (t.id, famcall_contact_request.me, 'pending',
            famcall_contact_request.me)
    on conflict do nothing;

    select * into c from contacts k
     where k.user_id = famcall_contact_request.me and k.contact_id = t.id;
    return query select 201, famcall_contact_json(c, t);
end
$$;

-- POST /v1/contacts/{other}/accept: 200 the accepted contact (also when it
-- already was); 404 when there is no incoming request from other.
create function famcall_contact_accept(me uuid, other uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    c contacts;
    t users;
begin
    perform famcall_pair_lock(famcall_contact_accept.me,
                              famcall_contact_accept.other);

    select * into c from contacts k
     where k.user_id = famcall_contact_accept.me
       and k.contact_id = famcall_contact_accept.other;

    if not found
       or (c.status = 'pending' and c.requested_by = famcall_contact_accept.me)
    then
        return query select 404, famcall_err('not_found',
            'no contact request from this user');
        return;
    end if;

    if c.status = 'pending' then
        update contacts k
           set status = 'accepted', accepted_at = now()
         where (k.user_id = famcall_contact_accept.me
                and k.contact_id = famcall_contact_accept.other)
            or (k.user_id = famcall_contact_accept.other
                and k.contact_id = famcall_contact_accept.me);
        select * into c from contacts k
         where k.user_id = famcall_contact_accept.me
           and k.contact_id = famcall_contact_accept.other;
    end if;

    select * into t from users where users.id = famcall_contact_accept.other;
    return query select 200, famcall_contact_json(c, t);
end
$$;

-- DELETE /v1/contacts/{other}: removes a contact, withdraws an outgoing or
-- declines an incoming request. 204; 404 when there is none.
create function famcall_contact_remove(me uuid, other uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
begin
    perform famcall_pair_lock(famcall_contact_remove.me,
                              famcall_contact_remove.other);

    delete from contacts k
     where (k.user_id = famcall_contact_remove.me
            and k.contact_id = famcall_contact_remove.other)
        or (k.user_id = famcall_contact_remove.other
            and k.contact_id = famcall_contact_remove.me);

    if not found then
        return query select 404, famcall_err('not_found',
            'no contact or request with this user');
        return;
    end if;
    return query select 204, null::jsonb;
end
$$;

-- GET /v1/blocks: newest first.
create function famcall_blocks_list(me uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select 200, jsonb_build_object('blocks', coalesce(
        (select jsonb_agg(jsonb_build_object(
                    'user', public.famcall_public_user_json(u),
                    'created_at', public.famcall_ts(b.created_at))
                  order by b.created_at desc, u.id)
           from public.blocks b
           join public.users u on u.id = b.blocked_id
          where b.blocker_id = famcall_blocks_list.me),
        '[]'::jsonb))
$$;

-- POST /v1/blocks: 201 {user, created_at}, 200 when already blocked. Any
-- contact or request between the two goes.
create function famcall_block(me uuid, other uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    t   users;
    b   blocks;
    st  int := 201;
begin
    if not exists (select 1 from users u
                    where u.id = famcall_block.me) then
        -- a valid token outliving its account (as famcall_me answers)
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;
    if famcall_block.other = famcall_block.me then
        return query select 422, famcall_err('invalid_field',
            'must be another user', 'user_id');
        return;
    end if;

    select * into t from users where users.id = famcall_block.other;
    if not found then
        return query select 404, famcall_err('not_found', 'no such user',
                                             'user_id');
        return;
    end if;

    perform famcall_pair_lock(famcall_block.me, famcall_block.other);

    insert into blocks (blocker_id, blocked_id)
    values (famcall_block.me, famcall_block.other)
    on conflict do nothing
    returning * into b;
    if not found then
        st := 200;
        select * into b from blocks k
         where k.blocker_id = famcall_block.me
           and k.blocked_id = famcall_block.other;
    end if;

    delete from contacts k
     where (k.user_id = famcall_block.me and k.contact_id = famcall_block.other)
        or (k.user_id = famcall_block.other and k.contact_id = famcall_block.me);

    return query select st, jsonb_build_object(
        'user', famcall_public_user_json(t),
        'created_at', famcall_ts(b.created_at));
end
$$;

-- DELETE /v1/blocks/{other}: 204; 404 when not blocked.
create function famcall_unblock(me uuid, other uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
begin
    delete from blocks k
     where k.blocker_id = famcall_unblock.me
       and k.blocked_id = famcall_unblock.other;
    if not found then
        return query select 404, famcall_err('not_found',
            'this user is not blocked');
        return;
    end if;
    return query select 204, null::jsonb;
end
$$;

-- POST /v1/reports. The message, if given, must be in a conversation the
-- reporter is a member of and sent by the reported user; else 404 as if it
-- did not exist. Blocks do not matter: anyone can report anyone they know of.
create function famcall_report(me uuid, user_id uuid, reason text, text text,
                               message_id uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    r reports;
begin
    if not exists (select 1 from users u
                    where u.id = famcall_report.me) then
        -- a valid token outliving its account (as famcall_me answers)
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;
    if famcall_report.user_id is null then
        return query select 422, famcall_err('missing_field',
            'user_id is required', 'user_id');
        return;
    end if;
    if famcall_report.user_id = famcall_report.me then
        return query select 422, famcall_err('invalid_field',
            'must be another user', 'user_id');
        return;
    end if;
    if famcall_report.reason is null
       or famcall_report.reason not in ('spam', 'harassment', 'inappropriate',
                                        'impersonation', 'other') then
        return query select 422, famcall_err('invalid_field',
            'must be one of spam, harassment, inappropriate, impersonation, other',
            'reason');
        return;
    end if;
    if char_length(famcall_report.text) > 2000 then
        return query select 422, famcall_err('invalid_field',
            'must be at most 2000 characters long', 'text');
        return;
    end if;

    if not exists (select 1 from users u where u.id = famcall_report.user_id)
    then
        return query select 404, famcall_err('not_found', 'no such user',
                                             'user_id');
        return;
    end if;

    if famcall_report.message_id is not null and not exists (
        select 1
          from messages m
          join conversation_members cm
            on cm.conversation_id = m.conversation_id
           and cm.user_id = famcall_report.me
         where m.id = famcall_report.message_id
           and m.sender_id = famcall_report.user_id)
    then
        return query select 404, famcall_err('not_found', 'no such message',
                                             'message_id');
        return;
    end if;

    insert into reports (reporter_id, reported_id, reason, message_id, body)
    values (famcall_report.me, famcall_report.user_id, famcall_report.reason,
            famcall_report.message_id, famcall_report.text)
    returning * into r;

    return query select 201, jsonb_build_object(
        'id', r.id,
        'user_id', r.reported_id,
        'reason', r.reason,
        'text', r.body,
        'message_id', r.message_id,
        'created_at', famcall_ts(r.created_at));
end
$$;

-- GET /v1/conversations: most recent activity first.
create function famcall_conversations_list(me uuid)
returns table (status int, body jsonb)
language sql stable rows 1
as $$
    select 200, jsonb_build_object('conversations', coalesce(
        (select jsonb_agg(v.obj order by v.activity desc, v.id)
           from public.famcall_conversation_view(famcall_conversations_list.me) v),
        '[]'::jsonb))
$$;

-- POST /v1/conversations {user_id}: 201 new, 200 existing (also when both
-- sides open it at once: the pair's unique key decides, the loser reads the
-- winner's row once it commits). 404 no such user; 403 blocked (either way),
-- 403 not_a_contact; 422 yourself.
create function famcall_conversation_open(me uuid, other uuid)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    lo   uuid := least(famcall_conversation_open.me,
                       famcall_conversation_open.other);
    hi   uuid := greatest(famcall_conversation_open.me,
                          famcall_conversation_open.other);
    cid  uuid;
    st   int := 201;
begin
    if not exists (select 1 from users u
                    where u.id = famcall_conversation_open.me) then
        -- a valid token outliving its account (as famcall_me answers)
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;
    if famcall_conversation_open.other = famcall_conversation_open.me then
        return query select 422, famcall_err('invalid_field',
            'must be another user', 'user_id');
        return;
    end if;

    if not exists (select 1 from users u
                    where u.id = famcall_conversation_open.other) then
        return query select 404, famcall_err('not_found', 'no such user',
                                             'user_id');
        return;
    end if;

    if famcall_blocked_either(famcall_conversation_open.me,
                              famcall_conversation_open.other) then
        return query select 403, famcall_err('blocked',
            'one of you has blocked the other');
        return;
    end if;

    if not exists (select 1 from contacts k
                    where k.user_id = famcall_conversation_open.me
                      and k.contact_id = famcall_conversation_open.other
                      and k.status = 'accepted') then
        return query select 403, famcall_err('not_a_contact',
            'you can only talk to accepted contacts');
        return;
    end if;

    insert into conversations (user_lo, user_hi) values (lo, hi)
    on conflict on constraint conversations_pair_key do nothing
    returning conversations.id into cid;

    if found then
        insert into conversation_members (conversation_id, user_id)
        values (cid, lo), (cid, hi);
    else
        st := 200;
        select c.id into cid from conversations c
         where c.user_lo = lo and c.user_hi = hi;
    end if;

    return query select st, v.obj
                   from famcall_conversation_view(famcall_conversation_open.me) v
                  where v.id = cid;
end
$$;

-- GET /v1/conversations/{id}/messages. A page in ascending seq: no cursor, the
-- newest lim; before_seq, the newest lim below it; after_seq, the oldest lim
-- above it; both, the oldest lim between them. The peer's messages in the page
-- get delivered_at now if unset, and the caller's last_delivered_seq moves up
-- to the page's newest seq (never down); the page is answered as it is after
-- that. 404 for non-members and unknown ids alike.
create function famcall_messages_list(me uuid, conversation uuid,
                                      before_seq bigint, after_seq bigint,
                                      lim int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    n            int := coalesce(famcall_messages_list.lim, 50);
    below        bigint := coalesce(famcall_messages_list.before_seq,
                                    9223372036854775807);
    delivered    bigint;
    page         jsonb;
    lo           bigint;
    hi           bigint;
    undelivered  boolean;
begin
    if n < 1 or n > 200 then
        return query select 422, famcall_err('invalid_field',
            'must be an integer from 1 to 200', 'limit');
        return;
    end if;
    if famcall_messages_list.before_seq < 0 then
        return query select 422, famcall_err('invalid_field',
            'must be a non-negative integer', 'before_seq');
        return;
    end if;
    if famcall_messages_list.after_seq < 0 then
        return query select 422, famcall_err('invalid_field',
            'must be a non-negative integer', 'after_seq');
        return;
    end if;

    select cm.last_delivered_seq into delivered
      from conversation_members cm
     where cm.conversation_id = famcall_messages_list.conversation
       and cm.user_id = famcall_messages_list.me;
    if not found then
        return query select 404, famcall_err('not_found',
            'no such conversation');
        return;
    end if;

    if famcall_messages_list.after_seq is null then
        select jsonb_agg(famcall_message_json(s.m) order by (s.m).seq),
               min((s.m).seq), max((s.m).seq),
               bool_or((s.m).sender_id <> famcall_messages_list.me
                       and (s.m).delivered_at is null)
          into page, lo, hi, undelivered
          from (select m
                  from messages m
                 where m.conversation_id = famcall_messages_list.conversation
                   and m.seq < below
                 order by m.seq desc
                 limit n) s;
    else
        select jsonb_agg(famcall_message_json(s.m) order by (s.m).seq),
               min((s.m).seq), max((s.m).seq),
               bool_or((s.m).sender_id <> famcall_messages_list.me
                       and (s.m).delivered_at is null)
          into page, lo, hi, undelivered
          from (select m
                  from messages m
                 where m.conversation_id = famcall_messages_list.conversation
                   and m.seq > famcall_messages_list.after_seq
                   and m.seq < below
                 order by m.seq
                 limit n) s;
    end if;

    if page is null then
        return query select 200, jsonb_build_object('messages', '[]'::jsonb);
        return;
    end if;

    if undelivered or hi > delivered then
        -- the caller's member row first (see the lock order at the top)
        update conversation_members cm
           set last_delivered_seq = greatest(cm.last_delivered_seq, hi)
         where cm.conversation_id = famcall_messages_list.conversation
           and cm.user_id = famcall_messages_list.me;

        if undelivered then
            -- seqs are gapless, so [lo, hi] is exactly the page
            update messages m
               set delivered_at = now()
             where m.conversation_id = famcall_messages_list.conversation
               and m.seq between lo and hi
               and m.sender_id <> famcall_messages_list.me
               and m.delivered_at is null;

            select jsonb_agg(famcall_message_json(m) order by m.seq)
              into page
              from messages m
             where m.conversation_id = famcall_messages_list.conversation
               and m.seq between lo and hi;
        end if;
    end if;

    return query select 200, jsonb_build_object('messages', page);
end
$$;

-- POST /v1/conversations/{id}/messages. The conversation row is locked before
-- anything is read, so seq = last_seq + 1 is unique and gapless across workers
-- and nodes. A client_id this sender already used answers the stored message
-- (200) when it is in this conversation, 409 client_id_reused when it is in
-- another; that is checked before blocks and contacts, so a retry of a send
-- that was stored gets its message back whatever happened since. The same
-- client_id being sent concurrently to another conversation is a 409 too,
-- without waiting and without a unique violation: nothing is raised, so
-- famcall_message_send_batch's transaction (other users' sends) survives.
-- The spec's 4th argument "body" is named message_body here: "body" is taken
-- by the result column. Callers pass it by position.
create function famcall_message_send(me uuid, conversation uuid, client_id uuid,
                                     message_body text)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    conv  conversations;
    peer  uuid;
    msg   messages;
begin
    if famcall_message_send.client_id is null then
        return query select 422, famcall_err('missing_field',
            'client_id is required', 'client_id');
        return;
    end if;
    if famcall_message_send.message_body is null
       or famcall_message_send.message_body !~ '[^[:space:]]'
       or char_length(famcall_message_send.message_body) > 4000 then
        return query select 422, famcall_err('invalid_field',
            'must be 1 to 4000 characters, not blank', 'body');
        return;
    end if;

    select c.* into conv
      from conversations c
     where c.id = famcall_message_send.conversation
       and exists (select 1 from conversation_members cm
                    where cm.conversation_id = c.id
                      and cm.user_id = famcall_message_send.me)
       for no key update of c;
    if not found then
        return query select 404, famcall_err('not_found',
            'no such conversation');
        return;
    end if;

    select m.* into msg
      from messages m
     where m.sender_id = famcall_message_send.me
       and m.client_id = famcall_message_send.client_id;
    if found then
        if msg.conversation_id = conv.id then
            return query select 200, famcall_message_json(msg);
        else
            return query select 409, famcall_err('client_id_reused',
                'this client_id was used for another conversation',
                'client_id');
        end if;
        return;
    end if;

    peer := case when conv.user_lo = famcall_message_send.me then conv.user_hi
                 else conv.user_lo end;

    if famcall_blocked_either(famcall_message_send.me, peer) then
        return query select 403, famcall_err('blocked',
            'one of you has blocked the other');
        return;
    end if;

    if not exists (select 1 from contacts k
                    where k.user_id = famcall_message_send.me
                      and k.contact_id = peer
                      and k.status = 'accepted') then
        return query select 403, famcall_err('not_a_contact',
            'you can only talk to accepted contacts');
        return;
    end if;

    -- Never wait on another transaction's insert of this (sender, client_id):
    -- a batch holding other conversations' locks could deadlock on it. Every
    -- insert takes this lock first; one in the same conversation would have
    -- held our row lock, so whoever holds it is sending this client_id to
    -- another conversation right now.
    if not pg_try_advisory_xact_lock(hashtextextended(
               famcall_message_send.me::text
               || famcall_message_send.client_id::text, 4)) then
        return query select 409, famcall_err('client_id_reused',
            'this client_id was used for another conversation', 'client_id');
        return;
    end if;

    insert into messages (conversation_id, seq, sender_id, client_id, body)
    values (conv.id, conv.last_seq + 1, famcall_message_send.me,
            famcall_message_send.client_id, famcall_message_send.message_body)
    on conflict on constraint messages_sender_client_key do nothing
    returning * into msg;

    if not found then
        -- a send with the same client_id committed since our check; in this
        -- conversation it would have held our row lock, so it is another one
        select m.* into msg
          from messages m
         where m.sender_id = famcall_message_send.me
           and m.client_id = famcall_message_send.client_id;
        if msg.conversation_id = conv.id then
            return query select 200, famcall_message_json(msg);
        else
            return query select 409, famcall_err('client_id_reused',
                'this client_id was used for another conversation',
                'client_id');
        end if;
        return;
    end if;

    update conversations c set last_seq = msg.seq where c.id = conv.id;

    return query select 201, famcall_message_json(msg);
end
$$;

-- POST /v1/conversations/{id}/read {up_to_seq}: the caller's read pointer goes
-- to least(up_to_seq, last_seq) when that is ahead (never back); the peer's
-- messages up to it get read_at (and delivered_at) now if unset. 204 for any
-- member; 404 otherwise.
create function famcall_conversation_read(me uuid, conversation uuid,
                                          up_to_seq bigint)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    cur   bigint;
    last  bigint;
    ptr   bigint;
begin
    if famcall_conversation_read.up_to_seq is null
       or famcall_conversation_read.up_to_seq < 0 then
        return query select 422, famcall_err('invalid_field',
            'must be a non-negative integer', 'up_to_seq');
        return;
    end if;

    select cm.last_read_seq, c.last_seq into cur, last
      from conversation_members cm
      join conversations c on c.id = cm.conversation_id
     where cm.conversation_id = famcall_conversation_read.conversation
       and cm.user_id = famcall_conversation_read.me;
    if not found then
        return query select 404, famcall_err('not_found',
            'no such conversation');
        return;
    end if;

    ptr := least(famcall_conversation_read.up_to_seq, last);
    if ptr > cur then
        -- again under the row lock: a concurrent read may have moved it
        select cm.last_read_seq into cur
          from conversation_members cm
         where cm.conversation_id = famcall_conversation_read.conversation
           and cm.user_id = famcall_conversation_read.me
           for no key update;
        if ptr > cur then
            update conversation_members cm
               set last_read_seq = ptr,
                   last_delivered_seq = greatest(cm.last_delivered_seq, ptr)
             where cm.conversation_id = famcall_conversation_read.conversation
               and cm.user_id = famcall_conversation_read.me;

            -- everything up to cur was marked when the pointer got there
            update messages m
               set read_at = now(),
                   delivered_at = coalesce(m.delivered_at, now())
             where m.conversation_id = famcall_conversation_read.conversation
               and m.seq > cur and m.seq <= ptr
               and m.sender_id <> famcall_conversation_read.me
               and m.read_at is null;
        end if;
    end if;

    return query select 204, null::jsonb;
end
$$;
