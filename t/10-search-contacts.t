# Finding people and asking them to be contacts: GET /v1/users/search,
# GET/POST /v1/contacts, POST /v1/contacts/{id}/accept,
# DELETE /v1/contacts/{id} (docs/api.md, issue 3).
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::URL;
use Mojo::Promise;
use Famcall::Test qw(run_cases check_json_response body_json is_error uniq
                     uuid_re new_uuid);

my $s = Famcall::Test->new;
my $TS_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;

sub public_user_ok {
    my ($u, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest "$name: public user" => sub {
        ok(ref $u eq 'HASH', 'an object') or return;
        is_deeply([sort keys %$u], [sort qw(id username display_name avatar_url)],
                  'id, username, display_name, avatar_url; never email or phone');
        if ($want) {
            is($u->{$_}, $want->{$_}, $_) for qw(id username display_name avatar_url);
        }
    };
}

# GET /v1/users/search?q=... as $user; $q is URL-encoded unless $raw.
sub search {
    my ($user, $q, $raw) = @_;
    my $url = $raw ? "/v1/users/search?q=$q"
                   : Mojo::URL->new('/v1/users/search')->query(q => $q)->to_string;
    return $s->json_req(GET => $url, undef, $user->{access_token});
}

# The usernames (or ids) found, in order.
sub found {
    my ($tx, $key) = @_;
    my $j = body_json($tx) // {};
    return [ map { $_->{$key // 'username'} } @{ $j->{users} // [] } ];
}

sub contacts_of {
    my ($user) = @_;
    my $tx = $s->json_req(GET => '/v1/contacts', undef, $user->{access_token});
    is($tx->res->code, 200, 'GET /v1/contacts 200') or diag($tx->res->body);
    return (body_json($tx) // {})->{contacts} // [];
}

# The contact entry for $other in $user's list (undef if absent).
sub contact_entry {
    my ($user, $other) = @_;
    my @c = grep { ($_->{user}{id} // '') eq $other->{user}{id} } @{ contacts_of($user) };
    return $c[0];
}

sub request_contact {
    my ($user, $body) = @_;
    return $s->json_req(POST => '/v1/contacts', $body, $user->{access_token});
}

sub contact_ok {
    my ($c, $other, $status, $direction, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest "$name: contact object" => sub {
        ok(ref $c eq 'HASH', 'an object') or return;
        is_deeply([sort keys %$c], [sort qw(user status direction created_at accepted_at)],
                  'the documented keys');
        public_user_ok($c->{user}, {
            id => $other->{user}{id}, username => $other->{user}{username},
            display_name => $other->{user}{display_name}, avatar_url => $other->{user}{avatar_url},
        }, $name);
        is($c->{status}, $status, "status $status");
        is($c->{direction}, $direction, "direction $direction");
        like($c->{created_at} // '', $TS_RE, 'created_at RFC 3339 UTC');
        if ($status eq 'pending') { is($c->{accepted_at}, undef, 'accepted_at null while pending') }
        else                      { like($c->{accepted_at} // '', $TS_RE, 'accepted_at set') }
    };
}

# A user with a phone number, signed up by one-time code.
sub phone_user {
    my ($phone, $username) = @_;
    my $tx = $s->json_req(POST => '/v1/auth/otp/request', { phone => $phone });
    die 'otp request: ' . $tx->res->code . ' ' . $tx->res->body unless $tx->res->code == 202;
    my $code = $s->sms_code($phone) // die "no code for $phone";
    $tx = $s->json_req(POST => '/v1/auth/otp/verify',
                       { phone => $phone, code => $code, display_name => "Phone $username" });
    die 'otp verify: ' . $tx->res->code . ' ' . $tx->res->body unless $tx->res->code == 200;
    my $u = body_json($tx);
    $tx = $s->json_req(PATCH => '/v1/me', { username => $username }, $u->{access_token});
    die 'patch me: ' . $tx->res->code . ' ' . $tx->res->body unless $tx->res->code == 200;
    $u->{user} = body_json($tx);
    return $u;
}

#==========================================================================
# Search
#==========================================================================

my $me = $s->signup;

subtest 'search: prefix, exact first, ordered by username, at most 20' => sub {
    my $p = uniq('sr');
    my @names = ($p, map { sprintf '%s%02d', $p, $_ } 1 .. 22);
    $s->signup(username => $_) for reverse @names;     # created out of order

    my $tx = search($me, $p);
    is($tx->res->code, 200, 'exact username: 200') or diag($tx->res->body);
    check_json_response($tx, {});
    my $got = found($tx);
    is(scalar @$got, 20, 'at most 20 users');
    is($got->[0], $p, 'the exact match comes first');
    is_deeply($got, [@names[0 .. 19]], 'then by username');

    $got = found(search($me, "${p}1"));
    is_deeply($got, [map { sprintf '%s%02d', $p, $_ } 10 .. 19], 'a longer prefix narrows');
    $got = found(search($me, "${p}2"));
    is_deeply($got, ["${p}20", "${p}21", "${p}22"], 'prefix "..2"');

    $got = found(search($me, uc "${p}2"));
    is_deeply($got, ["${p}20", "${p}21", "${p}22"], 'the prefix is lowercased');

    $got = found(search($me, "${p}22"));
    is_deeply($got, ["${p}22"], 'exact match alone');

    is_deeply(found(search($me, "${p}9")), [], 'no match: 200 and an empty list');

    my $j = body_json(search($me, "${p}0")) // {};
    is(scalar @{ $j->{users} // [] }, 9, '9 users with prefix 0');
    my ($one) = grep { $_->{username} eq "${p}01" } @{ $j->{users} // [] };
    public_user_ok($one, undef, 'search result');
    like($one->{id} // '', uuid_re, 'id is a UUID string');
    unlike(search($me, "${p}0")->res->body, qr/"(?:email|phone)"|example\.com/,
           'no email or phone anywhere in the answer');
};

subtest 'search: _ and . in the prefix are literal (no LIKE or regex wildcards)' => sub {
    my $p = uniq('lk');
    my %u = map { $_ => $s->signup(username => $_) }
            ("${p}_a", "${p}za", "${p}.b", "${p}xb", "${p}__c", "${p}_zc");
    is_deeply(found(search($me, "${p}_")), ["${p}__c", "${p}_a", "${p}_zc"],
              "'_' matches only an underscore");
    is_deeply(found(search($me, "${p}__")), ["${p}__c"], "'__' matches only two underscores");
    is_deeply(found(search($me, "${p}.")), ["${p}.b"], "'.' matches only a dot");
    is_deeply(found(search($me, "${p}_a")), ["${p}_a"], 'exact with an underscore');
    is_deeply(found(search($me, "${p}z")), ["${p}za"], 'the letter itself');
};

subtest 'search: never the caller' => sub {
    my $p = uniq('sf');
    my $self = $s->signup(username => $p);
    my $other = $s->signup(username => "${p}2");
    is_deeply(found(search($self, $p)), ["${p}2"], 'own exact username: only the other user');
    is_deeply(found(search($other, $p)), [$p], 'the other user finds only the first');
};

subtest 'search: users who blocked the caller are not found' => sub {
    my $p = uniq('bk');
    my $blocker = $s->signup(username => "${p}blocker");
    my $victim  = $s->signup(username => "${p}victim");
    my $third   = $s->signup(username => "${p}third");
    is_deeply(found(search($victim, $p)), ["${p}blocker", "${p}third"], 'before: found');
    my $tx = $s->json_req(POST => '/v1/blocks', { user_id => $victim->{user}{id} },
                          $blocker->{access_token});
    is($tx->res->code, 201, 'blocker blocks victim') or diag($tx->res->body);
    is_deeply(found(search($victim, $p)), ["${p}third"], 'the blocked user no longer finds the blocker');
    is_deeply(found(search($victim, "${p}blocker")), [], '... not even by exact username');
    is_deeply(found(search($third, $p)), ["${p}blocker", "${p}victim"], 'others still find both');
    # The blocker finding the blocked user is not specified either way.
    note('blocker searching the blocked user finds: ' . join(',', @{ found(search($blocker, $p)) }));
    $tx = $s->json_req(DELETE => "/v1/blocks/$victim->{user}{id}", undef, $blocker->{access_token});
    is($tx->res->code, 204, 'unblocked');
    is_deeply(found(search($victim, $p)), ["${p}blocker", "${p}third"], 'found again after unblock');
};

my $phone_a = '+14155550101';
my $phoned = phone_user($phone_a, uniq('ph'));

subtest 'search: phone numbers match exactly, never by prefix' => sub {
    my $tx = search($me, $phone_a);
    is($tx->res->code, 200, 'q=%2B... 200') or diag($tx->res->body);
    is_deeply(found($tx, 'id'), [$phoned->{user}{id}], 'the user with that phone');
    public_user_ok((body_json($tx)->{users} // [])->[0],
                   { %{ $phoned->{user} }{qw(id username display_name avatar_url)} },
                   'phone result');
    unlike($tx->res->body, qr/4155550101/, 'the phone number is not echoed in the result');

    $tx = search($me, $phone_a, 1);
    is($tx->res->code, 200, 'q=+... (unencoded plus) 200') or diag($tx->res->body);
    is_deeply(found($tx, 'id'), [$phoned->{user}{id}], 'unencoded + works too');

    is_deeply(found(search($me, '+1415555010')), [], 'a prefix of the number finds nothing');
    is_deeply(found(search($me, '+14155550102')), [], 'another number finds nothing');
    is_deeply(found(search($me, '+141555501011')), [], 'a longer number finds nothing');
    is_deeply(found(search($phoned, $phone_a)), [], 'never the caller, by phone either');
    is_deeply(found(search($me, '14155550101')), [], 'digits without + are a username prefix: nothing');

    my $blocked = $s->signup;
    is($s->json_req(POST => '/v1/blocks', { user_id => $blocked->{user}{id} }, $phoned->{access_token})
         ->res->code, 201, 'the phone user blocks someone');
    is_deeply(found(search($blocked, $phone_a)), [], 'who then does not find them by phone');
    is_deeply(found(search($me, $phone_a), 'id'), [$phoned->{user}{id}], 'others still do');
    is($s->json_req(DELETE => "/v1/blocks/$blocked->{user}{id}", undef, $phoned->{access_token})
         ->res->code, 204, 'unblocked');
    is_deeply(found(search($blocked, $phone_a), 'id'), [$phoned->{user}{id}], 'found again');
};

my $enc = sub { Mojo::URL->new('/v1/users/search')->query(q => $_[0])->to_string };
run_cases($s, [
    { name => 'search without a token', path => $enc->('abc'),
      status => 401, code => 'unauthorized', res_headers => { 'WWW-Authenticate' => qr/^Bearer/ } },
    { name => 'search without q', path => '/v1/users/search',
      token => $me->{access_token}, status => 422, code => 'invalid_field', field => 'q' },
    { name => 'search with q empty', path => '/v1/users/search?q=',
      token => $me->{access_token}, status => 422, code => 'invalid_field', field => 'q' },
    (map { +{ name => "search with q '$_->[0]'", path => $enc->($_->[1]),
              token => $me->{access_token}, status => 422, code => 'invalid_field', field => 'q' } }
     [ 'one character', 'a' ],
     [ 'percent', 'ab%' ],
     [ 'percent alone twice', '%%' ],
     [ 'star', 'ab*' ],
     [ 'hyphen', 'ab-c' ],
     [ 'space inside', 'ab c' ],
     [ 'backslash', 'ab\\' ],
     [ 'quote', "ab'" ],
     [ 'accented', 'éé' ],
     [ 'email-like', 'a@b.com' ],
     [ 'phone too short', '+12345' ],
     [ 'phone with letters', '+1415555a101' ],
     [ 'phone starting with +0', '+04155550101' ],
     [ 'plus alone', '+' ]),
]);

#==========================================================================
# Contacts
#==========================================================================

sub fresh { $s->signup(display_name => shift // 'User ' . uniq('d')) }

subtest 'request by user_id: pending on both sides with a direction' => sub {
    my ($a, $b) = (fresh('Anna'), fresh('Ben'));
    my $tx = request_contact($a, { user_id => $b->{user}{id} });
    is($tx->res->code, 201, 'status 201') or return diag($tx->res->body);
    check_json_response($tx, {});
    contact_ok(body_json($tx), $b, 'pending', 'outgoing', 'the new request');

    my $ca = contacts_of($a);
    is(scalar @$ca, 1, "requester's list has one entry");
    contact_ok($ca->[0], $b, 'pending', 'outgoing', "requester's view");
    my $cb = contacts_of($b);
    is(scalar @$cb, 1, "recipient's list has one entry");
    contact_ok($cb->[0], $a, 'pending', 'incoming', "recipient's view");
    unlike($s->json_req(GET => '/v1/contacts', undef, $b->{access_token})->res->body,
           qr/"(?:email|phone)"|example\.com/, 'no email or phone in the list');

    $tx = request_contact($a, { user_id => $b->{user}{id} });
    is($tx->res->code, 200, 'asking again: 200 (as it stands)') or diag($tx->res->body);
    contact_ok(body_json($tx), $b, 'pending', 'outgoing', 'the repeated request');
    is(scalar @{ contacts_of($b) }, 1, 'still one entry');

    $tx = $s->json_req(POST => "/v1/contacts/$b->{user}{id}/accept", undef, $a->{access_token});
    is_error($tx, 404, 'not_found');
    note('the requester cannot accept their own request');

    $tx = $s->json_req(POST => "/v1/contacts/$a->{user}{id}/accept", undef, $b->{access_token});
    is($tx->res->code, 200, 'recipient accepts: 200') or return diag($tx->res->body);
    my $acc = body_json($tx);
    contact_ok($acc, $a, 'accepted', 'incoming', 'accepted (recipient)');
    contact_ok(contact_entry($a, $b), $b, 'accepted', 'outgoing', "requester's view after accept");
    contact_ok(contact_entry($b, $a), $a, 'accepted', 'incoming', "recipient's view after accept");

    $tx = $s->json_req(POST => "/v1/contacts/$a->{user}{id}/accept", undef, $b->{access_token});
    is($tx->res->code, 200, 'accepting again: 200');
    is((body_json($tx) // {})->{accepted_at}, $acc->{accepted_at}, 'accepted_at unchanged');

    $tx = request_contact($a, { user_id => $b->{user}{id} });
    is($tx->res->code, 200, 'asking an accepted contact: 200');
    is((body_json($tx) // {})->{status}, 'accepted', '... still accepted');
    $tx = request_contact($b, { user_id => $a->{user}{id} });
    is($tx->res->code, 200, 'the other side asking an accepted contact: 200');
    is((body_json($tx) // {})->{status}, 'accepted', '... still accepted');
    is($s->psql("select count(*) from contacts where '$a->{user}{id}' in (user_id, contact_id)"),
       2, 'one row per direction in the database');
};

subtest 'request by username and by phone' => sub {
    my $a = fresh();
    my $b = fresh();
    my $tx = request_contact($a, { username => uc $b->{user}{username} });
    is($tx->res->code, 201, 'by username (any case): 201') or diag($tx->res->body);
    contact_ok(body_json($tx), $b, 'pending', 'outgoing', 'by username');

    $tx = request_contact($a, { phone => $phone_a });
    is($tx->res->code, 201, 'by phone: 201') or diag($tx->res->body);
    contact_ok(body_json($tx), $phoned, 'pending', 'outgoing', 'by phone');
    contact_ok(contact_entry($phoned, $a), $a, 'pending', 'incoming', "phone user's view");

    $tx = request_contact($a, { username => $b->{user}{username} });
    is($tx->res->code, 200, 'by username again: 200');
    $tx = request_contact($a, { user_id => $phoned->{user}{id} });
    is($tx->res->code, 200, 'by user_id after by phone: 200 (the same request)');
};

subtest 'asking back accepts' => sub {
    my ($a, $b) = (fresh(), fresh());
    is(request_contact($a, { user_id => $b->{user}{id} })->res->code, 201, 'a asks b');
    my $tx = request_contact($b, { username => $a->{user}{username} });
    is($tx->res->code, 201, 'b asks a back: 201') or diag($tx->res->body);
    my $c = body_json($tx);
    is($c->{status}, 'accepted', 'status accepted');
    contact_ok($c, $a, 'accepted', 'incoming', 'asking back (a asked first)');
    contact_ok(contact_entry($a, $b), $b, 'accepted', 'outgoing', "a's view");
    contact_ok(contact_entry($b, $a), $a, 'accepted', 'incoming', "b's view");
};

subtest 'asking each other at the same moment: accepted contacts' => sub {
    for my $round (1 .. 6) {
        my ($a, $b) = (fresh(), fresh());
        my @p = map {
            my ($me, $other) = @$_;
            $s->ua->post_p('/v1/contacts' => { Authorization => "Bearer $me->{access_token}" }
                           => json => { user_id => $other->{user}{id} })
              ->then(sub { [ $_[0]->res->code // 0, (body_json($_[0]) // {})->{status} // '' ] },
                     sub { [ "error: @_", '' ] });
        } ([$a, $b], [$b, $a]);
        my @res;
        Mojo::Promise->all(@p)->then(sub { @res = map { $_->[0] } @_ })->wait;
        is_deeply([ sort map { "$_->[0] $_->[1]" } @res ], [ '201 accepted', '201 pending' ],
                  "round $round: one new request, one asking back (201 each)")
            or diag(explain \@res);
        is($s->psql("select string_agg(status, ',') from contacts where user_id in "
                  . "('$a->{user}{id}', '$b->{user}{id}')"), 'accepted,accepted',
           "round $round: accepted on both sides");
    }
};

subtest 'accept without an incoming request: 404' => sub {
    my ($a, $b, $c) = (fresh(), fresh(), fresh());
    is_error($s->json_req(POST => "/v1/contacts/$b->{user}{id}/accept", undef, $a->{access_token}),
             404, 'not_found');
    is_error($s->json_req(POST => '/v1/contacts/' . new_uuid() . '/accept', undef, $a->{access_token}),
             404, 'not_found');
    is_error($s->json_req(POST => '/v1/contacts/not-a-uuid/accept', undef, $a->{access_token}),
             404, 'not_found');
    # A third user cannot accept a request between two others.
    is(request_contact($a, { user_id => $b->{user}{id} })->res->code, 201, 'a asks b');
    is_error($s->json_req(POST => "/v1/contacts/$a->{user}{id}/accept", undef, $c->{access_token}),
             404, 'not_found');
    is_error($s->json_req(DELETE => "/v1/contacts/$a->{user}{id}", undef, $c->{access_token}),
             404, 'not_found');
    is_error($s->json_req(DELETE => "/v1/contacts/$b->{user}{id}", undef, $c->{access_token}),
             404, 'not_found');
    contact_ok(contact_entry($b, $a), $a, 'pending', 'incoming', 'the request is untouched');
    is(scalar @{ contacts_of($c) }, 0, 'the third user has no contacts');
};

subtest 'delete: withdraw, decline, remove by either side' => sub {
    my ($a, $b, $c, $d, $e) = map { fresh() } 1 .. 5;

    is(request_contact($a, { user_id => $b->{user}{id} })->res->code, 201, 'a asks b');
    my $tx = $s->json_req(DELETE => "/v1/contacts/$b->{user}{id}", undef, $a->{access_token});
    is($tx->res->code, 204, 'withdraw an outgoing request: 204') or diag($tx->res->body);
    check_json_response($tx, {});
    ok(!contact_entry($a, $b) && !contact_entry($b, $a), 'gone for both');
    is_error($s->json_req(POST => "/v1/contacts/$a->{user}{id}/accept", undef, $b->{access_token}),
             404, 'not_found');

    is(request_contact($c, { user_id => $a->{user}{id} })->res->code, 201, 'c asks a');
    $tx = $s->json_req(DELETE => "/v1/contacts/$c->{user}{id}", undef, $a->{access_token});
    is($tx->res->code, 204, 'decline an incoming request: 204');
    ok(!contact_entry($a, $c) && !contact_entry($c, $a), 'gone for both');
    is(request_contact($c, { user_id => $a->{user}{id} })->res->code, 201,
       'c can ask again: a new request (201)');

    $s->befriend($a, $d);
    $tx = $s->json_req(DELETE => "/v1/contacts/$a->{user}{id}", undef, $d->{access_token});
    is($tx->res->code, 204, 'the accepting side removes the contact: 204');
    ok(!contact_entry($a, $d) && !contact_entry($d, $a), 'gone for both');
    is_error($s->json_req(DELETE => "/v1/contacts/$a->{user}{id}", undef, $d->{access_token}),
             404, 'not_found');
    is_error($s->json_req(DELETE => "/v1/contacts/$d->{user}{id}", undef, $a->{access_token}),
             404, 'not_found');

    $s->befriend($a, $e);
    $tx = $s->json_req(DELETE => "/v1/contacts/$e->{user}{id}", undef, $a->{access_token});
    is($tx->res->code, 204, 'the requesting side removes the contact: 204');
    ok(!contact_entry($a, $e) && !contact_entry($e, $a), 'gone for both');
    is($s->psql("select count(*) from contacts where '$e->{user}{id}' in (user_id, contact_id)"),
       0, 'no rows left');

    is_error($s->json_req(DELETE => '/v1/contacts/' . new_uuid(), undef, $a->{access_token}),
             404, 'not_found');
    is_error($s->json_req(DELETE => '/v1/contacts/xyz', undef, $a->{access_token}),
             404, 'not_found');
};

subtest 'list: accepted first, then pending, each by display name' => sub {
    my $o = fresh('Owner');
    my %u = map { $_ => fresh($_) } qw(Zora Adam Mila Bert Yann);
    $s->befriend($o, $u{Zora});
    $s->befriend($u{Adam}, $o);
    request_contact($o, { user_id => $u{Mila}{user}{id} });
    request_contact($u{Bert}, { user_id => $o->{user}{id} });
    request_contact($o, { user_id => $u{Yann}{user}{id} });
    my $list = contacts_of($o);
    is_deeply([map { $_->{user}{display_name} } @$list], [qw(Adam Zora Bert Mila Yann)],
              'Adam, Zora (accepted), then Bert, Mila, Yann (pending)');
    is_deeply([map { $_->{status} } @$list], [qw(accepted accepted pending pending pending)],
              'statuses');
    is_deeply([map { $_->{direction} } @$list], [qw(incoming outgoing incoming outgoing outgoing)],
              'directions');
};

subtest 'blocks and contact requests' => sub {
    my ($a, $g, $h) = (fresh(), fresh(), fresh());
    is($s->json_req(POST => '/v1/blocks', { user_id => $a->{user}{id} }, $g->{access_token})
         ->res->code, 201, 'g blocks a');
    my $byid = request_contact($a, { user_id => $g->{user}{id} });
    is_error($byid, 404, 'not_found');
    my $unknown = request_contact($a, { user_id => new_uuid() });
    is_deeply(body_json($byid), body_json($unknown),
              'the same answer as for a user who does not exist');
    is_error(request_contact($a, { username => $g->{user}{username} }), 404, 'not_found');
    ok(!contact_entry($g, $a), 'no request reached the blocker');

    is($s->json_req(POST => '/v1/blocks', { user_id => $h->{user}{id} }, $a->{access_token})
         ->res->code, 201, 'a blocks h');
    is_error(request_contact($a, { user_id => $h->{user}{id} }), 409, 'blocked');
    is_error(request_contact($a, { username => $h->{user}{username} }), 409, 'blocked');
    is_error(request_contact($h, { user_id => $a->{user}{id} }), 404, 'not_found');
    ok(!contact_entry($h, $a) && !contact_entry($a, $h), 'no request either way');
};

my $x = fresh();
my $good = { user_id => $phoned->{user}{id} };
run_cases($s, [
    { name => 'list without a token', path => '/v1/contacts', status => 401, code => 'unauthorized' },
    { name => 'request without a token', method => 'POST', path => '/v1/contacts', body => $good,
      status => 401, code => 'unauthorized' },
    { name => 'accept without a token', method => 'POST',
      path => "/v1/contacts/$me->{user}{id}/accept", status => 401, code => 'unauthorized' },
    { name => 'delete without a token', method => 'DELETE',
      path => "/v1/contacts/$me->{user}{id}", status => 401, code => 'unauthorized' },
    { name => 'request yourself by user_id', method => 'POST', path => '/v1/contacts',
      body => { user_id => $x->{user}{id} }, token => $x->{access_token},
      status => 422, code => 'invalid_field' },
    { name => 'request yourself by username', method => 'POST', path => '/v1/contacts',
      body => { username => $x->{user}{username} }, token => $x->{access_token},
      status => 422, code => 'invalid_field' },
    { name => 'request yourself by phone', method => 'POST', path => '/v1/contacts',
      body => { phone => $phone_a }, token => $phoned->{access_token},
      status => 422, code => 'invalid_field' },
    { name => 'request with none of the keys', method => 'POST', path => '/v1/contacts',
      body => {}, token => $x->{access_token}, status => 422, code => 'invalid_field' },
    { name => 'request with only unknown keys', method => 'POST', path => '/v1/contacts',
      body => { email => $me->{email} }, token => $x->{access_token},
      status => 422, code => 'invalid_field' },
    { name => 'request with user_id and username', method => 'POST', path => '/v1/contacts',
      body => { user_id => $me->{user}{id}, username => $me->{user}{username} },
      token => $x->{access_token}, status => 422, code => 'invalid_field' },
    { name => 'request with all three keys', method => 'POST', path => '/v1/contacts',
      body => { user_id => $me->{user}{id}, username => $me->{user}{username}, phone => $phone_a },
      token => $x->{access_token}, status => 422, code => 'invalid_field' },
    { name => 'request with user_id not a UUID', method => 'POST', path => '/v1/contacts',
      body => { user_id => 'abc' }, token => $x->{access_token},
      status => 422, code => 'invalid_field', field => 'user_id' },
    { name => 'request with user_id a number', method => 'POST', path => '/v1/contacts',
      body => { user_id => 5 }, token => $x->{access_token},
      status => 422, code => 'invalid_field', field => 'user_id' },
    { name => 'request with a bad username', method => 'POST', path => '/v1/contacts',
      body => { username => 'a b' }, token => $x->{access_token},
      status => 422, code => 'invalid_field', field => 'username' },
    { name => 'request with a bad phone', method => 'POST', path => '/v1/contacts',
      body => { phone => '4155550101' }, token => $x->{access_token},
      status => 422, code => 'invalid_field', field => 'phone' },
    { name => 'request an unknown user_id', method => 'POST', path => '/v1/contacts',
      body => { user_id => new_uuid() }, token => $x->{access_token},
      status => 404, code => 'not_found' },
    { name => 'request an unknown username', method => 'POST', path => '/v1/contacts',
      body => { username => uniq('nobody') }, token => $x->{access_token},
      status => 404, code => 'not_found' },
    { name => 'request an unknown phone', method => 'POST', path => '/v1/contacts',
      body => { phone => '+14155550199' }, token => $x->{access_token},
      status => 404, code => 'not_found' },
    { name => 'request with a text body', method => 'POST', path => '/v1/contacts',
      raw => 'user_id=1', headers => { 'Content-Type' => 'text/plain' },
      token => $x->{access_token}, status => 415, code => 'unsupported_media_type' },
    { name => 'request with bad JSON', method => 'POST', path => '/v1/contacts',
      raw => '{"user_id":', token => $x->{access_token}, status => 400, code => 'invalid_json' },
    { name => 'PUT /v1/contacts', method => 'PUT', path => '/v1/contacts', body => $good,
      token => $x->{access_token}, status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/^(?=.*\bGET\b)(?=.*\bPOST\b)/ } },
    { name => 'GET /v1/contacts/{id}/accept', path => "/v1/contacts/$me->{user}{id}/accept",
      token => $x->{access_token}, status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/\bPOST\b/ } },
    { name => 'GET /v1/contacts/{id}', path => "/v1/contacts/$me->{user}{id}",
      token => $x->{access_token}, status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/\bDELETE\b/ } },
    { name => 'POST /v1/users/search', method => 'POST', path => '/v1/users/search?q=ab',
      body => {}, token => $x->{access_token}, status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/\bGET\b/ } },
]);

$s->stop;
done_testing;
