# Calls, continued (issue 19): the reconnect grace (resume on a new socket,
# or connection_lost after it), GET /v1/calls (history for both sides,
# missed calls, paging, an outsider's empty history) and
# POST /v1/calls/{id}/stats (validated, once per participant).  Bad inputs
# first.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(new_uuid body_json wait_until);
use Famcall::WS;

my $conf = "famcall_call_ring_timeout 2s;\nfamcall_call_sweep_interval 200ms;\n"
         . "famcall_call_reconnect_grace 2s;\nfamcall_call_invite_rate 100;\n";
my $s = Famcall::Test->new(workers => 2, extra_conf => $conf);

my ($a, $b, $c) = map { $s->signup } 1 .. 3;
$s->befriend($a, $b);
my $aid = $a->{user}{id};
my $bid = $b->{user}{id};

sub ws {
    my ($user, $node) = @_;
    my $ws = Famcall::WS->open($node // $s, $user->{access_token});
    die 'no socket' unless $ws;
    return $ws;
}

sub online {
    my ($id) = @_;
    wait_until { $s->psql("select count(*) from presence where user_id = '$id'") > 0 } 10, 'a presence row';
}

sub get { my ($user, $q) = @_; my $tx = $s->json_req(GET => "/v1/calls$q", undef, $user->{access_token}); ($tx->res->code, body_json($tx)) }
sub stats { my ($user, $id, $body) = @_; my $tx = $s->json_req(POST => "/v1/calls/$id/stats", $body, $user->{access_token}); ($tx->res->code, $tx->res->code == 204 ? undef : body_json($tx)) }

my $a1 = ws($a);
my $b1 = ws($b);
online($aid);
online($bid);

sub call_accepted {
    my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'video' })->{data}{call_id};
    $b1->expect('call:invite');
    is($b1->request('call:accept', { call_id => $call })->{type}, 'ack', 'accepted');
    $a1->expect('call:accept');
    return $call;
}

my %calls;

subtest 'bad inputs' => sub {
    my ($st, $j) = get($a, '?limit=0');
    is($st, 422, 'limit 0');
    ($st, $j) = get($a, '?limit=101');
    is($st, 422, 'limit 101');
    ($st, $j) = get($a, '?before=now');
    is($st, 422, 'before: a word');
    is($j->{error}{field}, 'before', 'named');
    ($st, $j) = get($a, '?before=2026-02-31T00:00:00Z');
    is($st, 422, 'before: the 31st of February');
    my $tx = $s->json_req(GET => '/v1/calls');
    is($tx->res->code, 401, 'no token');

    my $id = new_uuid();
    ($st, $j) = stats($a, $id, { rtt_ms => 10 });
    is($st, 404, 'stats of no call');
    ($st, $j) = stats($a, 'nope', { rtt_ms => 10 });
    ok($st == 404 || $st == 422, 'a bad id');
    err_case({ rtt_ms => -1 }, 'rtt_ms');
    err_case({ rtt_ms => 'x' }, 'rtt_ms');
    err_case({ selected_pair => { local_type => 'lan', remote_type => 'host' } }, 'selected_pair.local_type');
    err_case({ selected_pair => { local_type => 'host' } }, 'selected_pair.remote_type');
    err_case({ setup_ms => { first_frame => 600001 } }, 'setup_ms.first_frame');
    err_case({ bitrate_in => 1e12 }, 'bitrate_in');

    err_is_ws($a1->request('call:resume', { call_id => new_uuid() }), 'not_found', 'resume: an unknown call');
};

sub err_case {
    my ($body, $field) = @_;
    my $call = $calls{any} //= $s->psql("with x as (insert into calls (caller_id, callee_id, media, status, ended_at, end_reason)
                                          values ('$aid', '$bid', 'audio', 'cancelled', now() - interval '1 hour', 'cancelled')
                                          returning id) select id from x");
    my ($st, $j) = stats($a, $call, $body);
    is($st, 422, "stats: bad $field");
    is($j->{error}{field}, $field, "named $field") or diag explain $j;
}

sub err_is_ws {
    my ($f, $code, $name) = @_;
    is($f && $f->{error}{code}, $code, $name) or diag explain $f;
}

subtest 'resume within the grace' => sub {
    my $call = call_accepted();
    $b1->close;
    wait_until { $s->psql("select callee_lost_at is not null from calls where id = '$call'") eq 't' } 10,
        'the callee stamped lost';
    $b1 = ws($b);
    my $ack = $b1->request('call:resume', { call_id => $call });
    is($ack->{type}, 'ack', 'the new socket resumes') or diag explain $ack;
    is($ack->{data}{role}, 'callee', 'as the callee');
    my $ev = $a1->expect('call:resume');
    is($ev && $ev->{data}{call_id}, $call, 'the peer hears call:resume');
    is($s->psql("select callee_lost_at is null from calls where id = '$call'"), 't', 'no longer lost');
    is($b1->request('webrtc:offer', { call_id => $call, sdp => 'restart' })->{type}, 'ack',
       'the new socket relays');
    $ev = $a1->expect('webrtc:offer');
    is($ev && $ev->{data}{sdp}, 'restart', 'to the peer');
    ok($a1->none('call:end', 2.5), 'the call goes on past the grace');
    is($s->psql("select status from calls where id = '$call'"), 'accepted', 'accepted');
    is($a1->request('call:end', { call_id => $call })->{type}, 'ack', 'ended');
    $b1->expect('call:end');
    $calls{answered} = $call;
};

