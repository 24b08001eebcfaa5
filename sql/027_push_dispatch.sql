-- The dispatcher's side of the outbox (dispatcher/, docs/push.md): rows
-- are leased, sent, and settled; several dispatchers on several nodes
-- share the work.
--
-- A lease, not a transaction held open: a dispatcher takes rows with FOR
-- UPDATE SKIP LOCKED and stamps them leased (its id, until when) in one
-- short statement, sends them over HTTP with no transaction open, and
-- settles them with another.  Two dispatchers never lease the same row; a
-- dispatcher that dies leaves leases that run out, and another takes the
-- rows again (the one case where a push may be sent twice: the provider
-- took it and the death came before the settlement).
--
-- Order per device: a row is not leased while an older row of its device
-- is still pending (waiting to be retried, or leased by anyone), so a
-- provider that is down delays a device's pushes and never reorders them.

alter table outbox
    add column lease_owner    text,
    add column provider       text,       -- who delivered it
    add column receipt_id     text,       -- Expo's ticket id
    add column receipt_due_at timestamptz;

-- what is due: 001's index kept parked rows, which pile up
drop index outbox_pending_idx;
create index outbox_due_idx on outbox (next_attempt_at)
    where delivered_at is null and parked_at is null;
create index outbox_receipt_idx on outbox (receipt_due_at)
    where receipt_due_at is not null;
create index outbox_done_idx on outbox (coalesce(delivered_at, parked_at))
    where delivered_at is not null or parked_at is not null;

-- Lease up to lim due rows to owner for lease_s seconds, oldest first,
-- each with its device (null for sms rows; a row whose device is gone
-- went with it).  Rows past their expiry are parked on the way.
create function famcall_push_claim(owner text, lim int, lease_s int)
returns table (id bigint, kind text, attempts int, created_at timestamptz,
               expires_at timestamptz, collapse_key text, payload jsonb,
               provider text, platform text, push_token text,
               voip_token text)
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
begin
    update outbox o
       set parked_at = now(), last_error = 'expired', leased_until = null,
           lease_owner = null
     where o.id in (select x.id from outbox x
                     where x.delivered_at is null and x.parked_at is null
                       and x.expires_at <= now()
                       and (x.leased_until is null
                            or x.leased_until < now())
                     order by x.id
                     limit 1000
                       for update skip locked);

    return query
    with c as (
        select x.id from outbox x
         where x.delivered_at is null and x.parked_at is null
           and x.next_attempt_at <= now()
           and (x.leased_until is null or x.leased_until < now())
           and (x.device_id is null or not exists (
                   select 1 from outbox p
                    where p.device_id = x.device_id and p.id < x.id
                      and p.delivered_at is null and p.parked_at is null))
         order by x.id
         limit lim
           for update skip locked
    ),
    u as (
        update outbox o
           set leased_until = now() + make_interval(secs => lease_s),
               lease_owner = owner, attempts = o.attempts + 1
          from c
         where o.id = c.id
        returning o.*
    )
    select u.id, u.kind, u.attempts, u.created_at, u.expires_at,
           u.collapse_key, u.payload, d.provider, d.platform, d.push_token,
           d.voip_token
      from u left join devices d on d.id = u.device_id
     order by u.id;
end
$$;

-- Settle what owner sent: results, an array of {"id", "outcome", "error",
-- "retry_ms", "provider", "receipt_id"}.  Outcomes: ok (delivered); retry
-- (again after retry_ms; parked after max_tries, with the last error);
-- defer (again after retry_ms, the try not counted: the provider is not
-- configured here); park (given up at once); dead (the provider called
-- the token invalid: the device goes, and its queued rows with it);
-- dead_voip (only the VoIP token is invalid: it goes).  A row whose lease
-- owner is no longer owner (its lease ran out and another took it) is
-- left alone.  receipt_s: when Expo's receipt is due.
create function famcall_push_settle(owner text, results jsonb,
                                    max_tries int, receipt_s int)
