# 1:1 conversations: POST /v1/conversations (open, also from both sides at
# once) and GET /v1/conversations (peer, last message, unread count, order by
# activity) (docs/api.md, issue 3).
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::Promise;
use Famcall::Test qw(run_cases check_json_response body_json is_error uniq
                     uuid_re new_uuid);

my $s = Famcall::Test->new(workers => 4);    # races across workers too
my $TS_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;

sub fresh { $s->signup(display_name => shift // 'User ' . uniq('d')) }

sub open_tx {
    my ($me, $other) = @_;
    return $s->json_req(POST => '/v1/conversations', { user_id => $other->{user}{id} },
                        $me->{access_token});
}

sub conversations_of {
    my ($user) = @_;
    my $tx = $s->json_req(GET => '/v1/conversations', undef, $user->{access_token});
    is($tx->res->code, 200, 'GET /v1/conversations 200') or diag($tx->res->body);
    return (body_json($tx) // {})->{conversations} // [];
}

sub conversation_in {
    my ($user, $id) = @_;
    my ($c) = grep { ($_->{id} // '') eq $id } @{ conversations_of($user) };
    return $c;
}

sub conversation_ok {
    my ($c, $peer, $name, %want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest "$name: conversation object" => sub {
        ok(ref $c eq 'HASH', 'an object') or return;
        is_deeply([sort keys %$c],
                  [sort qw(id kind peer last_seq last_read_seq unread_count last_message created_at)],
                  'the documented keys');
        like($c->{id} // '', uuid_re, 'id is a UUID string');
        is($c->{kind}, '1:1', 'kind 1:1');
        is_deeply($c->{peer}, { map { $_ => $peer->{user}{$_} } qw(id username display_name avatar_url) },
                  'peer: the public user (no email or phone)');
        like($c->{created_at} // '', $TS_RE, 'created_at RFC 3339 UTC');
        for my $k (sort keys %want) {
            if (ref $want{$k} eq 'CODE') { $want{$k}->($c->{$k}) }
            else                         { is_deeply($c->{$k}, $want{$k}, $k) }
        }
    };
}

sub send_ok {
    my ($user, $conv, $body) = @_;
    my $tx = $s->send_message($user, $conv, $body);
    is($tx->res->code, 201, "sent '$body'") or diag($tx->res->body);
    return body_json($tx) // {};
}

#==========================================================================

subtest 'only accepted contacts open a conversation' => sub {
    my ($a, $b, $c) = (fresh(), fresh(), fresh());
    is_error(open_tx($a, $b), 403, 'not_a_contact');
    $s->json_req(POST => '/v1/contacts', { user_id => $b->{user}{id} }, $a->{access_token});
    is_error(open_tx($a, $b), 403, 'not_a_contact');
    note('pending, from the requester');
    is_error(open_tx($b, $a), 403, 'not_a_contact');
    note('pending, from the recipient');
    is_error(open_tx($a, $c), 403, 'not_a_contact');
    is($s->psql('select count(*) from conversations'), 0, 'no conversation created');
    is_deeply(conversations_of($a), [], 'none listed');
};

subtest 'open: 201, then 200 with the same id from both sides' => sub {
    my ($a, $b) = (fresh('Alma'), fresh('Bodo'));
    $s->befriend($a, $b);
    my $tx = open_tx($a, $b);
    is($tx->res->code, 201, 'first open: 201') or return diag($tx->res->body);
    check_json_response($tx, {});
    my $c = body_json($tx);
    conversation_ok($c, $b, 'opened', last_seq => 0, last_read_seq => 0, unread_count => 0,
                    last_message => undef);
    like($tx->res->body, qr/"last_seq"\s*:\s*0\b/, 'last_seq is a JSON number');

    $tx = open_tx($a, $b);
    is($tx->res->code, 200, 'again: 200') or diag($tx->res->body);
    is((body_json($tx) // {})->{id}, $c->{id}, 'same id');
    $tx = open_tx($b, $a);
    is($tx->res->code, 200, 'from the other side: 200') or diag($tx->res->body);
    conversation_ok(body_json($tx), $a, "the other side's view", id => $c->{id});

    my $uc = open_tx($a, { user => { id => uc $b->{user}{id} } });
    is($uc->res->code, 200, 'user_id in upper case: the same (200)') or diag($uc->res->body);
    is((body_json($uc) // {})->{id}, $c->{id}, 'same id');

    is($s->psql("select count(*) from conversations where id = '$c->{id}'"), 1, 'one row');
    is($s->psql("select count(*) from conversation_members where conversation_id = '$c->{id}'"),
       2, 'two members');

    conversation_ok(conversation_in($a, $c->{id}), $b, "in a's list", created_at => $c->{created_at});
    conversation_ok(conversation_in($b, $c->{id}), $a, "in b's list", created_at => $c->{created_at});
    unlike($s->json_req(GET => '/v1/conversations', undef, $a->{access_token})->res->body,
           qr/"(?:email|phone)"|example\.com/, 'no email or phone in the list');

    # After the contact is removed, the conversation cannot be opened again.
    is($s->json_req(DELETE => "/v1/contacts/$a->{user}{id}", undef, $b->{access_token})->res->code,
       204, 'b removes a');
    is_error(open_tx($a, $b), 403, 'not_a_contact');
    is_error(open_tx($b, $a), 403, 'not_a_contact');
};

subtest 'both open at the same moment: one conversation' => sub {
    for my $round (1 .. 8) {
        my ($a, $b) = (fresh(), fresh());
        $s->befriend($a, $b);
        my @p = map {
            my ($me, $other) = @$_;
            $s->ua->post_p('/v1/conversations' => { Authorization => "Bearer $me->{access_token}" }
                           => json => { user_id => $other->{user}{id} })
              ->then(sub { [ $_[0]->res->code // 0, (body_json($_[0]) // {})->{id} // '' ] },
                     sub { [ "error: @_", '' ] });
        } ([$a, $b], [$b, $a], [$a, $b], [$b, $a]);
        my @res;
        Mojo::Promise->all(@p)->then(sub { @res = map { $_->[0] } @_ })->wait;
        my @codes = sort map { $_->[0] } @res;
        my %ids = map { $_->[1] => 1 } @res;
        is_deeply(\@codes, [200, 200, 200, 201], "round $round: one 201, three 200")
            or diag(explain \@res);
        is(scalar keys %ids, 1, "round $round: the same id for all") or diag(explain \@res);
        my $lo = $a->{user}{id} lt $b->{user}{id} ? $a : $b;
        my $hi = $lo == $a ? $b : $a;
        is($s->psql("select count(*) from conversations where user_lo = '$lo->{user}{id}' "
                  . "and user_hi = '$hi->{user}{id}'"), 1, "round $round: one row");
        is($s->psql("select count(*) from conversation_members m join conversations c "
                  . "on c.id = m.conversation_id where c.user_lo = '$lo->{user}{id}'"
                  . " and c.user_hi = '$hi->{user}{id}'"), 2, "round $round: two members");
    }
};

subtest 'list: peer, last message, unread count, most recent activity first' => sub {
    my ($a, $b, $c, $d, $e) = (fresh('Ada'), fresh('Bob'), fresh('Cyd'), fresh('Dee'), fresh('Eve'));
    $s->befriend($a, $_) for $b, $c, $d;
    $s->befriend($b, $e);
    is_deeply(conversations_of($a), [], 'none at first');

    # Created in the order d, c, b.
    my %id;
    $id{d} = $s->open_conversation($a, $d)->{id};
    $id{c} = $s->open_conversation($c, $a)->{id};
    $id{b} = $s->open_conversation($a, $b)->{id};
    my $be = $s->open_conversation($b, $e)->{id};
    my $order = sub { [ map { $_->{peer}{display_name} } @{ conversations_of($_[0]) } ] };
    is_deeply($order->($a), [qw(Bob Cyd Dee)], 'without messages: newest first');

    my $m1 = send_ok($d, $id{d}, 'from dee');
    is_deeply($order->($a), [qw(Dee Bob Cyd)], 'a message moves it to the top');
    my $m2 = send_ok($a, $id{c}, 'to cyd');
    is_deeply($order->($a), [qw(Cyd Dee Bob)], 'also a message of our own');
    is_deeply($order->($c), [qw(Ada)], "c's list");
    is_deeply($order->($b), [qw(Eve Ada)], "b's list: only b's conversations");
    is_deeply($order->($e), [qw(Bob)], "e's list");

    my @from_b = map { send_ok($b, $id{b}, "b says $_") } 1 .. 3;
    is_deeply($order->($a), [qw(Bob Cyd Dee)], 'Bob on top');
    conversation_ok(conversation_in($a, $id{b}), $b, "a's view after 3 from b",
        last_seq => 3, last_read_seq => 0, unread_count => 3, last_message => $from_b[2]);
    conversation_ok(conversation_in($b, $id{b}), $a, "b's view (the sender)",
        last_seq => 3, unread_count => 0, last_message => $from_b[2]);
    conversation_ok(conversation_in($d, $id{d}), $a, "d's view (the sender)",
        last_seq => 1, unread_count => 0, last_message => $m1);
    conversation_ok(conversation_in($a, $id{d}), $d, "a's view of d",
        last_seq => 1, last_read_seq => 0, unread_count => 1, last_message => $m1);
    conversation_ok(conversation_in($a, $id{c}), $c, "a's view of c (own message)",
        last_seq => 1, unread_count => 0, last_message => $m2);
    conversation_ok(conversation_in($c, $id{c}), $a, "c's view of a",
        last_seq => 1, last_read_seq => 0, unread_count => 1, last_message => $m2);

    my $tx = $s->json_req(POST => "/v1/conversations/$id{b}/read", { up_to_seq => 2 },
                          $a->{access_token});
    is($tx->res->code, 204, 'a reads up to 2') or diag($tx->res->body);
    my $cv = conversation_in($a, $id{b});
    conversation_ok($cv, $b, "a's view after reading 2", last_seq => 3, last_read_seq => 2,
                    unread_count => 1);
    is($cv->{last_message}{id}, $from_b[2]{id}, 'last message still the third');
    is($cv->{last_message}{read_at}, undef, 'the third is not read');
    is_deeply($order->($a), [qw(Bob Cyd Dee)], 'reading does not reorder');

    my $mine = send_ok($a, $id{b}, 'a answers');
    $cv = conversation_in($a, $id{b});
    is($cv->{last_seq}, 4, 'last_seq 4');
    is($cv->{last_message}{id}, $mine->{id}, 'last_message is ours');
    is($cv->{unread_count}, 1, 'our own message does not count as unread');
    $cv = conversation_in($b, $id{b});
    is($cv->{unread_count}, 1, 'b has one unread');
    is($cv->{last_read_seq}, 0, "b's pointer did not move");
};

my $u = fresh();
my $v = fresh();
$s->befriend($u, $v);
run_cases($s, [
    { name => 'list without a token', path => '/v1/conversations',
      status => 401, code => 'unauthorized' },
    { name => 'open without a token', method => 'POST', path => '/v1/conversations',
      body => { user_id => $v->{user}{id} }, status => 401, code => 'unauthorized' },
    { name => 'open with yourself', method => 'POST', path => '/v1/conversations',
      body => { user_id => $u->{user}{id} }, token => $u->{access_token},
      status => 422, code => 'invalid_field' },
    { name => 'open with an unknown user', method => 'POST', path => '/v1/conversations',
      body => { user_id => new_uuid() }, token => $u->{access_token},
      status => 404, code => 'not_found' },
    { name => 'open without user_id', method => 'POST', path => '/v1/conversations',
      body => {}, token => $u->{access_token},
      status => 422, code => 'missing_field', field => 'user_id' },
    { name => 'open with user_id null', method => 'POST', path => '/v1/conversations',
      body => { user_id => undef }, token => $u->{access_token},
      status => 422, code => 'missing_field', field => 'user_id' },
    { name => 'open with user_id not a UUID', method => 'POST', path => '/v1/conversations',
      body => { user_id => $v->{user}{username} }, token => $u->{access_token},
      status => 422, code => 'invalid_field', field => 'user_id' },
    { name => 'open with user_id an array', method => 'POST', path => '/v1/conversations',
      body => { user_id => [ $v->{user}{id} ] }, token => $u->{access_token},
      status => 422, code => 'invalid_field', field => 'user_id' },
    { name => 'open with an empty JSON body', method => 'POST', path => '/v1/conversations',
      raw => '', token => $u->{access_token}, status => 400, code => 'invalid_json' },
    { name => 'open with a form body', method => 'POST', path => '/v1/conversations',
      raw => "user_id=$v->{user}{id}",
      headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
      token => $u->{access_token}, status => 415, code => 'unsupported_media_type' },
    { name => 'DELETE /v1/conversations', method => 'DELETE', path => '/v1/conversations',
      token => $u->{access_token}, status => 405, code => 'method_not_allowed' },
]);
is($s->psql("select count(*) from conversations c join conversation_members m "
          . "on m.conversation_id = c.id where m.user_id = '$u->{user}{id}'"), 0,
   'none of the bad requests opened a conversation');

$s->stop;
done_testing;