subtest 'call:active: a socket that opens while a call rings or goes on' => sub {
    my $ack = $a1->request('call:active', {});
    is_deeply($ack->{data}{calls}, [], 'none yet');
    my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'audio' })->{data}{call_id};
    $b1->expect('call:invite');
    my $late = ws($b);
    $ack = $late->request('call:active', {});
    is($ack->{type}, 'ack', 'acked') or diag explain $ack;
    my ($r) = @{ $ack->{data}{calls} };
    is($r && $r->{call_id}, $call, 'the device that connected late sees the ringing call');
    is($r && $r->{status}, 'ringing', 'ringing');
    is($r && $r->{direction}, 'incoming', 'incoming');
    is($r && $r->{from}{id}, $aid, 'from the caller');
    ok($r && $r->{expires_at}, 'until its deadline');
    is($late->request('call:accept', { call_id => $call })->{type}, 'ack', 'and can answer it');
    $a1->expect('call:accept');
    $b1->expect('call:answered_elsewhere');
    $ack = $a1->request('call:active', {});
    is($ack->{data}{calls}[0]{status}, 'accepted', 'the caller: accepted');
    is($ack->{data}{calls}[0]{direction}, 'outgoing', 'outgoing');
    is($late->request('call:end', { call_id => $call })->{type}, 'ack', 'ended');
    $a1->expect('call:end');
    is_deeply($a1->request('call:active', {})->{data}{calls}, [], 'none any more');
    $late->close;
};

subtest 'connection_lost after the grace' => sub {
    my $call = call_accepted();
    $b1->close;
    my $ev = $a1->expect('call:end', 20);
    is($ev && $ev->{data}{call_id}, $call, 'the peer hears call:end');
    is($ev && $ev->{data}{reason}, 'connection_lost', 'connection_lost');
    is($s->psql("select status || ' ' || end_reason from calls where id = '$call'"), 'ended connection_lost', 'stored');
    $b1 = ws($b);
    err_is_ws($b1->request('call:resume', { call_id => $call }), 'wrong_state', 'too late to resume');
    online($bid);
};

subtest 'a missed call' => sub {
    my $call = $a1->request('call:invite', { to_user_id => $bid, media => 'audio' })->{data}{call_id};
    ok($b1->expect('call:invite'), 'rings');
    ok($a1->expect('call:timeout', 20), 'and rings out');
    $calls{missed} = $call;
};

subtest 'history' => sub {
    my ($st, $j) = get($b, '');
    is($st, 200, 'the callee lists');
    my %by = map { $_->{call_id} => $_ } @{ $j->{calls} };
    my $m = $by{ $calls{missed} };
    ok($m, 'the missed call is there');
    is($m && $m->{missed}, 1, 'marked missed') or diag explain $m;
    is($m && $m->{direction}, 'incoming', 'incoming');
    is($m && $m->{peer}{id}, $aid, 'with the other party');
    ok($m && !exists $m->{peer}{email}, 'as a public user');
    my $ans = $by{ $calls{answered} };
    ok($ans && !$ans->{missed}, 'an answered call is not missed');
    is($ans && $ans->{status}, 'ended', 'ended');
    ok($ans && $ans->{answered_at} && $ans->{ended_at}, 'with its times');

    ($st, $j) = get($a, '');
    my ($am) = grep { $_->{call_id} eq $calls{missed} } @{ $j->{calls} };
    is($am && $am->{direction}, 'outgoing', "the caller's side: outgoing");
    ok($am && !$am->{missed}, 'not missed for the caller');
    is($am && $am->{peer}{id}, $bid, 'with the callee');

    my @all = @{ $j->{calls} };
    cmp_ok(scalar @all, '>=', 4, 'every call');
    my ($p1s, $p1) = get($a, '?limit=2');
    is(scalar @{ $p1->{calls} }, 2, 'a page of 2');
    is($p1->{calls}[0]{call_id}, $all[0]{call_id}, 'newest first');
    my $before = $p1->{calls}[1]{created_at};
    my ($p2s, $p2) = get($a, "?limit=2&before=$before");
    is($p2s, 200, 'the next page');
    is($p2->{calls}[0]{call_id}, $all[2]{call_id}, 'goes on where the first stopped');

    ($st, $j) = get($c, '');
    is($st, 200, 'an outsider lists');
    is_deeply($j->{calls}, [], 'nothing');
};

subtest 'stats' => sub {
    my $call = $calls{answered};
    my $report = { selected_pair => { local_type => 'host', remote_type => 'relay' },
                   rtt_ms => 42, packet_loss => 0.01, bitrate_in => 1_500_000, bitrate_out => 1_200_000,
                   setup_ms => { ringing => 300, ice_connected => 120, first_frame => 310 } };
    my ($st, $j) = stats($c, $call, $report);
    is($st, 404, "an outsider cannot report");
    ($st, $j) = stats($a, $call, { %$report, packet_loss => 1.5 });
    is($st, 422, 'packet_loss over 1');
    is($j->{error}{field}, 'packet_loss', 'named');
    ($st, $j) = stats($a, $call, $report);
    is($st, 204, 'the caller reports');
    ($st, $j) = stats($a, $call, $report);
    is($st, 409, 'once');
    is($j->{error}{code}, 'already_reported', 'already_reported');
    ($st, $j) = stats($b, $call, { rtt_ms => 40 });
    is($st, 204, 'the callee reports too');
    is($s->psql("select local_type || ' ' || remote_type || ' ' || rtt_ms || ' ' || setup_first_frame_ms
                 from call_stats where call_id = '$call' and user_id = '$aid'"),
       'host relay 42 310', 'stored');

    my $live = call_accepted();
    ($st, $j) = stats($a, $live, { rtt_ms => 1 });
    is($st, 409, 'not before the end');
    $a1->request('call:end', { call_id => $live });
};

$_->close for $a1, $b1;
done_testing;
