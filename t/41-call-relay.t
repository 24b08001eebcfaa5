# WebRTC signaling relayed between a call's two bound devices (issue 19,
# docs/websocket.md "Relay"): bad relays first (unknown call, a third
# user, before the answer, a device that is not bound, oversize), then
# offer, answer and candidates within one node and across two.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(new_uuid wait_until);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 2);

my ($a, $b, $c) = map { $s->signup } 1 .. 3;
$s->befriend($a, $b);
$s->befriend($a, $c);
$s->befriend($b, $c);
my $bid = $b->{user}{id};

sub ws {
    my ($user, $node) = @_;
    my $ws = Famcall::WS->open($node // $s, $user->{access_token});
    die 'no socket' unless $ws;
    return $ws;
}

sub err_is {
    my ($f, $code, $name, $field) = @_;
    subtest $name => sub {
        is($f && $f->{type}, 'error', 'an error') or diag explain $f;
        is($f && $f->{error}{code}, $code, $code);
        is($f && $f->{error}{field}, $field, "field $field") if defined $field;
    };
}

sub sdp { my ($n) = @_; my $t = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"; $t .= "a=x:" . ('y' x 60) . "\r\n" while length $t < $n; substr($t, 0, $n) }

my $a1 = ws($a);
my $a2 = ws($a);
my ($b1, $b2) = (ws($b), ws($b));
my $c1 = ws($c);
wait_until { $s->psql("select count(*) from presence where user_id = '$bid'") > 0 } 10, 'b online';

my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'video' })->{data}{call_id};
$b1->expect('call:invite');
$b2->expect('call:invite');

subtest 'bad relays' => sub {
    err_is($a1->request('webrtc:offer', { call_id => new_uuid(), sdp => sdp(100) }), 'not_found', 'an unknown call');
    err_is($a1->request('webrtc:offer', { call_id => $call, sdp => sdp(100) }), 'wrong_state', 'an offer before the answer');
    err_is($a1->request('webrtc:offer', { call_id => $call, sdp => sdp(65537) }), 'invalid_field',
           'an SDP over 64 KB', 'sdp');
    err_is($a1->request('webrtc:offer', { call_id => $call }), 'missing_field', 'no sdp', 'sdp');
    err_is($a1->request('webrtc:offer', { call_id => $call, sdp => '' }), 'invalid_field', 'an empty sdp', 'sdp');
    err_is($a1->request('webrtc:ice', { call_id => $call, candidate => 'c' x 1025 }), 'invalid_field',
           'a candidate over 1 KB', 'candidate');
    err_is($a1->request('webrtc:ice', { call_id => $call, candidate => 'x', sdp_mline_index => -1 }), 'invalid_field',
           'a negative m-line index', 'sdp_mline_index');
    err_is($a1->request('webrtc:ice', { call_id => 'nope', candidate => 'x' }), 'invalid_field', 'a bad call_id', 'call_id');
    ok($a1->{closed} == 0, 'the socket stays open');

    my $ack = $b2->request('call:accept', { call_id => $call });
    is($ack->{type}, 'ack', 'b2 accepts');
    $a1->expect('call:accept');
    $b1->expect('call:answered_elsewhere');

    err_is($c1->request('webrtc:ice', { call_id => $call, candidate => 'candidate:1 1 udp 1 10.0.0.1 9 typ host' }),
           'not_found', "a third user's candidates");
    err_is($a2->request('webrtc:ice', { call_id => $call, candidate => 'candidate:x' }),
           'not_bound', "the caller's other device");
    err_is($b1->request('webrtc:answer', { call_id => $call, sdp => sdp(100) }),
           'not_bound', "the callee's device that did not answer");
    ok($b2->none('webrtc:ice', 0.3), 'nothing reached the bound device');
};

