# Calls across two nodes when things go wrong (issue 19, docs/websocket.md
# "Calls"): two users with three devices each over two nodes, every bad
# event (nothing reaches a socket that is not bound to the call), a worker
# killed mid-call, and a whole node killed (kill -9, master and workers)
# mid-ring and mid-call: the surviving node's sweeper ends what the dead
# node held, the surviving side hears it, the history shows it, and a
# participant that reconnects on the surviving node in time keeps its call.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(new_uuid uuid_re wait_until);
use Famcall::WS;

my $conf = "famcall_call_ring_timeout 5s;\nfamcall_call_sweep_interval 200ms;\n"
         . "famcall_call_reconnect_grace 2s;\nfamcall_call_invite_rate 100;\n";
my $s  = Famcall::Test->new(workers => 2, extra_conf => $conf);
my $n2 = Famcall::Test->new(node_of => $s, workers => 2, extra_conf => $conf);
my $slow = $ENV{FAMCALL_ASAN} ? 2 : 1;

my ($a, $b, $c, $d, $e, $f, $g, $h, $o) = map { $s->signup } 1 .. 9;
$s->befriend(@$_) for [$a, $b], [$c, $d], [$e, $f], [$g, $h], [$o, $a], [$o, $b];
my $aid = $a->{user}{id};
my $bid = $b->{user}{id};

