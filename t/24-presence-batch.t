# Presence in batches (sql/014, ngx_famcall_gw_registry.c): a worker writes
# the presence changes that arrive while its previous batch is at the
# database in one transaction. A storm of sockets opening (a restart, a
# town waking up) is one batch per round trip, not one commit per socket,
# and every contact still hears each change once, in its order.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Famcall::Test qw(new_uuid wait_until);
use Famcall::WS;

# one worker: every socket's change goes through the same batcher; the
# database may hold a batch 3 s (the sockets open meanwhile, under ASan too)
my $s = Famcall::Test->new(workers => 1, extra_conf => 'famcall_db_timeout 10s;');

my $n = 40;
my $w = $s->signup;                    # the watcher: everyone's contact
my @u = map { $s->signup } 1 .. $n;
$s->befriend($_, $w) for @u;
my $x = $s->signup;                    # opens and closes in a hurry
$s->befriend($x, $w);
my $y = $s->signup;                    # comes and goes while the database is away

sub ws { my $ws = Famcall::WS->open($s, $_[0]{access_token}); die 'no socket' unless $ws; $ws }

sub rows { $s->psql("select count(*) from presence where user_id in ("
                    . join(',', map { "'$_->{user}{id}'" } @_) . ')') }

# calls of a function since track_functions was turned on
sub calls {
    $s->psql("select coalesce(sum(calls), 0) from pg_stat_user_functions where funcname = '$_[0]'");
}

# a psql session holding the presence table for $secs: the batch at the
# database waits, and the changes behind it queue in the worker
sub hold_presence { $s->hold_lock('presence', $_[0]) }

# times the pool has failed to reach the database, by its log
sub failed_tries { scalar(() = $s->error_log =~ /database connection lost/g) }

# the presence events $ws got about the users @who within $secs: user -> [online...]
sub heard {
    my ($ws, $secs, @who) = @_;
    my %want = map { $_->{user}{id} => 1 } @who;
    my %got;
    my $deadline = time + $secs;
    while (time < $deadline && keys %got < keys %want) {
        my $ev = $ws->expect('presence', $deadline - time,
                             sub { $want{ $_[0]{data}{user_id} } }) or last;
        push @{ $got{ $ev->{data}{user_id} } }, $ev->{data};
    }
    return \%got;
}

my $w1 = ws($w);
my $online = wait_until { rows($w) == 1 } 10, "the watcher's presence row";
ok($online, 'the watcher is online');

# counted from here on. The pool's sessions read the setting at their next
# query once the postmaster has passed the reload on to them, which it has
# done when a new session sees the setting.
$s->psql("alter system set track_functions = 'pl'");
$s->psql('select pg_reload_conf()');
wait_until { $s->psql('show track_functions') eq 'pl' } 10, 'track_functions reloaded';