subtest 'offer, answer, candidates between the bound devices' => sub {
    my $offer = sdp(3000);
    my $ack = $a1->request('webrtc:offer', { call_id => $call, sdp => $offer });
    is($ack->{type}, 'ack', 'the offer is acked') or diag explain $ack;
    my $ev = $b2->expect('webrtc:offer');
    is($ev && $ev->{data}{call_id}, $call, 'the answering device gets the offer');
    is($ev && $ev->{data}{sdp}, $offer, 'whole');
    ok($b1->none('webrtc:offer', 0.2), "the callee's other device does not");

    $ack = $b2->request('webrtc:answer', { call_id => $call, sdp => 'answer sdp' });
    is($ack->{type}, 'ack', 'the answer is acked');
    $ev = $a1->expect('webrtc:answer');
    is($ev && $ev->{data}{sdp}, 'answer sdp', "the caller's device gets the answer");
    ok($a2->none('webrtc:answer', 0.2), "the caller's other device does not");

    for my $i (0 .. 4) {
        $a1->send('webrtc:ice', { call_id => $call, candidate => "candidate:$i 1 udp 2 127.0.0.1 $i typ host",
                                  sdp_mid => '0', sdp_mline_index => 0 });
    }
    # each relay is a statement of its own, on any of the pool's
    # connections: candidates keep no order among themselves
    my @got;
    for my $i (0 .. 4) {
        my $ice = $b2->expect('webrtc:ice');
        push @got, $ice && $ice->{data}{candidate};
        is($ice && $ice->{data}{sdp_mline_index}, 0, 'with its m-line');
    }
    is_deeply([sort @got], [map { "candidate:$_ 1 udp 2 127.0.0.1 $_ typ host" } 0 .. 4],
              'the five candidates');
    $ack = $b2->request('webrtc:ice', { call_id => $call, candidate => '', sdp_mid => undef });
    is($ack->{type}, 'ack', 'the end of candidates');
    $ev = $a1->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, '', 'relayed');

    my $big = sdp(50_000);
    $ack = $a1->request('webrtc:offer', { call_id => $call, sdp => $big });
    is($ack->{type}, 'ack', 'a 50 KB offer (renegotiation)');
    $ev = $b2->expect('webrtc:offer');
    is($ev && length($ev->{data}{sdp}), 50_000, 'arrives whole within the node');
    is($s->psql("select status from calls where id = '$call'"), 'accepted', 'the call goes on');
};

subtest 'across two nodes' => sub {
    is($a1->request('call:end', { call_id => $call })->{type}, 'ack', 'the first call ends');
    $b2->expect('call:end');
    err_is($a1->request('webrtc:ice', { call_id => $call, candidate => 'x' }), 'wrong_state', 'no relay after the end');

    my $n2 = Famcall::Test->new(node_of => $s, workers => 1);
    my $bn = ws($b, $n2);
    my $call2 = $a1->request('call:invite', { to_user_id => $bid, media => 'audio' })->{data}{call_id};
    $bn->expect('call:invite');
    is($bn->request('call:accept', { call_id => $call2 })->{type}, 'ack', 'node 2 accepts');
    $a1->expect('call:accept');

    my $offer = sdp(4000);
    is($a1->request('webrtc:offer', { call_id => $call2, sdp => $offer })->{type}, 'ack', 'offer on node 1');
    my $ev = $bn->expect('webrtc:offer');
    is($ev && $ev->{data}{sdp}, $offer, 'arrives on node 2 over the bus');
    is($bn->request('webrtc:ice', { call_id => $call2, candidate => 'candidate:n2' })->{type}, 'ack', 'ice on node 2');
    $ev = $a1->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, 'candidate:n2', 'arrives on node 1');
    ok($b1->none('webrtc:offer', 0.2) && $b2->none('webrtc:ice', 0.1), "b's devices on node 1 get nothing");
    err_is($a1->request('webrtc:offer', { call_id => $call2, sdp => sdp(9000) }), 'too_large',
           'an offer over the bus limit to another node', 'sdp');
    is($bn->request('call:end', { call_id => $call2 })->{type}, 'ack', 'ended');
    $bn->close;
    $n2->stop;
};

$_->close for $a1, $a2, $b1, $b2, $c1;
done_testing;
