# Push while a provider is down (issue 22, docs/push.md): two dispatchers
# share the outbox; the providers go down for a while and come back; every
# push is delivered once, in order per device, none lost, none twice.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::JSON qw(true false);
use Famcall::Test qw(new_uuid wait_until);
use Famcall::PushMock;

my $mock = Famcall::PushMock->start;
my $s = Famcall::Test->new;

my $a = $s->signup;
my @to = map { $s->signup } 1 .. 3;
my @conv;
my %token;     # device id -> the token the provider sees
for my $u (@to) {
    $s->befriend($a, $u);
    push @conv, $s->open_conversation($a, $u)->{id};
    for my $d ({ platform => 'android', provider => 'expo',
                 push_token => 'ExponentPushToken[' . new_uuid() . ']' },
               { platform => 'android', provider => 'fcm',
                 push_token => 'fcm' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 60) },
               { platform => 'ios', provider => 'apns',
                 push_token => join('', map { sprintf '%02x', int rand 256 } 1 .. 32) }) {
        my $tx = $s->json_req(POST => '/v1/devices', $d, $u->{access_token});
        die $tx->res->body unless $tx->res->code == 201;
        $token{ $tx->res->json->{id} } = $d->{push_token};
    }
}

# two dispatchers, as on two nodes; retries come back fast here
my @pushd = map { $s->start_pushd($mock->pushd_conf(claim_batch => 7, expo_batch => 5)) } 1 .. 2;

sub send_some {
    my ($n, $tag) = @_;
    for my $i (1 .. $n) {
        my $tx = $s->send_message($a, $conv[$i % @conv], "$tag $i");
        die $tx->res->body unless $tx->res->code == 201;
    }
}

sub delivered { $s->psql("select count(*) from outbox where kind = 'push' and delivered_at is not null") }
sub queued    { $s->psql("select count(*) from outbox where kind = 'push'") }

subtest 'all up: a burst shared by two dispatchers' => sub {
    send_some(30, 'up');
    is(queued(), 90, '90 rows: 30 messages, 3 devices each');
    ok(wait_until { delivered() == 90 } 60, 'all delivered') or diag $s->psql(
        "select count(*), last_error from outbox where delivered_at is null group by 2");
};

subtest 'the providers down for a while, then back' => sub {
    $mock->config(down => { expo => true, fcm => true, apns => true }, retry_after => 1);
    send_some(24, 'down');
    is(queued(), 162, '72 more rows');
    ok(wait_until { $s->psql("select count(*) from outbox where attempts >= 2 and delivered_at is null") >= 9 } 60,
       'every device\'s first row is tried again, with backoff');
    my $st = $mock->stats;
    ok(($st->{refused}{$_} // 0) > 0, "$_ refused some") for qw(expo fcm apns);
    is(delivered(), 90, 'nothing delivered meanwhile');
    is($s->psql("select count(*) from outbox where parked_at is not null"), 0, 'nothing given up');
    is($s->psql("select count(*) from outbox where delivered_at is null and attempts > 0
                   and device_id in (select device_id from outbox o2 where o2.delivered_at is null
                                      group by 1 having count(*) > 1)
                   and id <> (select min(id) from outbox o3 where o3.device_id = outbox.device_id
                                and o3.delivered_at is null)"), 0,
       'only the oldest row of a device is tried');
    $mock->config(down => {});
    ok(wait_until { delivered() == 162 } 90, 'every row delivered once the providers are back')
        or diag $s->psql("select count(*), max(attempts), last_error from outbox
                           where delivered_at is null group by 3");
};

subtest 'once each, in order per device' => sub {
    my @log = grep { $_->{provider} ne 'webhook' } $mock->log;
    my %seen;
    my @dups = grep { $seen{ $_->{push_id} }++ } @log;
    is(scalar @dups, 0, 'no push sent twice') or diag explain [map { $_->{push_id} } @dups];
    is(scalar keys %seen, 162, 'every row sent');
    my %ids = map { $_ => 1 } split /\n/, $s->psql("select id from outbox where kind = 'push'");
    is(scalar(grep { !$ids{$_} } keys %seen), 0, 'and nothing else');
    my %last;
    my $out_of_order = 0;
    for my $p (@log) {
        $out_of_order++ if defined $last{ $p->{token} } && $last{ $p->{token} } > $p->{push_id};
        $last{ $p->{token} } = $p->{push_id};
    }
    is($out_of_order, 0, 'each device got its pushes in the order they were written');
    is(scalar keys %last, 9, 'all nine devices');
    ok((grep { $s->pushd_log($_) =~ /leased \d+ rows/ } @pushd) == 2, 'both dispatchers took rows');
};

subtest 'a dispatcher killed with rows leased: another sends them after the lease' => sub {
    my @problems = map { $s->stop_pushd($_) } @pushd;
    ok(!@problems, 'both stop cleanly on SIGTERM') or diag join "\n", @problems;
    send_some(3, 'orphans');
    # what a dispatcher killed mid-send leaves: rows leased to it
    $s->psql("update outbox set leased_until = now() + interval '1 hour', lease_owner = 'dead:1',
                     attempts = 1 where delivered_at is null");
    my $next = $s->start_pushd($mock->pushd_conf);
    sleep 1;    # five of its polls
    is(delivered(), 162, 'not while the lease holds');
    $s->psql("update outbox set leased_until = now() - interval '1 second' where delivered_at is null");
    ok(wait_until { delivered() == 171 } 30, 'sent once the lease has run out');
    $s->stop_pushd($next, 'KILL');
    send_some(1, 'after a kill');
    $next = $s->start_pushd($mock->pushd_conf);
    ok(wait_until { delivered() == 174 } 30, 'a dispatcher started after a kill carries on');
};

$s->stop;
$mock->stop;
done_testing;
