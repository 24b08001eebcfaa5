# Call signaling (issue 19, docs/websocket.md "Calls"): the state machine
# over real sockets, two users with several devices on one node and on two
# nodes; bad events first.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(new_uuid uuid_re wait_until);
use Famcall::WS;

# a short ring timeout, and a sweeper that looks often, so the timeout case
# waits seconds
my $conf = "famcall_call_ring_timeout 3s;\nfamcall_call_sweep_interval 200ms;\n"
         . "famcall_call_invite_rate 40;\n";
my $s = Famcall::Test->new(workers => 2, extra_conf => $conf);

my ($a, $b, $c, $d, $e) = map { $s->signup } 1 .. 5;
$s->befriend($a, $b);
$s->befriend($c, $b);
$s->befriend($a, $c);
$s->befriend($a, $e);             # e blocks a below
my $aid = $a->{user}{id};
my $bid = $b->{user}{id};
my $cid = $c->{user}{id};

sub ws {
    my ($user, $node) = @_;
    my $ws = Famcall::WS->open($node // $s, $user->{access_token});
    die 'no socket' unless $ws;
    return $ws;
}

sub online {
    my ($user) = @_;
    wait_until { $s->psql("select count(*) from presence where user_id = '$user->{user}{id}'") > 0 }
        10, "a presence row of $user->{user}{username}";
}

sub err_is {
    my ($f, $code, $name, $field) = @_;
    subtest $name => sub {
        is($f && $f->{type}, 'error', 'an error') or diag explain $f;
        is($f && $f->{error}{code}, $code, $code);
        is($f && $f->{error}{field}, $field, "field $field") if defined $field;
    };
}

sub status_of { $s->psql("select status || ' ' || coalesce(end_reason, '-') from calls where id = '$_[0]'") }

my $a1 = ws($a);
my ($b1, $b2) = (ws($b), ws($b));
my $c1 = ws($c);
my $d1 = ws($d);
online($_) for $a, $b, $c;

subtest 'bad events' => sub {
    err_is($a1->request('call:invite', { media => 'video' }), 'missing_field',
           'no to_user_id', 'to_user_id');
    err_is($a1->request('call:invite', { to_user_id => 'nope', media => 'video' }),
           'invalid_field', 'a bad user id', 'to_user_id');
    err_is($a1->request('call:invite', { to_user_id => $bid, media => 'smell' }),
           'invalid_field', 'a bad media', 'media');
    err_is($a1->request('call:invite', { to_user_id => $bid }), 'missing_field',
           'no media', 'media');
    err_is($a1->request('call:invite', { to_user_id => $aid, media => 'video' }),
           'invalid_field', 'calling yourself', 'to_user_id');
    err_is($a1->request('call:invite', { to_user_id => $d->{user}{id}, media => 'audio' }),
           'not_a_contact', 'a user who is not a contact');
    err_is($a1->request('call:invite', { to_user_id => new_uuid(), media => 'audio' }),
           'not_found', 'no such user');

    my $tx = $s->json_req(POST => '/v1/blocks', { user_id => $aid }, $e->{access_token});
    is($tx->res->code, 201, 'e blocks a');
    err_is($a1->request('call:invite', { to_user_id => $e->{user}{id}, media => 'audio' }),
           'blocked', 'across a block');

    for my $ev (qw(call:accept call:reject call:cancel call:end)) {
        err_is($a1->request($ev, { call_id => new_uuid() }), 'not_found', "$ev: an unknown call");
        err_is($a1->request($ev, {}), 'missing_field', "$ev: no call_id", 'call_id');
        err_is($a1->request($ev, { call_id => 'x' }), 'invalid_field', "$ev: a bad call_id", 'call_id');
    }
    err_is($a1->request('call:end', { call_id => new_uuid(), reason => 'Bad Reason' }),
           'invalid_field', 'call:end: a bad reason', 'reason');
    err_is($a1->request('call:end', { call_id => new_uuid(), reason => 'x' x 33 }),
           'invalid_field', 'call:end: a long reason', 'reason');
    is($s->psql('select count(*) from calls'), 0, 'no call was stored');
};

subtest 'invite, ringing, accept on one device, answered elsewhere, end' => sub {
    my $ack = $a1->request('call:invite', { to_user_id => $bid, media => 'video' });
    is($ack->{type}, 'ack', 'acked') or diag explain $ack;
    my $call = $ack->{data}{call_id};
    like($call // '', uuid_re, 'with a call_id');
    is($ack->{data}{status}, 'ringing', 'ringing');

    for my $dev ($b1, $b2) {
        my $inv = $dev->expect('call:invite');
        is($inv && $inv->{data}{call_id}, $call, "the callee's device rings");
        is($inv && $inv->{data}{from}{id}, $aid, 'from the caller');
        is($inv && $inv->{data}{media}, 'video', 'video');
        ok($inv && !exists $inv->{data}{from}{email}, 'the public user only');
    }
    my $r = $a1->expect('call:ringing');
    is($r && $r->{data}{call_id}, $call, 'the caller hears call:ringing');
    ok($c1->none('call:invite', 0.2), 'nobody else rings');

    err_is($c1->request('call:accept', { call_id => $call }), 'not_found', "an outsider's accept");
    err_is($c1->request('call:end', { call_id => $call }), 'not_found', "an outsider's end");
    err_is($a1->request('call:accept', { call_id => $call }), 'wrong_state', 'the caller cannot accept');
    err_is($b1->request('call:end', { call_id => $call }), 'wrong_state', 'no end before the answer');

    $ack = $b2->request('call:accept', { call_id => $call });
    is($ack->{type}, 'ack', 'b2 accepts') or diag explain $ack;
    is($ack->{data}{status}, 'accepted', 'accepted');
    my $acc = $a1->expect('call:accept');
    is($acc && $acc->{data}{call_id}, $call, 'the caller hears call:accept');
    my $else = $b1->expect('call:answered_elsewhere');
    is($else && $else->{data}{call_id}, $call, "the callee's other device: answered elsewhere");
    ok($b2->none('call:answered_elsewhere', 0.2), 'not the device that answered');

    err_is($b1->request('call:accept', { call_id => $call }), 'answered_elsewhere',
           'a second accept loses');
    err_is($b1->request('call:reject', { call_id => $call }), 'wrong_state', 'no reject after the answer');
    err_is($a1->request('call:cancel', { call_id => $call }), 'wrong_state', 'no cancel after the answer');

    my ($src_a, $src_b) = split /\|/, $s->psql("select caller_src, callee_src from calls where id = '$call'");
    like($src_a, qr/^[0-9a-f-]{36}\.\d+$/, "the caller's device is bound");
    like($src_b, qr/^[0-9a-f-]{36}\.\d+$/, "so is the device that answered");

    # busy: both are in a call now
    $ack = $c1->request('call:invite', { to_user_id => $bid, media => 'audio' });
    is($ack->{data}{status}, 'busy', 'calling someone in a call: busy');
    my $busy = $c1->expect('call:busy');
    is($busy && $busy->{data}{call_id}, $ack->{data}{call_id}, 'the caller hears call:busy');
    ok($b1->none('call:invite', 0.2), 'nothing rings on the busy side');
    $ack = $a1->request('call:invite', { to_user_id => $cid, media => 'audio' });
    is($ack->{data}{status}, 'busy', 'calling while in a call: busy');
    is($ack->{data}{reason}, 'caller_busy', 'the caller is the busy one');
    $a1->expect('call:busy');

    $ack = $b2->request('call:end', { call_id => $call, reason => 'hangup' });
    is($ack->{type}, 'ack', 'b2 hangs up') or diag explain $ack;
    my $end = $a1->expect('call:end');
    is($end && $end->{data}{call_id}, $call, 'the caller hears call:end');
    is($end && $end->{data}{reason}, 'hangup', 'with the reason');
    err_is($a1->request('call:end', { call_id => $call }), 'wrong_state', 'ending twice');
    is(status_of($call), 'ended hangup', 'stored: ended, hangup');
    ok($s->psql("select answered_at is not null and ended_at is not null from calls where id = '$call'") eq 't',
       'with its times');
};

subtest 'reject' => sub {
    my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'audio' })->{data}{call_id};
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    $a1->expect('call:ringing');
    my $ack = $b1->request('call:reject', { call_id => $call });
    is($ack->{type}, 'ack', 'b1 rejects') or diag explain $ack;
    my $ev = $a1->expect('call:reject');
    is($ev && $ev->{data}{call_id}, $call, 'the caller hears call:reject');
    $ev = $b2->expect('call:reject');
    is($ev && $ev->{data}{call_id}, $call, "the callee's other device stops ringing");
    is(status_of($call), 'rejected rejected', 'stored: rejected');
    err_is($b2->request('call:accept', { call_id => $call }), 'wrong_state', 'no accept after a reject');
};

