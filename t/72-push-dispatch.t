# The push dispatcher (issue 22, docs/push.md) against local mock
# providers (t/push/mock-providers.js): Expo (batches, receipts), FCM HTTP
# v1 (a service account's RS256 assertion for an OAuth2 token, cached),
# APNs over HTTP/2 with TLS (an ES256 provider token; alert and VoIP
# pushes); a message to an offline user pushes once, an online one not at
# all, a call rings by push and the cancelling push follows an answer
# elsewhere, dead tokens go, a poison row is parked, the OTP webhook.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::JSON qw(decode_json true false);
use Famcall::Test qw(new_uuid wait_until);
use Famcall::PushMock;
use Famcall::WS;

my $mock = Famcall::PushMock->start;
my $webhook = $mock->webhook_url;
my $s = Famcall::Test->new(
    extra_conf => "famcall_push_preview on;\nfamcall_call_ring_timeout 20s;\n",
    conf_edit => sub { s{famcall_otp_sms log [^;]*;}{famcall_otp_sms webhook $webhook;} });

my ($a, $b, $c) = map { $s->signup(display_name => "User $_") } qw(A B C);
$s->befriend($a, $b);
$s->befriend($a, $c);
my ($aid, $bid) = ($a->{user}{id}, $b->{user}{id});

sub hex_token { join '', map { sprintf '%02x', int rand 256 } 1 .. 32 }

sub device {
    my ($u, %d) = @_;
    my $tx = $s->json_req(POST => '/v1/devices', \%d, $u->{access_token});
    die 'register: ' . $tx->res->body unless $tx->res->code == 201;
    return $tx->res->json;
}

my $expo_tok = 'ExponentPushToken[' . new_uuid() . ']';
my $fcm_tok = 'fcm' . join('', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 100);
my ($apns_tok, $voip_tok) = (hex_token(), hex_token());
my $b_expo = device($b, platform => 'android', provider => 'expo', push_token => $expo_tok);
my $b_fcm  = device($b, platform => 'android', provider => 'fcm', push_token => $fcm_tok);
my $b_ios  = device($b, platform => 'ios', provider => 'apns', push_token => $apns_tok,
                    voip_token => $voip_tok);

my $pushd = $s->start_pushd($mock->pushd_conf(max_tries => 3));
my $conv = $s->open_conversation($a, $b);

# the pushes the mocks took for the outbox rows of a condition
sub pushes_for {
    my ($where) = @_;
    my %ids = map { $_ => 1 } split /\n/, $s->psql("select id from outbox where $where");
    return grep { defined $_->{push_id} && $ids{ $_->{push_id} } } $mock->log;
}

sub body_of { decode_json($_[0]{body}) }

subtest 'a message to an offline user: pushed once to each device' => sub {
    my $m = $s->send_message($a, $conv->{id}, 'hello from A')->res->json;
    my $where = "payload->>'message_id' = '$m->{id}'";
    ok(wait_until { pushes_for($where) == 3 } 20, 'three pushes, one per provider')
        or diag explain [$mock->log], $s->pushd_log($pushd);
    my %by = map { $_->{provider} => $_ } pushes_for($where);

    my $e = body_of($by{expo});
    is($e->{to}, $expo_tok, 'expo: to the token');
    is($e->{title}, 'User A', 'expo: title');
    is($e->{body}, 'hello from A', 'expo: body');
    is($e->{badge}, 1, 'expo: badge');
    is($e->{data}{conversation_id}, $conv->{id}, 'expo: data.conversation_id');
    is($e->{data}{collapse_key}, "conv:$conv->{id}", 'expo: the collapse key in data');
    cmp_ok($e->{ttl}, '>', 86000, 'expo: lives a day');

    my $f = body_of($by{fcm});
    is($f->{token}, $fcm_tok, 'fcm: to the token');
    is($f->{notification}{title}, 'User A', 'fcm: notification title');
    is($f->{android}{collapse_key}, "conv:$conv->{id}", 'fcm: collapse_key');
    like($f->{android}{ttl}, qr/^86\d{3}s$/, 'fcm: ttl');
    is($f->{data}{message_id}, $m->{id}, 'fcm: data, as strings');

    my $p = $by{apns};
    is($p->{token}, $apns_tok, 'apns: to the device token');
    is($p->{http}, '2.0', 'apns: over HTTP/2');
    is($p->{headers}{'apns-push-type'}, 'alert', 'apns: alert');
    is($p->{headers}{'apns-topic'}, 'org.famcall.test', 'apns: topic');
    is($p->{headers}{'apns-collapse-id'}, "conv:$conv->{id}", 'apns: collapse id');
    cmp_ok($p->{headers}{'apns-expiration'} - time, '>', 86000, 'apns: expires in a day');
    my $pb = body_of($p);
    is($pb->{aps}{alert}{body}, 'hello from A', 'apns: alert body');
    is($pb->{aps}{badge}, 1, 'apns: badge');

    ok(wait_until { $s->psql("select count(*) from outbox where $where and delivered_at is not null") == 3 }
       10, 'the rows are settled delivered');
    is($s->psql("select string_agg(provider, ',' order by provider) from outbox where $where"),
       'apns,expo,fcm', 'by whom');
    # a second look of the dispatcher sends nothing again
    my $polls = $mock->stats->{requests}{expo} // 0;
    $s->send_message($c, $s->open_conversation($c, $a)->{id}, 'a has no device');
    sleep 1;
    is(scalar pushes_for($where), 3, 'nothing sent twice');
};

