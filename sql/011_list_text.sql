-- Listing a conversation renders its page as text, for a third of the
-- instructions (bench/sql/list-cost.sh).
--
-- famcall_messages_list (003) built each message with jsonb_build_object
-- (nine keys: the type of every argument looked up in the catalog cache at
-- every call, the keys sorted), gathered them with jsonb_agg, wrapped the
-- array in another object and had jsonb_out print it all: the database's
-- CPU, not nginx, bounded how many pages a node could list.
--
-- famcall_message_text(m) writes the same bytes directly: jsonb's key order
-- (by length, then bytes), ": " and ", " as jsonb_out writes them, strings
-- escaped by to_json as jsonb escapes them. t/13 checks a listed page
-- against famcall_message_json's rendering of the stored rows, byte for
-- byte. A new key in famcall_message_json must be added here, and in the
-- send batch's answer (sql/013 now), in the same migration.

create function famcall_message_text(m messages) returns text
language sql stable parallel safe
as $$
    select '{"id": "' || m.id || '", "seq": ' || m.seq
        || ', "body": ' || to_json(m.body)::text
        || ', "read_at": '
        || coalesce('"' || public.famcall_ts(m.read_at) || '"', 'null')
        || ', "sent_at": "' || public.famcall_ts(m.sent_at)
        || '", "client_id": "' || m.client_id
        || '", "sender_id": "' || m.sender_id
        || '", "delivered_at": '
        || coalesce('"' || public.famcall_ts(m.delivered_at) || '"', 'null')
        || ', "conversation_id": "' || m.conversation_id || '"}'
$$;

-- the send batch's rare "already sent" answer (009) with the same renderer
create or replace function famcall_message_text(id uuid) returns text
language sql stable
set search_path = pg_catalog, public, pg_temp
as $$
    select famcall_message_text(m) from messages m
     where m.id = famcall_message_text.id
$$;

-- GET /v1/conversations/{id}/messages, as in 003 (the same pages, the same
-- delivered_at and last_delivered_seq updates, the same errors) but answered
-- as text.
drop function famcall_messages_list(uuid, uuid, bigint, bigint, int);

create function famcall_messages_list(me uuid, conversation uuid,
                                      before_seq bigint, after_seq bigint,
                                      lim int)
returns table (status int, body text)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    n            int := coalesce(famcall_messages_list.lim, 50);
    below        bigint := coalesce(famcall_messages_list.before_seq,
                                    9223372036854775807);
    delivered    bigint;
    page         text;
    lo           bigint;
    hi           bigint;
    undelivered  boolean;
begin
    if n < 1 or n > 200 then
        return query select 422, famcall_err('invalid_field',
            'must be an integer from 1 to 200', 'limit')::text;
        return;
    end if;
    if famcall_messages_list.before_seq < 0 then
        return query select 422, famcall_err('invalid_field',
            'must be a non-negative integer', 'before_seq')::text;
        return;
    end if;
    if famcall_messages_list.after_seq < 0 then
        return query select 422, famcall_err('invalid_field',
            'must be a non-negative integer', 'after_seq')::text;
        return;
    end if;

    select cm.last_delivered_seq into delivered
      from conversation_members cm
     where cm.conversation_id = famcall_messages_list.conversation
       and cm.user_id = famcall_messages_list.me;
    if not found then
        return query select 404, famcall_err('not_found',
            'no such conversation')::text;
        return;
    end if;

    if famcall_messages_list.after_seq is null then
        select string_agg(famcall_message_text(s.m), ', ' order by (s.m).seq),
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
        select string_agg(famcall_message_text(s.m), ', ' order by (s.m).seq),
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
        return query select 200, '{"messages": []}'::text;
        return;
    end if;

    if undelivered or hi > delivered then
        -- the caller's member row first (see the lock order in 003)
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

            select string_agg(famcall_message_text(m), ', ' order by m.seq)
              into page
              from messages m
             where m.conversation_id = famcall_messages_list.conversation
               and m.seq between lo and hi;
        end if;
    end if;

    return query select 200, '{"messages": [' || page || ']}';
end
$$;
