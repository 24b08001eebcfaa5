-- Export: POST /v1/me/export asks for one (at most one within an interval),
-- GET /v1/me/export streams it while the request is fresh.  The document is
-- written from the tables as it is read, page by page, so neither the
-- database nor nginx ever holds more than a page of it: a user with a
-- million messages costs a few thousand small queries, not a million-row
-- result or a document in memory.
--
--     {"format": "famcall-export-1", "exported_at", "profile", "legal",
--      "contacts", "blocks", "devices", "invites",
--      "calls": [...],
--      "conversations": [{"id", "peer", "created_at", "last_read_seq",
--                         "messages": [...]}, ...]}

create table account_exports (
    user_id      uuid primary key references users on delete cascade,
    requested_at timestamptz not null default now()
);

-- POST /v1/me/export: 202 {"requested_at", "expires_at"}; 429 (with
-- retry_after) when the last one is younger than interval_s.
create function famcall_export_request(me uuid, interval_s int, ttl_s int)
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    e  account_exports;
begin
    if not exists (select 1 from users u where u.id = $1) then
        return query select 401, famcall_err('unauthorized', 'no such user');
        return;
    end if;

    select * into e from account_exports x where x.user_id = $1 for update;
    if found and e.requested_at > now() - make_interval(secs => $2) then
        return query select 429, jsonb_set(
            famcall_err('rate_limited',
                        'one export a day: the last one is still there'),
            '{error,retry_after}',
            to_jsonb(greatest(1, ceil(extract(epoch from
                e.requested_at + make_interval(secs => $2) - now())))::int));
        return;
    end if;

    insert into account_exports (user_id) values ($1)
    on conflict (user_id) do update set requested_at = now()
    returning * into e;

    return query select 202, jsonb_build_object(
        'requested_at', famcall_ts(e.requested_at),
        'expires_at', famcall_ts(e.requested_at + make_interval(secs => $3)));
end
$$;

-- One page of GET /v1/me/export: its body is "<next cursor>\n<text>", the
-- text to append to the document and the cursor to ask with next (empty:
-- the document is complete).  Cursors:
--     null          the start: 404 when no export is fresh
--     c | c<t>,<id> the calls, after (created_at in microseconds, id)
--     v | v<conv>   the conversations, after that id
--     m<conv>:<seq> the messages of a conversation, after that seq
-- lim: calls or messages in a page.
create function famcall_export_page(me uuid, cursor_ text, ttl_s int,
                                    lim int)
returns table (status int, body text)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    u      users;
    kind   text := left($2, 1);
    rest   text := substr($2, 2);
    out_   text;
    n      int;
    conv   uuid;
    seq_   bigint;
    last_  text;
    cv     record;