sub ws {
    my ($user, $node) = @_;
    my $ws = Famcall::WS->open($node // $s, $user->{access_token});
    die 'no socket' unless $ws;
    return $ws;
}

sub online {
    my ($user, $n) = @_;
    wait_until { $s->psql("select count(*) from presence where user_id = '$user->{user}{id}'") >= ($n // 1) }
        10, "presence rows of $user->{user}{username}";
}

sub err_is {
    my ($fr, $code, $name, $field) = @_;
    subtest $name => sub {
        is($fr && $fr->{type}, 'error', 'an error') or diag explain $fr;
        is($fr && $fr->{error}{code}, $code, $code);
        is($fr && $fr->{error}{field}, $field, "field $field") if defined $field;
    };
}

sub ack_ok {
    my ($fr, $name) = @_;
    is($fr && $fr->{type}, 'ack', $name) or diag explain $fr;
    return $fr && $fr->{data};
}

sub status_of { $s->psql("select status || ' ' || coalesce(end_reason, '-') from calls where id = '$_[0]'") }

# every call:* or webrtc:* frame a socket got, for the "nothing reached it"
# checks: the socket's loop runs for a moment first
sub call_frames {
    my ($ws, $secs) = @_;
    $ws->wait_for(sub { 0 }, $secs // 0.3);
    return grep { ($_->{type} // '') =~ /^(?:call|webrtc):/ } @{ $ws->frames };
}

sub nothing_for {
    my ($name, @socks) = @_;
    my @got = map { call_frames($_, 0.1) } @socks;
    ok(!@got, $name) or diag explain \@got;
}

sub history {
    my ($user, $call) = @_;
    my $tx = $s->json_req(GET => '/v1/calls', undef, $user->{access_token});
    is($tx->res->code, 200, "history of $user->{user}{username}");
    my @c = grep { $_->{call_id} eq ($call // '') } @{ $tx->res->json->{calls} // [] };
    return ($c[0], $tx->res->json->{calls});
}

sub sdp { my ($n) = @_; my $t = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"; $t .= "a=x:" . ('y' x 60) . "\r\n" while length $t < $n; substr($t, 0, $n) }

subtest 'two users, three devices each, two nodes; every bad event' => sub {
    my ($a1, $a2, $a3) = (ws($a), ws($a, $n2), ws($a));
    my ($b1, $b2, $b3) = (ws($b), ws($b, $n2), ws($b, $n2));
    my ($o1, $o2) = (ws($o), ws($o, $n2));
    online($a, 2);
    online($b, 2);

    # no call at all
    err_is($a2->request('call:accept', { call_id => new_uuid() }), 'not_found', 'accept: an unknown call');
    err_is($a2->request('call:resume', { call_id => new_uuid() }), 'not_found', 'resume: an unknown call');
    err_is($a2->request('webrtc:ice', { call_id => new_uuid(), candidate => 'candidate:1' }), 'not_found',
           'ice: an unknown call');
    err_is($a2->request('webrtc:offer', { call_id => new_uuid(), sdp => sdp(200) }), 'not_found',
           'offer: an unknown call');

    my $inv = ack_ok($a2->request('call:invite', { to_user_id => $bid, media => 'video' }),
                     'a2 (node 2) invites b');
    my $call = $inv->{call_id};
    like($call // '', uuid_re, 'a call');
    for my $dev ($b1, $b2, $b3) {
        my $ev = $dev->expect('call:invite');
        is($ev && $ev->{data}{call_id}, $call, "b's device on port $dev->{port} rings");
    }
    my $r = $a2->expect('call:ringing');
    is($r && $r->{data}{call_id}, $call, 'the inviting device hears call:ringing');
    ok($a1->none('call:ringing', 0.2) && $a3->none('call:ringing', 0.1),
       "a's other devices do not");

    # wrong state: before the answer
    err_is($a2->request('webrtc:offer', { call_id => $call, sdp => sdp(300) }), 'wrong_state',
           'an offer before accept');
    err_is($b1->request('webrtc:ice', { call_id => $call, candidate => 'candidate:1' }), 'wrong_state',
           'a candidate before accept');
    err_is($a2->request('call:end', { call_id => $call }), 'wrong_state', 'an end before accept');
    err_is($a1->request('call:accept', { call_id => $call }), 'wrong_state', "the caller's own accept");
    err_is($b2->request('call:resume', { call_id => $call }), 'wrong_state', 'a resume while it rings');

    # not a participant: the outsider (a contact of both) on both nodes
    for my $ev (qw(call:accept call:reject call:cancel call:end call:resume)) {
        err_is($o2->request($ev, { call_id => $call }), 'not_found', "an outsider's $ev");
    }

    my $acc = ack_ok($b2->request('call:accept', { call_id => $call }), 'b2 (node 2) accepts');
    is($acc && $acc->{status}, 'accepted', 'accepted');
    my $ev = $a2->expect('call:accept');
    is($ev && $ev->{data}{call_id}, $call, 'the caller hears it');
    for my $dev ($b1, $b3) {
        $ev = $dev->expect('call:answered_elsewhere');
        is($ev && $ev->{data}{call_id}, $call, "b's other device hears answered_elsewhere");
    }
    err_is($b3->request('call:accept', { call_id => $call }), 'answered_elsewhere', 'a late accept');

    # a third user injecting candidates, offers, answers
    err_is($o1->request('webrtc:ice', { call_id => $call, candidate => 'candidate:9 1 udp 1 10.6.6.6 9 typ host' }),
           'not_found', "a third user's candidate (node 1)");
    err_is($o2->request('webrtc:ice', { call_id => $call, candidate => 'candidate:9 1 udp 1 10.6.6.6 9 typ host' }),
           'not_found', "a third user's candidate (node 2)");
    err_is($o2->request('webrtc:offer', { call_id => $call, sdp => sdp(500) }), 'not_found',
           "a third user's offer");
    err_is($o1->request('webrtc:answer', { call_id => $call, sdp => sdp(500) }), 'not_found',
           "a third user's answer");
    # a participant's devices that are not the call's
    err_is($a1->request('webrtc:ice', { call_id => $call, candidate => 'candidate:x' }), 'not_bound',
           "the caller's device that did not invite");
    err_is($b3->request('webrtc:answer', { call_id => $call, sdp => sdp(200) }), 'not_bound',
           "the callee's device that did not answer");
    # oversize, from the bound device itself
    err_is($a2->request('webrtc:offer', { call_id => $call, sdp => sdp(65537) }), 'invalid_field',
           'an SDP over 64 KB', 'sdp');
    err_is($a2->request('webrtc:ice', { call_id => $call, candidate => 'c' x 1025 }), 'invalid_field',
           'a candidate over 1 KB', 'candidate');
    ok(!$a2->closed && !$o2->closed, 'bad events leave the sockets open');

    # the bound devices, node 2 to node 2
    my $offer = sdp(2000);
    ack_ok($a2->request('webrtc:offer', { call_id => $call, sdp => $offer }), 'the offer');
    $ev = $b2->expect('webrtc:offer');
    is($ev && $ev->{data}{sdp}, $offer, 'reaches the answering device');
    ack_ok($b2->request('webrtc:answer', { call_id => $call, sdp => 'the answer' }), 'the answer');
    $ev = $a2->expect('webrtc:answer');
    is($ev && $ev->{data}{sdp}, 'the answer', 'reaches the inviting device');
    ack_ok($b2->request('webrtc:ice', { call_id => $call, candidate => 'candidate:b', sdp_mid => '0',
                                        sdp_mline_index => 0 }), 'a candidate');
    $ev = $a2->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, 'candidate:b', 'reaches the other side');
    ok($b2->none('webrtc:ice', 0.2), 'and never the injected ones');
    nothing_for('nothing of the call reached the outsider (both nodes)', $o1, $o2);
    my @other = map { grep { $_->{type} =~ /^webrtc:/ } call_frames($_, 0.05) } $a1, $a3, $b1, $b3;
    ok(!@other, "nothing relayed to the participants' other devices") or diag explain \@other;

    # the callee hangs up from a device that is not the call's: the call
    # ends for both bound devices
    ack_ok($b1->request('call:end', { call_id => $call, reason => 'hangup' }), 'b1 hangs up');
    $ev = $a2->expect('call:end');
    is($ev && $ev->{data}{reason}, 'hangup', "the caller's device hears call:end");
    $ev = $b2->expect('call:end');
    is($ev && $ev->{data}{call_id}, $call, "b's device in the call hears it too");
    is(status_of($call), 'ended hangup', 'stored');

    # wrong state: after the end
    err_is($b3->request('call:accept', { call_id => $call }), 'wrong_state', 'accepting an ended call');
    err_is($a2->request('call:end', { call_id => $call }), 'wrong_state', 'ending it again');
    err_is($a2->request('webrtc:ice', { call_id => $call, candidate => 'candidate:late' }), 'wrong_state',
           'a candidate after the end');
    err_is($b2->request('webrtc:offer', { call_id => $call, sdp => sdp(100) }), 'wrong_state',
           'a renegotiation after the end');
    err_is($a1->request('call:resume', { call_id => $call }), 'wrong_state', 'resuming an ended call');
    err_is($a1->request('call:cancel', { call_id => $call }), 'wrong_state', 'cancelling an ended call');
    nothing_for('still nothing for the outsider', $o1, $o2);

    my ($ha) = history($a, $call);
    my ($hb) = history($b, $call);
    is($ha && "$ha->{status} $ha->{end_reason} $ha->{direction}", 'ended hangup outgoing', "a's history");
    is($hb && "$hb->{status} $hb->{end_reason} $hb->{direction}", 'ended hangup incoming', "b's history");
    my (undef, $ho) = history($o);
    is_deeply($ho, [], "the outsider's history is empty");

    # the caller cancels from a device that did not invite: the inviting
    # device stops too
    $call = ack_ok($a1->request('call:invite', { to_user_id => $bid, media => 'audio' }), 'a1 invites')->{call_id};
    $_->expect('call:invite') for $b1, $b2, $b3;
    ack_ok($a3->request('call:cancel', { call_id => $call }), 'a3 cancels');
    $ev = $a1->expect('call:cancel');
    is($ev && $ev->{data}{call_id}, $call, 'the inviting device hears call:cancel');
    for my $dev ($b1, $b2, $b3) {
        $ev = $dev->expect('call:cancel');
        is($ev && $ev->{data}{call_id}, $call, "b's devices stop ringing");
    }

    # a second device of a side takes the call over (call:resume): the
    # device it replaces hears that it is no longer in the call
    $call = ack_ok($a1->request('call:invite', { to_user_id => $bid, media => 'audio' }), 'a1 invites')->{call_id};
    $_->expect('call:invite') for $b1, $b2, $b3;
    ack_ok($b1->request('call:accept', { call_id => $call }), 'b1 accepts');
    $a1->expect('call:accept');
    ack_ok($a2->request('call:resume', { call_id => $call }), 'a2 takes the call over');
    $ev = $a1->expect('call:answered_elsewhere');
    is($ev && $ev->{data}{call_id}, $call, 'a1 hears it went to another device');
    $ev = $b1->expect('call:resume');
    is($ev && $ev->{data}{call_id}, $call, 'the peer hears call:resume');
    err_is($a1->request('webrtc:ice', { call_id => $call, candidate => 'candidate:old' }), 'not_bound',
           'the replaced device relays nothing');
    ack_ok($a2->request('webrtc:ice', { call_id => $call, candidate => 'candidate:new' }), 'the new one does');
    $ev = $b1->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, 'candidate:new', 'across the nodes');
    ack_ok($a2->request('call:end', { call_id => $call }), 'a2 hangs up');
    $b1->expect('call:end');
    nothing_for('the outsider heard nothing of it all', $o1, $o2);

    $_->close for $a1, $a2, $a3, $b1, $b2, $b3, $o1, $o2;
};

subtest 'across nodes at once: two accepts, and glare' => sub {
    my $a1 = ws($a);
    my ($b1, $b2) = (ws($b), ws($b, $n2));
    online($b, 2);
    for my $round (1 .. 3) {
        my $call = ack_ok($a1->request('call:invite', { to_user_id => $bid, media => 'audio' }),
                          "invite $round")->{call_id};
        $_->expect('call:invite') for $b1, $b2;
        # both leave before either is answered
        $b1->send('call:accept', { call_id => $call }, "x$round");
        $b2->send('call:accept', { call_id => $call }, "y$round");
        my $x = $b1->wait_for(sub { ($_[0]{ref} // '') eq "x$round" });
        my $y = $b2->wait_for(sub { ($_[0]{ref} // '') eq "y$round" });
        my @won = grep { $_ && $_->{type} eq 'ack' } $x, $y;
        my @lost = grep { $_ && $_->{type} eq 'error' && $_->{error}{code} eq 'answered_elsewhere' } $x, $y;
        is(scalar @won . ' ' . scalar @lost, '1 1', "round $round: one accept wins, the other is answered elsewhere")
            or diag explain [$x, $y];
        my $ev = $a1->expect('call:accept');
        is($ev && $ev->{data}{call_id}, $call, 'the caller hears one call:accept');
        ok($a1->none('call:accept', 0.2), 'only one');
        ack_ok($a1->request('call:end', { call_id => $call }), 'ended');
        $_->{frames} = [] for $b1, $b2;
    }

    # a on node 1 and b on node 2 call each other at once: one call
    $a1->send('call:invite', { to_user_id => $bid, media => 'video' }, 'ga');
    $b2->send('call:invite', { to_user_id => $aid, media => 'video' }, 'gb');
    my $ga = $a1->wait_for(sub { ($_[0]{ref} // '') eq 'ga' });
    my $gb = $b2->wait_for(sub { ($_[0]{ref} // '') eq 'gb' });
    is($ga && $ga->{data}{call_id}, $gb && $gb->{data}{call_id}, 'glare across nodes: one call')
        or diag explain [$ga, $gb];
    my $call = $ga->{data}{call_id};
    is($s->psql("select count(*) from calls where status in ('ringing', 'accepted')"), 1,
       'nothing else rings');
    is(status_of($call), 'accepted -', 'accepted');
    my ($caller, $callee) = $ga->{data}{glare} ? ($b2, $a1) : ($a1, $b2);
    ok($caller->expect('call:accept'), 'the first caller hears call:accept');
    ack_ok($caller->request('webrtc:offer', { call_id => $call, sdp => sdp(500) }), 'an offer');
    ok($callee->expect('webrtc:offer'), 'reaches the device whose invite answered');
    ok($b1->none('webrtc:offer', 0.2), "and not b's other device");
    ack_ok($callee->request('call:end', { call_id => $call }), 'ended');
    $caller->expect('call:end');
    $_->close for $a1, $b1, $b2;
};

# the call between $x (on $xnode) and $y (on $ynode), accepted; returns
# (call, x's socket, y's socket)
sub call_between {
    my ($x, $xnode, $y, $ynode) = @_;
    my ($xs, $ys) = (ws($x, $xnode), ws($y, $ynode));
    online($y);
    my $call = ack_ok($xs->request('call:invite', { to_user_id => $y->{user}{id}, media => 'video' }),
                      "$x->{user}{username} invites")->{call_id};
    $ys->expect('call:invite');
    ack_ok($ys->request('call:accept', { call_id => $call }), 'accepted');
    $xs->expect('call:accept');
    return ($call, $xs, $ys);
}

subtest 'a worker killed mid-call: connection_lost after the grace' => sub {
    my ($call, $c1, $d1) = call_between($c, $s, $d, $n2);
    my $pid = $c1->server_pid($s->http_port);
    ok($pid, "the worker holding c's socket");
    kill 'KILL', $pid;
    ok($c1->wait_closed(10), "c's socket drops with it");

    # the master starts a new worker, which finds the dead one's rows
    my $t0 = time;
    my $ev = $d1->expect('call:end', 20 * $slow);
    is($ev && $ev->{data}{call_id}, $call, 'the other side hears call:end');
    is($ev && $ev->{data}{reason}, 'connection_lost', 'connection_lost');
    cmp_ok(time - $t0, '>=', 1.5, 'not before the grace');
    is(status_of($call), 'ended connection_lost', 'stored');
    my ($hc) = history($c, $call);
    is($hc && $hc->{end_reason}, 'connection_lost', "in c's history");
    $d1->close;
    $s->forgive_kill($pid);
};

subtest 'the bound device closes, another device of its user stays on its worker' => sub {
    # one worker: b's devices share it, so b's presence row there stays
    my $n3 = Famcall::Test->new(node_of => $s, workers => 1, extra_conf => $conf);
    my $e1 = ws($e);
    my ($f1, $f2) = (ws($f, $n3), ws($f, $n3));
    online($f);
    my $call = ack_ok($e1->request('call:invite', { to_user_id => $f->{user}{id}, media => 'video' }),
                      'e invites f')->{call_id};
    $_->expect('call:invite') for $f1, $f2;
    ack_ok($f2->request('call:accept', { call_id => $call }), 'f2 accepts');
    $e1->expect('call:accept');
    $f2->close;

    # f's other device takes the call over in time: it goes on
    ack_ok($f1->request('call:resume', { call_id => $call }), 'f1 resumes');
    my $ev = $e1->expect('call:resume');
    is($ev && $ev->{data}{call_id}, $call, 'e hears call:resume');
    ok($e1->none('call:end', 3), 'the call goes on past the grace');
    ack_ok($e1->request('webrtc:ice', { call_id => $call, candidate => 'candidate:e' }), 'e relays');
    $ev = $f1->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, 'candidate:e', 'to f1');
    ack_ok($f1->request('call:end', { call_id => $call }), 'f1 hangs up');
    $e1->expect('call:end');

    # nobody takes it over: lost, and ended past the grace
    $call = ack_ok($e1->request('call:invite', { to_user_id => $f->{user}{id}, media => 'audio' }),
                   'e invites f again')->{call_id};
    my $f3 = ws($f, $n3);
    my $act = ack_ok($f3->request('call:active', {}), "f3's call:active");
    my @r = grep { $_->{call_id} eq $call } @{ $act->{calls} // [] };
    is($r[0] && $r[0]{status}, 'ringing', 'a device that connects while it rings learns of it');
    ack_ok($f3->request('call:accept', { call_id => $call }), 'f3 accepts');
    $e1->expect('call:accept');
    $f1->expect('call:answered_elsewhere');
    my $t0 = time;
    $f3->close;
    $ev = $e1->expect('call:end', 15 * $slow);
    is($ev && $ev->{data}{call_id}, $call, 'e hears call:end');
    is($ev && $ev->{data}{reason}, 'connection_lost', 'connection_lost');
    cmp_ok(time - $t0, '>=', 1.5, 'not before the grace');
    is(status_of($call), 'ended connection_lost', 'stored');
    ok(!$f1->closed, "f's other device stayed connected all along");
    $_->close for $e1, $f1;
    $n3->stop;
};

subtest 'a lost side is found however many calls go on' => sub {
    # thousands of calls going on between two online users, before ours in
    # every order the sweeper might walk them
    my ($p, $q) = map { $s->signup } 1 .. 2;
    my ($p1, $q1) = (ws($p), ws($q));
    online($_) for $p, $q;
    my ($pid, $qid) = ($p->{user}{id}, $q->{user}{id});
    my $pi = $s->psql("select instance_id from presence where user_id = '$pid' limit 1");
    my $qi = $s->psql("select instance_id from presence where user_id = '$qid' limit 1");
    $s->psql("insert into calls (id, caller_id, callee_id, media, status, answered_at, caller_src, callee_src)
              select ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, '$pid', '$qid',
                     'audio', 'accepted', now(), '$pi.' || (1000000 + i), '$qi.' || (1000000 + i)
                from generate_series(1, 5000) i");
    my ($call, $c1, $d1) = call_between($c, $s, $d, $s);
    $c1->close;
    my $ev = $d1->expect('call:end', 15 * $slow);
    is($ev && $ev->{data}{call_id}, $call, 'the lost side is found: call:end');
    is($ev && $ev->{data}{reason}, 'connection_lost', 'connection_lost');
    is($s->psql("select count(*) from calls where caller_id = '$pid' and status = 'accepted'"), 5000,
       'the calls whose sides are there go on');
    $s->psql("delete from calls where caller_id = '$pid'");
    $_->close for $d1, $p1, $q1;
};

subtest 'a node killed (kill -9) mid-ring and mid-call' => sub {
    # mid-call, nobody comes back: g on node 2, h on node 1
    my ($lost, $g1, $h1) = call_between($g, $n2, $h, $s);
    # mid-call, a comes back on node 1 in time and resumes
    my ($kept, $a2, $b1) = call_between($a, $n2, $b, $s);
    ack_ok($a2->request('webrtc:offer', { call_id => $kept, sdp => sdp(1000) }), 'an offer across');
    ok($b1->expect('webrtc:offer'), 'relayed to node 1');
    # mid-ring: the caller on node 2, and the callee on node 2
    my ($c2, $d1) = (ws($c, $n2), ws($d));
    my ($e1, $f2) = (ws($e), ws($f, $n2));
    online($_) for $d, $f;
    my $ring1 = ack_ok($c2->request('call:invite', { to_user_id => $d->{user}{id}, media => 'audio' }),
                       'c (node 2) rings d (node 1)')->{call_id};
    my $ring2 = ack_ok($e1->request('call:invite', { to_user_id => $f->{user}{id}, media => 'audio' }),
                       'e (node 1) rings f (node 2)')->{call_id};
    ok($d1->expect('call:invite') && $f2->expect('call:invite'), 'both ring');

    my @pids = ($n2->nginx_pid, $n2->worker_pids);
    is(scalar @pids, 3, 'node 2: a master and two workers');
    kill 'KILL', @pids;
    ok($g1->wait_closed(10) && $a2->wait_closed(1) && $c2->wait_closed(1) && $f2->wait_closed(1),
       "node 2's sockets drop");

    # a is back on node 1 within the grace: it learns of its call there
    my $a1 = ws($a);
    my $act = ack_ok($a1->request('call:active', {}), 'call:active on the new socket');
    my @mine = grep { $_->{call_id} eq $kept } @{ $act->{calls} // [] };
    is($mine[0] && $mine[0]{status}, 'accepted', 'the call is there, accepted');
    ack_ok($a1->request('call:resume', { call_id => $kept }), 'a resumes on node 1');
    my $ev = $b1->expect('call:resume');
    is($ev && $ev->{data}{call_id}, $kept, 'b hears call:resume');

    # the rings run out on node 1's sweepers, whoever placed them
    $ev = $d1->expect('call:timeout', 15 * $slow);
    is($ev && $ev->{data}{call_id}, $ring1, "the callee of a dead node's caller stops ringing");
    $ev = $e1->expect('call:timeout', 5 * $slow);
    is($ev && $ev->{data}{call_id}, $ring2, 'the caller of a callee on the dead node hears call:timeout');
    is(status_of($ring1), 'missed timeout', 'stored: missed');
    is(status_of($ring2), 'missed timeout', 'stored: missed');

    # node 1 sees node 2's workers gone (their pids, at its next
    # heartbeat), their presence rows go, the sides they held are lost,
    # and past the grace the call ends
    $ev = $h1->expect('call:end', 90 * $slow);
    is($ev && $ev->{data}{call_id}, $lost, 'the surviving side hears call:end');
    is($ev && $ev->{data}{reason}, 'connection_lost', 'connection_lost');
    is(status_of($lost), 'ended connection_lost', 'stored');
    is($s->psql("select count(*) from gateway_instances where id::text in (select split_part(caller_src, '.', 1) from calls where id = '$lost')"),
       0, "the dead node's workers are gone from the database");

    # the resumed call goes on past all that, and relays within node 1
    ok($b1->none('call:end', 3 * 0.5), 'the resumed call did not end');
    is(status_of($kept), 'accepted -', 'still accepted');
    ack_ok($a1->request('webrtc:ice', { call_id => $kept, candidate => 'candidate:back' }), 'a relays again');
    $ev = $b1->expect('webrtc:ice');
    is($ev && $ev->{data}{candidate}, 'candidate:back', 'b gets it');

    # g comes back too late
    my $g9 = ws($g);
    $act = ack_ok($g9->request('call:active', {}), "g's call:active");
    is_deeply($act && $act->{calls}, [], 'nothing going on');
    err_is($g9->request('call:resume', { call_id => $lost }), 'wrong_state', 'too late to resume');

    my ($hh) = history($h, $lost);
    my ($hg) = history($g, $lost);
    is($hh && "$hh->{status} $hh->{end_reason}", 'ended connection_lost', "h's history");
    is($hg && "$hg->{status} $hg->{end_reason}", 'ended connection_lost', "g's history");
    my ($hd) = history($d, $ring1);
    ok($hd && $hd->{missed}, "d's history: a missed call");

    ack_ok($b1->request('call:end', { call_id => $kept }), 'b hangs up');
    $ev = $a1->expect('call:end');
    is($ev && $ev->{data}{call_id}, $kept, 'a hears it on node 1');
    $_->close for $a1, $b1, $h1, $d1, $e1, $g9;
    $n2->stop;
};

$s->stop;
done_testing;
