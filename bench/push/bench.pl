#!/usr/bin/env perl
# make bench-push (docs/benchmarks.md, "push"): the push dispatcher against
# the mock providers of t/7x on a hermetic stack.
#
#   steady: PUSH_RATE rows a second (default 500), each its own commit as a
#           message's would be, for PUSH_SECONDS (10), spread over
#           PUSH_DEVICES devices (3000: Expo, FCM and APNs in turn): commit to
#           the provider's answer, p50 / p99 / max per provider (the
#           outbox's created_at to delivered_at, as push_latency has it);
#   burst:  PUSH_BURST rows (20000) in one commit: pushes a second until the
#           last is delivered (a device's rows go one after the other, so
#           rows per device bound it as much as the dispatcher does).
#
# PUSH_DISPATCHERS dispatchers (1) share the outbox. Exits 1 when a row was
# not delivered once (the run is not sound), 2 on a setup failure. The
# mocks are node processes on the same cores: the figures are the whole
# path's, mocks included.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../../t/lib";
use Famcall::Test qw(wait_until);
use Famcall::PushMock;

my $rate    = $ENV{PUSH_RATE} // 500;
my $secs    = $ENV{PUSH_SECONDS} // 10;
my $devices = $ENV{PUSH_DEVICES} // 3000;
my $burst   = $ENV{PUSH_BURST} // 20000;
my $nd      = $ENV{PUSH_DISPATCHERS} // 1;
die "PUSH_RATE must be a multiple of 100 (rows go in 10 ms ticks)\n" if $rate % 100;

chomp(my $cpu = `grep -m1 'model name' /proc/cpuinfo | cut -d: -f2`);
chomp(my $ncpu = `nproc`);
print "machine: $ncpu x$cpu\n";
printf "load before: %s", `cat /proc/loadavg`;

my $mock = Famcall::PushMock->start;
my $s = Famcall::Test->new(nginx => 0);
$s->psql("insert into users (email, display_name)
          select 'bench' || i || '\@push.test', 'Bench ' || i from generate_series(1, $devices) i");
$s->psql("insert into devices (user_id, platform, provider, push_token)
          select u.id, case when n % 3 = 2 then 'ios' else 'android' end,
                 (array['expo', 'fcm', 'apns'])[n % 3 + 1],
                 case n % 3 when 0 then 'ExponentPushToken[bench-' || n || ']'
                            when 1 then 'fcmbenchtoken' || lpad(n::text, 8, '0')
                            else md5(n::text) || md5(n::text || 'x') end
            from (select id, row_number() over (order by id) - 1 as n from users) u");
my @pushd = map { $s->start_pushd($mock->pushd_conf(poll_ms => 1000, backoff_base_ms => 1000,
                                                    backoff_max_ms => 300000)) } 1 .. $nd;

my $insert = sub {
    my ($n, $phase, $offset) = @_;
    return "insert into outbox (kind, user_id, device_id, collapse_key, expires_at, payload)
            select 'push', d.user_id, d.id, 'bench', now() + interval '1 day',
                   jsonb_build_object('type', 'message', 'title', 'Bench', 'body',
                                      'a message of the benchmark', 'badge', 1,
                                      'phase', '$phase')
              from (select ($offset + k - 1) % $devices + 1 as n
                      from generate_series(1, $n) k) g
              join (select id, user_id, row_number() over (order by id) as n from devices) d
                on d.n = g.n";
};

# steady: a tick every 10 ms, each its own transaction
my $per_tick = $rate / 100;
my $ticks = $secs * 100;
my $ins = $insert->($per_tick, 'steady', "i * $per_tick");
$s->psql("do \$\$ declare t0 timestamptz; begin
            for i in 1 .. $ticks loop
                t0 := clock_timestamp();
                $ins;
                commit;
                perform pg_sleep(greatest(0, 0.01 - extract(epoch from clock_timestamp() - t0)));
            end loop; end \$\$");
my $steady = $rate * $secs;
wait_until { $s->psql("select count(*) from outbox where payload->>'phase' = 'steady'
                         and delivered_at is not null") == $steady } 120, 'the steady rows';
print "steady: $rate/s for $secs s over $devices devices, $nd dispatcher(s)\n";
for (split /\n/, $s->psql(
    "select provider, count(*),
            round((percentile_cont(0.5) within group (order by ms))::numeric, 1),
            round((percentile_cont(0.99) within group (order by ms))::numeric, 1),
            round(max(ms)::numeric, 1)
       from (select provider, extract(epoch from delivered_at - created_at) * 1000 ms
               from outbox where payload->>'phase' = 'steady' and delivered_at is not null) x
      group by 1 order by 1")) {
    my ($p, $n, $p50, $p99, $max) = split /\|/;
    print "  $p: $n delivered, commit to answer p50 $p50 ms, p99 $p99 ms, max $max ms\n";
}

# burst: one commit, then as fast as the dispatcher goes
$s->psql($insert->($burst, 'burst', 0));
wait_until { $s->psql("select count(*) from outbox where payload->>'phase' = 'burst'
                         and delivered_at is not null") == $burst } 600, 'the burst';
my ($n, $span) = split /\|/, $s->psql(
    "select count(*), extract(epoch from max(delivered_at) - min(created_at))
       from outbox where payload->>'phase' = 'burst' and delivered_at is not null");
printf "burst: %d rows in one commit, all delivered in %.2f s: %.0f pushes/s\n",
       $n, $span, $n / ($span || 1);
printf "load after: %s", `cat /proc/loadavg`;

# sound: every row delivered, none twice
my %seen;
my $dups = grep { defined $_->{push_id} && $seen{ $_->{push_id} }++ } $mock->log;
my $rows = $s->psql("select count(*) from outbox");
my $undelivered = $s->psql("select count(*) from outbox where delivered_at is null");
print "sound: $rows rows, $undelivered undelivered, $dups sent twice\n";
my @problems = map { $s->stop_pushd($_) } @pushd;
$s->stop;
$mock->stop;
exit(($undelivered || $dups || @problems) ? 1 : 0);