begin
    select * into u from users where users.id = $1;
    if not found then
        return query select 401, famcall_err('unauthorized',
            'no such user')::text;
        return;
    end if;
    if not exists (select 1 from account_exports x
                    where x.user_id = $1
                      and x.requested_at > now() - make_interval(secs => $3))
    then
        return query select 404, famcall_err('not_found',
            'no export is ready: ask for one with POST /v1/me/export')::text;
        return;
    end if;

    if $2 is null then
        out_ := jsonb_build_object(
            'format', 'famcall-export-1',
            'exported_at', famcall_ts(now()),
            'profile', famcall_user_json(u)
                       || jsonb_build_object('updated_at',
                                             famcall_ts(u.updated_at),
                                             'last_seen_at',
                                             famcall_ts(u.last_seen_at)),
            'legal', jsonb_build_object('accepted_version', u.legal_version,
                         'accepted_at', famcall_ts(u.legal_accepted_at)),
            'contacts', coalesce((select jsonb_agg(famcall_contact_json(c, p)
                                                   order by c.created_at)
                                    from contacts c
                                    join users p on p.id = c.contact_id
                                   where c.user_id = $1), '[]'),
            'blocks', coalesce((select jsonb_agg(jsonb_build_object(
                                    'user', famcall_public_user_json(p),
                                    'created_at', famcall_ts(b.created_at))
                                    order by b.created_at)
                                  from blocks b
                                  join users p on p.id = b.blocked_id
                                 where b.blocker_id = $1), '[]'),
            -- a push token is a credential for the device, not data about
            -- the user: it stays out
            'devices', coalesce((select jsonb_agg(to_jsonb(d) - 'push_token'
                                                  - 'voip_token' - 'user_id'
                                                  order by d.created_at)
                                   from devices d
                                  where d.user_id = $1), '[]'),
            'invites', coalesce((select jsonb_agg(famcall_invite_json(i)
                                                  order by i.created_at)
                                   from invites i
                                  where i.inviter_id = $1), '[]'))::text;
        -- the object stays open: the calls follow
        return query select 200, 'c' || chr(10) || left(out_, -1)
                                 || ', "calls": [';
        return;
    end if;

    if kind = 'c' then
        select string_agg(x.t, ', ' order by x.at, x.id), count(*),
               max(x.k)
          into out_, n, last_
          from (select (famcall_call_json(k)
                        || jsonb_build_object(
                               'direction', case when k.caller_id = $1
                                                 then 'outgoing'
                                                 else 'incoming' end,
                               'peer', famcall_public_user_json(p),
                               'my_report', (select to_jsonb(s) - 'user_id'
                                                    - 'call_id'
                                               from call_stats s
                                              where s.call_id = k.id
                                                and s.user_id = $1)))::text,
                       k.created_at, k.id,
                       -- the page's last key sorts last as text too
                       lpad((extract(epoch from k.created_at) * 1000000)
                                ::bigint::text, 20, '0') || ',' || k.id
                  from calls k
                  join users p on p.id = case when k.caller_id = $1
                                              then k.callee_id
                                              else k.caller_id end
                 where (k.caller_id = $1 or k.callee_id = $1)
                   and (rest = ''
                        or (lpad((extract(epoch from k.created_at) * 1000000)
                                     ::bigint::text, 20, '0')
                            || ',' || k.id) > rest)
                 order by k.created_at, k.id
                 limit $4) x (t, at, id, k);

        out_ := case when n = 0 then ''
                     when rest = '' then out_
                     else ', ' || out_ end;
        if n < $4 then
            return query select 200, 'v' || chr(10) || out_
                                     || '], "conversations": [';
        else
            return query select 200, 'c' || last_ || chr(10) || out_;
        end if;
        return;
    end if;

    if kind = 'v' then
        select c.id, c.created_at, c.last_seq, cm.last_read_seq, p
          into cv
          from conversation_members cm
          join conversations c on c.id = cm.conversation_id
          join users p on p.id = case when c.user_lo = $1 then c.user_hi
                                      else c.user_lo end
         where cm.user_id = $1
           and (rest = '' or cm.conversation_id > rest::uuid)
         order by cm.conversation_id
         limit 1;
        if not found then
            return query select 200, chr(10) || ']}';
            return;
        end if;
        out_ := jsonb_build_object('id', cv.id,
                    'peer', famcall_public_user_json(cv.p),
                    'created_at', famcall_ts(cv.created_at),
                    'last_seq', cv.last_seq,
                    'last_read_seq', cv.last_read_seq)::text;
        return query select 200, 'm' || cv.id || ':0' || chr(10)
                                 || case when rest = '' then '' else ', ' end
                                 || left(out_, -1) || ', "messages": [';
        return;
    end if;

    if kind = 'm' then
        conv := split_part(rest, ':', 1)::uuid;
        seq_ := split_part(rest, ':', 2)::bigint;
        if not exists (select 1 from conversation_members cm
                        where cm.conversation_id = conv
                          and cm.user_id = $1) then
            -- it went while the export was read (the other side deleted
            -- their account): closed as it stands
            return query select 200, 'v' || conv || chr(10) || ']}';
            return;
        end if;
        select string_agg(famcall_message_text(m), ', ' order by m.seq),
               count(*), max(m.seq)
          into out_, n, last_
          from (select * from messages m
                 where m.conversation_id = conv and m.seq > seq_
                 order by m.seq
                 limit $4) m;
        out_ := case when n = 0 then ''
                     when seq_ = 0 then out_
                     else ', ' || out_ end;
        if n < $4 then
            return query select 200, 'v' || conv || chr(10) || out_ || ']}';
        else
            return query select 200, 'm' || conv || ':' || last_ || chr(10)
                                     || out_;
        end if;
        return;
    end if;

    return query select 422, famcall_err('invalid_field',
        'unknown export cursor')::text;
end
$$;
