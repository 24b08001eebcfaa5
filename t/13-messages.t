# Messages: POST/GET /v1/conversations/{id}/messages, POST
# /v1/conversations/{id}/read: the message shape, idempotent client_id (also
# under concurrency), gap-free seq under concurrent senders, every kind of bad
# input, pagination, delivered/read marks, and what a non-member can learn
# (docs/api.md, issue 3).
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::Promise;
use Mojo::JSON qw(encode_json);
use Famcall::Test qw(run_cases check_json_response body_json is_error uniq
                     uuid_re new_uuid);

my $s = Famcall::Test->new(workers => 4);    # races across workers too
my $TS_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;

sub fresh { $s->signup(display_name => shift // 'User ' . uniq('d')) }

# Two accepted contacts and their conversation id.
sub pair {
    my ($ann, $bob) = (fresh(), fresh());
    $s->befriend($ann, $bob);
    return ($ann, $bob, $s->open_conversation($ann, $bob)->{id});
}

sub send_ok {
    my ($user, $conv, $body, $cid) = @_;
    my $tx = $s->send_message($user, $conv, $body, $cid);
    is($tx->res->code, 201, "sent '" . substr($body, 0, 20) . "'") or diag($tx->res->body);
    return body_json($tx) // {};
}

sub list_tx {
    my ($user, $conv, $query) = @_;
    return $s->json_req(GET => "/v1/conversations/$conv/messages" . ($query ? "?$query" : ''),
                        undef, $user->{access_token});
}

sub messages {
    my ($user, $conv, $query) = @_;
    my $tx = list_tx($user, $conv, $query);
    is($tx->res->code, 200, 'GET messages' . ($query ? "?$query" : '') . ': 200')
        or diag($tx->res->body);
    return (body_json($tx) // {})->{messages} // [];
}

sub seqs { [ map { $_->{seq} } @{ messages(@_) } ] }

sub read_tx {
    my ($user, $conv, $up_to) = @_;
    return $s->json_req(POST => "/v1/conversations/$conv/read", { up_to_seq => $up_to },
                        $user->{access_token});
}

sub conversation_in {
    my ($user, $id) = @_;
    my $tx = $s->json_req(GET => '/v1/conversations', undef, $user->{access_token});
    my ($c) = grep { ($_->{id} // '') eq $id } @{ (body_json($tx) // {})->{conversations} // [] };
    return $c // {};
}

sub by_seq { my %m = map { $_->{seq} => $_ } @{ $_[0] }; \%m }

sub count_in { $s->psql("select count(*) from messages where conversation_id = '$_[0]'") }

my ($ann, $bob, $conv) = pair();
my $cat = fresh();                 # a contact of ann, not in ann's conversation with bob
$s->befriend($ann, $cat);
my $conv_ac = $s->open_conversation($ann, $cat)->{id};

#==========================================================================
# Sending
#==========================================================================

my $cid1 = new_uuid();
my $m1;

subtest 'send: 201 and the message' => sub {
    my $body = "Hello 👋\nsecond line, \"quoted\" and  spaced ";
    my $tx = $s->send_message($ann, $conv, $body, $cid1);
    is($tx->res->code, 201, 'status 201') or return diag($tx->res->body);
    check_json_response($tx, {});
    $m1 = body_json($tx);
    is_deeply([sort keys %$m1],
              [sort qw(id conversation_id seq sender_id client_id body sent_at delivered_at read_at)],
              'the documented keys');
    like($m1->{id} // '', uuid_re, 'id is a UUID');
    is($m1->{conversation_id}, $conv, 'conversation_id');
    is($m1->{seq}, 1, 'seq 1');
    like($tx->res->body, qr/"seq"\s*:\s*1\s*[,}]/, 'seq is a JSON number');
    like($tx->res->body, qr/"id"\s*:\s*"/, 'id is a JSON string');
    like($tx->res->body, qr/"sender_id"\s*:\s*"/, 'sender_id is a JSON string');
    like($tx->res->body, qr/"conversation_id"\s*:\s*"/, 'conversation_id is a JSON string');
    is($m1->{sender_id}, $ann->{user}{id}, 'sender_id');
    is($m1->{client_id}, $cid1, 'client_id');
    is($m1->{body}, $body, 'body exactly as sent');
    like($m1->{sent_at} // '', $TS_RE, 'sent_at RFC 3339 UTC');
    if (($m1->{sent_at} // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/) {
        require Time::Local;
        cmp_ok(abs(Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1) - time), '<', 300,
               'sent_at is now');
    }
    is($m1->{delivered_at}, undef, 'delivered_at null');
    is($m1->{read_at}, undef, 'read_at null');
    like($tx->res->body, qr/"delivered_at"\s*:\s*null/, 'delivered_at is JSON null');
    my $row = $s->psql("select seq, sender_id, client_id, body from messages where id = '$m1->{id}'");
    utf8::decode($row);
    is($row, "1|$ann->{user}{id}|$cid1|$body", 'stored');
};

subtest 'a repeated client_id: 200, the same message, no gap in seq' => sub {
    my $tx = $s->send_message($ann, $conv, $m1->{body}, $cid1);
    is($tx->res->code, 200, 'same client_id again: 200') or diag($tx->res->body);
    check_json_response($tx, {});
    is_deeply(body_json($tx), $m1, 'the same message');

    $tx = $s->send_message($ann, $conv, 'another text', $cid1);
    is($tx->res->code, 200, 'same client_id, other body: 200') or diag($tx->res->body);
    is_deeply(body_json($tx), $m1, 'the first message, unchanged');

    $tx = $s->send_message($ann, $conv, $m1->{body}, uc $cid1);
    is($tx->res->code, 200, 'the client_id in upper case is the same UUID: 200')
        or diag($tx->res->body);
    is((body_json($tx) // {})->{id}, $m1->{id}, 'the same message');

    my $m2 = send_ok($ann, $conv, 'next');
    is($m2->{seq}, 2, 'the next new message is seq 2');

    my $mb = send_ok($bob, $conv, 'the other user may use the same client_id', $cid1);
    is($mb->{seq}, 3, "b's message with a's client_id is a new message (seq 3)");
    isnt($mb->{id}, $m1->{id}, 'another id');
    $tx = $s->send_message($bob, $conv, 'again', $cid1);
    is($tx->res->code, 200, "b repeats it: 200");
    is((body_json($tx) // {})->{id}, $mb->{id}, "b's own message");
    is(count_in($conv), 3, 'three rows');
};

subtest 'a client_id reused in another conversation: 409' => sub {
    my $tx = $s->send_message($ann, $conv_ac, 'elsewhere', $cid1);
    is_error($tx, 409, 'client_id_reused');
    check_json_response($tx, {});
    is(count_in($conv_ac), 0, 'nothing stored');
    is(send_ok($ann, $conv_ac, 'fresh id')->{seq}, 1, 'a new client_id there works (seq 1)');
};

subtest 'the same client_id sent 10 times at once: one message' => sub {
    for my $round (1 .. 3) {
        my $cid = new_uuid();
        my @p = map {
            $s->ua->post_p("/v1/conversations/$conv/messages"
                           => { Authorization => "Bearer $ann->{access_token}" }
                           => json => { client_id => $cid, body => "burst $round" })
              ->then(sub { [ $_[0]->res->code // 0, body_json($_[0]) // {} ] },
                     sub { [ "error: @_", {} ] });
        } 1 .. 10;
        my @res;
        Mojo::Promise->all(@p)->then(sub { @res = map { $_->[0] } @_ })->wait;
        my @codes = sort map { $_->[0] } @res;
        is_deeply(\@codes, [ 200, 200, 200, 200, 200, 200, 200, 200, 200, 201 ],
                  "round $round: one 201, nine 200") or diag(explain \@codes);
        my %ids  = map { ($_->[1]{id} // 'none') => 1 } @res;
        my %seqs = map { ($_->[1]{seq} // 'none') => 1 } @res;
        is(scalar keys %ids, 1, "round $round: every answer has the same id") or diag(explain \%ids);
        is(scalar keys %seqs, 1, "round $round: and the same seq");
        is($s->psql("select count(*) from messages where client_id = '$cid'"), 1,
           "round $round: one row");
    }
    my @all = $s->psql("select seq from messages where conversation_id = '$conv' order by seq")
              =~ /(\d+)/g;
    is_deeply(\@all, [ 1 .. scalar @all ], 'seq still gap-free');
};

subtest 'both users sending 50 each at once: seq 1..100, no gaps, no duplicates' => sub {
    my ($x, $y, $cv) = pair();
    my @p = map {
        my ($who, $i) = @$_;
        $s->ua->post_p("/v1/conversations/$cv/messages"
                       => { Authorization => "Bearer $who->{access_token}" }
                       => json => { client_id => new_uuid(), body => "n$i" })
          ->then(sub { [ $_[0]->res->code // 0, (body_json($_[0]) // {})->{seq} ] },
                 sub { [ "error: @_", undef ] });
    } map { ([$x, $_], [$y, $_]) } 1 .. 50;
    my @res;
    Mojo::Promise->all(@p)->then(sub { @res = map { $_->[0] } @_ })->wait;
    is(scalar(grep { $_->[0] eq '201' } @res), 100, 'all 100 answered 201')
        or diag(explain [ grep { $_->[0] ne '201' } @res ]);
    is_deeply([ sort { $a <=> $b } map { $_->[1] // 0 } @res ], [ 1 .. 100 ],
              'the answers carry seq 1..100, each once');
    my @db = $s->psql("select seq from messages where conversation_id = '$cv' order by seq") =~ /(\d+)/g;
    is_deeply(\@db, [ 1 .. 100 ], 'stored: seq 1..100');
    is($s->psql("select last_seq from conversations where id = '$cv'"), 100, 'last_seq 100');
    is_deeply(seqs($x, $cv, 'limit=200'), [ 1 .. 100 ], 'listed in ascending seq');
    is_deeply(seqs($x, $cv), [ 51 .. 100 ], 'no limit: the newest 50');
    is_deeply(seqs($x, $cv, 'before_seq=51'), [ 1 .. 50 ], 'the 50 before them');
};

subtest 'long and multibyte bodies' => sub {
    my ($x, $y, $cv) = pair();
    for my $case ([ '4000 ASCII characters', 'x' x 4000 ],
                  [ '4000 two-byte characters', 'é' x 4000 ],
                  [ '4000 four-byte characters (emoji)', '😀' x 4000 ],
                  [ '3999 + a combining accent', ('a' x 3999) . "\x{301}" ],
                  [ 'one character', '.' ],
                  [ 'text around blanks', "  hi\t" ]) {
        my ($name, $body) = @$case;
        my $tx = $s->send_message($x, $cv, $body);
        is($tx->res->code, 201, "$name: 201") or diag(substr $tx->res->body, 0, 300);
        my $m = body_json($tx) // {};
        ok(($m->{body} // '') eq $body, "$name: body round-trips");
    }
    my @stored = $s->psql("select length(body) from messages where conversation_id = '$cv' order by seq")
                 =~ /(\d+)/g;
    is_deeply(\@stored, [ 4000, 4000, 4000, 4000, 1, 5 ], 'stored lengths in characters');
};

my $before = count_in($conv);
my $atok = $ann->{access_token};
my $path = "/v1/conversations/$conv/messages";
my $ok_cid = new_uuid();
sub send_case {
    my ($name, $body, $status, $code, $field) = @_;
    return { name => $name, method => 'POST', path => $path, body => $body, token => $atok,
             status => $status, code => $code, (defined $field ? (field => $field) : ()) };
}
run_cases($s, [
    send_case('body empty', { client_id => new_uuid(), body => '' },
              422, 'invalid_field', 'body'),
    send_case('body of spaces', { client_id => new_uuid(), body => '    ' },
              422, 'invalid_field', 'body'),
    send_case('body of blanks and newlines', { client_id => new_uuid(), body => " \n\t\r\n " },
              422, 'invalid_field', 'body'),
    send_case('body of 4001 characters', { client_id => new_uuid(), body => 'x' x 4001 },
              422, 'invalid_field', 'body'),
    send_case('body of 4001 two-byte characters', { client_id => new_uuid(), body => 'é' x 4001 },
              422, 'invalid_field', 'body'),
    send_case('body of 4001 emoji', { client_id => new_uuid(), body => '😀' x 4001 },
              422, 'invalid_field', 'body'),
    send_case('body a number', { client_id => new_uuid(), body => 42 },
              422, 'invalid_field', 'body'),
    send_case('body true', { client_id => new_uuid(), body => \1 },
              422, 'invalid_field', 'body'),
    send_case('body an array', { client_id => new_uuid(), body => ['hi'] },
              422, 'invalid_field', 'body'),
    send_case('body an object', { client_id => new_uuid(), body => { text => 'hi' } },
              422, 'invalid_field', 'body'),
    send_case('body null', { client_id => new_uuid(), body => undef },
              422, 'missing_field', 'body'),
    send_case('body missing', { client_id => new_uuid() },
              422, 'missing_field', 'body'),
    send_case('client_id missing', { body => 'hi' }, 422, 'missing_field', 'client_id'),
    send_case('client_id null', { client_id => undef, body => 'hi' },
              422, 'missing_field', 'client_id'),
    (map { send_case("client_id '$_'", { client_id => $_, body => 'hi' },
                     422, 'invalid_field', 'client_id') }
     'abc', '', 'not-a-uuid-not-a-uuid-not-a-uuid-xx', join('', split /-/, $ok_cid),
     "{$ok_cid}", "$ok_cid ", substr($ok_cid, 0, 35) . 'g', substr($ok_cid, 0, 35)),
    send_case('client_id a number', { client_id => 12345, body => 'hi' },
              422, 'invalid_field', 'client_id'),
    { name => 'invalid UTF-8 (0xff 0xfe) in the body', method => 'POST', path => $path,
      raw => qq({"client_id":"$ok_cid","body":"a\xff\xfeb"}), token => $atok,
      status => 400, code => 'invalid_json' },
    { name => 'invalid UTF-8 (overlong /) in the body', method => 'POST', path => $path,
      raw => qq({"client_id":"$ok_cid","body":"a\xc0\xafb"}), token => $atok,
      status => 400, code => 'invalid_json' },
    { name => 'invalid UTF-8 (encoded surrogate) in the body', method => 'POST', path => $path,
      raw => qq({"client_id":"$ok_cid","body":"a\xed\xa0\x80b"}), token => $atok,
      status => 400, code => 'invalid_json' },
    { name => 'invalid UTF-8 (truncated sequence) at the end', method => 'POST', path => $path,
      raw => qq({"client_id":"$ok_cid","body":"a\xe2\x82"}), token => $atok,
      status => 400, code => 'invalid_json' },
    # a NUL would end the batch's parameter early (libpq sends C strings)
    { name => 'an escaped NUL (\\u0000) in the body', method => 'POST', path => $path,
      raw => qq({"client_id":"$ok_cid","body":"a\\u0000b"}), token => $atok,
      status => 400, code => 'invalid_json' },
    { name => 'a body larger than famcall_max_body_size (64k)', method => 'POST', path => $path,
      body => { client_id => $ok_cid, body => 'x' x (70 * 1024) }, token => $atok,
      status => 413, code => 'body_too_large' },
    { name => 'text/plain', method => 'POST', path => $path,
      raw => encode_json({ client_id => $ok_cid, body => 'hi' }),
      headers => { 'Content-Type' => 'text/plain' }, token => $atok,
      status => 415, code => 'unsupported_media_type' },
    { name => 'a JSON array', method => 'POST', path => $path,
      raw => encode_json([ $ok_cid, 'hi' ]), token => $atok, status => 400, code => 'invalid_json' },
    { name => 'send without a token', method => 'POST', path => $path,
      body => { client_id => $ok_cid, body => 'hi' }, status => 401, code => 'unauthorized',
      res_headers => { 'WWW-Authenticate' => qr/^Bearer/ } },
    { name => 'send with a bad token', method => 'POST', path => $path,
      body => { client_id => $ok_cid, body => 'hi' }, token => 'x.y.z',
      status => 401, code => 'unauthorized' },
    { name => 'list without a token', path => $path, status => 401, code => 'unauthorized' },
    { name => 'read without a token', method => 'POST', path => "/v1/conversations/$conv/read",
      body => { up_to_seq => 1 }, status => 401, code => 'unauthorized' },
    { name => 'PUT messages', method => 'PUT', path => $path, body => { client_id => $ok_cid, body => 'hi' },
      token => $atok, status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/^(?=.*\bGET\b)(?=.*\bPOST\b)/ } },
    { name => 'GET read', path => "/v1/conversations/$conv/read", token => $atok,
      status => 405, code => 'method_not_allowed', res_headers => { Allow => qr/\bPOST\b/ } },
]);
is(count_in($conv), $before, 'none of the bad sends was stored');
is($s->psql("select count(*) from messages where client_id = '$ok_cid'"), 0,
   'the client_id of the rejected sends is unused');
is(send_ok($ann, $conv, 'now valid', $ok_cid)->{seq}, $before + 1, '... and works now, no gap');

#==========================================================================
# Listing
#==========================================================================

subtest 'pagination' => sub {
    my ($x, $y, $cv) = pair();
    send_ok($_ % 2 ? $x : $y, $cv, "m$_") for 1 .. 12;
    my $m = messages($x, $cv);
    is_deeply([ map { $_->{seq} } @$m ], [ 1 .. 12 ], 'no cursor: all 12 (default limit 50), ascending');
    is_deeply([ map { $_->{body} } @$m ], [ map { "m$_" } 1 .. 12 ], 'bodies in order');
    is_deeply([ map { $_->{sender_id} } @$m[0, 1] ], [ $x->{user}{id}, $y->{user}{id} ], 'senders');
    is_deeply([ sort keys %{ $m->[0] } ],
              [ sort qw(id conversation_id seq sender_id client_id body sent_at delivered_at read_at) ],
              'listed messages have the documented keys');

    my @cases = (
        [ 'limit=5',                      [ 8 .. 12 ], 'no cursor: the newest 5' ],
        [ 'limit=1',                      [ 12 ], 'the newest' ],
        [ 'limit=200',                    [ 1 .. 12 ], 'limit 200' ],
        [ 'before_seq=6&limit=3',         [ 3, 4, 5 ], 'before: the newest below it' ],
        [ 'before_seq=6',                 [ 1 .. 5 ], 'before, default limit' ],
        [ 'before_seq=2',                 [ 1 ], 'before 2' ],
        [ 'before_seq=1',                 [], 'before 1: nothing' ],
        [ 'before_seq=13',                [ 1 .. 12 ], 'before last+1: all' ],
        [ 'before_seq=1000&limit=2',      [ 11, 12 ], 'before beyond the end' ],
        [ 'after_seq=6&limit=3',          [ 7, 8, 9 ], 'after: the oldest above it' ],
        [ 'after_seq=6',                  [ 7 .. 12 ], 'after, default limit' ],
        [ 'after_seq=0&limit=2',          [ 1, 2 ], 'after 0: from the start' ],
        [ 'after_seq=11',                 [ 12 ], 'after 11' ],
        [ 'after_seq=12',                 [], 'after the last: nothing' ],
        [ 'after_seq=1000',               [], 'after beyond the end: nothing' ],
        [ 'after_seq=3&before_seq=10',    [ 4 .. 9 ], 'both: between them' ],
        [ 'before_seq=10&after_seq=3&limit=2', [ 4, 5 ], 'both, limited: the oldest first' ],
        [ 'after_seq=5&before_seq=6',     [], 'both, nothing between' ],
        [ 'after_seq=5&before_seq=7',     [ 6 ], 'both, one between' ],
        [ 'after_seq=8&before_seq=3',     [], 'both, crossed: nothing' ],
        [ 'limit=3&unknown=1',            [ 10, 11, 12 ], 'unknown parameters ignored' ],
    );
    for my $case (@cases) {
        my ($q, $want, $name) = @$case;
        is_deeply(seqs($y, $cv, $q), $want, "?$q: $name");
    }
};

my $lpath = "/v1/conversations/$conv/messages";
run_cases($s, [
    (map { +{ name => "list with limit=$_", path => "$lpath?limit=$_", token => $atok,
              status => 422, code => 'invalid_field', field => 'limit' } }
     '0', '201', '-1', 'abc', '1.5', '', '1e2', '99999999999999999999', '%201'),
    (map { +{ name => "list with before_seq=$_", path => "$lpath?before_seq=$_", token => $atok,
              status => 422, code => 'invalid_field', field => 'before_seq' } }
     'abc', '-1', '1.5', '', '99999999999999999999'),
    (map { +{ name => "list with after_seq=$_", path => "$lpath?after_seq=$_", token => $atok,
              status => 422, code => 'invalid_field', field => 'after_seq' } }
     'abc', '-2', '2x', ''),
]);

subtest 'listing by the recipient marks messages delivered' => sub {
    my ($x, $y, $cv) = pair();
    my @m = map { send_ok($x, $cv, "to y $_") } 1 .. 3;
    my $own = messages($x, $cv);
    is_deeply([ map { $_->{delivered_at} } @$own ], [ undef, undef, undef ],
              "the sender listing does not mark its own messages");

    my $page = messages($y, $cv, 'limit=1');
    is($page->[0]{seq}, 3, 'the recipient reads the newest');
    like($page->[0]{delivered_at} // '', $TS_RE, '... and its page shows it delivered');
    my $seen = by_seq(messages($x, $cv));
    like($seen->{3}{delivered_at} // '', $TS_RE, 'the sender sees it delivered');
    is($seen->{$_}{delivered_at}, undef, "message $_ (not in the page) is not delivered") for 1, 2;
    is($seen->{$_}{read_at}, undef, "message $_ is not read") for 1 .. 3;
    my $first = $seen->{3}{delivered_at};

    send_ok($y, $cv, 'from y');
    my $by_y = by_seq(messages($y, $cv));
    like($by_y->{$_}{delivered_at} // '', $TS_RE, "y lists all: message $_ delivered now") for 1, 2;
    is($by_y->{3}{delivered_at}, $first, 'delivered_at is not overwritten');
    is($by_y->{4}{delivered_at}, undef, "y's own message is not delivered by y listing");
    $seen = by_seq(messages($x, $cv));
    like($seen->{$_}{delivered_at} // '', $TS_RE, "the sender sees message $_ delivered") for 1, 2;
    is($seen->{3}{delivered_at}, $first, '... and 3 as before');
    like($seen->{4}{delivered_at} // '', $TS_RE, "y's message is delivered by x listing");
    is(by_seq(messages($y, $cv))->{4}{delivered_at}, $seen->{4}{delivered_at}, '... as y sees');
    is($seen->{$_}{read_at}, undef, "listing does not mark $_ read") for 1 .. 4;
};

#==========================================================================
# Read pointer
#==========================================================================

subtest 'read: pointer, read_at on the peer\'s messages, never backwards, clamped' => sub {
    my ($j, $k, $cv) = pair();
    send_ok($k, $cv, "k$_") for 1 .. 3;
    send_ok($j, $cv, 'j4');
    send_ok($k, $cv, 'k5');
    my $cj = conversation_in($j, $cv);
    is_deeply([ @$cj{qw(last_seq last_read_seq unread_count)} ], [ 5, 0, 4 ],
              'j: last_seq 5, nothing read, 4 unread');

    my $tx = read_tx($j, $cv, 2);
    is($tx->res->code, 204, 'j reads up to 2: 204') or diag($tx->res->body);
    check_json_response($tx, {});
    $cj = conversation_in($j, $cv);
    is_deeply([ @$cj{qw(last_seq last_read_seq unread_count)} ], [ 5, 2, 2 ],
              'j: read 2, 2 unread (3 and 5)');
    my $ck = conversation_in($k, $cv);
    is($ck->{last_read_seq}, 0, "k's pointer did not move");

    my $m = by_seq(messages($k, $cv));    # k lists: marks nothing of its own
    like($m->{$_}{read_at} // '', $TS_RE, "k's message $_ is read") for 1, 2;
    like($m->{$_}{delivered_at} // '', $TS_RE, "... and delivered ($_)") for 1, 2;
    is($m->{3}{read_at}, undef, "k's message 3 is not read");
    is($m->{5}{read_at}, undef, "k's message 5 is not read");
    is($m->{4}{read_at}, undef, "j's own message 4 is not marked read by j");
    my %read_at = map { $_ => $m->{$_}{read_at} } 1, 2;

    is(read_tx($j, $cv, 1)->res->code, 204, 'j "reads" up to 1: 204');
    is(conversation_in($j, $cv)->{last_read_seq}, 2, 'never backwards: still 2');
    is(read_tx($j, $cv, 0)->res->code, 204, 'j "reads" up to 0: 204');
    is(conversation_in($j, $cv)->{last_read_seq}, 2, 'still 2');
    $m = by_seq(messages($k, $cv));
    is($m->{$_}{read_at}, $read_at{$_}, "read_at of $_ unchanged") for 1, 2;
    is($m->{3}{read_at}, undef, 'message 3 still unread');

    is(read_tx($j, $cv, 1000)->res->code, 204, 'j reads up to 1000: 204');
    $cj = conversation_in($j, $cv);
    is_deeply([ @$cj{qw(last_seq last_read_seq unread_count)} ], [ 5, 5, 0 ],
              'clamped to last_seq: 5 read, none unread');
    $m = by_seq(messages($k, $cv));
    like($m->{$_}{read_at} // '', $TS_RE, "k's message $_ read now") for 3, 5;
    is($m->{4}{read_at}, undef, "j's message 4 still not read (k has not read it)");

    send_ok($k, $cv, 'k6');
    $cj = conversation_in($j, $cv);
    is_deeply([ @$cj{qw(last_seq last_read_seq unread_count)} ], [ 6, 5, 1 ],
              'a new message after the clamp is unread');

    is(read_tx($k, $cv, 4)->res->code, 204, 'k reads up to 4');
    $ck = conversation_in($k, $cv);
    is_deeply([ @$ck{qw(last_read_seq unread_count)} ], [ 4, 0 ], 'k: read 4, nothing unread');
    $m = by_seq(messages($j, $cv));
    like($m->{4}{read_at} // '', $TS_RE, "j's message 4 is read by k");
    is($m->{6}{read_at}, undef, "k's message 6 not read by j yet");
    is($s->psql("select last_read_seq from conversation_members where conversation_id = '$cv' "
              . "and user_id = '$j->{user}{id}'"), 5, "j's pointer stored");
};

subtest 'reads at the same moment: the pointer ends at the highest' => sub {
    my ($j, $k, $cv) = pair();
    send_ok($k, $cv, "k$_") for 1 .. 10;
    for my $round (1 .. 3) {
        my @ups = $round == 1 ? (3, 7, 5, 10, 1, 9, 2, 8) : (1, 1000, 4);
        my @p = map {
            $s->ua->post_p("/v1/conversations/$cv/read" => { Authorization => "Bearer $j->{access_token}" }
                           => json => { up_to_seq => $_ })
              ->then(sub { $_[0]->res->code // 0 }, sub { "error: @_" });
        } @ups;
        my @codes;
        Mojo::Promise->all(@p)->then(sub { @codes = map { $_->[0] } @_ })->wait;
        is_deeply(\@codes, [ (204) x @ups ], "round $round: all 204");
        is(conversation_in($j, $cv)->{last_read_seq}, 10, "round $round: last_read_seq 10");
    }
    my $m = messages($k, $cv);
    is(scalar(grep { defined $_->{read_at} } @$m), 10, 'all 10 read');
    is(conversation_in($j, $cv)->{unread_count}, 0, 'nothing unread');
};

subtest 'sends, lists and reads at once in several conversations: no errors, no gaps' => sub {
    my $hub = fresh();
    my @peers = map { fresh() } 1 .. 3;
    my @convs;
    for my $p (@peers) {
        $s->befriend($hub, $p);
        push @convs, $s->open_conversation($p, $hub)->{id};
    }
    my $req = sub {
        my ($user, $method, $url, $json) = @_;
        my @args = ($url => { Authorization => "Bearer $user->{access_token}" },
                    $json ? (json => $json) : ());
        my $tx = $s->ua->build_tx($method => @args);
        return $s->ua->start_p($tx)->then(sub { "$method " . ($_[0]->res->code // 0) },
                                          sub { "$method error: @_" });
    };
    my @p;
    for my $i (0 .. $#peers) {
        my ($cv, $peer) = ($convs[$i], $peers[$i]);
        for my $n (1 .. 15) {
            for my $who ($hub, $peer) {
                push @p, $req->($who, POST => "/v1/conversations/$cv/messages",
                                { client_id => new_uuid(), body => "n$n" });
                push @p, $req->($who, GET => "/v1/conversations/$cv/messages?limit=20")
                    if $n % 3 == 0;
                push @p, $req->($who, POST => "/v1/conversations/$cv/read", { up_to_seq => 2 * $n })
                    if $n % 3 == 1;
            }
        }
    }
    my %codes;
    Mojo::Promise->all(@p)->then(sub { $codes{ $_->[0] }++ for @_ })->wait;
    is_deeply(\%codes, { 'POST 201' => 90, 'GET 200' => 30, 'POST 204' => 30 },
              'every send 201, every list 200, every read 204') or diag(explain \%codes);
    for my $i (0 .. $#convs) {
        my @db = $s->psql("select seq from messages where conversation_id = '$convs[$i]' order by seq")
                 =~ /(\d+)/g;
        is_deeply(\@db, [ 1 .. 30 ], "conversation $i: seq 1..30");
    }
};

my $rpath = "/v1/conversations/$conv/read";
run_cases($s, [
    (map { +{ name => "read with up_to_seq $_->[0]", method => 'POST', path => $rpath,
              body => $_->[1], token => $atok, status => 422, code => $_->[2] // 'invalid_field',
              field => 'up_to_seq' } }
     [ 'missing', {}, 'missing_field' ],
     [ 'null', { up_to_seq => undef }, 'missing_field' ],
     [ '-1', { up_to_seq => -1 } ],
     [ 'a string', { up_to_seq => '3' } ],
     [ '1.5', { up_to_seq => 1.5 } ],
     [ 'true', { up_to_seq => \1 } ],
     [ 'an array', { up_to_seq => [3] } ]),
    { name => 'read with bad JSON', method => 'POST', path => $rpath, raw => '{"up_to_seq":',
      token => $atok, status => 400, code => 'invalid_json' },
]);

#==========================================================================
# Outsiders
#==========================================================================

subtest 'a third user cannot tell a conversation of others from a random id' => sub {
    my $z = fresh();
    $s->befriend($z, $ann);          # a contact of a: still not a member of a-b
    my $random = new_uuid();
    my $count = count_in($conv);
    my $ptr = $s->psql("select string_agg(last_read_seq::text, ',' order by user_id) "
                     . "from conversation_members where conversation_id = '$conv'");
    my $cid = new_uuid();
    my @probes = (
        [ 'list',        GET  => 'messages', undef ],
        [ 'list after',  GET  => 'messages?after_seq=0', undef ],
        [ 'send',        POST => 'messages', { client_id => $cid, body => 'hi' } ],
        [ 'read',        POST => 'read', { up_to_seq => 1 } ],
    );
    for my $p (@probes) {
        my ($name, $method, $tail, $body) = @$p;
        my $theirs = $s->json_req($method, "/v1/conversations/$conv/$tail", $body, $z->{access_token});
        my $none   = $s->json_req($method, "/v1/conversations/$random/$tail", $body, $z->{access_token});
        my $bad    = $s->json_req($method, "/v1/conversations/not-a-uuid/$tail", $body, $z->{access_token});
        is_error($theirs, 404, 'not_found');
        check_json_response($theirs, {});
        is_error($none, 404, 'not_found');
        is_error($bad, 404, 'not_found');
        is_deeply(body_json($theirs), body_json($none), "$name: the same answer as a random id");
    }
    is(count_in($conv), $count, 'nothing stored');
    is($s->psql("select count(*) from messages where client_id = '$cid'"), 0, 'nothing anywhere');
    is($s->psql("select string_agg(last_read_seq::text, ',' order by user_id) "
              . "from conversation_members where conversation_id = '$conv'"), $ptr,
       'read pointers untouched');
    ok(!grep({ $_->{id} eq $conv } @{ (body_json($s->json_req(GET => '/v1/conversations', undef,
                                                              $z->{access_token})) // {})->{conversations} // [] }),
       'not in their conversation list');
    is(by_seq(messages($ann, $conv))->{1}{id}, $m1->{id}, 'still fine for a member');

    # The members themselves: a-c's conversation is not b's.
    is_error($s->json_req(GET => "/v1/conversations/$conv_ac/messages", undef, $bob->{access_token}),
             404, 'not_found');
    is_error($s->send_message($bob, $conv_ac, 'hi'), 404, 'not_found');
    is_error(read_tx($bob, $conv_ac, 1), 404, 'not_found');
};

subtest 'Cache-Control: no-store on every answer' => sub {
    my $tok = $ann->{access_token};
    my @tx = (
        $s->json_req(GET => '/v1/users/search?q=ab', undef, $tok),
        $s->json_req(GET => '/v1/contacts', undef, $tok),
        $s->json_req(GET => '/v1/blocks', undef, $tok),
        $s->json_req(GET => '/v1/conversations', undef, $tok),
        $s->json_req(GET => "/v1/conversations/$conv/messages", undef, $tok),
        $s->send_message($ann, $conv, 'cache?'),
        read_tx($ann, $conv, 1),
        $s->json_req(GET => '/v1/conversations/' . new_uuid() . '/messages', undef, $tok),
        $s->json_req(GET => '/v1/conversations', undef, undef),
    );
    for my $tx (@tx) {
        is($tx->res->headers->cache_control, 'no-store',
           $tx->req->method . ' ' . $tx->req->url->path . ' (' . $tx->res->code . ')');
    }
};

subtest 'members who are no longer contacts cannot send' => sub {
    my ($x, $y, $cv) = pair();
    send_ok($x, $cv, 'before');
    is($s->json_req(DELETE => "/v1/contacts/$x->{user}{id}", undef, $y->{access_token})->res->code,
       204, 'y removes x');
    is_error($s->send_message($x, $cv, 'after'), 403, 'not_a_contact');
    is_error($s->send_message($y, $cv, 'after'), 403, 'not_a_contact');
    is(count_in($cv), 1, 'nothing stored');
};

# The batch writes a new message's JSON as text itself (sql/009) instead of
# rendering the stored row: it must be byte for byte what the database
# renders for that row, escapes and key order included.
subtest 'a sent message reads exactly as the stored row renders' => sub {
    my ($x, $y, $cv) = pair();
    # the worker passes bodies to the batch as array literals (sql/013):
    # NULL, braces, commas and a trailing backslash are bodies like any other
    for my $body ("plain", "tab\there, \"quotes\", back\\slash, </script>",
                  "é 👋 \x{2028} line\nbreak", "  spaced  ", "NULL", "null",
                  '{"a", {b}}, {}', "ends with a backslash \\", '"') {
        my $cid = new_uuid();
        my $tx = $s->send_message($x, $cv, $body, $cid);
        is($tx->res->code, 201, 'sent') or next;
        is(body_json($tx)->{body}, $body, 'the body as sent');
        my $id = body_json($tx)->{id};
        my $db = $s->psql("select famcall_message_json(m)::text from messages m where id = '$id'");
        is($tx->res->body, $db, 'the 201 body is the stored row\'s JSON, byte for byte');
        my $again = $s->send_message($x, $cv, $body, $cid);
        is($again->res->code, 200, 'a retry: 200');
        is($again->res->body, $db, 'and the same bytes');
    }
};

# Listing writes its page as text (sql/011) instead of rendering it as
# jsonb: every case of a page must be byte for byte what the database
# renders for the stored rows, with delivered_at and read_at set or not.
subtest 'a listed page reads exactly as the stored rows render' => sub {
    my ($x, $y, $cv) = pair();
    my @bodies = ("plain", "tab\there, \"quotes\", back\\slash, </script>",
                  "é 👋 \x{2028} line\nbreak", "  spaced  ", "\x{1}\x{1f} controls");
    send_ok($_ % 2 ? $y : $x, $cv, $bodies[$_]) for 0 .. $#bodies;
    my $rows = sub {
        my ($where) = @_;
        my $page = $s->psql("select '{\"messages\": [' || coalesce(string_agg("
            . "famcall_message_json(m)::text, ', ' order by m.seq), '') || ']}' "
            . "from messages m where conversation_id = '$cv' and $where");
        utf8::decode($page);
        return $page;
    };
    my $got = sub {
        my ($user, $query) = @_;
        my $tx = list_tx($user, $cv, $query);
        is($tx->res->code, 200, 'listed' . ($query ? " ?$query" : '')) or return '';
        return $tx->res->text;
    };

    # x lists first: y's messages become delivered, and the answer is the
    # page as it is after that
    is($got->($x), $rows->('true'), 'a first listing (it marks delivered): the same bytes');
    like($s->psql("select count(*) from messages where conversation_id = '$cv' "
                  . "and sender_id = '$y->{user}{id}' and delivered_at is null"),
         qr/^0$/, 'y\'s messages are now delivered');
    is(read_tx($x, $cv, 4)->res->code, 204, 'x reads up to seq 4');
    is($got->($x), $rows->('true'), 'with read_at set: the same bytes');
    is($got->($y, 'limit=2'), $rows->('seq > 3'), 'the newest two');
    is($got->($y, 'before_seq=3&limit=10'), $rows->('seq < 3'), 'before_seq');
    is($got->($y, 'after_seq=1&limit=2'), $rows->('seq in (2, 3)'), 'after_seq');
    is($got->($y, 'after_seq=5'), '{"messages": []}', 'past the end: an empty page');
};

# messages have no foreign keys since sql/009 (the send batch guarantees
# them); deleting a conversation or a user still takes their messages along,
# and a report on a deleted message keeps the report.
subtest 'deleting a conversation or a user deletes its messages' => sub {
    my ($x, $y, $cv) = pair();
    my $m = send_ok($x, $cv, 'to be reported');
    send_ok($y, $cv, 'answer');
    my ($u, $w, $cw) = pair();
    send_ok($u, $cw, 'kept');
    my $tx = $s->json_req(POST => '/v1/reports', { user_id => $x->{user}{id},
        reason => 'spam', message_id => $m->{id} }, $y->{access_token});
    is($tx->res->code, 201, 'y reports x\'s message') or diag($tx->res->body);
    my $rid = body_json($tx)->{id};

    $s->psql("delete from conversations where id = '$cv'");
    is(count_in($cv), 0, 'the conversation\'s messages are gone');
    is(count_in($cw), 1, 'another conversation\'s are not');
    is($s->psql("select coalesce(message_id::text, 'null') from reports where id = '$rid'"),
       'null', 'the report stays, without its message');

    $s->psql("delete from users where id = '$u->{user}{id}'");
    is(count_in($cw), 0, 'a deleted user\'s conversations take their messages');
    is($s->psql("select count(*) from messages m where not exists "
                . "(select 1 from conversations c where c.id = m.conversation_id)"),
       0, 'no message left without its conversation');
};

# sql/016: analyze gathers what can steer a plan (how many rows a
# conversation, a sender or a user has), not ids, bodies or counters
subtest 'analyze keeps statistics only for the columns plans use' => sub {
    my ($x, $y, $cv) = pair();
    send_ok($x, $cv, "hello $_") for 1 .. 3;
    $s->psql('analyze messages, conversations');
    my %cols = map { $_ => 1 } split /\n/, $s->psql(
        "select tablename || '.' || attname from pg_stats "
        . "where schemaname = 'public' and tablename in ('messages', 'conversations')");
    ok($cols{$_}, "$_ has statistics")
        for qw(messages.conversation_id messages.sender_id messages.seq
               conversations.user_lo conversations.user_hi);
    ok(!$cols{$_}, "$_ has none")
        for qw(messages.id messages.body messages.client_id messages.txid
               messages.sent_at conversations.id conversations.last_seq);
    # sql/017: samples of 3,000 conversations and 9,000 messages
    my $targets = sub {
        $s->psql("select string_agg(attname || '=' || attstattarget, ' ' order by attname) "
                 . "from pg_attribute where attrelid = '$_[0]'::regclass and attstattarget > 0");
    };
    is($targets->('conversations'), 'user_hi=10 user_lo=10',
       'conversations: user_lo and user_hi at statistics target 10');
    is($targets->('messages'), 'conversation_id=30 sender_id=30 seq=30',
       'messages: conversation_id, sender_id and seq at 30');
};

$s->stop;
done_testing;
