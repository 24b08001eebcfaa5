# WebRTC signaling relayed between a call's two bound devices (issue 19,
# docs/websocket.md "Relay"): bad relays first (unknown call, a third
# user, before the answer, a device that is not bound, oversize), then
# offer, answer and candidates in one worker, across the workers of a node
# and across two nodes; a 60 KB SDP on every path; many candidates arrive
# in the order they were sent; nothing reaches an outsider or a device
# that is not bound, and nothing is relayed once the call ended, even when
# it ended on the other node; last, with PostgreSQL stopped, a relay
# between two sockets of one node still arrives: it runs no query.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(new_uuid wait_until);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 2);
my $port = $s->http_port;

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

# a socket of user on node whose worker's pid passes want (the kernel
# spreads sockets over the workers; try until one lands where wanted)
sub placed {
    my ($user, $node, $want) = @_;
    my @spare;
    for (1 .. 40) {
        my $ws = ws($user, $node);
        my $pid = $ws->server_pid($node->http_port) // 0;
        if ($want->($pid)) { $_->close for @spare; return ($ws, $pid) }
        push @spare, $ws;
    }
    $_->close for @spare;
    die 'no socket landed on the wanted worker';
}

sub err_is {
    my ($f, $code, $name, $field) = @_;
    subtest $name => sub {
        is($f && $f->{type}, 'error', 'an error') or diag explain $f;
        is($f && $f->{error}{code}, $code, $code);
        is($f && $f->{error}{field}, $field, "field $field") if defined $field;
    };
}

sub acked { my ($f, $name) = @_; is($f && $f->{type}, 'ack', $name) or diag explain $f }

