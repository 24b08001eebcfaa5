# Delivery inside a node (issue 18): any worker hands an event to the
# sockets of this node, whichever worker holds them, without the database
# (ngx_famcall_gw_deliver.h). Its first user is typing: when every socket
# of the peer is on the sender's node (their presence rows say so), the
# node delivers the event itself and nothing is notified
# (sql/018_typing_local.sql); otherwise the bus carries it, as before.
# A bus line whose src is "=<instance>.<id>" reaches that one socket.
# The node's LISTEN leader: one that was replaced while it stood still
# closes its LISTEN, and one that leads again makes the node's sockets
# resync. The workers' datagrams are heard only from nginx's own
# processes, not from another process of the workers' user.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Famcall::Test qw(new_uuid);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 3, log_level => 'notice');

my ($a, $b, $c) = map { $s->signup } 1 .. 3;
$s->befriend($a, $b);
my $conv = $s->open_conversation($a, $b)->{id};

sub ws {
    my ($user, $node) = @_;
    my $ws = Famcall::WS->open($node // $s, $user->{access_token});
    die 'no socket' unless $ws;
    return $ws;
}

# a socket of $user on a worker for which $want->($pid) is true
sub ws_on {
    my ($user, $want, $node) = @_;
    $node //= $s;
    for (1 .. 40) {
        my $ws = ws($user, $node);
        my $pid = $ws->server_pid($node->http_port);
        return ($ws, $pid) if $pid && $want->($pid);
        $ws->close;
    }
    return;
}

sub log_text { my $log = "$s->{data}/log/nginx-error.log"; local (@ARGV, $/) = ($log); <> }

sub wait_log {
    my ($re, $secs) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my @m = log_text() =~ $re;
        return @m ? @m : (1) if log_text() =~ $re;
        sleep 0.1;
    }
    return;
}

