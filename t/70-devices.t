# Push devices (issue 22, docs/api.md "Devices"): POST, GET and DELETE
# /v1/devices; a token moves to the newest user who registers it; logout
# removes the session's device; a deleted user takes devices and pushes
# along.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases new_uuid uuid_re body_json is_error);

my $s = Famcall::Test->new;
my ($a, $b) = map { $s->signup } 1 .. 2;
my $at = $a->{access_token};

my $expo = 'ExponentPushToken[' . new_uuid() . ']';
my $apns = join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
my $voip = join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
my $fcm  = 'fcm:' . join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9, '-', '_')[rand 64] } 1 .. 140);

sub dev { my %d = (platform => 'android', provider => 'expo', push_token => $expo, @_); \%d }

run_cases($s, [
    { method => 'POST', path => '/v1/devices', body => dev(), status => 401,
      code => 'unauthorized', name => 'no token' },
    { method => 'POST', path => '/v1/devices', token => $at, body => { provider => 'expo', push_token => $expo },
      status => 422, code => 'missing_field', field => 'platform' },
    { method => 'POST', path => '/v1/devices', token => $at, body => dev(platform => 'fridge'),
      status => 422, code => 'invalid_field', field => 'platform' },
    { method => 'POST', path => '/v1/devices', token => $at, body => dev(provider => 'pigeon'),
      status => 422, code => 'invalid_field', field => 'provider' },
    { method => 'POST', path => '/v1/devices', token => $at, body => dev(push_token => ''),
      status => 422, code => 'invalid_field', field => 'push_token' },
    { method => 'POST', path => '/v1/devices', token => $at, body => dev(push_token => 'a b'),
      status => 422, code => 'invalid_field', field => 'push_token' },
    { method => 'POST', path => '/v1/devices', token => $at, body => dev(push_token => 'x' x 1025),
      status => 422, code => 'invalid_field', field => 'push_token' },
    { method => 'POST', path => '/v1/devices', token => $at, body => dev(push_token => 'ExponentPushToken[]'),
      status => 422, code => 'invalid_field', field => 'push_token', name => 'an empty Expo token' },
    { method => 'POST', path => '/v1/devices', token => $at,
      body => dev(platform => 'ios', provider => 'apns', push_token => 'zz' x 32),
      status => 422, code => 'invalid_field', field => 'push_token', name => 'an APNs token not hex' },
    { method => 'POST', path => '/v1/devices', token => $at,
      body => dev(provider => 'fcm', push_token => 'short'),
      status => 422, code => 'invalid_field', field => 'push_token', name => 'an FCM token too short' },
    { method => 'POST', path => '/v1/devices', token => $at,
      body => dev(platform => 'android', provider => 'apns', push_token => $apns),
      status => 422, code => 'invalid_field', field => 'provider', name => 'APNs for android' },
    { method => 'POST', path => '/v1/devices', token => $at,
      body => dev(voip_token => $voip),
      status => 422, code => 'invalid_field', field => 'voip_token', name => 'a VoIP token on android' },
    { method => 'POST', path => '/v1/devices', token => $at,
      body => dev(platform => 'ios', voip_token => 'nothex'),
      status => 422, code => 'invalid_field', field => 'voip_token' },
    { method => 'POST', path => '/v1/devices', token => $at, body => dev(push_token => 42),
      status => 422, code => 'invalid_field', field => 'push_token', name => 'a number as token' },
    { method => 'DELETE', path => '/v1/devices/nope', token => $at, status => 404,
      code => 'not_found', name => 'DELETE a bad id' },
    { method => 'DELETE', path => '/v1/devices/' . new_uuid(), token => $at, status => 404,
      code => 'not_found', name => 'DELETE an unknown device' },
]);
is($s->psql('select count(*) from devices'), 0, 'nothing stored by bad requests');

my $d1;
subtest 'register an Expo token' => sub {
    my $tx = $s->json_req(POST => '/v1/devices', dev(), $at);
    is($tx->res->code, 201, 'status 201');
    $d1 = body_json($tx);
    like($d1->{id}, uuid_re, 'an id');
    is($d1->{platform}, 'android', 'platform');
    is($d1->{provider}, 'expo', 'provider');
    is($d1->{push_token}, $expo, 'push_token');
    is($d1->{voip_token}, undef, 'no voip_token');
    like($d1->{last_active_at}, qr/Z$/, 'last_active_at');
};

subtest 'the same token again keeps the row and refreshes it' => sub {
    $s->psql("update devices set last_active_at = now() - interval '1 day'");
    my $tx = $s->json_req(POST => '/v1/devices', dev(), $at);
    is($tx->res->code, 201, 'status 201');
    is(body_json($tx)->{id}, $d1->{id}, 'same id');
    is($s->psql("select count(*) from devices where last_active_at > now() - interval '1 minute'"),
       1, 'last_active_at moved');
};

