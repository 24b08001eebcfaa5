# The gateway across nodes and through restarts (issue 4): two nginx nodes
# on one database behave as one; `nginx -s reload` and a killed worker lose
# no message (sockets reconnect and sync) and presence is put right.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(new_uuid body_json wait_until);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 2);
my $n2 = Famcall::Test->new(node_of => $s, workers => 2);

my ($a, $b) = map { $s->signup } 1 .. 2;
$s->befriend($a, $b);
my $conv = $s->open_conversation($a, $b)->{id};

sub ws {
    my ($user, $node) = @_;
    my $ws = Famcall::WS->open($node // $s, $user->{access_token});
    die 'no socket' unless $ws;
    return $ws;
}

sub send_ws {
    my ($ws, $body) = @_;
    my $ack = $ws->request('message:send',
        { conversation_id => $conv, client_id => new_uuid(), body => $body });
    return $ack && $ack->{type} eq 'ack' ? $ack->{data} : undef;
}

# sync from $since to the end: (messages, last cursor)
sub sync_all {
    my ($ws, $since) = @_;
    my @m;
    for (1 .. 50) {
        my $r = $ws->request('sync', { since => $since }) or last;
        push @m, @{ $r->{data}{messages} };
        $since = $r->{data}{cursor};
        last unless $r->{data}{more};
    }
    return (\@m, $since);
}

subtest 'two nodes: A on node 1, B on node 2' => sub {
    my $a1 = ws($a, $s);
    my $b1 = ws($b, $n2);
    ok($a1->server_pid($s->http_port), 'A is served by node 1');
    ok($b1->server_pid($n2->http_port), 'B by node 2');
    my $on = $a1->expect('presence', 5, sub { $_[0]{data}{user_id} eq $b->{user}{id} });
    ok($on && $on->{data}{online}, "A hears of B's socket on the other node: online");

    my $m = send_ws($a1, 'across nodes');
    ok($m, 'A sends');
    my $ev = $b1->expect('message:new');
    is($ev && $ev->{data}{id}, $m->{id}, 'B gets it on the other node');

    $m = send_ws($b1, 'and back');
    $ev = $a1->expect('message:new');
    is($ev && $ev->{data}{id}, $m->{id}, 'A gets the answer');

    $a1->request('message:read', { conversation_id => $conv, up_to_seq => $m->{seq} });
    $ev = $b1->expect('message:read');
    is($ev && $ev->{data}{up_to_seq}, $m->{seq}, 'the read receipt crosses too');

    $b1->request('typing', { conversation_id => $conv, state => 'start' });
    ok($a1->expect('typing'), 'typing crosses');

    # presence: B's second socket on node 1, then both gone
    my $b2 = ws($b, $s);
    ok($a1->none('presence', 0.4), "B's second socket (other node) is not news");
    $b1->close;
    ok($a1->none('presence', 0.4), 'B still has a socket on node 1: still online');
    $b2->close;
    $ev = $a1->expect('presence', 5);
    ok($ev && !$ev->{data}{online}, 'offline once the last socket on any node closed');
    $a1->close;
};

subtest 'reload: sockets closed with 1001, nothing lost' => sub {
    my $a1 = ws($a);
    my $b1 = ws($b);
    my (undef, $cursor) = sync_all($b1, undef);

    $s->nginx_reload;
    ok($b1->wait_closed(10), "B's socket is closed by the reload");
    is($b1->close_code, 1001, 'with 1001, going away');
    ok($a1->wait_closed(10), "and A's");

    # what is sent while B is away
    my @sent = map { body_json($s->send_message($a, $conv, "while away $_"))->{id} } 1 .. 3;

    my $b2 = ws($b);
    my ($got) = sync_all($b2, $cursor);
    is_deeply([map { $_->{id} } @$got], \@sent, 'B reconnects, sync returns what it missed');

    # B's presence row is written by its worker's next batch, after the
    # new worker has registered: wait for it rather than race it
    my $a2 = ws($a);
    my $online = wait_until {
        my $ev = $a2->request('sync', {});
        my ($pb) = grep { $_->{user_id} eq $b->{user}{id} } @{ $ev->{data}{presence} };
        $pb && $pb->{online};
    } 10, 'B online in a sync';
    ok($online, 'B is online again after the reload');
    $_->close for $a2, $b2;
};

# B's earlier sockets are gone from the database (their closes are async)
sub wait_offline {
    my ($user) = @_;
    wait_until { !$s->psql("select count(*) from presence where user_id = '$user->{user}{id}'") }
        10, 'no presence row left';
}

subtest 'a killed worker: presence corrected, nothing lost' => sub {
    wait_offline($b);
    my $a1 = ws($a, $n2);
    my $b1 = ws($b);
    my (undef, $cursor) = sync_all($b1, undef);
    my $pid = $b1->server_pid($s->http_port);
    ok($pid, "the worker holding B's socket");

    # (A is on the other node: the kill cannot take A's socket with it)
    my $on = $a1->expect('presence', 5, sub { $_[0]{data}{user_id} eq $b->{user}{id} });
    ok($on && $on->{data}{online}, 'B online');

    kill 'KILL', $pid;
    ok($b1->wait_closed(10), "B's socket drops with the worker");

    # the master starts a new worker; it finds the dead one's rows and sweeps
    my $ev = $a1->expect('presence', 15, sub { $_[0]{data}{user_id} eq $b->{user}{id} });
    ok($ev && !$ev->{data}{online}, 'B is announced offline once the worker is replaced');

    my @sent = map { body_json($s->send_message($a, $conv, "after the kill $_"))->{id} } 1 .. 2;
    my $b2 = ws($b);
    $ev = $a1->expect('presence', 5, sub { $_[0]{data}{user_id} eq $b->{user}{id} });
    ok($ev && $ev->{data}{online}, 'and online again when B reconnects');
    my ($got) = sync_all($b2, $cursor);
    is_deeply([map { $_->{id} } @$got], \@sent, 'sync returns what was sent meanwhile');
    $_->close for $a1, $b2;
    $s->forgive_kill($pid);
};

subtest 'the bus comes back after a database restart' => sub {
    my $a1 = ws($a);
    my $b1 = ws($b, $n2);
    $s->pg_stop;
    $s->pg_start;
    ok($b1->expect('resync', 20), 'sockets are told to resync once the bus is back');
    # the pool reconnects on demand: retry until a send gets through
    my $m = wait_until { send_ws($a1, 'after the restart') } 15, 'a send to get through';
    ok($m, 'sending works again');
    my $ev = $b1->expect('message:new', 10);
    is($ev && $ev->{data}{id}, $m && $m->{id}, 'and is delivered live');
    $_->close for $a1, $b1;
};

$n2->stop;
$s->stop;
done_testing;