subtest 'an online user gets no push' => sub {
    my $ws = Famcall::WS->open($s, $b->{access_token});
    wait_until { $s->psql("select count(*) from presence where user_id = '$bid'") > 0 } 10,
        'b online';
    my $n = () = $mock->log;
    my $m = $s->send_message($a, $conv->{id}, 'you are online')->res->json;
    ok($ws->expect('message:new'), 'b hears it on the socket');
    is($s->psql("select count(*) from outbox where payload->>'message_id' = '$m->{id}'"), 0,
       'no outbox row');
    sleep 1;    # the dispatcher polls every 200 ms: it had its chances
    is(scalar(() = $mock->log), $n, 'no provider heard of it');
    $ws->close;
    wait_until { $s->psql("select count(*) from presence where user_id = '$bid'") == 0 } 10,
        'b offline';
};

subtest 'FCM: the OAuth2 token is fetched once and cached' => sub {
    is($mock->stats->{tokens_issued}, 1, 'one token for every FCM push so far');
};

my $aws = Famcall::WS->open($s, $a->{access_token});

subtest 'a call rings by push; the cancelling push follows an answer elsewhere' => sub {
    my $ack = $aws->request('call:invite', { to_user_id => $bid, media => 'video' });
    my $call = $ack->{data}{call_id};
    ok($call, 'a calls b, who has no socket');
    my $where = "call_id = '$call'";
    ok(wait_until { pushes_for($where) == 3 } 20, 'three ring pushes')
        or diag explain [$mock->log];
    my %ring = map { $_->{provider} => $_ } pushes_for($where);
    is($ring{apns}{token}, $voip_tok, 'apns: to the VoIP token');
    is($ring{apns}{headers}{'apns-push-type'}, 'voip', 'apns: a voip push');
    is($ring{apns}{headers}{'apns-topic'}, 'org.famcall.test.voip', 'apns: the .voip topic');
    my $deadline = $s->psql("select extract(epoch from ring_deadline)::bigint from calls where id = '$call'");
    is($ring{apns}{headers}{'apns-expiration'}, $deadline, 'apns: expires when the ring does');
    is(body_of($ring{apns})->{call_id}, $call, 'apns: the call');
    is(body_of($ring{fcm})->{data}{type}, 'call', 'fcm: a data message');
    is(body_of($ring{fcm})->{android}{priority}, 'HIGH', 'fcm: high priority');
    ok(!body_of($ring{fcm})->{notification}, 'fcm: no notification, the app rings');
    is(body_of($ring{expo})->{data}{type}, 'call', 'expo: type call');
    is(body_of($ring{expo})->{priority}, 'high', 'expo: high priority');

    my $bws = Famcall::WS->open($s, $b->{access_token});
    $ack = $bws->request('call:accept', { call_id => $call });
    is($ack->{type}, 'ack', 'b answers on a socket');
    ok(wait_until { pushes_for($where) == 6 } 20, 'three cancelling pushes')
        or diag explain [$mock->log];
    my @all = pushes_for($where);
    for my $p (@all[3 .. 5]) {
        my $body = body_of($p);
        my $data = $p->{provider} eq 'fcm' ? $body->{message}{data} // $body->{data}
                 : $p->{provider} eq 'expo' ? $body->{data} : $body;
        is($data->{type}, 'call_cancel', "$p->{provider}: call_cancel");
        is($data->{reason}, 'answered_elsewhere', "$p->{provider}: answered elsewhere");
    }
    my ($cancel_apns) = grep { $_->{provider} eq 'apns' } @all[3 .. 5];
    is($cancel_apns->{headers}{'apns-push-type'}, 'voip', 'apns: the cancel rings off by VoIP');
    for my $prov (qw(expo fcm apns)) {
        my @p = grep { $_->{provider} eq $prov } @all;
        ok($p[0]{t} <= $p[1]{t} && $p[0]{push_id} < $p[1]{push_id}, "$prov: the ring first");
    }
    $aws->request('call:end', { call_id => $call });
    $bws->close;
    wait_until { $s->psql("select count(*) from presence where user_id = '$bid'") == 0 } 10,
        'b offline';
};

