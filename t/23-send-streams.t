# A node's workers working as one (issue 4). Sends: the workers share
# famcall_send_streams batches in flight, queued in shared memory, one
# conversation always in the same stream; the worker running a stream
# hands every other worker its answers. Sends from sockets on four workers
# reach the right socket and are stored in the order each device sent them;
# a full queue answers "unavailable" and stores nothing it refused; a
# runner killed with a batch in hand is replaced and what was queued behind
# it is stored and answered; the streams take turns here (famcall_send_turns
# on), so every case runs through them. Events: one LISTEN per node, its leader hands
# every notification to the other workers; a killed leader is replaced and
# the node's sockets are told to resync.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Compress::Zlib qw(crc32);
use Famcall::Test qw(new_uuid wait_until);
use Famcall::WS;

# db_timeout 2s: an unanswered send gets 503 after 5 s (twice it and a
# second), and a dead runner's stream is taken over after 2.5 s
my $s = Famcall::Test->new(workers => 4, log_level => 'notice', extra_conf => <<'CONF');
famcall_db_timeout 2s;
famcall_send_streams 2;
famcall_send_turns on;
famcall_send_queue_size 64k;
CONF

# every query connection runs an empty batch as it connects, so that the
# first real one finds the statement prepared and its function planned
# (a connection's later queries replace what pg_stat_activity shows)
{
    my $warm = wait_until {
        $s->psql("select count(*) from pg_stat_activity where "
               . "query like '%famcall_message_send_batch%' and pid <> pg_backend_pid()");
    } 10, 'a connection to run the empty batch';
    cmp_ok($warm, '>=', 1, 'query connections ran the empty batch at connect, before any send');
    is($s->psql("select count(*) from messages"), 0, 'which stored nothing');
}

my @users = map { $s->signup } 1 .. 8;
my @pairs = map { [ $users[2 * $_], $users[2 * $_ + 1] ] } 0 .. 3;
for my $p (@pairs) {
    $s->befriend(@$p);
    $p->[2] = $s->open_conversation(@$p)->{id};
}

sub ws {
    my $ws = Famcall::WS->open($s, $_[0]{access_token});
    die 'no socket' unless $ws;
    return $ws;
}

# fire sends without waiting; (refs in order, client_ids by ref)
sub fire {
    my ($ws, $conv, $n, $body) = @_;
    my (@refs, %cid);
    for my $i (1 .. $n) {
        my $ref = 'f' . $i . '-' . int(rand 1e9);
        my $cid = new_uuid();
        $ws->send('message:send',
            { conversation_id => $conv, client_id => $cid, body => ref $body ? $body->($i) : "$body $i" },
            $ref);
        push @refs, $ref;
        $cid{$ref} = $cid;
    }
    return (\@refs, \%cid);
}

