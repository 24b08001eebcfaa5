# The push outbox (issue 22, docs/push.md): rows written in the same
# transaction as the message or the call, only for recipients with no live
# socket; what they say (famcall_push_preview), collapse keys, expiry,
# badges; the cancelling push when a call stops ringing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::JSON qw(decode_json);
use Famcall::Test qw(new_uuid wait_until);
use Famcall::WS;

my $s = Famcall::Test->new(extra_conf => "famcall_push_preview off;\n"
    . "famcall_call_ring_timeout 2s;\nfamcall_call_sweep_interval 200ms;\n");
my ($a, $b, $c) = map { $s->signup(display_name => "User $_") } qw(A B C);
$s->befriend($a, $b);
$s->befriend($a, $c);
$s->befriend($c, $b);
my ($aid, $bid, $cid) = map { $_->{user}{id} } $a, $b, $c;

sub device {
    my ($u, $token) = @_;
    my $tx = $s->json_req(POST => '/v1/devices',
        { platform => 'android', provider => 'expo', push_token => "ExpoPushToken[$token]" },
        $u->{access_token});
    die 'register: ' . $tx->res->body unless $tx->res->code == 201;
    return $tx->res->json;
}

sub online {
    my ($u, $n) = @_;
    wait_until { $s->psql("select count(*) from presence where user_id = '$u->{user}{id}'") == $n }
        10, "$n presence rows of $u->{user}{username}";
}

