# Invites by SMS (issue 25): POST/GET/DELETE /v1/invites, the SMS through
# the one-time codes' driver (`log`: $data/sms.log; `webhook`: an outbox
# row), the limits per inviter and per phone, the STOP list, no leak of
# whether a number has an account beyond what search shows, and the
# invite-then-signup flow (accepted contacts, a live contact:accepted).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases body_json is_error uuid_re wait_until new_uuid);
use Famcall::WS;

my $LINK = 'https://get.famcall.test/i';
my $s = Famcall::Test->new(extra_conf => <<"CONF");
famcall_invite_link $LINK;
famcall_invite_limit_user 5 1h;
famcall_otp_limit_ip 1000 1h;
CONF

my $n = 0;
sub phone { sprintf '+1666%07d', ++$n }

sub invite {
    my ($user, $phone, %more) = @_;
    return $s->json_req(POST => '/v1/invites', { phone => $phone, %more },
                        $user->{access_token});
}
sub invites { body_json($s->json_req(GET => '/v1/invites', undef, $_[0]{access_token})) }

# the invite lines sms.log has for $phone (codes are "<phone> <digits>")
sub sms_invites {
    my ($phone) = @_;
    open my $fh, '<', $s->data_dir . '/sms.log' or return ();
    return grep { /^\Q$phone\E \D/ } map { chomp; $_ } <$fh>;
}

# a phone account through the one-time code
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

my $ann = $s->signup(display_name => 'Ann');
my $bob = $s->signup(display_name => 'Bob');

