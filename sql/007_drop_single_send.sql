-- famcall_message_send (003, 005) answered one send per call; since 006 every
-- send goes through famcall_message_send_batch, which applies the same rules
-- to the whole batch itself. Nothing calls the single-send function any more,
-- and untested code would drift: drop it.
drop function famcall_message_send(uuid, uuid, uuid, text);
