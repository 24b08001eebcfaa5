-- One user's presence changes are serialised by a lock on the user's row,
-- not by an advisory lock (sql/008, sql/014).
--
-- Advisory locks live in PostgreSQL's shared lock table, max_locks_per_
-- transaction x max_connections entries (12,800 with this project's
-- settings, 6,400 with PostgreSQL's defaults), held to the end of the
-- transaction. Sweeping a worker that had 20,000 users (its exit at a
-- reload, or another worker finding it dead) took one per user in one
-- transaction and failed with "out of shared memory": the rows stayed, the
-- users looked online, and a worker's registration, which sweeps the
-- instances that stopped beating, failed with it. A row lock is kept in the
-- row itself, however many a transaction takes. FOR NO KEY UPDATE: the
-- foreign-key checks of messages and contacts (FOR KEY SHARE) do not wait.
--
-- A user who is gone (the account deleted while a socket was open) is
-- skipped instead of failing the whole batch on the presence row's
-- foreign key.

create or replace function famcall_presence_change(instance uuid, me uuid,
                                                   online boolean)
returns text[]
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    seen  timestamptz;
begin
    -- one user's presence changes one at a time, so the first up and the
    -- last down are each seen by exactly one transaction
    perform 1 from users u where u.id = me for no key update;
    if not found then
        return null;
    end if;

    if online then
        insert into presence (user_id, instance_id) values (me, instance)
            on conflict do nothing;
    else
        delete from presence p where p.user_id = me and p.instance_id = instance;
    end if;
    if not found then
        return null;
    end if;

    if exists (select 1 from presence p
                where p.user_id = me and p.instance_id <> instance) then
        return null;
    end if;

    if online then
        select u.last_seen_at into seen from users u where u.id = me;
    else
        update users u set last_seen_at = now() where u.id = me
        returning u.last_seen_at into seen;
    end if;
    return famcall_presence_lines(me, online, seen);
end
$$;
