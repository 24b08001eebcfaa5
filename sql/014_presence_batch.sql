-- Presence changes in batches.
--
-- A worker wrote each user's presence in a transaction of its own (sql/008):
-- when many sockets open at once, a commit with a NOTIFY each, and
-- PostgreSQL serialises the commits of notifying transactions on its NOTIFY
-- lock. The sends queued behind them on the same pool connections waited
-- until they were all done. A worker now
-- sends the changes that arrived while its previous batch ran, in one
-- transaction and one round of NOTIFYs; a reconnect storm after a restart
-- costs a few hundred commits instead of one per socket.
--
-- Same rules as sql/008: one user's changes one at a time (the advisory
-- lock), the first socket anywhere announces online, the last announces
-- offline with last_seen, to accepted contacts only, never across a block.

-- The lines announcing that me came online or went offline (last_seen), to
-- their accepted contacts not blocked either way, 150 users to a line.
create function famcall_presence_lines(me uuid, online boolean,
                                       last_seen timestamptz)
returns text[]
language sql stable
set search_path = pg_catalog, public, pg_temp
as $$
    select array_agg(famcall_event_line('presence', g.users, null,
               jsonb_build_object('user_id', me, 'online', online,
                                  'last_seen', famcall_ts(last_seen))))
      from (select array_agg(k.contact_id) as users
              from (select k.contact_id,
                           (row_number() over ()) / 150 as grp
                      from contacts k
                     where k.user_id = me and k.status = 'accepted'
                       and not famcall_blocked_either(me, k.contact_id)) k
             group by k.grp) g
$$;

-- A worker's first socket of user me opened (online) or its last one closed:
-- the presence row written or deleted, and the lines to announce (none when
-- another instance still has the user, or nothing changed). The caller
-- notifies, and takes users in id order (the advisory locks).
create function famcall_presence_change(instance uuid, me uuid,
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
    perform pg_advisory_xact_lock(hashtextextended(me::text, 5));

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

-- One user's change at a time is gone: workers send batches, and the sweep
-- is a batch (below).
drop function famcall_presence(uuid, uuid, boolean);
drop function famcall_presence_announce(uuid, boolean, timestamptz);

-- A worker's batch: users[k] has a socket on the instance (online[k]) or no
-- longer has one. One row (204). The arrays must be of one length, each user
-- at most once (the worker sends them so); a batch that is not is refused
-- whole (22023), nothing written.
create function famcall_presence_batch(instance uuid, users uuid[],
                                       online boolean[])
returns table (status int, body jsonb)
language plpgsql rows 1
set search_path = pg_catalog, public, pg_temp
as $$
declare
    r     record;
    l     text;
    lines text[] := '{}';
begin
    if cardinality(users) is distinct from cardinality(online)
       or array_position(users, null) is not null
       or array_position(online, null) is not null
       or (select count(distinct x) from unnest(users) x)
          <> cardinality(users) then
        raise exception 'famcall_presence_batch: bad arrays'
            using errcode = '22023';
    end if;

    for r in select x.u, x.up from unnest(users, online) as x(u, up)
              order by x.u loop
        -- appended one by one: plpgsql grows the array in place
        foreach l in array coalesce(famcall_presence_change(instance, r.u, r.up),
                                    '{}') loop
            lines := array_append(lines, l);
        end loop;
    end loop;

    perform famcall_notify_lines(lines);
    return query select 204, null::jsonb;
end
$$;

-- A gateway instance is gone (sql/008): its users without another socket go
-- offline, as one batch: one round of NOTIFYs instead of one per user.
create or replace function famcall_instance_sweep(instance uuid)
returns table (status int, body jsonb)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    users uuid[];
begin
    select coalesce(array_agg(p.user_id), '{}') into users
      from presence p where p.instance_id = instance;
    perform famcall_presence_batch(instance, users,
                                   array_fill(false, array[cardinality(users)]));
    delete from gateway_instances g where g.id = instance;
    return query select 204, null::jsonb;
end
$$;