subtest 'latency from commit to the provider is recorded per provider' => sub {
    my %lat = map { my @f = split /\|/; $f[0] => $f[1] } split /\n/,
        $s->psql('select provider, p99_ms from push_latency');
    ok(exists $lat{$_}, "$_ has a p99") for qw(expo fcm apns);
};

subtest 'dead tokens are removed' => sub {
    $mock->config(dead => [$fcm_tok, $apns_tok], dead_receipt => [$expo_tok]);
    $s->send_message($a, $conv->{id}, 'anyone there?');
    ok(wait_until { $s->psql("select count(*) from devices where id = '$b_fcm->{id}'") == 0 } 20,
       'FCM: 404 UNREGISTERED removes the device');
    ok(wait_until { $s->psql("select count(*) from devices where id = '$b_ios->{id}'") == 0 } 20,
       'APNs: 410 Unregistered removes the device');
    ok(wait_until { $s->psql("select count(*) from devices where id = '$b_expo->{id}'") == 0 } 20,
       'Expo: a receipt\'s DeviceNotRegistered removes the device');
    ok(($mock->stats->{requests}{expo_receipts} // 0) > 0, 'receipts were asked for');

    # a ticket's DeviceNotRegistered, at once
    my $tok = 'ExpoPushToken[gone-' . new_uuid() . ']';
    my $d = device($b, platform => 'ios', provider => 'expo', push_token => $tok);
    $mock->config(dead => [$tok], dead_receipt => []);
    $s->send_message($a, $conv->{id}, 'and now?');
    ok(wait_until { $s->psql("select count(*) from devices where id = '$d->{id}'") == 0 } 20,
       'Expo: a ticket\'s DeviceNotRegistered removes the device');
    $mock->config(dead => []);
};

subtest 'the one-time code goes to the webhook' => sub {
    my $phone = '+1555' . (1000000 + int rand 8999999);
    my $tx = $s->json_req(POST => '/v1/auth/otp/request', { phone => $phone });
    is($tx->res->code, 202, 'requested');
    my $got;
    ok(wait_until { ($got) = grep { $_->{provider} eq 'webhook' && $_->{token} eq $phone } $mock->log }
       20, 'the webhook heard it');
    my ($code) = body_of($got)->{body} =~ /(\d{6})/;
    ok($code, 'with a code');
    ok(!exists body_of($got)->{webhook}, 'the webhook URL itself is not sent');
    $tx = $s->json_req(POST => '/v1/auth/otp/verify',
        { phone => $phone, code => $code, display_name => 'Phone User' });
    is($tx->res->code, 200, 'the code signs in');
};

subtest 'a poison row is parked after max_tries with its last error' => sub {
    my ($id) = split /\n/, $s->psql("insert into outbox (kind, payload) values ('sms',
        '{\"to\": \"+15550001111\", \"body\": \"x\", \"webhook\": \"" . $mock->base
        . "/nowhere\"}') returning id");
    ok(wait_until { $s->psql("select parked_at is not null from outbox where id = $id") eq 't' } 30,
       'parked');
    is($s->psql("select attempts from outbox where id = $id"), 3, 'after 3 tries');
    like($s->psql("select last_error from outbox where id = $id"),
         qr/gave up after 3 tries: webhook: HTTP 404/, 'its last error');
    my ($id2) = split /\n/, $s->psql("insert into outbox (kind, payload) values ('sms', '{\"to\": \"+1\"}') returning id");
    ok(wait_until { $s->psql("select last_error from outbox where id = $id2") =~ /no http/ } 20,
       'a row without a webhook is parked at once');
    like($s->psql("select provider || ' ' || p99_ms from push_latency where provider = 'webhook'"),
         qr/^webhook \d/, 'the webhook\'s latency too');
};

$aws->close;
my @problems = $s->stop_pushd($pushd);
ok(!@problems, 'the dispatcher stops cleanly on SIGTERM') or diag join "\n", @problems;
like($s->pushd_log($pushd), qr/apns: \d+ delivered/, 'and logs its deliveries');
$s->stop;
$mock->stop;
done_testing;