sub sdp { my ($n) = @_; my $t = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"; $t .= "a=x:" . ('y' x 60) . "\r\n" while length $t < $n; substr($t, 0, $n) }

sub cand { "candidate:$_[0] 1 udp 2122260223 10.0.0.1 " . (50000 + $_[0]) . ' typ host' }

# sends n candidates without waiting (after an offer of `offer` bytes
# when asked: sent first, the same way), then checks that `to` gets them
# in that order, and that every one was acked
sub candidates_in_order {
    my ($from, $to, $call, $n, $name, %o) = @_;
    my @refs = map { "c$_-" . int(rand 1e9) } 0 .. $n;
    $from->send('webrtc:offer', { call_id => $call, sdp => sdp($o{offer}) }, $refs[0]) if $o{offer};
    for my $i (1 .. $n) {
        $from->send('webrtc:ice', { call_id => $call, candidate => cand($i), sdp_mid => '0',
                                    sdp_mline_index => 0 }, $refs[$i]);
    }
    my @want = (($o{offer} ? ("offer $o{offer}") : ()), map { cand($_) } 1 .. $n);
    my @got;
    for (@want) {
        my $ev = $to->wait_for(sub { ($_[0]{type} // '') =~ /^webrtc:(offer|ice)$/ }, 20) or last;
        push @got, $ev->{type} eq 'webrtc:offer' ? 'offer ' . length $ev->{data}{sdp}
                                                 : $ev->{data}{candidate};
    }
    is_deeply(\@got, \@want, "$name: " . ($o{offer} ? 'the offer, then ' : '') . "$n candidates, in order");
    my %want = map { $_ => 1 } ($o{offer} ? @refs : @refs[1 .. $n]);
    for (1 .. keys %want) {
        my $f = $from->wait_for(sub { exists $want{ $_[0]{ref} // '' } }, 20) or last;
        delete $want{ $f->{ref} } if $f->{type} eq 'ack';
    }
    is(scalar keys %want, 0, "$name: each acked");
}

# a fresh accepted call between a caller's socket and a callee's
sub call_between {
    my ($caller, $callee, $media) = @_;
    my $ack = $caller->request('call:invite', { to_user_id => $bid, media => $media // 'video' });
    my $call = $ack->{data}{call_id} or die 'no call: ' . explain($ack);
    $callee->expect('call:invite') or die 'no ring';
    my $acc = $callee->request('call:accept', { call_id => $call });
    die 'not accepted: ' . explain($acc) unless $acc->{type} eq 'ack';
    $caller->expect('call:accept') or die 'no call:accept';
    return $call;
}

sub end_call {
    my ($ws, $peer, $call) = @_;
    acked($ws->request('call:end', { call_id => $call }), 'the call ends');
    ok($peer->expect('call:end'), 'the other side hears it');
}

my ($a1, $apid) = placed($a, $s, sub { 1 });
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

    $ack = $b2->request('webrtc:answer', { call_id => $call, sdp => "answer sdp \x{e9}t\x{e9}" });
    is($ack->{type}, 'ack', 'the answer is acked');
    $ev = $a1->expect('webrtc:answer');
    is($ev && $ev->{data}{sdp}, "answer sdp \x{e9}t\x{e9}", "the caller's device gets the answer, accents and all");
    ok($a2->none('webrtc:answer', 0.2), "the caller's other device does not");

    $ack = $a1->request('webrtc:ice', { call_id => $call, candidate => cand(1), sdp_mid => 'audio',
                                        sdp_mline_index => 3 });
    is($ack->{type}, 'ack', 'a candidate');
    $ev = $b2->expect('webrtc:ice');
    is_deeply($ev && $ev->{data}, { call_id => $call, candidate => cand(1), sdp_mid => 'audio',
                                    sdp_mline_index => 3 }, 'arrives with its m-line');
    $ack = $b2->request('webrtc:ice', { call_id => $call, candidate => '' });
    is($ack->{type}, 'ack', 'the end of candidates');
    $ev = $a1->expect('webrtc:ice');
    is_deeply($ev && $ev->{data}, { call_id => $call, candidate => '', sdp_mid => undef,
                                    sdp_mline_index => undef }, 'relayed, with nulls');

    candidates_in_order($a1, $b2, $call, 100, 'caller to callee');
    candidates_in_order($b2, $a1, $call, 100, 'callee to caller');

    my $big = sdp(60_000);
    $ack = $a1->request('webrtc:offer', { call_id => $call, sdp => $big });
    is($ack->{type}, 'ack', 'a 60 KB offer (renegotiation)');
    $ev = $b2->expect('webrtc:offer');
    is($ev && $ev->{data}{sdp}, $big, 'arrives whole');
    ok($c1->none('webrtc:offer', 0.1) && $c1->none('webrtc:ice', 0.1), 'the outsider got nothing');
    is($s->psql("select status from calls where id = '$call'"), 'accepted', 'the call goes on');
    end_call($a1, $b2, $call);
    err_is($a1->request('webrtc:ice', { call_id => $call, candidate => 'x' }), 'wrong_state', 'no relay after the end');
    err_is($b2->request('webrtc:ice', { call_id => $call, candidate => 'x' }), 'wrong_state', 'from either side');
    ok($a1->none('webrtc:ice', 0.2), 'and nothing arrived');
};

# the callee's bound socket in the same worker as the caller's, then in
# the other one
for my $where ('in one worker', 'across the workers of a node') {
    subtest $where => sub {
        my ($bx) = placed($b, $s, $where eq 'in one worker' ? sub { $_[0] == $apid }
                                                            : sub { $_[0] && $_[0] != $apid });
        my $k = call_between($a1, $bx);
        $b1->expect('call:invite');
        $b2->expect('call:invite');
        my $offer = sdp(60_000);
        acked($a1->request('webrtc:offer', { call_id => $k, sdp => $offer }), '60 KB offer');
        my $ev = $bx->expect('webrtc:offer');
        is($ev && $ev->{data}{sdp}, $offer, 'arrives whole');
        # an offer then its candidates at once: in order behind it
        candidates_in_order($a1, $bx, $k, 50, 'a 30 KB offer', offer => 30_000);
        candidates_in_order($bx, $a1, $k, 100, 'back');
        ok($b1->none('webrtc:ice', 0.1) && $b2->none('webrtc:ice', 0.1), "b's other devices got nothing");
        end_call($bx, $a1, $k);
        $bx->close;
    };
}

my $n2 = Famcall::Test->new(node_of => $s, workers => 1);

subtest 'across two nodes' => sub {
    my $bn = ws($b, $n2);
    my $k = call_between($a1, $bn, 'audio');
    ok($bn->server_pid($n2->http_port), 'the callee is on node 2');

    my $offer = sdp(4000);
    acked($a1->request('webrtc:offer', { call_id => $k, sdp => $offer }), 'offer on node 1');
    my $ev = $bn->expect('webrtc:offer');
    is($ev && $ev->{data}{sdp}, $offer, 'arrives on node 2 over the bus');
    acked($bn->request('webrtc:ice', { call_id => $k, candidate => 'candidate:n2' }), 'ice on node 2');
    $ev = $a1->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, 'candidate:n2', 'arrives on node 1');

    my $big = sdp(60_000);
    acked($a1->request('webrtc:offer', { call_id => $k, sdp => $big }), 'a 60 KB offer to node 2');
    $ev = $bn->expect('webrtc:offer');
    is($ev && $ev->{data}{sdp}, $big, 'arrives whole over the bus (in parts)');
    acked($bn->request('webrtc:answer', { call_id => $k, sdp => sdp(20_000) }), 'a 20 KB answer back');
    $ev = $a1->expect('webrtc:answer');
    is($ev && length($ev->{data}{sdp}), 20_000, 'arrives whole on node 1');

    # (a socket has at most 32 events waiting for their answers: a burst
    # of 31 fits, each waits for the one before it at the database)
    candidates_in_order($a1, $bn, $k, 30, 'node 1 to node 2', offer => 9_000);
    candidates_in_order($bn, $a1, $k, 31, 'node 2 to node 1');
    ok($b1->none('webrtc:offer', 0.2) && $b2->none('webrtc:ice', 0.1), "b's devices on node 1 get nothing");
    ok($c1->none('webrtc:ice', 0.1), 'the outsider got nothing');
    end_call($bn, $a1, $k);
    err_is($a1->request('webrtc:ice', { call_id => $k, candidate => 'x' }), 'wrong_state',
           'no relay once node 2 ended it');
    $bn->close;
};

subtest 'a call ended on the other node relays nothing more here' => sub {
    my ($bx) = placed($b, $s, sub { $_[0] && $_[0] != $apid });
    my $k = call_between($a1, $bx);
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    # the binding is there: the node relays between its two sockets
    acked($a1->request('webrtc:offer', { call_id => $k, sdp => sdp(500) }), 'offer');
    ok($bx->expect('webrtc:offer'), 'relayed on node 1');

    # a's device on node 2 (not the bound one) ends the call
    my $an = ws($a, $n2);
    acked($an->request('call:end', { call_id => $k, reason => 'hangup' }), 'ended from node 2');
    ok($bx->expect('call:end'), 'the callee hears it on node 1');
    err_is($a1->request('webrtc:ice', { call_id => $k, candidate => cand(7) }), 'wrong_state',
           "the caller's relay is refused");
    err_is($bx->request('webrtc:offer', { call_id => $k, sdp => sdp(100) }), 'wrong_state',
           "and the callee's");
    ok($bx->none('webrtc:ice', 0.3) && $a1->none('webrtc:offer', 0.1), 'nothing went through');
    $an->close;
    $bx->close;
};

subtest 'a resumed side: candidates right after the resume, in order' => sub {
    my ($bx) = placed($b, $s, sub { $_[0] && $_[0] != $apid });
    my $k = call_between($a1, $bx);
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    my ($by) = placed($b, $s, sub { $_[0] == $apid });
    my $r = $by->request('call:resume', { call_id => $k });
    acked($r, 'another device of the callee resumes');
    ok($a1->expect('call:resume'), 'the caller hears it');
    candidates_in_order($by, $a1, $k, 40, 'from the new device');
    candidates_in_order($a1, $by, $k, 40, 'to the new device');
    ok($bx->none('webrtc:ice', 0.2), 'the old device gets nothing');
    err_is($bx->request('webrtc:ice', { call_id => $k, candidate => 'x' }), 'not_bound', 'nor may it relay');
    end_call($by, $a1, $k);
    $_->close for $bx, $by;
};

subtest 'a bound socket closes: the node asks the row again' => sub {
    my ($bx) = placed($b, $s, sub { $_[0] && $_[0] != $apid });
    my $k = call_between($a1, $bx);
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    acked($a1->request('webrtc:ice', { call_id => $k, candidate => cand(1) }), 'a candidate');
    ok($bx->expect('webrtc:ice'), 'relayed');
    $bx->close;
    acked($a1->request('webrtc:ice', { call_id => $k, candidate => cand(2) }),
          'the peer is gone: acked, as the row still has the call');
    my ($bz) = placed($b, $s, sub { 1 });
    acked($bz->request('call:resume', { call_id => $k }), 'the callee is back');
    $a1->expect('call:resume');
    acked($a1->request('webrtc:ice', { call_id => $k, candidate => cand(3) }), 'the next candidate');
    my $ev = $bz->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, cand(3), 'reaches the new socket');
    end_call($a1, $bz, $k);
    $bz->close;
};

$n2->stop;

subtest 'within a node a relay runs no query: PostgreSQL stopped' => sub {
    my ($bx) = placed($b, $s, sub { $_[0] && $_[0] != $apid });
    my $k = call_between($a1, $bx);
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    acked($a1->request('webrtc:offer', { call_id => $k, sdp => sdp(800) }), 'an offer');
    ok($bx->expect('webrtc:offer'), 'relayed');

    $s->pg_stop;
    acked($a1->request('webrtc:offer', { call_id => $k, sdp => sdp(2000) }), 'an offer, the database down');
    my $ev = $bx->expect('webrtc:offer');
    is($ev && length $ev->{data}{sdp}, 2000, 'reaches the other worker');
    candidates_in_order($bx, $a1, $k, 30, 'and back');
    err_is($a2->request('webrtc:ice', { call_id => $k, candidate => 'x' }), 'unavailable',
           'a device the node has not bound needs the row: unavailable');
    ok($bx->none('webrtc:ice', 0.2), 'and nothing of it arrived');
    $s->pg_start;
    # the node's bus is back: it may have missed an end, and forgot its
    # bindings; the next relay asks the row, which binds the call again
    ok($a1->expect('resync', 30), 'the bus is back: the sockets resync');
    wait_until { my $f = $a1->request('call:active', {}); $f && $f->{type} eq 'ack' } 30, 'the database is back';
    acked($a1->request('webrtc:ice', { call_id => $k, candidate => cand(1) }), 'a candidate, through the row');
    ok($bx->expect('webrtc:ice'), 'relayed');
    $s->pg_stop;
    acked($a1->request('webrtc:ice', { call_id => $k, candidate => cand(2) }),
          'the next one without the database again');
    my $ev2 = $bx->expect('webrtc:ice');
    is($ev2 && $ev2->{data}{candidate}, cand(2), 'relayed by the node');
    $s->pg_start;
    ok($a1->expect('resync', 30), 'the bus is back');
    wait_until { my $f = $a1->request('call:active', {}); $f && $f->{type} eq 'ack' } 30, 'the database is back';
    acked($a1->request('call:end', { call_id => $k }), 'the call ends');
    ok($bx->expect('call:end'), 'the other side hears it');
    err_is($bx->request('webrtc:ice', { call_id => $k, candidate => 'x' }), 'wrong_state', 'and relays no more');
    $bx->close;
};

subtest 'relays waiting behind a statement when the database goes' => sub {
    my ($bx) = placed($b, $s, sub { 1 });
    my $k = call_between($a1, $bx);
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    # a's other device is not bound: each of its relays asks the row, one
    # at a time; the row is locked, so the first waits and the rest queue
    # behind it, until the database stops under them
    my $lock = fork // die "fork: $!";
    if (!$lock) {
        my $env = $s->pg_env;
        defined $env->{$_} ? ($ENV{$_} = $env->{$_}) : delete $ENV{$_} for keys %$env;
        exec '/usr/bin/psql', '-X', '-q', '-c',
             'begin; lock table calls in access exclusive mode; select pg_sleep(30); commit';
        exit 127;
    }
    ok((wait_until { $s->psql("select count(*) from pg_locks where relation = 'calls'::regclass and mode = 'AccessExclusiveLock' and granted") > 0 } 10, 'the lock'),
       'the calls table is locked');
    $a2->send('webrtc:ice', { call_id => $k, candidate => "q$_" }, "q$_") for 1 .. 5;
    ok((wait_until { $s->psql("select count(*) from pg_locks where relation = 'calls'::regclass and not granted") > 0 } 10, 'a relay waits'),
       'the first relay waits for it');
    ok($a2->none('error', 0.3), 'the others wait behind it');
    $s->pg_stop;
    waitpid $lock, 0;
    my @codes;
    for my $i (1 .. 5) {
        my $f = $a2->wait_for(sub { ($_[0]{ref} // '') eq "q$i" }, 20);
        push @codes, $f && $f->{type} eq 'error' ? $f->{error}{code} : 'none';
    }
    is_deeply(\@codes, [('unavailable') x 5], 'each is answered: unavailable');
    ok($bx->none('webrtc:ice', 0.3), 'none went through');
    $s->pg_start;
    wait_until { my $f = $a1->request('call:active', {}); $f && $f->{type} eq 'ack' } 30, 'the database is back';
    err_is($a2->request('webrtc:ice', { call_id => $k, candidate => 'x' }), 'not_bound', 'the row answers again');
    acked($a1->request('call:end', { call_id => $k }), 'the call ends');
    $bx->close;
};

$_->close for $a1, $a2, $b1, $b2, $c1;
done_testing;
