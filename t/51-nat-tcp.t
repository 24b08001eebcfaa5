# A home whose router lets no UDP out: the call goes through coturn over
# TCP; a home that only reaches the web (TCP to 443 and the API): through
# coturn over TLS on 443. Media both ways each time, the blocked home's
# candidate is a relay, and the router saw what the test says it saw.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::NatStack qw(nat_stack call_pair nat_call media_ok pair_of);

my ($net, $s) = nat_stack(a => 'no-udp', b => 'cone', client => 1);
my $pub = Famcall::Netns->public_ip;
my $pair = call_pair($net, $s);

subtest 'no UDP out of home a: TURN over TCP' => sub {
    my $r = nat_call($net, $s, $pair, caller => ['--duration', 5],
                     watch => { tcp => [ a => tcp => $pub, $s->turn_port ],
                                443 => [ a => tcp => $pub, 443 ] });
    media_ok($r, 5);
    like(pair_of($r, 'a'), qr{^relay/}, "home a's candidate is its relay");
    like(pair_of($r, 'b'), qr{/relay }, "home b's peer is home a's relay");
    cmp_ok($net->dropped(a => 'udp'), '>', 0, 'router a dropped UDP from home a');
    # its URIs name coturn's port and TLS on 443: either will do
    cmp_ok($r->{bytes}{tcp} + $r->{bytes}{443}, '>', 100_000,
           'the media went over TCP to coturn');
};

subtest 'only TCP to 443 and the API out of home a: TURN over TLS on 443' => sub {
    $net->router(a => 'web-only', allow_tcp => [443, $s->http_port]);
    $net->watch_tcp(a => 443);
    my $r = nat_call($net, $s, $pair, caller => ['--duration', 5],
                     watch => { tls => [ a => tcp => $pub, 443 ] });
    media_ok($r, 5);
    like(pair_of($r, 'a'), qr{^relay/}, "home a's candidate is its relay");
    cmp_ok($r->{bytes}{tls}, '>', 100_000, 'the media went to coturn on 443');
    my ($tls, $clear) = map { $net->watched(a => $_ => 443) } qw(tls stun);
    cmp_ok($tls, '>', 0, 'in TLS (handshake records counted at router a)');
    is($clear, 0, 'no STUN in the clear to 443');
};

$s->stop;
$net->destroy;
done_testing;
