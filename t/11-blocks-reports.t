# Blocking and reporting: GET/POST /v1/blocks, DELETE /v1/blocks/{id},
# POST /v1/reports; what a block does to contacts, conversations and
# messages (docs/api.md, issue 3).
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases check_json_response body_json is_error uniq
                     uuid_re new_uuid);

my $s = Famcall::Test->new;
my $TS_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;

sub fresh { $s->signup(display_name => shift // 'User ' . uniq('d')) }

sub req {
    my ($method, $path, $body, $user) = @_;
    return $s->json_req($method, $path, $body, $user->{access_token});
}

sub block   { req(POST => '/v1/blocks', { user_id => $_[1]{user}{id} }, $_[0]) }
sub unblock { req(DELETE => "/v1/blocks/$_[1]{user}{id}", undef, $_[0]) }

sub list_of {
    my ($user, $what) = @_;
    my $tx = req(GET => "/v1/$what", undef, $user);
    is($tx->res->code, 200, "GET /v1/$what 200") or diag($tx->res->body);
    return (body_json($tx) // {})->{$what} // [];
}

sub has_contact {
    my ($user, $other) = @_;
    return scalar grep { ($_->{user}{id} // '') eq $other->{user}{id} } @{ list_of($user, 'contacts') };
}

sub public_user_ok {
    my ($u, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_deeply($u, { map { $_ => $want->{user}{$_} } qw(id username display_name avatar_url) },
              "$name: the public user (no email or phone)");
}

sub message_ok {
    my ($tx, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($tx->res->code, $want, "$name: $want") or diag($tx->res->body);
    return body_json($tx) // {};
}

#==========================================================================
# Blocks
#==========================================================================

subtest 'block, list, unblock' => sub {
    my ($a, $b, $c) = (fresh(), fresh('Bea'), fresh('Cid'));
    is_deeply(list_of($a, 'blocks'), [], 'no blocks at first');

    my $tx = block($a, $b);
    is($tx->res->code, 201, 'block: 201') or return diag($tx->res->body);
    check_json_response($tx, {});
    my $j = body_json($tx);
    is_deeply([sort keys %$j], [qw(created_at user)], 'user and created_at');
    public_user_ok($j->{user}, $b, 'block');
    like($j->{created_at} // '', $TS_RE, 'created_at RFC 3339 UTC');

    $tx = block($a, $b);
    is($tx->res->code, 200, 'block again: 200') or diag($tx->res->body);
    is((body_json($tx) // {})->{created_at}, $j->{created_at}, 'the same block');

    is(block($a, $c)->res->code, 201, 'block another');
    my $list = list_of($a, 'blocks');
    is_deeply([map { $_->{user}{id} } @$list], [$c->{user}{id}, $b->{user}{id}], 'newest first');
    public_user_ok($list->[1]{user}, $b, 'list entry');
    is_deeply([sort keys %{ $list->[1] }], [qw(created_at user)], 'list entry keys');
    is_deeply(list_of($b, 'blocks'), [], "the blocked user's own list is empty");

    $tx = unblock($a, $b);
    is($tx->res->code, 204, 'unblock: 204');
    check_json_response($tx, {});
    is_error(unblock($a, $b), 404, 'not_found');
    is_deeply([map { $_->{user}{id} } @{ list_of($a, 'blocks') }], [$c->{user}{id}], 'one left');
    is_error(unblock($c, $a), 404, 'not_found');
    note('the blocked user cannot lift the block');
    is_deeply([map { $_->{user}{id} } @{ list_of($a, 'blocks') }], [$c->{user}{id}], 'still blocked');

    is($s->psql("select count(*) from blocks where blocker_id = '$a->{user}{id}'"), 1, 'one row');
};

subtest 'both may block each other' => sub {
    my ($a, $b) = (fresh(), fresh());
    is(block($a, $b)->res->code, 201, 'a blocks b');
    is(block($b, $a)->res->code, 201, 'b blocks a too');
    is(unblock($a, $b)->res->code, 204, 'a unblocks');
    is_error(req(POST => '/v1/contacts', { user_id => $a->{user}{id} }, $b), 409, 'blocked');
    is_error(req(POST => '/v1/contacts', { user_id => $b->{user}{id} }, $a), 404, 'not_found');
};

subtest 'blocking removes the contact or request both ways' => sub {
    my ($a, $b, $c, $d) = map { fresh() } 1 .. 4;
    $s->befriend($a, $b);
    ok(has_contact($a, $b) && has_contact($b, $a), 'contacts');
    is(block($b, $a)->res->code, 201, 'b blocks a');
    ok(!has_contact($a, $b), "gone from the blocked user's list");
    ok(!has_contact($b, $a), "gone from the blocker's list");

    is(req(POST => '/v1/contacts', { user_id => $c->{user}{id} }, $a)->res->code, 201, 'a asks c');
    is(block($a, $c)->res->code, 201, 'a blocks c (outgoing request)');
    ok(!has_contact($a, $c) && !has_contact($c, $a), 'the request is gone for both');

    is(req(POST => '/v1/contacts', { user_id => $a->{user}{id} }, $d)->res->code, 201, 'd asks a');
    is(block($a, $d)->res->code, 201, 'a blocks d (incoming request)');
    ok(!has_contact($a, $d) && !has_contact($d, $a), 'the request is gone for both');
    is($s->psql("select count(*) from contacts where '$a->{user}{id}' in (user_id, contact_id)"),
       0, 'no contact rows left');
};

subtest 'a block stops messages and conversations both ways; history stays readable' => sub {
    my ($a, $b) = (fresh(), fresh());
    $s->befriend($a, $b);
    my $conv = $s->open_conversation($a, $b)->{id};
    message_ok($s->send_message($a, $conv, 'hello b'), 201, 'a writes');
    message_ok($s->send_message($b, $conv, 'hello a'), 201, 'b writes');

    is(block($a, $b)->res->code, 201, 'a blocks b');
    for ([ 'the blocker', $a, $b ], [ 'the blocked user', $b, $a ]) {
        my ($who, $me, $peer) = @$_;
        is_error($s->send_message($me, $conv, 'still there?'), 403, 'blocked');
        is_error(req(POST => '/v1/conversations', { user_id => $peer->{user}{id} }, $me),
                 403, 'blocked');
        my $tx = req(GET => "/v1/conversations/$conv/messages", undef, $me);
        is($tx->res->code, 200, "$who can still read the conversation") or diag($tx->res->body);
        is_deeply([map { $_->{body} } @{ (body_json($tx) // {})->{messages} // [] }],
                  ['hello b', 'hello a'], "$who sees the history");
    }
    is_error(req(POST => '/v1/contacts', { user_id => $a->{user}{id} }, $b), 404, 'not_found');
    is_error(req(POST => '/v1/contacts', { user_id => $b->{user}{id} }, $a), 409, 'blocked');
    is($s->psql("select count(*) from messages where conversation_id = '$conv'"), 2,
       'nothing stored while blocked');

    # After the block is lifted they are no longer contacts: ask again.
    is(unblock($a, $b)->res->code, 204, 'a unblocks b');
    ok(!has_contact($a, $b) && !has_contact($b, $a), 'not contacts after unblocking');
    is_error($s->send_message($a, $conv, 'back?'), 403, 'not_a_contact');
    is_error($s->send_message($b, $conv, 'back?'), 403, 'not_a_contact');
    is_error(req(POST => '/v1/conversations', { user_id => $b->{user}{id} }, $a), 403, 'not_a_contact');
    my $tx = req(POST => '/v1/contacts', { user_id => $a->{user}{id} }, $b);
    is($tx->res->code, 201, 'b asks again: 201') or diag($tx->res->body);
    is((body_json($tx) // {})->{status}, 'pending', 'a new pending request');
    is(req(POST => "/v1/contacts/$b->{user}{id}/accept", undef, $a)->res->code, 200, 'a accepts');
    my $again = $s->open_conversation($b, $a);
    is($again->{id}, $conv, 'the same conversation as before');
    my $m = message_ok($s->send_message($b, $conv, 'friends again'), 201, 'b writes again');
    is($m->{seq}, 3, 'seq continues');
};

subtest 'a block by the other side stops messages too' => sub {
    my ($a, $b) = (fresh(), fresh());
    $s->befriend($a, $b);
    my $conv = $s->open_conversation($b, $a)->{id};
    is(block($b, $a)->res->code, 201, 'b blocks a');
    is_error($s->send_message($a, $conv, 'hi'), 403, 'blocked');
    is_error($s->send_message($b, $conv, 'hi'), 403, 'blocked');
    is_error(req(POST => '/v1/conversations', { user_id => $b->{user}{id} }, $a), 403, 'blocked');
    is(req(GET => "/v1/conversations/$conv/messages", undef, $a)->res->code, 200,
       'readable to the blocked user');
};

my $z = fresh();
run_cases($s, [
    { name => 'list blocks without a token', path => '/v1/blocks',
      status => 401, code => 'unauthorized' },
    { name => 'block without a token', method => 'POST', path => '/v1/blocks',
      body => { user_id => $z->{user}{id} }, status => 401, code => 'unauthorized' },
    { name => 'unblock without a token', method => 'DELETE', path => "/v1/blocks/$z->{user}{id}",
      status => 401, code => 'unauthorized' },
    { name => 'block yourself', method => 'POST', path => '/v1/blocks',
      body => { user_id => $z->{user}{id} }, token => $z->{access_token},
      status => 422, code => 'invalid_field' },
    { name => 'block an unknown user', method => 'POST', path => '/v1/blocks',
      body => { user_id => new_uuid() }, token => $z->{access_token},
      status => 404, code => 'not_found' },
    { name => 'block without user_id', method => 'POST', path => '/v1/blocks',
      body => {}, token => $z->{access_token},
      status => 422, code => 'missing_field', field => 'user_id' },
    { name => 'block with user_id null', method => 'POST', path => '/v1/blocks',
      body => { user_id => undef }, token => $z->{access_token},
      status => 422, code => 'missing_field', field => 'user_id' },
    { name => 'block with user_id not a UUID', method => 'POST', path => '/v1/blocks',
      body => { user_id => 'someone' }, token => $z->{access_token},
      status => 422, code => 'invalid_field', field => 'user_id' },
    { name => 'block with user_id a number', method => 'POST', path => '/v1/blocks',
      body => { user_id => 12 }, token => $z->{access_token},
      status => 422, code => 'invalid_field', field => 'user_id' },
    { name => 'block with a JSON array', method => 'POST', path => '/v1/blocks',
      raw => '[]', token => $z->{access_token}, status => 400, code => 'invalid_json' },
    { name => 'unblock a non-UUID', method => 'DELETE', path => '/v1/blocks/nobody',
      token => $z->{access_token}, status => 404, code => 'not_found' },
    { name => 'unblock an unknown user', method => 'DELETE', path => '/v1/blocks/' . new_uuid(),
      token => $z->{access_token}, status => 404, code => 'not_found' },
    { name => 'unblock yourself', method => 'DELETE', path => "/v1/blocks/$z->{user}{id}",
      token => $z->{access_token}, status => 404, code => 'not_found' },
    { name => 'GET /v1/blocks/{id}', path => "/v1/blocks/$z->{user}{id}",
      token => $z->{access_token}, status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/\bDELETE\b/ } },
    { name => 'GET /v1/reports', path => '/v1/reports',
      token => $z->{access_token}, status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/\bPOST\b/ } },
]);

#==========================================================================
# Reports
#==========================================================================

sub report { req(POST => '/v1/reports', $_[1], $_[0]) }

sub report_ok {
    my ($tx, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $j;
    subtest $name => sub {
        is($tx->res->code, 201, 'status 201') or return diag($tx->res->body);
        check_json_response($tx, {});
        $j = body_json($tx);
        is_deeply([sort keys %$j], [sort qw(id user_id reason text message_id created_at)],
                  'the documented keys');
        like($j->{id} // '', uuid_re, 'id is a UUID string');
        like($j->{created_at} // '', $TS_RE, 'created_at RFC 3339 UTC');
        is($j->{$_}, $want->{$_}, $_) for qw(user_id reason text message_id);
    };
    return $j // {};
}

# The stored row: reporter|reported|reason|text|message_id
sub report_row {
    my ($id) = @_;
    return $s->psql("select reporter_id, reported_id, reason, coalesce(body, '<null>'), "
                  . "coalesce(message_id::text, '<null>') from reports where id = '$id'");
}

my ($ra, $rb, $rc) = (fresh(), fresh(), fresh());
$s->befriend($ra, $rb);
$s->befriend($rb, $rc);
my $conv_ab = $s->open_conversation($ra, $rb)->{id};
my $conv_bc = $s->open_conversation($rb, $rc)->{id};
my $msg_b  = body_json($s->send_message($rb, $conv_ab, 'buy cheap stuff')) // {};
my $msg_a  = body_json($s->send_message($ra, $conv_ab, 'no thanks')) // {};
my $msg_bc = body_json($s->send_message($rb, $conv_bc, 'to c')) // {};
ok($msg_b->{id} && $msg_a->{id} && $msg_bc->{id}, 'messages to report exist');

subtest 'report a user' => sub {
    my $j = report_ok(report($ra, { user_id => $rb->{user}{id}, reason => 'spam' }),
        { user_id => $rb->{user}{id}, reason => 'spam', text => undef, message_id => undef },
        'reason only');
    is(report_row($j->{id}), "$ra->{user}{id}|$rb->{user}{id}|spam|<null>|<null>", 'stored');

    for my $reason (qw(harassment inappropriate impersonation other)) {
        report_ok(report($ra, { user_id => $rb->{user}{id}, reason => $reason }),
            { user_id => $rb->{user}{id}, reason => $reason, text => undef, message_id => undef },
            "reason $reason");
    }

    my $text = "Keeps sending links \x{1F620}\nagain and again";
    $j = report_ok(report($ra, { user_id => $rb->{user}{id}, reason => 'other', text => $text }),
        { user_id => $rb->{user}{id}, reason => 'other', text => $text, message_id => undef },
        'with text');
    my $row = report_row($j->{id});
    utf8::decode($row);
    is($row, "$ra->{user}{id}|$rb->{user}{id}|other|$text|<null>", 'stored with the text');

    report_ok(report($ra, { user_id => $rb->{user}{id}, reason => 'other', text => 'é' x 2000 }),
        { user_id => $rb->{user}{id}, reason => 'other', text => 'é' x 2000, message_id => undef },
        'text of 2000 (two-byte) characters');

    report_ok(report($rc, { user_id => $ra->{user}{id}, reason => 'impersonation' }),
        { user_id => $ra->{user}{id}, reason => 'impersonation', text => undef, message_id => undef },
        'a stranger can be reported');
};

subtest 'report with a message' => sub {
    my $j = report_ok(report($ra, { user_id => $rb->{user}{id}, reason => 'spam',
                                    message_id => $msg_b->{id} }),
        { user_id => $rb->{user}{id}, reason => 'spam', text => undef, message_id => $msg_b->{id} },
        "the reported user's message in a shared conversation");
    is(report_row($j->{id}), "$ra->{user}{id}|$rb->{user}{id}|spam|<null>|$msg_b->{id}", 'stored');

    report_ok(report($rb, { user_id => $ra->{user}{id}, reason => 'harassment',
                            message_id => $msg_a->{id} }),
        { user_id => $ra->{user}{id}, reason => 'harassment', text => undef, message_id => $msg_a->{id} },
        'the other side reports back');

    my $count = $s->psql('select count(*) from reports');
    is_error(report($ra, { user_id => $rb->{user}{id}, reason => 'spam', message_id => $msg_a->{id} }),
             404, 'not_found');
    note('a message not sent by the reported user (the reporter\'s own)');
    is_error(report($ra, { user_id => $rb->{user}{id}, reason => 'spam', message_id => $msg_bc->{id} }),
             404, 'not_found');
    note('a message of the reported user in a conversation the reporter is not in');
    is_error(report($rc, { user_id => $ra->{user}{id}, reason => 'spam', message_id => $msg_a->{id} }),
             404, 'not_found');
    note('a third user with a message of a conversation they are not in');
    is_error(report($ra, { user_id => $rb->{user}{id}, reason => 'spam', message_id => new_uuid() }),
             404, 'not_found');
    note('a message that does not exist');
    is($s->psql('select count(*) from reports'), $count, 'none of them stored');

    my $tx = report($ra, { user_id => $rb->{user}{id}, reason => 'spam', message_id => undef });
    is($tx->res->code, 201, 'message_id null: a report without a message');
    $tx = report($ra, { user_id => $rb->{user}{id}, reason => 'spam', text => undef });
    is($tx->res->code, 201, 'text null: a report without text');
};

subtest 'block and report' => sub {
    my ($a, $b) = (fresh(), fresh());
    $s->befriend($a, $b);
    my $conv = $s->open_conversation($a, $b)->{id};
    my $m = body_json($s->send_message($b, $conv, 'nasty')) // {};
    is(block($a, $b)->res->code, 201, 'a blocks b');
    report_ok(report($a, { user_id => $b->{user}{id}, reason => 'harassment', message_id => $m->{id} }),
        { user_id => $b->{user}{id}, reason => 'harassment', text => undef, message_id => $m->{id} },
        'a reports b (and the message) after blocking');
};

my %rep = (user_id => $rb->{user}{id}, reason => 'spam');
my $rtok = $ra->{access_token};
my @report_bad = (
    { name => 'report without a token', body => {%rep}, token => undef,
      status => 401, code => 'unauthorized' },
    { name => 'report yourself', body => { %rep, user_id => $ra->{user}{id} },
      status => 422, code => 'invalid_field' },
    { name => 'report an unknown user', body => { %rep, user_id => new_uuid() },
      status => 404, code => 'not_found' },
    { name => 'report without user_id', body => { reason => 'spam' },
      status => 422, code => 'missing_field', field => 'user_id' },
    { name => 'report with user_id not a UUID', body => { %rep, user_id => 'bob' },
      status => 422, code => 'invalid_field', field => 'user_id' },
    { name => 'report without reason', body => { user_id => $rb->{user}{id} },
      status => 422, code => 'missing_field', field => 'reason' },
    { name => 'report with reason null', body => { %rep, reason => undef },
      status => 422, code => 'missing_field', field => 'reason' },
    (map { +{ name => "report with reason '$_'", body => { %rep, reason => $_ },
              status => 422, code => 'invalid_field', field => 'reason' } }
     'abuse', 'SPAM', ' spam', '', 'spam,other'),
    { name => 'report with reason a number', body => { %rep, reason => 1 },
      status => 422, code => 'invalid_field', field => 'reason' },
    { name => 'report with text of 2001 characters', body => { %rep, text => 'x' x 2001 },
      status => 422, code => 'invalid_field', field => 'text' },
    { name => 'report with text a number', body => { %rep, text => 5 },
      status => 422, code => 'invalid_field', field => 'text' },
    { name => 'report with message_id not a UUID', body => { %rep, message_id => '42' },
      status => 422, code => 'invalid_field', field => 'message_id' },
    { name => 'report with message_id a number', body => { %rep, message_id => 42 },
      status => 422, code => 'invalid_field', field => 'message_id' },
);
my $before = $s->psql('select count(*) from reports');
run_cases($s, [ map { +{ method => 'POST', path => '/v1/reports',
                         token => exists $_->{token} ? $_->{token} : $rtok, %$_ } } @report_bad ]);
is($s->psql('select count(*) from reports'), $before, 'no report stored by the bad requests');

$s->stop;
done_testing;