my $ios;
subtest 'an iOS device with a VoIP token' => sub {
    my $tx = $s->json_req(POST => '/v1/devices',
        dev(platform => 'ios', provider => 'apns', push_token => $apns, voip_token => $voip), $at);
    is($tx->res->code, 201, 'status 201');
    $ios = body_json($tx);
    is($ios->{voip_token}, $voip, 'voip_token kept');
    $tx = $s->json_req(POST => '/v1/devices', dev(provider => 'fcm', push_token => $fcm), $at);
    is($tx->res->code, 201, 'and an FCM one');
    $tx = $s->json_req(GET => '/v1/devices', undef, $at);
    is($tx->res->code, 200, 'GET 200');
    is(scalar @{ body_json($tx)->{devices} }, 3, 'three devices listed');
    is($s->json_req(GET => '/v1/devices', undef, $b->{access_token})->res->json->{devices}->@*,
       0, 'b sees none of them');
};

subtest 'a token moves to the newest user (a shared tablet)' => sub {
    # a push still queued for a must not reach b
    $s->psql("insert into outbox (kind, payload, user_id, device_id)
              values ('push', '{}', '$a->{user}{id}', '$d1->{id}')");
    my $tx = $s->json_req(POST => '/v1/devices', dev(), $b->{access_token});
    is($tx->res->code, 201, 'b registers the same token');
    my $bd = body_json($tx);
    isnt($bd->{id}, $d1->{id}, 'a new device row');
    is($s->psql("select user_id from devices where push_token = '$expo'"), $b->{user}{id},
       'the token is b\'s alone');
    is($s->psql("select count(*) from outbox where user_id = '$a->{user}{id}'"), 0,
       'a\'s queued push went with a\'s row');
    is(scalar @{ $s->json_req(GET => '/v1/devices', undef, $at)->res->json->{devices} }, 2,
       'a lists two devices now');
    # the VoIP token alone moves too
    $tx = $s->json_req(POST => '/v1/devices',
        dev(platform => 'ios', provider => 'expo', push_token => 'ExpoPushToken[b-ios]',
            voip_token => $voip), $b->{access_token});
    is($tx->res->code, 201, 'b registers a\'s VoIP token with another push token');
    is($s->psql("select count(*) from devices where id = '$ios->{id}'"), 0,
       'a\'s iOS device is gone');
};

subtest 'DELETE /v1/devices/{id}' => sub {
    my ($bd) = grep { $_->{push_token} eq $expo }
        @{ $s->json_req(GET => '/v1/devices', undef, $b->{access_token})->res->json->{devices} };
    is_error($s->json_req(DELETE => "/v1/devices/$bd->{id}", undef, $at), 404, 'not_found');
    my $tx = $s->json_req(DELETE => "/v1/devices/$bd->{id}", undef, $b->{access_token});
    is($tx->res->code, 204, '204 for the owner');
    is($tx->res->body, '', 'no body');
    is_error($s->json_req(DELETE => "/v1/devices/$bd->{id}", undef, $b->{access_token}),
             404, 'not_found');
};

subtest 'logout removes the session\'s device, not the others' => sub {
    my $other = $s->json_req(POST => '/v1/auth/login',
        { email => $a->{email}, password => $a->{password} })->res->json;
    ok($other->{access_token}, 'a second session of a');
    my $tx = $s->json_req(POST => '/v1/devices',
        dev(provider => 'fcm', push_token => "$fcm-2"), $other->{access_token});
    is($tx->res->code, 201, 'a device of the second session');
    my $before = $s->psql("select count(*) from devices where user_id = '$a->{user}{id}'");
    $tx = $s->json_req(POST => '/v1/auth/logout', { refresh_token => $other->{refresh_token} });
    is($tx->res->code, 204, 'logout');
    is($s->psql("select count(*) from devices where push_token = '$fcm-2'"), 0,
       'its device is gone');
    is($s->psql("select count(*) from devices where user_id = '$a->{user}{id}'"), $before - 1,
       'the first session\'s devices stay');
};

subtest 'a deleted user takes devices and outbox rows along' => sub {
    my $c = $s->signup;
    my $tx = $s->json_req(POST => '/v1/devices', dev(push_token => 'ExpoPushToken[c]'),
                          $c->{access_token});
    my $cd = body_json($tx);
    $s->psql("insert into outbox (kind, payload, user_id, device_id)
              values ('push', '{}', '$c->{user}{id}', '$cd->{id}')");
    $s->psql("delete from users where id = '$c->{user}{id}'");
    is($s->psql("select count(*) from devices where id = '$cd->{id}'"), 0, 'device gone');
    is($s->psql("select count(*) from outbox where device_id = '$cd->{id}' or user_id = '$c->{user}{id}'"),
       0, 'outbox rows gone');
};

$s->stop;
done_testing;