sub leader { my @l = log_text() =~ /worker (\d+) listens for the node's events/g; $l[-1] }

sub listens { $s->psql("select count(*) from pg_stat_activity where query ilike 'listen%'") }

sub wait_until {
    my ($cond, $secs) = @_;
    my $deadline = time + $secs;
    sleep 0.05 until $cond->() || time > $deadline;
    return $cond->();
}

sub presence_rows {
    my ($user) = @_;
    return $s->psql("select count(*) from presence where user_id = '$user->{user}{id}'");
}

subtest 'a line for one socket reaches that socket only, on its worker' => sub {
    my ($c1, $pid) = ws_on($c, sub { 1 });
    my ($c2) = ws_on($c, sub { $_[0] == $pid });
    my ($c3) = ws_on($c, sub { $_[0] != $pid });
    ok($c1 && $c2 && $c3, "two sockets of C on worker $pid, one on another");
    ok(wait_until(sub { presence_rows($c) == 2 }, 10), "C's presence rows name their workers");
    my $inst = $s->psql("select p.instance_id from presence p join gateway_instances g "
                      . "on g.id = p.instance_id where p.user_id = '$c->{user}{id}' and g.pid = $pid");
    like($inst, qr/^[0-9a-f-]{36}$/, "worker $pid is instance $inst");

    # socket ids count from 1 in each worker: one line per id, each for
    # "<instance>.<id>" only; each socket finds exactly its own
    for my $from (0, 50, 100) {
        my $lines = join "\n", map {
            "probe $c->{user}{id} =$inst.$_ {\"k\": $_}"
        } $from + 1 .. $from + 50;
        $s->psql("select pg_notify('famcall', '$lines')");
    }
    my %got;
    for my $ws ([c1 => $c1], [c2 => $c2], [c3 => $c3]) {
        while (my $ev = $ws->[1]->expect('probe', 1.5)) {
            push @{ $got{ $ws->[0] } }, $ev->{data}{k};
        }
    }
    is(scalar @{ $got{c1} // [] }, 1, 'the first socket gets one line: ' . join(',', @{ $got{c1} // [] }));
    is(scalar @{ $got{c2} // [] }, 1, 'the second gets one: ' . join(',', @{ $got{c2} // [] }));
    isnt($got{c1}[0] // 0, $got{c2}[0] // 0, 'not the same one');
    ok(!$got{c3}, 'the socket on the other worker none');
    $_->close for $c1, $c2, $c3;
};

subtest 'typing between sockets of one node: delivered with its LISTEN stopped' => sub {
    my $leader = leader();
    ok($leader && kill(0, $leader), "worker $leader listens for the node");
    my ($wb, $pb) = ws_on($b, sub { $_[0] != $leader });
    my ($wa, $pa) = ws_on($a, sub { $_[0] != $leader && $_[0] != $pb });
    ok($wa && $wb, "A on worker $pa, B on worker $pb, neither the leader");
    ok(wait_until(sub { presence_rows($b) == 1 }, 10), "B's presence row is written");

    # the bus cannot carry anything to this node meanwhile (under the 5 s
    # after which another worker would take the LISTEN over)
    kill 'STOP', $leader;
    my $t0 = time;
    my $ack = $wa->request('typing', { conversation_id => $conv, state => 'start' });
    is($ack && $ack->{type}, 'ack', 'A types');
    my $ev = $wb->expect('typing', 2);
    ok($ev && $ev->{data}{user_id} eq $a->{user}{id} && $ev->{data}{state} eq 'start',
       sprintf('B hears it from the node itself (%.3f s), not through the bus', time - $t0));

    # (from A's socket: an HTTP request might wait on the stopped worker)
    my $m = $wa->request('message:send',
        { conversation_id => $conv, client_id => new_uuid(), body => 'needs the bus' });
    is($m && $m->{type}, 'ack', 'A sends a message');
    ok($wb->none('message:new', 0.5), 'which, announced on the bus, waits');
    kill 'CONT', $leader;
    cmp_ok(time - $t0, '<', 5, 'the leader was stopped for less than it takes to replace it');
    ok($wb->expect('message:new', 5), 'and arrives once the leader reads again');
    $_->close for $wa, $wb;
};

subtest 'typing to another node, or to sockets on both, goes through the bus once' => sub {
    my $n2 = Famcall::Test->new(node_of => $s, workers => 2, log_level => 'notice');
    # B's sockets of the last subtest are gone from presence (closes are
    # written in batches): B's row must be the one on node 2
    ok(wait_until(sub { presence_rows($b) == 0 }, 10), 'B is offline');
    my $wa = ws($a);
    my $b2 = ws($b, $n2);
    ok(wait_until(sub { presence_rows($b) == 1 }, 10), "B's socket on node 2 is present");
    $wa->request('typing', { conversation_id => $conv, state => 'start' });
    my $ev = $b2->expect('typing', 5);
    ok($ev && $ev->{data}{state} eq 'start', 'B hears it on the other node');

    my $b1 = ws($b);
    ok(wait_until(sub { presence_rows($b) == 2 }, 10), 'B also has a socket on node 1');
    sleep 1.1;    # typing: one a second (after a burst of 5)
    $wa->request('typing', { conversation_id => $conv, state => 'stop' });
    ok($b1->expect('typing', 5, sub { $_[0]{data}{state} eq 'stop' }), "B's socket on node 1 hears it");
    ok($b2->expect('typing', 5, sub { $_[0]{data}{state} eq 'stop' }), 'and the one on node 2');
    # each socket hears the stop once: no second copy by the node beside the
    # bus's.  (Only stops count: the start, sent before $b1 opened, may still
    # reach it when node 1's leader reads that notification after $b1 joined
    # the node's index, a stale event a client shows for a moment at most.)
    my $stop = sub { $_[0]{data}{state} eq 'stop' };
    ok(!$b1->expect('typing', 1, $stop) && !$b2->expect('typing', 0.1, $stop),
       'each once');
    $_->close for $wa, $b1, $b2;
    $n2->stop;
};

subtest 'a replaced leader stops listening; leading again, it makes the node resync' => sub {
    my $l0 = leader();
    my ($wa, $pa) = ws_on($a, sub { $_[0] == $l0 });
    ok($wa, "A's socket on the leader, worker $l0");
    is(listens(), 1, 'one LISTEN');

    kill 'STOP', $l0;
    my ($f) = wait_log(qr/worker \Q$l0\E, which listened for the node, is gone or silent; worker (\d+) takes over/, 15);
    ok($f, "worker $l0 stood still: worker " . ($f // '?') . ' took over');
    kill 'CONT', $l0;
    ok($wa->expect('resync', 5), "A's socket is told to resync (the new leader's subscription)");

    ok(wait_log(qr/worker \Q$l0\E no longer listens for the node's events; worker \Q$f\E does/, 5),
       "worker $l0 sees it was replaced and closes its LISTEN");
    ok(wait_until(sub { listens() == 1 }, 5), 'one LISTEN again, not two');

    # every other worker stands still: the old leader is the one to take over
    my @others = grep { $_ != $l0 } $s->worker_pids;
    kill 'STOP', @others;
    my $again = wait_log(qr/worker \Q$f\E, which listened for the node, is gone or silent; worker \Q$l0\E takes over/, 15);
    ok($again, "worker $l0 leads again");
    ok($wa->expect('resync', 10),
       "and its new LISTEN tells its sockets to resync: what was sent meanwhile was missed");
    kill 'CONT', @others;
    ok(wait_log(qr/worker \Q$f\E no longer listens for the node's events; worker \Q$l0\E does/, 5),
       "worker $f, running again, closes its LISTEN");
    ok(wait_until(sub { listens() == 1 }, 5), 'one LISTEN');

    my $m = $s->send_message($b, $conv, 'after it all');
    my $ev = $wa->expect('message:new', 5);
    is($ev && $ev->{data}{body}, 'after it all', 'events flow through the leader again');
    $wa->close;
};

# a datagram to a worker's address ("@famcall.<pid>"), hex-encoded, sent
# by a process of $user, or (with $cred) with those credentials: root may
# claim any pid and uid
sub ipc_send {
    my ($to, $hex, %o) = @_;
    if ($o{cred}) {
        my $code = 'import socket, struct, sys; '
                 . 's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); '
                 . 'cm = [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, '
                 . 'struct.pack("iII", *map(int, sys.argv[2].split(","))))]; '
                 . 's.sendmsg([bytes.fromhex(sys.argv[3])], cm, 0, b"\0famcall." + sys.argv[1].encode())';
        return system('python3', '-c', $code, $to, join(',', @{ $o{cred} }), $hex) == 0;
    }
    my $code = 'use Socket; socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die $!; '
             . 'defined send($s, pack("H*", $ARGV[1]), 0, pack_sockaddr_un("\0famcall." . $ARGV[0])) '
             . 'or die "send: $!"';
    return system('runuser', '-u', $o{user}, '--', $^X, '-e', $code, $to, $hex) == 0;
}

subtest "a process of the workers' user cannot hand bus lines to sockets" => sub {
    my ($wc, $pid) = ws_on($c, sub { 1 });
    my ($uid, $gid) = do {
        local (@ARGV, $/) = ("/proc/$pid/status");
        my $st = <>;
        ($st =~ /^Uid:\s+(\d+)/m, $st =~ /^Gid:\s+(\d+)/m);
    };
    my $user = getpwuid($uid);
    ok(defined $user, "the workers run as $user (uid $uid)");

    # NGX_FAMCALL_IPC_BUS_EVENTS (3), then a well-formed line for C
    my $line = qq(typing $c->{user}{id} - {"conversation_id": "$conv", "user_id": "$a->{user}{id}", "state": "start"});
    my $hex = '03' . unpack('H*', $line);

    ok(ipc_send($pid, $hex, user => $user), "a line for C's socket, sent as $user");
    ok($wc->none('typing', 1), 'C hears nothing');
    ok(wait_log(qr/\[warn\].*a worker message from pid \d+, uid \Q$uid\E, ignored: not a process of this nginx/, 5),
       'the log says it was ignored, and why');

    # the same bytes from a worker are heard: only the sender made the difference
    ok(ipc_send($pid, $hex, cred => [$pid, $uid, $gid]), "the same, with the worker's own credentials");
    my $ev = $wc->expect('typing', 5);
    ok($ev && $ev->{data}{user_id} eq $a->{user}{id}, 'is delivered');
    $wc->close;
};

$s->stop;
done_testing;