subtest 'cancel' => sub {
    my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'audio' })->{data}{call_id};
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    $a1->expect('call:ringing');
    err_is($b1->request('call:cancel', { call_id => $call }), 'wrong_state', 'the callee cannot cancel');
    err_is($a1->request('call:reject', { call_id => $call }), 'wrong_state', 'the caller cannot reject');
    my $ack = $a1->request('call:cancel', { call_id => $call });
    is($ack->{type}, 'ack', 'a1 cancels') or diag explain $ack;
    for my $dev ($b1, $b2) {
        my $ev = $dev->expect('call:cancel');
        is($ev && $ev->{data}{call_id}, $call, "the callee's devices hear call:cancel");
    }
    is(status_of($call), 'cancelled cancelled', 'stored: cancelled');
};

subtest 'timeout' => sub {
    my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'video' })->{data}{call_id};
    $b1->expect('call:invite');
    $b2->expect('call:invite');
    $a1->expect('call:ringing');
    my $t = $a1->expect('call:timeout', 20);
    is($t && $t->{data}{call_id}, $call, 'the caller hears call:timeout');
    for my $dev ($b1, $b2) {
        my $ev = $dev->expect('call:timeout', 5);
        is($ev && $ev->{data}{call_id}, $call, "the callee's devices stop ringing");
    }
    is(status_of($call), 'missed timeout', 'stored: missed, timeout');
    err_is($b1->request('call:accept', { call_id => $call }), 'wrong_state', 'too late to accept');
};