sub rows {
    my ($where) = @_;
    return [ map { decode_json($_) } split /\n/, $s->psql(
        "select json_build_object('id', id, 'device_id', device_id, 'user_id', user_id,
                 'collapse_key', collapse_key, 'call_id', call_id,
                 'ttl', extract(epoch from expires_at - created_at)::int,
                 'parked', parked_at is not null, 'last_error', last_error,
                 'payload', payload)
           from outbox where kind = 'push' and $where order by id") ];
}

my ($b1, $b2) = (device($b, 'b1'), device($b, 'b2'));
device($c, 'c1');
my $conv = $s->open_conversation($a, $b);

ok(wait_until { $s->psql('select preview from push_settings') eq 'f' } 10,
   'famcall_push_preview off reached the database');

subtest 'a message to an offline user: one push per device, no preview' => sub {
    my $tx = $s->send_message($a, $conv->{id}, 'the secret is 42');
    is($tx->res->code, 201, 'sent');
    my $m = $tx->res->json;
    my $r = rows("user_id = '$bid'");
    is(scalar @$r, 2, 'two rows, one per device');
    is_deeply([ sort map { $_->{device_id} } @$r ], [ sort $b1->{id}, $b2->{id} ], 'b\'s devices');
    my $p = $r->[0]{payload};
    is($p->{type}, 'message', 'type message');
    is($p->{body}, 'New message', 'no text');
    is($p->{title}, 'famcall', 'no sender name');
    unlike(join(' ', map { $_ // '' } values %$p), qr/secret|User A/, 'nothing of the message');
    is($p->{message_id}, $m->{id}, 'message_id');
    is($p->{conversation_id}, $conv->{id}, 'conversation_id');
    is($p->{badge}, 1, 'badge 1');
    is($r->[0]{collapse_key}, "conv:$conv->{id}", 'collapse key per conversation');
    is($r->[0]{ttl}, 86400, 'lives a day');
    is($s->psql("select count(*) from outbox where user_id = '$aid'"), 0, 'no push to the sender');
};

subtest 'badges count unread messages, across conversations' => sub {
    my $cb = $s->open_conversation($c, $b);
    $s->send_message($a, $conv->{id}, 'two');
    $s->send_message($c, $cb->{id}, 'three');
    my $r = rows("user_id = '$bid'");
    is($r->[-1]{payload}{badge}, 3, 'badge 3 after three unread');
    my $tx = $s->json_req(POST => "/v1/conversations/$conv->{id}/read",
                          { up_to_seq => 2 }, $b->{access_token});
    is($tx->res->code, 204, 'b reads a\'s two');
    $s->send_message($c, $cb->{id}, 'four');
    $r = rows("user_id = '$bid'");
    is($r->[-1]{payload}{badge}, 2, 'badge 2');
};

subtest 'preview on: the sender\'s name and the text' => sub {
    $s->nginx_reload(extra_conf => "famcall_push_preview on;\n"
        . "famcall_call_ring_timeout 2s;\nfamcall_call_sweep_interval 200ms;\n");
    ok(wait_until { $s->psql('select preview from push_settings') eq 't' } 10,
       'the setting reached the database');
    my $long = 'x' x 300;
    $s->send_message($a, $conv->{id}, 'hello b');
    $s->send_message($a, $conv->{id}, $long);
    my $r = rows("user_id = '$bid'");
    is($r->[-4]{payload}{title}, 'User A', 'the sender\'s name');
    is($r->[-4]{payload}{body}, 'hello b', 'the text');
    is(length $r->[-1]{payload}{body}, 178, 'a long text is cut');
};

my $bws;
subtest 'an online recipient gets no push' => sub {
    $bws = Famcall::WS->open($s, $b->{access_token});
    online($b, 1);
    my $n = $s->psql("select count(*) from outbox where user_id = '$bid'");
    my $tx = $s->send_message($a, $conv->{id}, 'you are here');
    is($tx->res->code, 201, 'sent');
    ok($bws->expect('message:new'), 'b hears it on the socket');
    is($s->psql("select count(*) from outbox where user_id = '$bid'"), $n, 'no new push row');
    # over the socket, from the send batch itself, too
    my $cws = Famcall::WS->open($s, $c->{access_token});
    $bws->close;
    online($b, 0);
    my $ack = $cws->request('message:send',
        { conversation_id => $s->open_conversation($c, $b)->{id}, client_id => new_uuid(),
          body => 'by socket' });
    is($ack->{type}, 'ack', 'c sends by socket');
    is($s->psql("select count(*) from outbox where user_id = '$bid'"), $n + 2,
       'b, offline again, gets one per device');
    $cws->close;
};

subtest 'a user without devices gets no push' => sub {
    my $ca = $s->open_conversation($c, $a);
    $s->send_message($c, $ca->{id}, 'a has no device');
    is($s->psql("select count(*) from outbox where user_id = '$aid'"), 0, 'none');
};

my $aws = Famcall::WS->open($s, $a->{access_token});
online($a, 1);

subtest 'a call rings by push; cancelled before it was sent: dropped' => sub {
    my $ack = $aws->request('call:invite', { to_user_id => $bid, media => 'video' });
    my $call = $ack->{data}{call_id};
    ok($call, 'invited');
    my $r = rows("call_id = '$call'");
    is(scalar @$r, 2, 'a ring push per device');
    is($r->[0]{payload}{type}, 'call', 'type call');
    is($r->[0]{payload}{media}, 'video', 'media');
    is($r->[0]{payload}{from}{id}, $aid, 'from a');
    is($r->[0]{collapse_key}, "call:$call", 'collapse key per call');
    cmp_ok($r->[0]{ttl}, '<=', 3, 'lives only the ring time');
    is($s->psql("select count(*) from outbox where call_id = '$call'
                   and expires_at = (select ring_deadline from calls where id = '$call')"),
       2, 'expires at the ring deadline');
    $ack = $aws->request('call:cancel', { call_id => $call });
    is($ack->{type}, 'ack', 'a cancels');
    $r = rows("call_id = '$call'");
    is(scalar @$r, 2, 'no cancelling push: nothing had rung');
    ok((!grep { !$_->{parked} } @$r), 'the ring pushes are dropped');
    like($r->[0]{last_error}, qr/cancelled/, 'with the reason');
};

subtest 'answered elsewhere: the cancelling push follows the ring' => sub {
    my $ack = $aws->request('call:invite', { to_user_id => $bid, media => 'audio' });
    my $call = $ack->{data}{call_id};
    # b1's ring push went out, b2's is being sent right now
    $s->psql("update outbox set delivered_at = now() where call_id = '$call' and device_id = '$b1->{id}'");
    $s->psql("update outbox set leased_until = now() + interval '1 minute'
               where call_id = '$call' and device_id = '$b2->{id}'");
    my $bws2 = Famcall::WS->open($s, $b->{access_token});
    $ack = $bws2->request('call:accept', { call_id => $call });
    is($ack->{type}, 'ack', 'b accepts on a socket');
    my @cancel = grep { $_->{payload}{type} eq 'call_cancel' } @{ rows("call_id = '$call'") };
    is(scalar @cancel, 2, 'a cancelling push to each device that rang');
    is($cancel[0]{payload}{reason}, 'answered_elsewhere', 'reason answered_elsewhere');
    is($cancel[0]{collapse_key}, "call:$call", 'the call\'s collapse key');
    $aws->request('call:end', { call_id => $call });
    is(scalar(grep { $_->{payload}{type} eq 'call_cancel' } @{ rows("call_id = '$call'") }), 2,
       'hanging up adds nothing');
    $bws2->close;
    online($b, 0);
};

subtest 'rejected, and rung out: cancelling pushes with the reason' => sub {
    my $ack = $aws->request('call:invite', { to_user_id => $bid, media => 'audio' });
    my $call = $ack->{data}{call_id};
    $s->psql("update outbox set delivered_at = now() where call_id = '$call'");
    my $bws3 = Famcall::WS->open($s, $b->{access_token});
    $bws3->request('call:reject', { call_id => $call });
    my @cancel = grep { $_->{payload}{type} eq 'call_cancel' } @{ rows("call_id = '$call'") };
    is(scalar @cancel, 2, 'two cancels');
    is($cancel[0]{payload}{reason}, 'rejected', 'reason rejected');
    $bws3->close;
    online($b, 0);

    $ack = $aws->request('call:invite', { to_user_id => $bid, media => 'audio' });
    $call = $ack->{data}{call_id};
    $s->psql("update outbox set delivered_at = now() where call_id = '$call'");
    ok(wait_until { $s->psql("select status from calls where id = '$call'") eq 'missed' } 15,
       'the call rings out');
    @cancel = grep { $_->{payload}{type} eq 'call_cancel' } @{ rows("call_id = '$call'") };
    is(scalar @cancel, 2, 'two cancels');
    is($cancel[0]{payload}{reason}, 'timeout', 'reason timeout');
};

subtest 'an online callee gets no ring push' => sub {
    my $cws = Famcall::WS->open($s, $c->{access_token});
    online($c, 1);
    my $ack = $aws->request('call:invite', { to_user_id => $cid, media => 'audio' });
    my $call = $ack->{data}{call_id};
    ok($cws->expect('call:invite'), 'c rings on the socket');
    is($s->psql("select count(*) from outbox where call_id = '$call'"), 0, 'no push');
    $aws->request('call:cancel', { call_id => $call });
    is($s->psql("select count(*) from outbox where call_id = '$call'"), 0, 'nor a cancel');
    $cws->close;
};

$aws->close;
$s->stop;
done_testing;
