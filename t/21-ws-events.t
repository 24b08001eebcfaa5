# Live events over the WebSocket (docs/websocket.md, issue 4): two users and
# three devices spread over the workers of one node; message:send and
# message:new, receipts, typing, presence, sync, bad events.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(new_uuid uuid_re body_json wait_until);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 4);
my $port = $s->http_port;

my ($a, $b, $c) = map { $s->signup } 1 .. 3;    # c: nobody's contact
$s->befriend($a, $b);
my $conv = $s->open_conversation($a, $b)->{id};

sub sent { my $tx = $s->send_message(@_); die 'send: ' . $tx->res->code unless $tx->res->code == 201; body_json($tx) }

sub ws { my $ws = Famcall::WS->open($s, $_[0]{access_token}); die "no socket" unless $ws; $ws }

# Devices until A's two sockets and B's are not all in one worker (reuseport
# spreads them; the kernel decides), so delivery crosses workers.
my ($a1, $a2, $b1);
for my $try (1 .. 20) {
    ($a1, $a2, $b1) = (ws($a), ws($a), ws($b));
    my %pids = map { ($_->server_pid($port) // 0) => 1 } $a1, $a2, $b1;
    last if keys %pids > 1;
    $_->close for $a1, $a2, $b1;
}
my %workers = map { ($_->server_pid($port) // 0) => 1 } $a1, $a2, $b1;
cmp_ok(scalar keys %workers, '>', 1, 'the three devices live in more than one worker');

is($a1->hello->{data}{user_id}, $a->{user}{id}, 'hello names the user');
cmp_ok($a1->hello->{data}{expires_at}, '>', time, 'hello: the token expiry');

# presence: A's contacts hear of B coming online (B's first socket), not C
my $c1 = ws($c);

subtest 'message:send, message:new to every other device' => sub {
    my $cid = new_uuid();
    my $ack = $a1->request('message:send',
        { conversation_id => $conv, client_id => $cid, body => 'hello from a1' });
    is($ack->{type}, 'ack', 'acked') or diag explain $ack;
    my $m = $ack->{data};
    is($m->{body}, 'hello from a1', 'the stored message');
    is($m->{seq}, 1, 'seq 1');
    like($m->{id} // '', uuid_re, 'id');
    is($m->{sender_id}, $a->{user}{id}, 'sender');

    my $nb = $b1->expect('message:new');
    is_deeply($nb->{data}, $m, 'the recipient gets the same message');
    my $na = $a2->expect('message:new');
    is_deeply($na->{data}, $m, "the sender's other device gets it too");
    ok($a1->none('message:new', 0.4), 'the sending socket does not get it back');
    ok($c1->none('message:new', 0.1), 'a stranger gets nothing');

    # a retry of the same client_id: the same message, nobody hears it again
    my $again = $a1->request('message:send',
        { conversation_id => $conv, client_id => $cid, body => 'hello from a1' });
    is($again->{type}, 'ack', 'a retry is acked');
    is($again->{data}{id}, $m->{id}, 'with the stored message');
    ok($b1->none('message:new', 0.4), 'and announced only once');
    is($s->psql("select count(*) from messages where client_id = '$cid'"), 1,
       'stored once');
};

# the worker passes the batch its items as array literals (sql/013): what
# has a meaning in one is plain text in a body
subtest 'bodies with quotes, backslashes, braces, commas, NULL' => sub {
    for my $body ('NULL', '"', '{a,b}', 'back\\slash \\', ' , ', "{\"x\": null}") {
        my $ack = $a1->request('message:send',
            { conversation_id => $conv, client_id => new_uuid(), body => $body });
        is($ack->{type}, 'ack', 'acked') or diag explain $ack;
        is($ack->{data}{body}, $body, 'the ack has the body as sent');
        my $ev = $b1->expect('message:new');
        is($ev && $ev->{data}{body}, $body, 'so does the recipient');
        $a2->expect('message:new');
        my $stored = $s->psql("select body from messages where id = '$ack->{data}{id}'");
        utf8::decode($stored);
        is($stored, $body, 'and the stored row');
    }
};

subtest 'a message too big for a notification still arrives' => sub {
    my $body = "€" x 4000;      # 12,000 bytes: sent by reference, fetched
    my $ack = $a1->request('message:send',
        { conversation_id => $conv, client_id => new_uuid(), body => $body });
    is($ack->{type}, 'ack', 'acked') or diag explain $ack;
    my $ev = $b1->expect('message:new');
    is($ev && $ev->{data}{id}, $ack->{data}{id}, 'delivered');
    is($ev && $ev->{data}{body}, $body, 'whole');
    $a2->expect('message:new');
};

subtest 'unreadable notifications are dropped, the bus goes on' => sub {
    # Lines the workers cannot route (not the gateway's format, a bad user
    # id, a reference to no message) are logged and skipped; the next real
    # event still arrives. A line that names b1's user with a bad id next to
    # it must reach b1 once.
    my $bid = $b->{user}{id};
    $s->psql(qq{select pg_notify('famcall', 'nonsense'),
                       pg_notify('famcall', 'typing'),
                       pg_notify('famcall', 'typing x,y - {}'),
                       pg_notify('famcall', 'message:ref $bid - {"id": "${\ new_uuid()}"}'),
                       pg_notify('famcall', 'typing not-a-uuid,$bid - {"x": 1}')});
    my $ev = $b1->expect('typing');
    is_deeply($ev && $ev->{data}, { x => 1 }, 'the good line is delivered');
    ok($b1->none('typing', 0.3), 'once');
    ok($b1->none('message:new', 0.2), 'a reference to no message delivers nothing');
    my $m = sent($a, $conv, 'after the noise');
    $ev = $b1->expect('message:new');
    is($ev && $ev->{data}{id}, $m->{id}, 'and real events still arrive');
    $a1->expect('message:new');
    $a2->expect('message:new');
    my $log = do { local (@ARGV, $/) = ("$s->{data}/log/nginx-error.log"); <> };
    like($log, qr/unreadable event ignored: "nonsense"/, 'the bad lines are logged');
};

subtest 'a send over HTTP reaches the sockets' => sub {
    my $m = sent($b, $conv, 'hello over http');
    for my $ws ([$a1, 'a1'], [$a2, 'a2'], [$b1, "b1 (the sender's socket: HTTP is another device)"]) {
        my $ev = $ws->[0]->expect('message:new');
        is($ev && $ev->{data}{id}, $m->{id}, "$ws->[1] gets it");
    }
};

subtest 'receipts' => sub {
    my $ack = $b1->request('message:delivered', { conversation_id => $conv, up_to_seq => 1 });
    is($ack->{type}, 'ack', 'delivered acked');
    is_deeply($ack->{data}, {}, 'with an empty object');
    for my $ws ($a1, $a2) {
        my $ev = $ws->expect('message:delivered');
        is_deeply($ev && $ev->{data},
                  { conversation_id => $conv, user_id => $b->{user}{id}, up_to_seq => 1 },
                  'the sender hears of it on each device');
    }
    ok($b1->none('message:delivered', 0.3), 'not the socket that sent it');
    like($s->psql("select delivered_at from messages where conversation_id = '$conv' and seq = 1"),
         qr/\d/, 'delivered_at is set');

    is($b1->request('message:read', { conversation_id => $conv, up_to_seq => 1 })->{type},
       'ack', 'read acked');
    my $ev = $a1->expect('message:read');
    is($ev && $ev->{data}{up_to_seq}, 1, 'message:read reaches the sender');
    $a2->expect('message:read');

    # backwards: acked, nothing moves, nobody hears
    is($b1->request('message:read', { conversation_id => $conv, up_to_seq => 0 })->{type},
       'ack', 'a read behind the pointer is acked');
    ok($a1->none('message:read', 0.4), 'and announces nothing');

    # POST .../read over HTTP: the sockets hear it too
    my $m = sent($a, $conv, 'read me');
    $b1->expect('message:new');
    my $tx = $s->json_req(POST => "/v1/conversations/$conv/read", { up_to_seq => $m->{seq} },
                          $b->{access_token});
    is($tx->res->code, 204, 'HTTP read');
    $ev = $a1->expect('message:read');
    is($ev && $ev->{data}{up_to_seq}, $m->{seq}, 'an HTTP read is announced');
    $ev = $b1->expect('message:read');
    is($ev && $ev->{data}{user_id}, $b->{user}{id}, "and reaches the reader's devices");
    $a2->expect('message:read');
};

subtest 'typing' => sub {
    my $before = $s->psql('select count(*) from messages');
    my $ack = $b1->request('typing', { conversation_id => $conv, state => 'start' });
    is($ack->{type}, 'ack', 'typing acked');
    for my $ws ($a1, $a2) {
        my $ev = $ws->expect('typing');
        is_deeply($ev && $ev->{data},
                  { conversation_id => $conv, user_id => $b->{user}{id}, state => 'start' },
                  'the other member sees it');
    }
    ok($b1->none('typing', 0.3), 'the typist does not');
    is($s->psql('select count(*) from messages'), $before, 'nothing stored');

    # burst of 5, then one a second
    my @answers = map { $b1->request('typing', { conversation_id => $conv, state => 'stop' }) } 1 .. 6;
    my @limited = grep { $_->{type} eq 'error' && $_->{error}{code} eq 'rate_limited' } @answers;
    cmp_ok(scalar @limited, '>=', 1, 'a burst of typing is rate limited');
    $_->frames->@* = () for $a1, $a2;
};

subtest 'bad events are answered, the socket stays' => sub {
    my @cases = (
        [ 'not a member: send', $c1, 'message:send',
          { conversation_id => $conv, client_id => new_uuid(), body => 'x' }, 'not_found' ],
        [ 'not a member: typing', $c1, 'typing',
          { conversation_id => $conv, state => 'start' }, 'not_found' ],
        [ 'not a member: read', $c1, 'message:read',
          { conversation_id => $conv, up_to_seq => 1 }, 'not_found' ],
        [ 'unknown conversation', $a1, 'message:send',
          { conversation_id => new_uuid(), client_id => new_uuid(), body => 'x' }, 'not_found' ],
        [ 'blank body', $a1, 'message:send',
          { conversation_id => $conv, client_id => new_uuid(), body => '   ' }, 'invalid_field', 'body' ],
        [ 'missing client_id', $a1, 'message:send',
          { conversation_id => $conv, body => 'x' }, 'missing_field', 'client_id' ],
        [ 'bad typing state', $a1, 'typing',
          { conversation_id => $conv, state => 'maybe' }, 'invalid_field', 'state' ],
        [ 'bad cursor', $a1, 'sync', { since => 'zzz' }, 'invalid_field', 'since' ],
        [ 'forged cursor', $a1, 'sync', { since => '1:2:3~x' }, 'invalid_field', 'since' ],
        [ 'sync limit', $a1, 'sync', { limit => 501 }, 'invalid_field', 'limit' ],
        [ 'unknown type', $a1, 'call:whatever', {}, 'unknown_type' ],
    );
    for my $case (@cases) {
        my ($name, $ws, $type, $data, $code, $field) = @$case;
        my $r = $ws->request($type, $data);
        is($r && $r->{type}, 'error', "$name: error") or diag explain $r;
        is($r && $r->{error}{code}, $code, "$name: $code");
        is($r && $r->{error}{field}, $field, "$name: field") if $field;
    }
    $c1->send('typing', { conversation_id => $conv, state => 'start' });
    my $e = $c1->expect('error');
    ok($e && exists $e->{ref} && !defined $e->{ref}, 'an event without ref: its error has ref null');
    ok(!$c1->closed && !$a1->closed, 'the sockets are still open');
    is($c1->request('sync', {})->{type}, 'ack', 'and answer');
};

subtest 'a socket that goes while its sends wait for the database' => sub {
    # The conversation row is held by another transaction, so the first
    # batches wait at the database and the other sends queue behind them;
    # the socket closes meanwhile. Its queued sends are forgotten, the ones
    # at the database still commit, and the worker carries on.
    my $pid = fork // die;
    if (!$pid) {
        $s->psql("begin; select 1 from conversations where id = '$conv' for update; "
               . "select pg_sleep(1); commit");
        exit 0;
    }
    wait_until { $s->psql("select count(*) from pg_stat_activity where query like '%pg_sleep(1)%' and state = 'active' and pid <> pg_backend_pid()") } 5, 'the row held';
    my $x = ws($a);
    my @cids = map { new_uuid() } 1 .. 8;
    $x->send('message:send', { conversation_id => $conv, client_id => $_, body => 'going' }, "g$_")
        for @cids;
    wait_until { $x->server_has_read } 10, 'the worker to take the sends in';
    $x->close;
    waitpid $pid, 0;
    my $ack = $a1->request('message:send',
        { conversation_id => $conv, client_id => new_uuid(), body => 'still here' });
    is($ack && $ack->{type}, 'ack', 'the worker still answers');
    my $stored = $s->psql("select count(*) from messages where body = 'going'");
    cmp_ok($stored, '<=', 8, "what reached the database is stored ($stored of 8)");
    $b1->frames->@* = ();
    $a2->frames->@* = ();
};

subtest 'a long-lived socket does not grow its worker' => sub {
    # Everything a message allocates (the event, its op, its frames, the
    # batch) is freed once it is answered: 10,000 sends and 2,000 syncs
    # through one socket, in waves under the per-socket limit of calls in
    # flight, leave the worker's resident memory where it was after a
    # warm-up (allocator caches filled).
    my ($e, $f) = ($s->signup, $s->signup);    # their own conversation
    $s->befriend($e, $f);
    my $conv = $s->open_conversation($e, $f)->{id};
    my $x = ws($e);
    my $pid = $x->server_pid($port);
    my $wave = sub {
        my ($n) = @_;
        my @refs = map { 'w' . $_ . '-' . rand() } 1 .. $n;
        $x->send('message:send', { conversation_id => $conv, client_id => new_uuid(),
                                   body => 'x' x 200 }, $_) for @refs[0 .. $n - 3];
        $x->send('sync', { limit => 5 }, $_) for @refs[$n - 2 .. $n - 1];
        my %want = map { $_ => 1 } @refs;
        while (%want) {
            my $f = $x->wait_for(sub { exists $want{ $_[0]{ref} // '' } }, 10) or last;
            delete $want{ $f->{ref} };
        }
        return !%want;
    };
    my $rss = sub {
        open my $fh, '<', "/proc/$pid/status" or return 0;
        return (map { /^VmRSS:\s*(\d+)/ ? $1 : () } <$fh>)[0] // 0;
    };
    my $ok = 1;
    $ok &&= $wave->(30) for 1 .. 100;            # warm-up: 2,800 sends
    my $before = $rss->();
    $ok &&= $wave->(30) for 1 .. 360;            # 10,080 sends, 720 syncs
    my $after = $rss->();
    ok($ok, 'every send and sync answered');
    SKIP: {
        # ASan keeps freed memory in quarantine; LeakSanitizer checks there
        skip 'resident memory under AddressSanitizer is its quarantine', 1
            if $ENV{FAMCALL_ASAN};
        cmp_ok($after - $before, '<', 2048,
               "worker RSS after 10,000 more messages: $before kB -> $after kB");
    }
    $x->close;
};

subtest 'sync: pages, cursors, nothing skipped or repeated' => sub {
    my $all = $s->json_req(GET => "/v1/conversations/$conv/messages?limit=200", undef,
                           $b->{access_token});
    my @want = sort map { $_->{id} } @{ body_json($all)->{messages} };
    cmp_ok(scalar @want, '>=', 3, 'some history');

    my $b2 = ws($b);
    my (@got, $cursor, $pages, $first);
    my $since;
    while (1) {
        my $r = $b2->request('sync', { since => $since, limit => 2 });
        is($r->{type}, 'ack', 'sync page acked') or last;
        $first //= $r->{data};
        push @got, map { $_->{id} } @{ $r->{data}{messages} };
        $pages++;
        $since = $r->{data}{cursor};
        last unless $r->{data}{more};
        last if $pages > 20;
    }
    is_deeply([sort @got], \@want, 'every message once, over ' . $pages . ' pages');
    cmp_ok($pages, '>', 1, 'in pages');
    my ($pa) = grep { $_->{user_id} eq $a->{user}{id} } @{ $first->{presence} };
    ok($pa && $pa->{online}, 'presence: the contact is online');
    ok(scalar(grep { $_->{user_id} eq $b->{user}{id} } @{ $first->{receipts} }),
       'receipts: where the pointers are');

    # sql/012 writes the page as text: it must read as jsonb prints it
    for my $case ([ 'a first page with more', 'null', 2 ],
                  [ 'a page after a cursor', "'$since'", 200 ]) {
        my ($name, $arg, $lim) = @$case;
        is($s->psql("select (body::jsonb)::text = body, status from "
                    . "famcall_sync('$b->{user}{id}', $arg, $lim)"),
           "t|200", "sync as text, $name: byte for byte jsonb's rendering");
    }

    my $r = $b2->request('sync', { since => $since });
    is_deeply($r->{data}{messages}, [], 'nothing new since the cursor');

    my $m = sent($a, $conv, 'after the cursor');
    $r = $b2->request('sync', { since => $since });
    is_deeply([map { $_->{id} } @{ $r->{data}{messages} }], [$m->{id}], 'then exactly the new one');
    ok(!$r->{data}{more}, 'more: false');
    $since = $r->{data}{cursor};

    # A send that began before the cursor and committed after it is not lost
    my $cid = new_uuid();
    my $pid = fork // die;
    if (!$pid) {
        $s->psql("select count(*) from famcall_message_send_batch('{$a->{user}{id}}', '{$conv}', '{$cid}', '{late}', '{NULL}'); select pg_sleep(1.5)");
        exit 0;
    }
    wait_until { $s->psql("select count(*) from pg_stat_activity where query like '%pg_sleep(1.5)%' and state = 'active' and pid <> pg_backend_pid()") } 5, 'the late send begun';
    $r = $b2->request('sync', { since => $since });
    is_deeply($r->{data}{messages}, [], 'the late send is not visible yet');
    my $mid = $since = $r->{data}{cursor};
    waitpid $pid, 0;
    $r = $b2->request('sync', { since => $mid });
    is_deeply([map { $_->{client_id} } @{ $r->{data}{messages} }], [$cid],
              'once committed, the next sync returns it');
    $b2->close;
    $_->frames->@* = () for $a1, $a2, $b1;
};

subtest 'presence: contacts only, first socket and last socket' => sub {
    my $d = $s->signup;
    $s->befriend($d, $a);
    my $d1 = ws($d);
    my $ev = $a1->expect('presence', 5, sub { $_[0]{data}{user_id} eq $d->{user}{id} });
    ok($ev && $ev->{data}{online}, 'a contact comes online');
    $a2->expect('presence', 5, sub { $_[0]{data}{user_id} eq $d->{user}{id} });
    ok($b1->none('presence', 0.3), 'not announced to non-contacts');
    ok($c1->none('presence', 0.1), 'nor to strangers');

    my $d2 = ws($d);
    ok($a1->none('presence', 0.4), 'a second socket is not news');
    $d1->close;
    ok($a1->none('presence', 0.4), 'closing one of two is not news');
    $d2->close;
    $ev = $a1->expect('presence', 5, sub { $_[0]{data}{user_id} eq $d->{user}{id} });
    ok($ev && !$ev->{data}{online}, 'the last socket closed: offline');
    like($ev && $ev->{data}{last_seen} // '', qr/^\d{4}-/, 'with last_seen');
    $a2->frames->@* = ();
};

subtest 'blocks' => sub {
    my $tx = $s->json_req(POST => '/v1/blocks', { user_id => $b->{user}{id} }, $a->{access_token});
    ok($tx->res->code =~ /^20[01]$/, 'A blocks B') or diag $tx->res->body;
    my $r = $b1->request('message:send',
        { conversation_id => $conv, client_id => new_uuid(), body => 'x' });
    is($r->{error}{code}, 'blocked', 'B cannot send');
    $r = $b1->request('typing', { conversation_id => $conv, state => 'start' });
    is($r->{error}{code}, 'blocked', 'nor type');
    ok($a1->none('typing', 0.3), 'A hears nothing');
    my $b3 = ws($b);
    $b3->close;
    $b1->close;
    ok($a1->none('presence', 1), "B's presence does not cross the block");
};

$_->close for grep { !$_->closed } $a1, $a2, $c1;
$s->stop;
done_testing;