subtest "$n sockets open while the database is busy: two batches, everyone announced" => sub {
    my $locker = hold_presence(3);
    my @socks = map { ws($_) } @u;
    waitpid $locker, 0;

    my $got = heard($w1, 10, @u);
    is(scalar(grep { $got->{ $_->{user}{id} } } @u), $n, 'the watcher hears every one come online');
    is(scalar(grep { @{ $got->{ $_->{user}{id} } // [] } == 1 && $got->{ $_->{user}{id} }[0]{online} } @u),
       $n, 'once each, online');
    is(rows(@u), $n, 'a presence row each');

    # the stats reach the view within the backends' report interval
    wait_until { calls('famcall_presence_change') >= $n } 15, 'the calls in the statistics';
    is(calls('famcall_presence_change'), $n, 'each change written once');
    is(calls('famcall_presence_batch'), 2,
       'in two transactions: the one the lock held, then all that queued behind it');

    # the same storm the other way
    $locker = hold_presence(3);
    $_->close for @socks;
    waitpid $locker, 0;
    $got = heard($w1, 10, @u);
    is(scalar(grep { my $e = $got->{ $_->{user}{id} }; $e && @$e == 1 && !$e->[0]{online}
                        && ($e->[0]{last_seen} // '') =~ /^\d{4}-/ } @u),
       $n, 'every one goes offline once, with last_seen');
    is(rows(@u), 0, 'no presence row left');
    wait_until { calls('famcall_presence_change') >= 2 * $n } 15, 'the calls in the statistics';
    is(calls('famcall_presence_batch'), 4, 'again in two transactions');
};

subtest 'open, close, open while a batch waits: the last state wins, announced once' => sub {
    my $locker = hold_presence(3);
    my $busy = ws($u[0]);              # its change is the batch the lock holds
    my $x1 = ws($x);
    $x1->close;
    my $x2 = ws($x);
    $x1 = ws($x);
    $x1->close;
    waitpid $locker, 0;

    my $got = heard($w1, 10, $x);
    is(scalar @{ $got->{ $x->{user}{id} } // [] }, 1, 'the watcher hears of X once');
    ok($got->{ $x->{user}{id} } && $got->{ $x->{user}{id} }[0]{online}, 'online: X kept a socket');
    ok(!%{ heard($w1, 0.5, $x) }, 'and nothing more');
    is(rows($x), 1, 'X has its presence row');

    $x2->close;
    $got = heard($w1, 10, $x);
    ok($got->{ $x->{user}{id} } && !$got->{ $x->{user}{id} }[0]{online}, 'then offline');
    is(rows($x), 0, 'and no row');
    $busy->close;
    heard($w1, 5, $u[0]);
};

subtest 'the database away: the change is written once it is back' => sub {
    # each change meets the outage: the pool fails to reach the database
    # after it was made, and before the database is started again
    $s->pg_stop;
    my $y1 = ws($y);                   # tokens need no database
    my $tries = failed_tries();
    my $failed = wait_until { failed_tries() > $tries } 15, 'a failed try after the socket opened';
    ok($failed, 'the database is tried, and fails, after Y comes online');
    $s->pg_start;
    wait_until { rows($y) == 1 } 15, "Y's presence row";
    is(rows($y), 1, 'online, retried until the database answered');

    $s->pg_stop;
    $y1->close;                        # (once the server has answered the close)
    $tries = failed_tries();
    $failed = wait_until { failed_tries() > $tries } 15, 'a failed try after the socket closed';
    ok($failed, 'the database is tried, and fails, after Y goes offline');
    $s->pg_start;
    wait_until { rows($y) == 0 } 15, "Y's presence row gone";
    is(rows($y), 0, 'and offline the same way');
    is($s->psql("select last_seen_at is not null from users where id = '$y->{user}{id}'"), 't',
       'with last_seen');
};

subtest 'a worker with 40,000 users swept in one transaction' => sub {
    # the sweep of a worker that exited or died: with an advisory lock per
    # user it ran out of PostgreSQL's lock table (12,800 entries here, and
    # what shared memory has to spare: 20,000 still passed, 32,500 did not)
    my $inst = new_uuid();
    $s->psql("insert into gateway_instances (id, host, pid) values ('$inst', 'elsewhere', 1)");
    $s->psql(q{insert into users (id, phone, display_name, username)
               select gen_random_uuid(), '+1777' || lpad(g::text, 8, '0'), 'S' || g, 'sweep' || g
                 from generate_series(1, 40000) g});
    $s->psql("insert into presence (user_id, instance_id)
              select id, '$inst' from users where username like 'sweep%'");
    my $ok = eval { $s->psql("select status from famcall_instance_sweep('$inst')") } // $@;
    is($ok, 204, 'the sweep succeeds') or diag $ok;
    is($s->psql("select count(*) from presence where instance_id = '$inst'"), 0, 'every row gone');
    is($s->psql("select count(*) from gateway_instances where id = '$inst'"), 0, 'and the instance');
    is($s->psql("select count(*) from users where username like 'sweep%' and last_seen_at is null"), 0,
       'everyone has last_seen');
};

subtest 'a user who is gone does not fail the batch' => sub {
    my $inst = new_uuid();
    $s->psql("insert into gateway_instances (id, host, pid) values ('$inst', 'elsewhere', 1)");
    my ($gone, $here) = (new_uuid(), $u[3]{user}{id});
    my $ok = eval {
        $s->psql("select status from famcall_presence_batch('$inst', '{$gone,$here}', '{t,t}')")
    } // $@;
    is($ok, 204, 'the batch is written') or diag $ok;
    is($s->psql("select count(*) from presence where instance_id = '$inst'"), 1,
       'the user who is there is online; the one who is gone is skipped');
    $s->psql("select famcall_instance_sweep('$inst')");
};

subtest 'a batch the worker did not build is refused whole' => sub {
    my ($id1, $id2) = map { $_->{user}{id} } @u[1, 2];
    my $inst = new_uuid();      # registered: a batch let through would write
    $s->psql("insert into gateway_instances (id, host, pid) values ('$inst', 'elsewhere', 1)");
    for my $case (["{$id1,$id2}", '{t}', 'arrays of two lengths'],
                  ["{$id1,$id1}", '{t,f}', 'a user twice'],
                  ["{$id1,NULL}", '{t,t}', 'a NULL user'],
                  ["{$id1}", '{NULL}', 'a NULL state']) {
        my ($users, $online, $name) = @$case;
        my $err = eval {
            $s->psql("select * from famcall_presence_batch('$inst', '$users', '$online')"); ''
        } // $@;
        like($err, qr/bad arrays/, "$name: refused");
    }
    is($s->psql("select count(*) from presence where instance_id = '$inst'"), 0, 'nothing written');
    my $ok = $s->psql("select status from famcall_presence_batch('$inst', '{}', '{}')");
    is($ok, 204, 'an empty batch is a no-op');
    $s->psql("select famcall_instance_sweep('$inst')");
};

$w1->close;
$s->stop;
done_testing;