subtest 'glare: both call each other at once, one call' => sub {
    # both invites leave before either is answered
    $a1->send('call:invite', { to_user_id => $bid, media => 'video' }, 'ga');
    $b1->send('call:invite', { to_user_id => $aid, media => 'video' }, 'gb');
    my $ga = $a1->wait_for(sub { ($_[0]{ref} // '') eq 'ga' });
    my $gb = $b1->wait_for(sub { ($_[0]{ref} // '') eq 'gb' });
    is($ga->{type}, 'ack', "a's invite acked") or diag explain $ga;
    is($gb->{type}, 'ack', "b's invite acked") or diag explain $gb;
    is($ga->{data}{call_id}, $gb->{data}{call_id}, 'one call');
    my ($first, $second) = ($ga->{data}{glare} ? ($b1, $a1) : ($a1, $b1));
    is(join(' ', sort map { $_->{data}{status} } $ga, $gb), 'accepted ringing',
       'the second invite answered the first');
    my $acc = $first->expect('call:accept');
    is($acc && $acc->{data}{call_id}, $ga->{data}{call_id}, 'the first caller hears call:accept');
    my $call = $ga->{data}{call_id};
    is(status_of($call), 'accepted -', 'stored: accepted');
    is($s->psql("select count(*) from calls where status in ('ringing', 'accepted')"), 1,
       'and no other call rings');
    is($second->request('call:end', { call_id => $call })->{type}, 'ack', 'ended');
    $first->expect('call:end');
    $_->{frames} = [] for $a1, $b1, $b2;
};

subtest 'rate limited per user' => sub {
    $s->psql("insert into calls (caller_id, callee_id, media, status, ended_at, end_reason)
              select '$cid', '$aid', 'audio', 'cancelled', now(), 'cancelled'
                from generate_series(1, 40)");
    err_is($c1->request('call:invite', { to_user_id => $aid, media => 'audio' }), 'rate_limited',
           'the 41st invite in a minute');
    ok($a1->none('call:invite', 0.2), 'nothing rings');
};

subtest 'two nodes: the callee on the other node' => sub {
    my $n2 = Famcall::Test->new(node_of => $s, workers => 2, extra_conf => $conf);
    my $bn = ws($b, $n2);
    my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'video' })->{data}{call_id};
    like($call // '', uuid_re, 'invited');
    for my $dev ($b1, $b2, $bn) {
        my $inv = $dev->expect('call:invite');
        is($inv && $inv->{data}{call_id}, $call, 'every device of the callee rings, on both nodes');
    }
    $a1->expect('call:ringing');
    my $ack = $bn->request('call:accept', { call_id => $call });
    is($ack->{type}, 'ack', 'the device on node 2 accepts') or diag explain $ack;
    my $acc = $a1->expect('call:accept');
    is($acc && $acc->{data}{call_id}, $call, 'the caller on node 1 hears it');
    $b1->expect('call:answered_elsewhere');
    $b2->expect('call:answered_elsewhere');
    is($a1->request('call:end', { call_id => $call, reason => 'hangup' })->{type}, 'ack', 'a ends');
    my $end = $bn->expect('call:end');
    is($end && $end->{data}{call_id}, $call, 'the bound device on node 2 hears call:end');
    ok($b1->none('call:end', 0.2), "the callee's other devices do not");
    $bn->close;
    $n2->stop;
};

$_->close for $a1, $b1, $b2, $c1, $d1;
done_testing;