subtest 'an invite: 201, one SMS with the inviter and the link' => sub {
    my $p = phone();
    my $tx = invite($ann, $p, name => 'Grandma');
    is($tx->res->code, 201, 'status 201') or return diag($tx->res->body);
    my $j = body_json($tx);
    like($j->{invite}{id} // '', uuid_re, 'invite id');
    is($j->{invite}{phone}, $p, 'phone');
    is($j->{invite}{name}, 'Grandma', 'name');
    like($j->{invite}{created_at} // '', qr/Z$/, 'created_at');
    ok(!exists $j->{sms}, 'the answer does not carry the SMS');
    my @sms = wait_until { my @l = sms_invites($p); @l ? \@l : undef } 5, 'the SMS';
    is_deeply($sms[0], ["$p Ann invites you to famcall: $LINK"], 'the SMS text');

    my $list = invites($ann)->{invites};
    is(scalar @$list, 1, 'GET lists it');
    is($list->[0]{id}, $j->{invite}{id}, 'the same invite');
    is_deeply(invites($bob)->{invites}, [], "not in someone else's list");

    $tx = invite($ann, $p);
    is($tx->res->code, 200, 'the same phone again: 200');
    is(body_json($tx)->{invite}{id}, $j->{invite}{id}, 'the same invite');

    $tx = invite($bob, $p);
    is($tx->res->code, 201, 'another inviter: 201 (an invite of their own)');
    isnt(body_json($tx)->{invite}{id}, $j->{invite}{id}, 'a new invite');
    is(scalar(sms_invites($p)), 1, 'but no second SMS to that number within a day');
};

subtest 'bad inputs' => sub {
    run_cases($s, [
        { method => 'POST', path => '/v1/invites', body => { phone => phone() },
          status => 401, code => 'unauthorized' },
        { method => 'POST', path => '/v1/invites', body => {}, token => $ann->{access_token},
          status => 422, code => 'missing_field', field => 'phone' },
        { method => 'POST', path => '/v1/invites', body => { phone => '5551234' },
          token => $ann->{access_token}, status => 422, code => 'invalid_field', field => 'phone' },
        { method => 'POST', path => '/v1/invites', body => { phone => 12345678 },
          token => $ann->{access_token}, status => 422, code => 'invalid_field', field => 'phone' },
        { method => 'POST', path => '/v1/invites', body => { phone => phone(), name => 'x' x 65 },
          token => $ann->{access_token}, status => 422, code => 'invalid_field', field => 'name' },
        { method => 'POST', path => '/v1/invites', raw => '[]', token => $ann->{access_token},
          status => 400 },
        { method => 'GET', path => '/v1/invites', status => 401, code => 'unauthorized' },
        { method => 'DELETE', path => '/v1/invites/' . new_uuid(), token => $ann->{access_token},
          status => 404, code => 'not_found' },
        { method => 'DELETE', path => '/v1/invites/not-a-uuid', token => $ann->{access_token},
          status => 404, code => 'not_found' },
        { method => 'PUT', path => '/v1/invites', status => 405 },
    ]);
};

subtest "withdraw: mine 204, someone else's 404" => sub {
    my $p = phone();
    my $id = body_json(invite($bob, $p))->{invite}{id};
    is_error($s->json_req(DELETE => "/v1/invites/$id", undef, $ann->{access_token}),
             404, 'not_found');
    my $tx = $s->json_req(DELETE => "/v1/invites/$id", undef, $bob->{access_token});
    is($tx->res->code, 204, 'the inviter withdraws it: 204');
    ok(!grep({ $_->{id} eq $id } @{ invites($bob)->{invites} }), 'gone from the list');
    is_error($s->json_req(DELETE => "/v1/invites/$id", undef, $bob->{access_token}),
             404, 'not_found');
    # withdrawing does not open the way to a second SMS
    is(invite($bob, $p)->res->code, 201, 'invite again: 201');
    is(scalar(sms_invites($p)), 1, 'one SMS still');
};

subtest 'a number with an account answers as search does' => sub {
    my $p = phone();
    my $carl = phone_user($p, 'Carl');
    my $tx = invite($ann, $p);
    is($tx->res->code, 200, 'status 200') or return diag($tx->res->body);
    my $j = body_json($tx);
    is($j->{user}{id}, $carl->{user}{id}, 'the user, as search shows them');
    is_deeply([sort keys %{ $j->{user} }], [sort qw(id username display_name avatar_url)],
              'the public user: no phone, no email');
    my $found = body_json($s->json_req(GET => '/v1/users/search?q=' . ($p =~ s/\+/%2B/r),
                                       undef, $ann->{access_token}));
    is_deeply($j->{user}, $found->{users}[0], 'the very object search answers');
    is(scalar(sms_invites($p)), 0, 'no SMS');

    # Carl blocks Ann: search hides him from her, and so does the invite
    is($s->json_req(POST => '/v1/blocks', { user_id => $ann->{user}{id} },
                    $carl->{access_token})->res->code, 201, 'Carl blocks Ann');
    $found = body_json($s->json_req(GET => '/v1/users/search?q=' . ($p =~ s/\+/%2B/r),
                                    undef, $ann->{access_token}));
    is_deeply($found->{users}, [], 'search shows Ann nobody');
    my $unknown = phone();
    my $a1 = invite($ann, $p);
    my $a2 = invite($ann, $unknown);
    is($a1->res->code, 201, 'the invite answers 201, as for a number nobody has');
    is_deeply([sort keys %{ body_json($a1) }], [sort keys %{ body_json($a2) }],
              'the same answer as for a number nobody has');
    is(scalar(sms_invites($p)), 0, 'and Carl gets no SMS');

    my $own = phone();
    my $dora = phone_user($own, 'Dora');
    is_error(invite($dora, $own), 422, 'invalid_field', 'phone');
};

subtest 'the STOP list' => sub {
    my $p = phone();
    {
        # the operator's script reaches the database as migrate.sh does
        local %ENV = (%ENV, map { defined $_->[1] ? @$_ : () }
                            map { [$_, $s->pg_env->{$_}] } keys %{ $s->pg_env });
        is(system($s->repo_dir . '/scripts/invite-stop.sh', $p, $p), 0,
           'scripts/invite-stop.sh');
        isnt(system($s->repo_dir . '/scripts/invite-stop.sh not-a-phone 2>/dev/null'), 0,
             'refuses what is not a number');
    }
    is($s->psql("select count(*) from invite_optouts where phone = '$p'"), 1, 'on the list');
    my $tx = invite($bob, $p);
    is($tx->res->code, 201, '201, as any invite');
    is(scalar(sms_invites($p)), 0, 'no SMS to a number that said STOP');
};

subtest 'floods: the limit per inviter' => sub {
    my $eve = $s->signup;
    my @codes = map { invite($eve, phone())->res->code } 1 .. 5;
    is_deeply(\@codes, [(201) x 5], 'five invites in the hour');
    my $tx = invite($eve, phone());
    is_error($tx, 429, 'rate_limited');
    like($tx->res->headers->header('Retry-After') // '', qr/^\d+$/, 'Retry-After');
    cmp_ok($tx->res->headers->header('Retry-After') // 0, '<=', 3600, 'within the window');
    # withdrawing does not give the count back
    my $id = invites($eve)->{invites}[0]{id};
    is($s->json_req(DELETE => "/v1/invites/$id", undef, $eve->{access_token})->res->code,
       204, 'withdraw one');
    is_error(invite($eve, phone()), 429, 'rate_limited');
    is(invite($ann, phone())->res->code, 201, 'another inviter is not held back');
};

subtest 'signup with an invited phone: the inviters get a contact, live' => sub {
    my $p = phone();
    my $fay = $s->signup(display_name => 'Fay');
    my $gus = $s->signup(display_name => 'Gus');
    my $hal = $s->signup(display_name => 'Hal');
    is(invite($fay, $p, name => 'Nana')->res->code, 201, 'Fay invites');
    is(invite($gus, $p)->res->code, 201, 'Gus invites');
    is(invite($hal, $p)->res->code, 201, 'Hal invites');
    my $ws = Famcall::WS->open($s, $fay->{access_token}) or return fail('socket');
    my $ws_hal = Famcall::WS->open($s, $hal->{access_token}) or return fail('socket');

    my $nana = phone_user($p, 'Nana');
    my $ev = $ws->expect('contact:accepted', 10);
    ok($ev, 'Fay hears contact:accepted') or return;
    is($ev->{data}{user}{id}, $nana->{user}{id}, 'about the newcomer');
    is($ev->{data}{status}, 'accepted', 'accepted');
    is($ev->{data}{direction}, 'incoming', 'a request from the newcomer');
    ok(!exists $ev->{data}{user}{phone}, 'the public user only');

    for my $who ([Fay => $fay], [Gus => $gus]) {
        my $list = body_json($s->json_req(GET => '/v1/contacts', undef,
                                          $who->[1]{access_token}))->{contacts};
        my ($c) = grep { $_->{user}{id} eq $nana->{user}{id} } @$list;
        is($c && $c->{status}, 'accepted', "$who->[0] has Nana as an accepted contact");
        is_deeply(invites($who->[1])->{invites}, [], "$who->[0]'s invite is done");
    }
    my $list = body_json($s->json_req(GET => '/v1/contacts', undef,
                                      $nana->{access_token}))->{contacts};
    is(scalar(grep { $_->{status} eq 'accepted' } @$list), 3, 'Nana has the three');
    ok($ws_hal->expect('contact:accepted', 5), 'Hal hears it too');
    ok($ws->none('contact:accepted', 0.3), 'once');

    # they can talk at once: chat is between accepted contacts
    my $conv = $s->open_conversation($fay, $nana);
    is($s->send_message($fay, $conv->{id}, 'welcome!')->res->code, 201, 'Fay writes to Nana');
};

# The webhook driver: the SMS is an outbox row from the same transaction.
subtest 'webhook driver: an outbox row' => sub {
    my $w = Famcall::Test->new(conf_edit => sub {
        s{famcall_otp_sms log [^;]*;}{famcall_otp_sms webhook https://sms.example.test/send;}
    }, extra_conf => "famcall_invite_link $LINK;");
    my $u = $w->signup(display_name => 'Lou');
    my $p = '+16660000999';
    my $tx = $w->json_req(POST => '/v1/invites', { phone => $p }, $u->{access_token});
    is($tx->res->code, 201, 'status 201') or return diag($tx->res->body);
    is($w->psql("select payload->>'to' || '|' || (payload->>'body') || '|' "
              . "|| (payload->>'webhook') from outbox where kind = 'sms'"),
       "$p|Lou invites you to famcall: $LINK|https://sms.example.test/send",
       'the SMS is queued for the dispatcher');
    $w->stop;
};

$s->stop;
done_testing;
