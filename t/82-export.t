# Export your data (issue 25): POST /v1/me/export (one a day), GET
# /v1/me/export: the profile, contacts, blocks, conversations with every
# message, call history, devices, as one JSON document streamed page by
# page, so a user with many messages costs the worker a page, not the
# document.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::JSON qw(decode_json);
use IO::Socket::INET;
use Famcall::Test qw(run_cases body_json is_error wait_until);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 1, extra_conf => <<'CONF');
famcall_export_page 500;
CONF

sub export { $s->json_req(GET => '/v1/me/export', undef, $_[0]{access_token}) }
sub ask    { $s->json_req(POST => '/v1/me/export', undef, $_[0]{access_token}) }

my $a = $s->signup(display_name => 'Ada');
my $b = $s->signup(display_name => 'Ben');
my $c = $s->signup(display_name => 'Cy');

subtest 'bad inputs, and one a day' => sub {
    run_cases($s, [
        { method => 'POST', path => '/v1/me/export', status => 401, code => 'unauthorized' },
        { method => 'GET', path => '/v1/me/export', status => 401, code => 'unauthorized' },
        { name => 'nothing asked for yet', method => 'GET', path => '/v1/me/export',
          token => $c->{access_token}, status => 404, code => 'not_found' },
        { method => 'PUT', path => '/v1/me/export', status => 405 },
    ]);
    my $tx = ask($c);
    is($tx->res->code, 202, 'POST: 202');
    like(body_json($tx)->{requested_at} // '', qr/Z$/, 'requested_at');
    like(body_json($tx)->{expires_at} // '', qr/Z$/, 'expires_at');
    $tx = ask($c);
    is_error($tx, 429, 'rate_limited');
    my $retry = $tx->res->headers->header('Retry-After') // 0;
    ok($retry > 86000 && $retry <= 86400, "Retry-After about a day ($retry)");
    is(export($c)->res->code, 200, 'the first one is there');
    is_error(export($b), 404, 'not_found');
};

subtest 'what the export holds' => sub {
    $s->befriend($a, $b);
    is($s->json_req(POST => '/v1/blocks', { user_id => $c->{user}{id} }, $a->{access_token})
       ->res->code, 201, 'Ada blocks Cy');
    is($s->json_req(POST => '/v1/invites', { phone => '+18880000001', name => 'Gran' },
                    $a->{access_token})->res->code, 201, 'Ada invites Gran');
    $s->psql("insert into devices (user_id, platform, provider, push_token)
              values ('$a->{user}{id}', 'ios', 'apns', 'secret-push-token')");
    my $conv = $s->open_conversation($a, $b)->{id};
    is($s->send_message($a, $conv, "hello \"Ben\"\n\x{2603}")->res->code, 201, 'a message');
    is($s->send_message($b, $conv, 'hi Ada')->res->code, 201, 'an answer');

    # a call, through the sockets
    my $a1 = Famcall::WS->open($s, $a->{access_token});
    my $b1 = Famcall::WS->open($s, $b->{access_token});
    wait_until { $s->psql("select count(*) from presence") >= 2 } 10, 'online';
    my $call = $a1->request('call:invite', { to_user_id => $b->{user}{id}, media => 'audio' })
                  ->{data}{call_id};
    $b1->expect('call:invite');
    $b1->request('call:reject', { call_id => $call });
    $a1->expect('call:reject');

    is(ask($a)->res->code, 202, 'POST: 202');
    my $tx = export($a);
    is($tx->res->code, 200, 'GET: 200') or return diag($tx->res->body);
    like($tx->res->headers->content_type, qr{^application/json}, 'JSON');
    like($tx->res->headers->header('Content-Disposition') // '', qr/attachment/, 'an attachment');
    is($tx->res->headers->header('Cache-Control'), 'no-store', 'no-store');
    my $doc = eval { decode_json($tx->res->body) };
    ok($doc, 'one JSON document') or return diag($@);
    is($doc->{format}, 'famcall-export-1', 'format');
    is($doc->{profile}{id}, $a->{user}{id}, 'the profile');
    is($doc->{profile}{email}, $a->{email}, 'with the email');
    is(scalar @{ $doc->{contacts} }, 1, 'one contact');
    is($doc->{contacts}[0]{user}{id}, $b->{user}{id}, 'Ben');
    is($doc->{blocks}[0]{user}{id}, $c->{user}{id}, 'the block');
    is($doc->{invites}[0]{name}, 'Gran', 'the invite');
    is(scalar @{ $doc->{devices} }, 1, 'the device');
    is($doc->{devices}[0]{platform}, 'ios', 'its platform');
    unlike($tx->res->body, qr/secret-push-token/, 'but not its push token');
    is(scalar @{ $doc->{calls} }, 1, 'the call');
    is($doc->{calls}[0]{call_id}, $call, 'its id');
    is($doc->{calls}[0]{status}, 'rejected', 'rejected');
    is($doc->{calls}[0]{direction}, 'outgoing', 'outgoing');
    is(scalar @{ $doc->{conversations} }, 1, 'the conversation');
    my $cv = $doc->{conversations}[0];
    is($cv->{id}, $conv, 'its id');
    is($cv->{peer}{id}, $b->{user}{id}, 'with Ben');
    is_deeply([map { $_->{body} } @{ $cv->{messages} }], ["hello \"Ben\"\n\x{2603}", 'hi Ada'],
              'every message, escapes and all');
    my $listed = body_json($s->json_req(GET => "/v1/conversations/$conv/messages", undef,
                                        $a->{access_token}))->{messages};
    is_deeply([map { $_->{id} } @{ $cv->{messages} }], [map { $_->{id} } @$listed],
              'the messages the API lists');

    is(ask($b)->res->code, 202, 'Ben asks too');
    my $bdoc = eval { decode_json(export($b)->res->body) } // {};
    is($bdoc->{profile}{id}, $b->{user}{id}, "Ben's export is Ben's");
    ok(!grep({ $_->{user}{id} eq $c->{user}{id} } @{ $bdoc->{blocks} // [] }),
       "Ben's export does not hold Ada's block");
};

# 60,000 messages of 300 bytes: an 18 MB document, through one worker
subtest 'many messages: streamed, in bounded memory' => sub {
    my $conv = $s->psql("select id from conversations limit 1");
    my ($aid, $bid) = ($a->{user}{id}, $b->{user}{id});
    $s->psql(qq{
        insert into messages (conversation_id, seq, sender_id, client_id, body)
        select '$conv', 2 + g, case when g % 2 = 0 then '$aid'::uuid else '$bid'::uuid end,
               gen_random_uuid(), 'message ' || g || ' ' || repeat('x', 280)
          from generate_series(1, 60000) g;
        update conversations set last_seq = 60002 where id = '$conv'});
    my ($worker) = $s->worker_pids;
    my $hwm = sub {
        open my $fh, '<', "/proc/$worker/status" or return 0;
        my ($kb) = map { /^VmHWM:\s+(\d+)/ ? $1 : () } <$fh>;
        return $kb;
    };
    my $before = $hwm->();
    ok($before, "the worker's peak memory so far ($before kB)");

    # a client that reads nothing for a while, then everything
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->http_port)
        or return fail("connect: $!");
    print $sock "GET /v1/me/export HTTP/1.1\r\nHost: x\r\n"
              . "Authorization: Bearer $a->{access_token}\r\nConnection: close\r\n\r\n";
    # the client reads nothing until the server's writes pile up at it:
    # the export must wait for it, then go on
    my $held = wait_until {
        my (undef, $unread) = Famcall::Test::_tcp_queues($sock->sockport, $s->http_port);
        ($unread // 0) > 100_000;
    } 10, 'unread bytes at the client';
    ok($held, 'the server is held back by a client that does not read');
    my $raw = '';
    while (sysread $sock, my $buf, 1 << 16) { $raw .= $buf }
    close $sock;
    my ($head, $chunked) = split /\r\n\r\n/, $raw, 2;
    like($head, qr{^HTTP/1.1 200}, 'status 200');
    like($head, qr/Transfer-Encoding: chunked/i, 'chunked: written as it is read');
    my $body = '';
    while ($chunked =~ /\G([0-9a-fA-F]+)\r\n/gc) {
        my $len = hex $1;
        last unless $len;
        $body .= substr($chunked, pos($chunked), $len);
        pos($chunked) += $len + 2;
    }
    cmp_ok(length $body, '>', 18_000_000, 'an 18 MB document');
    my $doc = eval { decode_json($body) };
    ok($doc, 'that parses') or return;
    my $msgs = $doc->{conversations}[0]{messages};
    is(scalar @$msgs, 60002, 'every message');
    my $in_order = 1;
    for my $i (1 .. $#$msgs) { $in_order = 0, last if $msgs->[$i]{seq} != $msgs->[$i - 1]{seq} + 1 }
    ok($in_order, 'in order, none twice');

    my $grew = $hwm->() - $before;
    SKIP: {
        # ASan keeps freed memory aside (its quarantine) to catch uses after
        # free: every page's freed result adds to the peak there
        skip 'peak memory under AddressSanitizer is its quarantine', 1 if $ENV{FAMCALL_ASAN};
        cmp_ok($grew, '<', 6_000,
               "the worker's peak memory grew by ${grew} kB: far less than the document");
    }
};

$s->stop;
done_testing;