returns int
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    n int;
begin
    with r as (
        select * from jsonb_to_recordset(results)
            as r (id bigint, outcome text, error text, retry_ms int,
                  provider text, receipt_id text)
    ),
    settled as (
        update outbox o
           set leased_until = null, lease_owner = null,
               delivered_at = case when r.outcome = 'ok' then now() end,
               provider = case when r.outcome = 'ok' then r.provider end,
               receipt_id = case when r.outcome = 'ok' then r.receipt_id end,
               receipt_due_at = case when r.outcome = 'ok'
                                      and r.receipt_id is not null
                                     then now() + make_interval(
                                              secs => receipt_s) end,
               attempts = case when r.outcome = 'defer'
                               then greatest(o.attempts - 1, 0)
                               else o.attempts end,
               next_attempt_at = case when r.outcome in ('retry', 'defer')
                                      then now() + make_interval(
                                               secs => coalesce(r.retry_ms, 0)
                                                       / 1000.0)
                                      else o.next_attempt_at end,
               parked_at = case when r.outcome = 'park'
                                  or (r.outcome = 'retry'
                                      and o.attempts >= max_tries)
                                then now() end,
               last_error = case when r.outcome = 'ok' then o.last_error
                                 when r.outcome = 'retry'
                                      and o.attempts >= max_tries
                                 then 'gave up after ' || o.attempts
                                      || ' tries: ' || r.error
                                 else r.error end
          from r
         where o.id = r.id and o.lease_owner = owner
        returning o.id, o.device_id, r.outcome
    ),
    voip as (
        update devices d set voip_token = null
          from settled s
         where d.id = s.device_id and s.outcome = 'dead_voip'
    ),
    dead as (
        delete from devices d
         using settled s
         where d.id = s.device_id and s.outcome = 'dead'
    )
    select count(*) into n from settled;
    return n;
end
$$;

-- Expo's receipts due for a look: lease them (for lease_s) to whoever
-- asks, at most lim.  Receipts are kept by Expo for a day.
create function famcall_push_receipts_due(lim int, lease_s int)
returns table (id bigint, receipt_id text)
language sql
as $$
    update public.outbox o
       set receipt_due_at = now() + make_interval(secs => lease_s)
     where o.id in (select x.id from public.outbox x
                     where x.receipt_due_at <= now()
                     order by x.receipt_due_at
                     limit lim
                       for update skip locked)
    returning o.id, o.receipt_id
$$;

-- What the receipts said: results, an array of {"id", "status" (ok,
-- error, dead), "error"}; a receipt Expo does not have yet stays due.
-- dead (DeviceNotRegistered): the device goes.
create function famcall_push_receipts_settle(results jsonb)
returns int
language plpgsql
set search_path = pg_catalog, public, pg_temp
as $$
declare
    n int;
begin
    with r as (
        select * from jsonb_to_recordset(results)
            as r (id bigint, status text, error text)
    ),
    settled as (
        update outbox o
           set receipt_due_at = case
                   when o.delivered_at < now() - interval '1 day' then null
                   when r.status is null then o.receipt_due_at
                   else null end,
               last_error = case when r.status in ('error', 'dead')
                                 then 'receipt: ' || r.error
                                 else o.last_error end
          from r
         where o.id = r.id
        returning o.id, o.device_id, r.status
    ),
    dead as (
        delete from devices d
         using settled s
         where d.id = s.device_id and s.status = 'dead'
    )
    select count(*) into n from settled;
    return n;
end
$$;

-- Rows delivered or parked longer ago than keep_s go, at most lim a call.
create function famcall_push_purge(keep_s int, lim int) returns int
language sql
as $$
    with gone as (
        delete from public.outbox o
         where o.id in (select x.id from public.outbox x
                         where coalesce(x.delivered_at, x.parked_at)
                               < now() - make_interval(secs => keep_s)
                           and x.receipt_due_at is null
                         limit lim
                           for update skip locked)
        returning 1
    )
    select count(*)::int from gone
$$;

-- Commit to the provider's answer, per provider, over the last hour.
create view push_latency as
    select o.provider, count(*) as delivered,
           percentile_cont(0.5) within group (order by ms) as p50_ms,
           percentile_cont(0.99) within group (order by ms) as p99_ms,
           max(ms) as max_ms
      from (select x.provider,
                   extract(epoch from x.delivered_at - x.created_at) * 1000
                       as ms
              from outbox x
             where x.delivered_at > now() - interval '1 hour') o
     group by o.provider;
