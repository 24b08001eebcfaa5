-- famcall_message_send, cheaper per call (it runs once per message in every
-- batch, so what a call costs is paid by every message): membership of a
-- 1:1 conversation read from the row itself (its two users) instead of a
-- conversation_members probe, and no per-call SET search_path (names are
-- schema-qualified instead). Same rules, same answers, same locks as in 003.
create or replace function famcall_message_send(me uuid, conversation uuid, client_id uuid,
                                     message_body text)
returns table (status int, body jsonb)
language plpgsql rows 1
as $$
declare
    conv  public.conversations;
    peer  uuid;
    msg   public.messages;
begin
    if famcall_message_send.client_id is null then
        return query select 422, public.famcall_err('missing_field',
            'client_id is required', 'client_id');
        return;
    end if;
    if famcall_message_send.message_body is null
       or famcall_message_send.message_body !~ '[^[:space:]]'
       or char_length(famcall_message_send.message_body) > 4000 then
        return query select 422, public.famcall_err('invalid_field',
            'must be 1 to 4000 characters, not blank', 'body');
        return;
    end if;

    select c.* into conv
      from public.conversations c
     where c.id = famcall_message_send.conversation
       and (c.user_lo = famcall_message_send.me
            or c.user_hi = famcall_message_send.me)
       for no key update of c;
    if not found then
        return query select 404, public.famcall_err('not_found',
            'no such conversation');
        return;
    end if;

    select m.* into msg
      from public.messages m
     where m.sender_id = famcall_message_send.me
       and m.client_id = famcall_message_send.client_id;
    if found then
        if msg.conversation_id = conv.id then
            return query select 200, public.famcall_message_json(msg);
        else
            return query select 409, public.famcall_err('client_id_reused',
                'this client_id was used for another conversation',
                'client_id');
        end if;
        return;
    end if;

    peer := case when conv.user_lo = famcall_message_send.me then conv.user_hi
                 else conv.user_lo end;

    if public.famcall_blocked_either(famcall_message_send.me, peer) then
        return query select 403, public.famcall_err('blocked',
            'one of you has blocked the other');
        return;
    end if;

    if not exists (select 1 from public.contacts k
                    where k.user_id = famcall_message_send.me
                      and k.contact_id = peer
                      and k.status = 'accepted') then
        return query select 403, public.famcall_err('not_a_contact',
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
        return query select 409, public.famcall_err('client_id_reused',
            'this client_id was used for another conversation', 'client_id');
        return;
    end if;

    insert into public.messages (conversation_id, seq, sender_id, client_id, body)
    values (conv.id, conv.last_seq + 1, famcall_message_send.me,
            famcall_message_send.client_id, famcall_message_send.message_body)
    on conflict on constraint messages_sender_client_key do nothing
    returning * into msg;

    if not found then
        -- a send with the same client_id committed since our check; in this
        -- conversation it would have held our row lock, so it is another one
        select m.* into msg
          from public.messages m
         where m.sender_id = famcall_message_send.me
           and m.client_id = famcall_message_send.client_id;
        if msg.conversation_id = conv.id then
            return query select 200, public.famcall_message_json(msg);
        else
            return query select 409, public.famcall_err('client_id_reused',
                'this client_id was used for another conversation',
                'client_id');
        end if;
        return;
    end if;

    update public.conversations c set last_seq = msg.seq where c.id = conv.id;

    return query select 201, public.famcall_message_json(msg);
end
$$;
