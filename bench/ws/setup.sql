-- wsload's users, straight into the database (no sign-up: Argon2id at the
-- production cost is ~25 per second, and passwords are not what is measured).
--
--   psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 -v pairs=N [-v tag=ws] \
--        -f bench/ws/setup.sql > pairs.txt
--
-- N pairs of users, each pair accepted contacts (one contacts row per
-- direction, as sql/003 writes them) with a 1:1 conversation and its two
-- member rows; each user has a session (refresh_families row) whose id is
-- the tokens' "sid". Users have a phone and no password (OTP accounts, as
-- users_email_or_phone allows): +1555 then 8 digits, usernames <tag>a<i> and
-- <tag>b<i>, so a second run needs another tag.
-- Prints one line per pair, "a sid_a b sid_b conversation" (wsload's
-- --pairs format; its first two and next two columns are --users lines).
-- One statement per table over generate_series: 50,000 pairs take seconds.

\if :{?tag}
\else
    \set tag ws
\endif

begin;

create temp table ws_pair on commit drop as
select i,
       gen_random_uuid() as a, gen_random_uuid() as sa,
       gen_random_uuid() as b, gen_random_uuid() as sb,
       gen_random_uuid() as conv
  from generate_series(1, :pairs) as i;

insert into users (id, phone, display_name, username)
select u.id, u.phone, u.name, u.name
  from ws_pair p
 cross join lateral (values
       (p.a, '+1555' || lpad((2 * p.i - 1)::text, 8, '0'), :'tag' || 'a' || p.i),
       (p.b, '+1555' || lpad((2 * p.i)::text, 8, '0'), :'tag' || 'b' || p.i))
       as u (id, phone, name);

insert into refresh_families (id, user_id)
select s.id, s.user_id
  from ws_pair p
 cross join lateral (values (p.sa, p.a), (p.sb, p.b)) as s (id, user_id);

-- a asked, b accepted: both rows carry the same status and requested_by
insert into contacts (user_id, contact_id, status, requested_by, accepted_at)
select k.me, k.them, 'accepted', p.a, now()
  from ws_pair p
 cross join lateral (values (p.a, p.b), (p.b, p.a)) as k (me, them);

insert into conversations (id, user_lo, user_hi)
select p.conv, least(p.a, p.b), greatest(p.a, p.b)
  from ws_pair p;

insert into conversation_members (conversation_id, user_id)
select p.conv, m.user_id
  from ws_pair p
 cross join lateral (values (p.a), (p.b)) as m (user_id);

select a, sa, b, sb, conv from ws_pair order by i;

commit;
