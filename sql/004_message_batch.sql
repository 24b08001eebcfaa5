-- Group commit for message sends (ngx_famcall_module/core/ngx_famcall_batch.c):
-- the sends that queued up in a worker while its earlier ones were being
-- committed go in one call, one transaction, one commit (and, with the
-- realtime gateway, one NOTIFY). Each item is answered exactly as
-- famcall_message_send answers it alone; one row per item, i counting from 1.
create function famcall_message_send_batch(items jsonb)
returns table (i int, status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    it record;
begin
    -- Conversation rows are locked in one order by every batch, so two
    -- batches (two workers, two nodes) never wait on each other in a cycle.
    for it in
        select x.ord::int as k, x.v
          from jsonb_array_elements(items) with ordinality as x (v, ord)
         order by x.v->>'conversation', x.ord
    loop
        return query
            select it.k, s.status, s.body
              from famcall_message_send((it.v->>'me')::uuid,
                                        (it.v->>'conversation')::uuid,
                                        (it.v->>'client_id')::uuid,
                                        it.v->>'body') s;
    end loop;
end
$$;