# the answer (ack or error) to each ref, in the refs' order
sub answers {
    my ($ws, $refs, $timeout) = @_;
    my $deadline = time + ($timeout // 15);
    my @got;
    for my $ref (@$refs) {
        my $left = $deadline - time;
        push @got, $ws->wait_for(sub { ($_[0]{ref} // '') eq $ref }, $left > 0 ? $left : 0.01);
    }
    return @got;
}

# whether a send batch waits on a lock at the database, once the client's
# event loop has run a moment (its frames go out only then)
sub batch_held {
    Mojo::IOLoop->one_tick_for(0.01);
    $s->psql("select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
           . "and query like '%famcall_message_send_batch%' and pid <> pg_backend_pid()");
}

sub gapless {
    my ($conv) = @_;
    return $s->psql("select count(*) = max(seq) and min(seq) = 1 from messages "
                  . "where conversation_id = '$conv'") eq 't';
}

sub log_text { my $log = "$s->{data}/log/nginx-error.log"; local (@ARGV, $/) = ($log); <> }

sub listens { $s->psql("select count(*) from pg_stat_activity where query ilike 'listen%'") }

# a psql session holding conversations locked (sends wait) for $secs
sub hold_lock { $s->hold_lock('conversations', $_[0]) }

# sockets of users A and B on two different workers: ($wa, $pa, $wb, $pb)
sub two_workers {
    my ($a, $b) = @_;
    my $wa = ws($a);
    my $pa = $wa->server_pid($s->http_port);
    my ($wb, $pb);
    for (1 .. 30) {
        $wb = ws($b);
        $pb = $wb->server_pid($s->http_port);
        last if $pb && $pa && $pb != $pa;
        $wb->close;
    }
    ok($pa && $pb && $pa != $pb, "A's socket on worker $pa, B's on $pb");
    return ($wa, $pa, $wb, $pb);
}

subtest 'bursts from sockets on every worker: answered to the right socket, in order' => sub {
    my (@socks, %pids);
    for my $p (@pairs) {
        for my $side (0, 1) {
            for (1 .. 2) {
                my $ws = ws($p->[$side]);
                $pids{ $ws->server_pid($s->http_port) // '?' }++;
                push @socks, { ws => $ws, conv => $p->[2], peer => $p->[1 - $side] };
            }
        }
    }
    cmp_ok(scalar(grep { $_ ne '?' } keys %pids), '>=', 2,
           'the 16 sockets are spread over several workers');

    # every socket fires 10 sends before reading any answer
    for my $k (0 .. $#socks) {
        @{ $socks[$k] }{qw(refs cid)} = fire($socks[$k]{ws}, $socks[$k]{conv}, 10, "burst $k");
    }

    my ($ok, $right, $ordered) = (0, 0, 0);
    for my $sk (@socks) {
        my @a = answers($sk->{ws}, $sk->{refs});
        my @acks = grep { $_ && $_->{type} eq 'ack' } @a;
        $ok += @acks;
        $right += grep { $a[$_] && $a[$_]{type} eq 'ack'
                         && $a[$_]{data}{client_id} eq $sk->{cid}{ $sk->{refs}[$_] }
                         && $a[$_]{data}{conversation_id} eq $sk->{conv} } 0 .. $#a;
        my @seq = map { $_->{data}{seq} } @acks;
        $ordered++ if @seq == 10 && !grep { $seq[$_] <= $seq[$_ - 1] } 1 .. $#seq;
    }
    is($ok, 160, 'all 160 sends acked');
    is($right, 160, "each ack is the stored message of its own ref's send");
    is($ordered, 16, "each socket's messages are numbered in the order it sent them");
    ok((!grep { !gapless($_->[2]) } @pairs), 'every conversation is numbered 1..n without a gap');
    is($s->psql("select count(*) from messages"), 160, '160 rows stored');

    # and delivered live to the other side's sockets (two each)
    my $delivered = 0;
    for my $sk (@socks) {
        my $n = 0;
        my $deadline = time + 10;
        while ($n < 20 && time < $deadline) {
            $sk->{ws}->expect('message:new', 1) and $n++;
        }
        $delivered += $n;
    }
    is($delivered, 320, "every message reaches both of the peer's sockets");
    $_->{ws}->close for @socks;
};

subtest 'a full queue answers unavailable and stores nothing it refused' => sub {
    my ($a, $b, $conv) = @{ $pairs[0] };
    my $wa = ws($a);
    my $before = $s->psql("select count(*) from messages where conversation_id = '$conv'");

    # one send that the database holds (its batch waits on the lock), then
    # 30 of 3,900 characters behind it: a 64k queue holds about 15 of them
    # (and a socket may have 32 sends waiting for answers)
    my $locker = hold_lock(1.2);   # under famcall_db_timeout (2s)
    my ($first) = fire($wa, $conv, 1, 'held by the database');
    wait_until { batch_held() } 10, 'the first send held by the lock';
    my ($refs, $cid) = fire($wa, $conv, 30, sub { ('x' x 3890) . sprintf('%06d', $_[0]) });
    my @a = answers($wa, [@$first, @$refs], 15);
    waitpid $locker, 0;
    ok($a[0] && $a[0]{type} eq 'ack', 'the held send is stored once the database lets go');
    shift @a;

    my @acked = grep { $a[$_] && $a[$_]{type} eq 'ack' } 0 .. $#a;
    my @refused = grep { $a[$_] && $a[$_]{type} eq 'error'
                         && $a[$_]{error}{code} eq 'unavailable' } 0 .. $#a;
    cmp_ok(scalar @acked, '>=', 5, scalar(@acked) . ' queued, stored and acked');
    cmp_ok(scalar @refused, '>=', 5, scalar(@refused) . ' refused with "unavailable"');
    is(@acked + @refused, 30, 'every send is answered one way or the other');

    my $in = join ',', map { "'$cid->{ $refs->[$_] }'" } @refused;
    is($s->psql("select count(*) from messages where client_id in ($in)"), 0,
       'nothing refused was stored');
    is($s->psql("select count(*) from messages where conversation_id = '$conv'"),
       $before + 1 + @acked, 'what was acked was stored');

    # the client sends the refused ones again, with the same client_ids
    my @retry;
    for my $k (@refused) {
        my $r = $wa->request('message:send',
            { conversation_id => $conv, client_id => $cid->{ $refs->[$k] },
              body => ('x' x 3890) . sprintf('%06d', $k + 1) });
        push @retry, $r if $r && $r->{type} eq 'ack';
    }
    is(scalar @retry, scalar @refused, 'sent again, each is stored');
    ok(gapless($conv), 'the conversation is numbered without a gap');
    $wa->close;
};

# A send waits on the batches of its own stream only: a batch stuck at the
# database (its conversation's row held) holds up nothing in the others.
subtest 'a batch held at the database holds up its own stream only' => sub {
    # a conversation's stream: the CRC-32 of its id, modulo the 2 streams
    my %in;
    push @{ $in{ crc32($_->[2]) % 2 } }, $_ for @pairs;
    for (1 .. 20) {
        last if $in{0} && $in{1};
        my ($x, $y) = ($s->signup, $s->signup);
        $s->befriend($x, $y);
        my $c = $s->open_conversation($x, $y)->{id};
        push @{ $in{ crc32($c) % 2 } }, [$x, $y, $c];
    }
    ok($in{0} && $in{1}, 'a conversation in each of the two streams');
    my ($held, $free) = ($in{0}[0], $in{1}[0]);

    my $wh = ws($held->[0]);
    my $wf = ws($free->[0]);
    my $t0 = time;
    my $locker = $s->hold_row('conversations', $held->[2], 1.5);   # under famcall_db_timeout (2s)
    $wh->send('message:send', { conversation_id => $held->[2], client_id => new_uuid(),
                                body => 'its batch waits on the row' }, 'held');
    wait_until { batch_held() } 10, 'the batch waiting on the row';

    my $t1 = time;
    my $r = $wf->request('message:send', { conversation_id => $free->[2],
                                           client_id => new_uuid(), body => 'the other stream' });
    my $took = time - $t1;
    is($r && $r->{type}, 'ack', 'a send in the other stream is acked');
    cmp_ok($took, '<', 1, sprintf('at once (%.3f s), not after the held batch', $took));

    my $h = $wh->wait_for(sub { ($_[0]{ref} // '') eq 'held' }, 15);
    is($h && $h->{type}, 'ack', 'the held send is acked once the row is let go');
    cmp_ok(time - $t0, '>=', 1.5, 'which was after the row was let go');
    waitpid $locker, 0;
    ok(gapless($_->[2]), 'both conversations numbered without a gap') for $held, $free;
    $_->close for $wh, $wf;
};

subtest 'a runner killed with a batch in hand: its stream is taken over' => sub {
    my ($a, $b, $conv) = @{ $pairs[1] };
    my ($wa, $pa, $wb, $pb) = two_workers($a, $b);

    # A's worker finds the stream idle and runs it: its batch waits on the lock
    my $locker = hold_lock(4);
    $wa->send('message:send', { conversation_id => $conv, client_id => new_uuid(),
                                body => 'in the batch of the worker killed' }, 'killed');
    wait_until { batch_held() } 10, "the batch of A's worker held by the lock";
    my ($refs) = fire($wb, $conv, 3, 'queued behind it');
    wait_until { $wb->server_has_read } 10, "B's worker to take B's sends in";
    kill 'KILL', $pa;
    ok($wa->wait_closed(10), "A's socket goes with its worker");

    my @a = answers($wb, $refs, 15);
    waitpid $locker, 0;
    my @seq = map { $_ && $_->{type} eq 'ack' ? $_->{data}{seq} : () } @a;
    is(scalar @seq, 3, "B's three sends, queued behind the dead runner, are acked");
    ok(@seq == 3 && $seq[0] < $seq[1] && $seq[1] < $seq[2], 'in the order B sent them');
    ok(gapless($conv), 'the conversation is numbered without a gap');

    like(log_text(), qr/worker \Q$pa\E, which ran a send stream, is gone; worker \d+ takes the stream over/,
         'the log says which worker took the stream over');
    $s->forgive_kill($pa);
    $wb->close;
};

subtest 'a runner that stands still (its pid alive) is taken over' => sub {
    my ($a, $b, $conv) = @{ $pairs[3] };
    my ($wa, $pa, $wb, $pb) = two_workers($a, $b);

    # A's worker runs the stream, its batch held by the lock; then it stops
    # (as a hung worker would, or a dead one whose pid another process got)
    my $locker = hold_lock(4);
    my $cid = new_uuid();
    $wa->send('message:send', { conversation_id => $conv, client_id => $cid,
                                body => 'in the batch of the worker stopped' }, 'stood');
    wait_until { batch_held() } 10, "the batch of A's worker held by the lock";
    kill 'STOP', $pa;
    my ($refs) = fire($wb, $conv, 3, 'queued behind it');

    my @a = answers($wb, $refs, 15);
    waitpid $locker, 0;
    my @seq = map { $_ && $_->{type} eq 'ack' ? $_->{data}{seq} : () } @a;
    is(scalar @seq, 3, "B's three sends, queued behind the runner that stopped, are acked");
    ok(@seq == 3 && $seq[0] < $seq[1] && $seq[1] < $seq[2], 'in the order B sent them');
    like(log_text(), qr/worker \Q$pa\E, which ran a send stream, took nothing for \d+ ms; worker \d+ takes the stream over/,
         'the log says which worker took the stream over, and why');

    # A's worker goes on: its send was stored once, whatever A was told
    kill 'CONT', $pa;
    my $r = $wa->wait_for(sub { ($_[0]{ref} // '') eq 'stood' }, 10);
    ok($r && ($r->{type} eq 'ack' || ($r->{error}{code} // '') eq 'unavailable'),
       "A's send is answered once its worker runs again") or diag explain $r;
    $r = $wa->request('message:send', { conversation_id => $conv, client_id => $cid,
                                        body => 'in the batch of the worker stopped' });
    is($r && $r->{type}, 'ack', 'a retry with its client_id is acked');
    is($s->psql("select count(*) from messages where client_id = '$cid'"), 1, 'stored once');
    ok(gapless($conv), 'the conversation is numbered without a gap');

    # and the stream still works, whoever runs it
    ($refs) = fire($wa, $conv, 2, 'after');
    @a = answers($wa, $refs, 10);
    is(scalar(grep { $_ && $_->{type} eq 'ack' } @a), 2, 'later sends from the stopped worker are acked');
    $_->close for $wa, $wb;
};

subtest 'one LISTEN for the node; a killed leader is replaced' => sub {
    my ($a, $b, $conv) = @{ $pairs[2] };
    is(listens(), 1, "four workers, one LISTEN connection");
    my @leaders = log_text() =~ /worker (\d+) listens for the node's events/g;
    my $leader = $leaders[-1];
    ok($leader && kill(0, $leader), "the leader is worker $leader");

    # A on a worker that is not the leader
    my ($wa, $pa);
    for (1 .. 30) {
        $wa = ws($a);
        $pa = $wa->server_pid($s->http_port);
        last if $pa && $pa != $leader;
        $wa->close;
    }
    isnt($pa, $leader, "A's socket is on worker $pa");

    my $m = $s->send_message($b, $conv, 'through the leader');
    my $ev = $wa->expect('message:new', 5);
    ok($ev && $ev->{data}{body} eq 'through the leader', 'A hears it through the leader');

    kill 'KILL', $leader;
    ok($wa->expect('resync', 15), "A's socket is told to resync once another worker listens");
    like(log_text(), qr/worker \Q$leader\E, which listened for the node, is gone or silent; worker \d+ takes over/,
         'the log says who took over');

    $m = $s->send_message($b, $conv, 'through the new leader');
    $ev = $wa->expect('message:new', 5);
    ok($ev && $ev->{data}{body} eq 'through the new leader', 'and hears the next message live');
    wait_until { listens() == 1 } 10, 'one LISTEN';
    is(listens(), 1, 'one LISTEN connection again');
    $s->forgive_kill($leader);
    $wa->close;
};

# datagrams to a worker's address ("@famcall.<pid>"), hex-encoded, sent
# by a process of $user
sub ipc_send_as {
    my ($user, $pid, @msgs) = @_;
    my $code = 'use Socket; socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die $!; '
             . 'my $to = pack_sockaddr_un("\0famcall." . shift); '
             . 'for (@ARGV) { defined send($s, pack("H*", $_), 0, $to) or die "send: $!" }';
    return system('runuser', '-u', $user, '--', $^X, '-e', $code, $pid, @msgs) == 0;
}

# the same, with the credentials of another process (pid, uid, gid): root
# may claim any (CAP_SYS_ADMIN, CAP_SETUID), so it can speak as a worker
sub ipc_send_claiming {
    my ($pid, $cred, @msgs) = @_;
    my $code = 'import socket, struct, sys; '
             . 's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); '
             . 'to = b"\0famcall." + sys.argv[1].encode(); '
             . 'cm = [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, '
             . 'struct.pack("iII", *map(int, sys.argv[2].split(","))))]; '
             . '[s.sendmsg([bytes.fromhex(h)], cm, 0, to) for h in sys.argv[3:]]';
    return system('python3', '-c', $code, $pid, join(',', @$cred), @msgs) == 0;
}

subtest 'messages between workers: strangers and garbage are ignored' => sub {
    my ($a, $b, $conv) = @{ $pairs[0] };
    my $wa = ws($a);
    my $pid = $wa->server_pid($s->http_port);
    my $token = unpack('H*', pack('Q<', 7));
    my (undef, undef, $nobody, $nogroup) = getpwnam('nobody');

    # from processes that nginx did not start, whatever their user: not
    # heard at all (the workers run as nobody)
    ok(ipc_send_as('root', $pid, '01' . '00' . $token . '01000000' . 'ffffffff'),
       'a datagram sent as root');
    ok(ipc_send_as('nobody', $pid, '0300'), "and one as the workers' own user");
    wait_until { log_text() =~ /a worker message from pid \d+, uid 0, ignored/ } 5, 'the log line';
    like(log_text(), qr/\[warn\].*a worker message from pid \d+, uid 0, ignored: not a process of this nginx/,
         'are ignored, and logged');

    # speaking as the worker itself: bad ones of every kind
    ok(ipc_send_claiming($pid, [$pid, $nobody, $nogroup],
        '',                                             # empty
        '63',                                           # an unknown type
        '0109',                                         # answers for no such batcher
        '0100' . $token . 'c9000000' . 'e8030000',      # an answer cut short
        '0100' . $token . 'c9000000' . '02000000' . '7b7d',   # for nobody's send
        '0200c8',                                       # kick: no such stream
        '0300'),                                        # an event too short to read
       'malformed messages sent with a worker\'s credentials');
    wait_until { log_text() =~ /unreadable event ignored/ } 5, 'the log line';
    like(log_text(), qr/unreadable event ignored/,
         'were heard (the event cut short is logged) and dropped');

    my $ack = $wa->request('message:send',
        { conversation_id => $conv, client_id => new_uuid(), body => 'still here' });
    is($ack && $ack->{type}, 'ack', 'the worker that got them still sends and answers');
    ok(gapless($conv), 'nothing was stored or numbered by them');
    $wa->close;
};

subtest 'a reload with other streams: the new workers get new ones, nothing is lost' => sub {
    my ($a, $b, $conv) = @{ $pairs[3] };
    my $before = $s->psql("select count(*) from messages where conversation_id = '$conv'");
    $s->nginx_reload(extra_conf => "famcall_db_timeout 2s;\nfamcall_send_streams 3;\n"
                                 . "famcall_send_queue_size 128k;\n");
    my $wa = ws($a);
    my ($refs, $cid) = fire($wa, $conv, 20, 'after the reload');
    my @a = answers($wa, $refs);
    my @seq = map { $_ && $_->{type} eq 'ack' ? $_->{data}{seq} : () } @a;
    is(scalar @seq, 20, '20 sends on the new workers, all acked');
    ok(!grep({ $seq[$_] != $seq[$_ - 1] + 1 } 1 .. $#seq), 'numbered in the order sent');
    is($s->psql("select count(*) from messages where conversation_id = '$conv'"), $before + 20,
       'and stored');
    ok(gapless($conv), 'without a gap');
    wait_until { listens() == 1 } 10, 'one LISTEN';
    is(listens(), 1, 'one LISTEN once the old workers are gone');
    $wa->close;
};

$s->stop;
done_testing;
