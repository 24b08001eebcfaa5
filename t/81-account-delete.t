# DELETE /v1/me (issue 25): a fresh proof (the password, or a one-time code
# for a phone account); every session revoked and every socket closed on
# every node (session:revoked, then close code 4003); the user's calls end;
# their devices, contacts, blocks, invites and profile go; their messages
# stay for the other person from a deleted account; the phone and email
# are free again; and nothing that names the user is left in any table.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases body_json is_error wait_until new_uuid);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 2, extra_conf => 'famcall_otp_limit_ip 1000 1h;');
my $n2 = Famcall::Test->new(node_of => $s, workers => 2);

sub del { $s->json_req(DELETE => '/v1/me', $_[1], $_[0]{access_token}) }
sub ws {
    my ($user, $node) = @_;
    my $ws = Famcall::WS->open($node // $s, $user->{access_token});
    die 'no socket' unless $ws;
    return $ws;
}
sub online {
    my ($id, $n) = @_;
    wait_until { $s->psql("select count(*) from presence where user_id = '$id'") >= ($n // 1) }
        10, 'presence rows';
}
sub phone_user {
    my ($phone, $name) = @_;
    my $tx = $s->json_req(POST => '/v1/auth/otp/request', { phone => $phone });
    die 'otp request: ' . $tx->res->body unless $tx->res->code == 202;
    my $code = $s->sms_code($phone) or die 'no code';
    $tx = $s->json_req(POST => '/v1/auth/otp/verify',
                       { phone => $phone, code => "$code", display_name => $name });
    die 'otp verify: ' . $tx->res->body unless $tx->res->code == 200;
    return body_json($tx);
}
sub login {
    my ($u) = @_;
    return $s->json_req(POST => '/v1/auth/login',
                        { email => $u->{email}, password => $u->{password} });
}

# Every row of every table in the schema, as text, searched for each needle;
# the tables and counts of rows that hold one.
sub rows_naming {
    my (@needles) = @_;
    my $cond = join ' or ', map { "strpos(x::text, '$_') > 0" } @needles;
    my @hits;
    for my $t (split /\n/, $s->psql("select tablename from pg_tables where schemaname = 'public'")) {
        my $n = $s->psql(qq{select count(*) from "$t" x where $cond});
        push @hits, "$t: $n" if $n;
    }
    return \@hits;
}

subtest 'bad inputs: the proof' => sub {
    my $u = $s->signup;
    my $ph = phone_user('+17770000001', 'Phone Only');
    run_cases($s, [
        { method => 'DELETE', path => '/v1/me', body => { password => 'x' },
          status => 401, code => 'unauthorized' },
        { method => 'DELETE', path => '/v1/me', body => {}, token => $u->{access_token},
          status => 422, code => 'missing_field', field => 'password' },
        { name => 'no body', method => 'DELETE', path => '/v1/me', token => $u->{access_token},
          status => 400, code => 'invalid_json' },
        { method => 'DELETE', path => '/v1/me', body => { password => $u->{password}, code => '123456' },
          token => $u->{access_token}, status => 422, code => 'invalid_field' },
        { method => 'DELETE', path => '/v1/me', body => { password => 'wrong password!' },
          token => $u->{access_token}, status => 401, code => 'invalid_credentials',
          field => 'password' },
        { method => 'DELETE', path => '/v1/me', body => { password => '' },
          token => $u->{access_token}, status => 422, code => 'invalid_field', field => 'password' },
        { method => 'DELETE', path => '/v1/me', body => { password => 12345678 },
          token => $u->{access_token}, status => 422, code => 'invalid_field', field => 'password' },
        { method => 'DELETE', path => '/v1/me', body => { code => '12345' },
          token => $u->{access_token}, status => 422, code => 'invalid_field', field => 'code' },
        { name => 'an email account has no code to give',
          method => 'DELETE', path => '/v1/me', body => { code => '123456' },
          token => $u->{access_token}, status => 422, code => 'invalid_field', field => 'code' },
        { name => 'a phone account has no password',
          method => 'DELETE', path => '/v1/me', body => { password => 'any password' },
          token => $ph->{access_token}, status => 401, code => 'invalid_credentials' },
        { name => 'a phone account without a fresh code',
          method => 'DELETE', path => '/v1/me', body => { code => '123456' },
          token => $ph->{access_token}, status => 401, code => 'code_expired' },
    ]);
    is(login($u)->res->code, 200, 'after all that, the account is still there');

    # a wrong code counts, as a sign-in's does
    is($s->json_req(POST => '/v1/auth/otp/request', { phone => '+17770000001' })->res->code,
       202, 'a code for the phone');
    my $code = $s->sms_code('+17770000001');
    my $wrong = sprintf '%06d', ($code + 1) % 1_000_000;
    my $tx = del($ph, { code => $wrong });
    is_error($tx, 401, 'invalid_code', 'code');
    is(body_json($tx)->{error}{attempts_left}, 4, 'attempts_left 4');
    is($s->json_req(GET => '/v1/me', undef, $ph->{access_token})->res->code, 200,
       'still there');

    # someone else's token cannot delete me: the token is the account
    my $other = $s->signup(password => 'another good password');
    is_error(del($other, { password => $u->{password} }), 401, 'invalid_credentials');
    is(login($u)->res->code, 200, "still there after someone else's try");
};

subtest 'a phone account, by one-time code: the number is free again' => sub {
    my $p = '+17770000002';
    my $ph = phone_user($p, 'Phone Deleter');
    my $inviter = $s->signup;
    is($s->json_req(POST => '/v1/auth/otp/request', { phone => $p })->res->code, 202, 'code');
    my $code = $s->sms_code($p);
    my $tx = del($ph, { code => "$code" });
    is($tx->res->code, 204, 'status 204') or return diag($tx->res->body);
    is_error($s->json_req(GET => '/v1/me', undef, $ph->{access_token}), 401, 'unauthorized');
    is($s->json_req(POST => '/v1/auth/refresh', { refresh_token => $ph->{refresh_token} })
       ->res->code, 401, 'the refresh token is dead');
    is_deeply(rows_naming($ph->{user}{id}, $p), [], 'nothing names the account or its phone');
    is($s->psql("select count(*) from otp_codes where phone = '$p'"), 0, 'its codes are gone');

    # anyone may take the number now, and an invite to it goes out again
    is($s->json_req(POST => '/v1/invites', { phone => $p }, $inviter->{access_token})->res->code,
       201, 'the number can be invited');
    my $again = phone_user($p, 'New Owner');
    ok($again->{new_user}, 'a new account with the number');
    isnt($again->{user}{id}, $ph->{user}{id}, 'another id');
};

subtest 'delete with two devices online on two nodes, in a call' => sub {
    my $d = $s->signup(display_name => 'Zelda Quux', username => 'zeldaquux');
    my $p = $s->signup(display_name => 'Pat');           # talks with Zelda
    my $q = $s->signup(display_name => 'Quin');          # Zelda blocked Quin
    my $r = $s->signup(display_name => 'Rory');          # Rory blocked Zelda
    my $t = $s->signup(display_name => 'Tess');          # an empty conversation
    my ($did, $pid) = ($d->{user}{id}, $p->{user}{id});
    my $hash = $s->psql("select password_hash from users where id = '$did'");

    $s->befriend($d, $p);
    $s->befriend($d, $t);
    # P's phone, while P has no socket open: D's messages become pushes
    $s->psql("insert into devices (user_id, platform, provider, push_token)
              values ('$pid', 'ios', 'apns', 'push-token-of-pat')");
    my $conv = $s->open_conversation($d, $p)->{id};
    my $empty = $s->open_conversation($d, $t)->{id};
    for my $i (1 .. 3) {
        is($s->send_message($d, $conv, "from the deleter $i")->res->code, 201, "D writes $i");
        is($s->send_message($p, $conv, "to the deleter $i")->res->code, 201, "P writes $i");
    }
    is($s->json_req(POST => '/v1/blocks', { user_id => $q->{user}{id} }, $d->{access_token})
       ->res->code, 201, 'D blocks Q');
    is($s->json_req(POST => '/v1/blocks', { user_id => $did }, $r->{access_token})
       ->res->code, 201, 'R blocks D');
    is($s->json_req(POST => '/v1/reports', { user_id => $q->{user}{id}, reason => 'spam' },
                    $d->{access_token})->res->code, 201, 'D reports Q');
    is($s->json_req(POST => '/v1/invites', { phone => '+17770000003', name => 'Aunt' },
                    $d->{access_token})->res->code, 201, 'D invites someone');
    is($s->json_req(POST => '/v1/me/export', undef, $d->{access_token})->res->code, 202,
       'D asked for an export');
    $s->psql("insert into devices (user_id, platform, provider, push_token)
              values ('$did', 'android', 'fcm', 'push-token-of-zelda')");
    my $second = body_json(login($d));                       # a second session

    my $d1 = ws($d, $s);
    my $d2 = ws({ access_token => $second->{access_token} }, $n2);
    my $p1 = ws($p, $s);
    online($did, 2);
    online($pid);
    ok($d1->server_pid($s->http_port) && $d2->server_pid($n2->http_port),
       "D's two devices are on two nodes");

    # an ended call with a quality report, then one going on
    my $call = $p1->request('call:invite', { to_user_id => $did, media => 'video' })->{data}{call_id};
    ok($d1->expect('call:invite'), 'D rings');
    is($d1->request('call:accept', { call_id => $call })->{type}, 'ack', 'D answers');
    $p1->expect('call:accept');
    is($d1->request('call:end', { call_id => $call })->{type}, 'ack', 'and hangs up');
    $p1->expect('call:end');
    is($s->json_req(POST => "/v1/calls/$call/stats", { rtt_ms => 33 }, $d->{access_token})
       ->res->code, 204, "D's quality report");
    is($s->json_req(POST => "/v1/calls/$call/stats", { rtt_ms => 34 }, $p->{access_token})
       ->res->code, 204, "P's quality report");
    my $live = $p1->request('call:invite', { to_user_id => $did, media => 'audio' })->{data}{call_id};
    $d2->expect('call:invite');
    is($d2->request('call:accept', { call_id => $live })->{type}, 'ack',
       'a call goes on, answered on node 2');
    $p1->expect('call:accept');

    cmp_ok($s->psql("select count(*) from outbox where user_id = '$pid'
                     and payload->>'sender_id' = '$did'"), '>=', 3,
           "pushes to P's phone name D as the sender");
    my $before = rows_naming($did, $d->{email}, 'zeldaquux', 'Zelda Quux', $hash,
                             'push-token-of-zelda');
    cmp_ok(scalar @$before, '>=', 10, 'before: a dozen tables name D (the check sees them)')
        or diag explain $before;

    my $tx = del($d, { password => $d->{password} });
    is($tx->res->code, 204, 'DELETE /v1/me: 204') or return diag($tx->res->body);

    for my $w ([node1 => $d1], [node2 => $d2]) {
        my $ev = $w->[1]->expect('session:revoked', 10);
        is($ev && $ev->{data}{reason}, 'account_deleted', "$w->[0]: session:revoked");
        ok($w->[1]->wait_closed(10), "$w->[0]: the socket is closed");
        is($w->[1]->close_code, 4003, "$w->[0]: with 4003");
    }
    my $end = $p1->expect('call:end', 10);
    is($end && $end->{data}{call_id}, $live, 'P hears the call end');
    is($end && $end->{data}{reason}, 'account_deleted', 'reason account_deleted');
    my $off = $p1->expect('presence', 10, sub { $_[0]{data}{user_id} eq $did });
    ok($off && !$off->{data}{online}, 'P sees D go offline');
    wait_until { $s->psql("select count(*) from presence where user_id = '$did'") == 0 }
        10, 'no presence row';

    # the old tokens and sessions are worth nothing
    is_error($s->json_req(GET => '/v1/me', undef, $d->{access_token}), 401, 'unauthorized');
    is_error($s->json_req(POST => '/v1/contacts', { user_id => $pid }, $d->{access_token}),
             401, 'unauthorized');
    is_error($s->json_req(POST => '/v1/invites', { phone => '+17770000004' },
                          $d->{access_token}), 401, 'unauthorized');
    is_error($s->json_req(POST => '/v1/me/export', undef, $d->{access_token}), 401, 'unauthorized');
    is_error($s->json_req(GET => '/v1/me/export', undef, $d->{access_token}), 401, 'unauthorized');
    is($s->json_req(POST => '/v1/auth/refresh', { refresh_token => $d->{refresh_token} })
       ->res->code, 401, 'the refresh token is dead');
    is_error(login($d), 401, 'invalid_credentials');
    is_error(del($d, { password => $d->{password} }), 401, 'unauthorized');

    # nothing that names D, but the conversation's tombstone
    is_deeply(rows_naming($did, $d->{email}, 'zeldaquux', 'Zelda Quux', $hash,
                          'push-token-of-zelda'), [],
              'nothing in any table names D');

    # what P sees: the messages stay, from a deleted account
    my $convs = body_json($s->json_req(GET => '/v1/conversations', undef, $p->{access_token}));
    my ($c) = grep { $_->{id} eq $conv } @{ $convs->{conversations} };
    ok($c, 'P keeps the conversation') or return;
    is($c->{peer}{display_name}, 'Deleted account', 'the peer is a deleted account');
    ok($c->{peer}{deleted}, 'deleted: true');
    is($c->{peer}{username}, undef, 'no username');
    is($c->{peer}{avatar_url}, undef, 'no avatar');
    isnt($c->{peer}{id}, $did, 'and not the old id');
    my $msgs = body_json($s->json_req(GET => "/v1/conversations/$conv/messages", undef,
                                      $p->{access_token}))->{messages};
    is(scalar @$msgs, 6, 'all six messages');
    is(scalar(grep { $_->{sender_id} eq $c->{peer}{id} } @$msgs), 3,
       "D's three, from the tombstone");
    my $tomb = $c->{peer}{id};
    ok(!$s->send_message($p, $conv, 'are you there?')->res->is_success,
       'nobody to write to');
    is_error($s->json_req(POST => '/v1/contacts', { user_id => $tomb }, $p->{access_token}),
             404, 'not_found');
    is_deeply(body_json($s->json_req(GET => '/v1/users/search?q=zeldaquux', undef,
                                     $p->{access_token}))->{users}, [], 'not found by search');
    my $contacts = body_json($s->json_req(GET => '/v1/contacts', undef, $p->{access_token}));
    is_deeply($contacts->{contacts}, [], "gone from P's contacts");
    my $calls = body_json($s->json_req(GET => '/v1/calls', undef, $p->{access_token}))->{calls};
    is(scalar @$calls, 2, "P's call history keeps both calls");
    ok(!grep({ $_->{caller_id} eq $did || $_->{callee_id} eq $did } @$calls),
       'with the tombstone in D\'s place');

    # Tess's empty conversation went; Rory's block went with D
    is($s->psql("select count(*) from conversations where id = '$empty'"), 0,
       'the empty conversation is gone');
    is($s->psql("select count(*) from blocks where blocked_id = '$t->{user}{id}'"), 0,
       'and Tess, who has nothing left with D, is nobody\'s to block');
    cmp_ok($s->psql("select count(*) from outbox where user_id = '$pid'"), '==', 0,
           "P's pushes about D are gone");
    is_deeply(body_json($s->json_req(GET => '/v1/blocks', undef, $r->{access_token}))->{blocks},
              [], "gone from Rory's blocks");

    # the email is free again
    my $again = $s->signup(email => $d->{email}, username => 'zeldaquux');
    ok($again->{user}{id}, 'the email and username can sign up again');
    isnt($again->{user}{id}, $did, 'as a new account');

    # P deletes too: the conversation, its messages and the tombstone go
    is(del($p, { password => $p->{password} })->res->code, 204, 'P deletes their account');
    is($s->psql("select count(*) from conversations where id = '$conv'"), 0, 'the conversation');
    is($s->psql("select count(*) from messages where conversation_id = '$conv'"), 0,
       'its messages');
    is($s->psql("select count(*) from users where id = '$tomb'"), 0, 'the tombstone');
};

$n2->stop;
$s->stop;
done_testing;
