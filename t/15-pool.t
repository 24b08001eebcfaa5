# The database pool and head-of-line blocking: a query that waits on a lock
# holds up what is pipelined behind it on its connection, so the pool sends
# new queries to a connection that is moving, or to a spare it opens (up to
# famcall_db_pool_max), and /healthz answers from the pool's state.  Here a
# user's row is locked while more of their writes wait on it than the pool
# has connections; other requests must answer while the lock is held, and
# the waiting writes must complete once it is released.
#
# One worker, so that the waiting writes and the other requests share one
# pool; a database timeout longer than the lock is held, so that nothing
# gives up.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(WNOHANG);
use Mojo::UserAgent;
use Time::HiRes qw(sleep time);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Famcall::Test qw(body_json render_conf nginx_t);

my $conf = "famcall_db_timeout 30s;";
my $s = Famcall::Test->new(workers => 1, log_level => 'debug', extra_conf => $conf);
my $data = $s->data_dir;

my $x = $s->signup;    # the user whose row is locked
my $y = $s->signup;    # others, who must not notice
my $z = $s->signup;

my $seq = 0;

# in_child($method, $path, $body, $token) -> [pid, file]: the request runs
# in a child process, which writes the answer's status to the file; so that
# several can wait at once while this process goes on.
sub in_child {
    my ($method, $path, $body, $token) = @_;
    my $file = "$data/child." . ++$seq;
    my $url = $s->url($path);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $ua = Mojo::UserAgent->new(request_timeout => 60, inactivity_timeout => 60);
        my $tx = $ua->build_tx($method => $url
            => { Authorization => "Bearer $token" } => ($body ? (json => $body) : ()));
        $ua->start($tx);
        if (open my $fh, '>', "$file.tmp") {
            print $fh ($tx->res->code // 0), "\n", $tx->res->body // '';
            close $fh;
            rename "$file.tmp", $file;
        }
        POSIX::_exit(0);
    }
    return [ $pid, $file ];
}

sub running { waitpid($_[0][0], WNOHANG) == 0 }

# finish($child, $deadline) -> (status, body) once the child is done
sub finish {
    my ($c, $deadline) = @_;
    while (running($c)) {
        if (time > $deadline) { kill 'KILL', $c->[0]; waitpid $c->[0], 0; return (0, 'killed') }
        sleep 0.05;
    }
    open my $fh, '<', $c->[1] or return (0, 'no answer');
    my ($code, @body) = <$fh>;
    chomp $code;
    return ($code, join '', @body);
}

sub lock_waiters {
    $s->psql("select count(*) from pg_stat_activity where wait_event_type = 'Lock'");
}

# nginx's connections to the database (psql names itself: the lock holder
# and this query are not counted)
sub backends {
    $s->psql("select count(*) from pg_stat_activity where backend_type = 'client backend' "
           . "and application_name <> 'psql'");
}

# the lock holder of hold_row(): its session is ended at once, which
# releases the lock (its psql goes first, so that it has nothing to say)
sub release {
    my ($holder) = @_;
    kill 'KILL', $holder;
    waitpid $holder, 0;
    $s->psql("select pg_terminate_backend(pid) from pg_stat_activity "
           . "where query like '%hold_row%pg_sleep%' and pid <> pg_backend_pid()");
}

# Wait until $n writes wait on the lock (one per connection: the others are
# pipelined behind them), then past the pool's threshold for "stuck".
sub wait_blocked {
    my ($n) = @_;
    my $deadline = time + 10;
    sleep 0.05 while lock_waiters() < $n && time < $deadline;
    cmp_ok(lock_waiters(), '>=', $n, "$n writes wait on the lock");
    sleep 0.3;
}

sub is_code {
    my ($tx, $code, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($tx->res->code // 0, $code, $name)
        or diag($tx->res->body // $tx->error->{message} // '?');
}

sub login {
    my ($u) = @_;
    $s->json_req(POST => '/v1/auth/login', { email => $u->{email}, password => $u->{password} });
}

is($s->t->get_ok('/healthz')->tx->res->code, 200, 'healthz 200 at the start');
my $idle_backends = backends();

subtest 'a locked row: other requests answer while the writes wait' => sub {
    my $holder = $s->hold_row('users', $x->{user}{id}, 60);
    my @blocked = map { in_child(PATCH => '/v1/me', { display_name => "Patched $_" },
                                 $x->{access_token}) } 1 .. 6;
    wait_blocked(2);

    for my $i (1 .. 3) {
        my $tx = $s->json_req(GET => '/healthz');
        is_code($tx, 200, "healthz #$i: 200");
        is_deeply(body_json($tx), { status => 'ok' }, "healthz #$i: ok");
    }
    my $tx = $s->json_req(GET => '/v1/me', undef, $y->{access_token});
    is_code($tx, 200, "another user's GET /v1/me: 200");
    is((body_json($tx) // {})->{id}, $y->{user}{id}, 'their own profile');
    is_code(login($z), 200, 'another user logs in');
    $tx = $s->json_req(PATCH => '/v1/me', { display_name => 'Not Waiting' }, $y->{access_token});
    is_code($tx, 200, "another user's PATCH /v1/me (another row): 200");
    is_code($s->json_req(GET => '/v1/me', undef, $x->{access_token}), 200,
            "the locked user's own GET /v1/me (a read): 200");

    ok(kill(0, $holder) && waitpid($holder, WNOHANG) == 0, 'the lock is still held');
    is(scalar(grep { running($_) } @blocked), 6,
       'the 6 writes still wait: the others answered before the lock was released');
    cmp_ok(backends(), '>', $idle_backends, 'the pool opened a spare connection');

    release($holder);
    my $deadline = time + 15;
    my @codes = map { [ finish($_, $deadline) ] } @blocked;
    is_deeply([ map { $_->[0] } @codes ], [ (200) x 6 ], 'the 6 writes complete once it is released')
        or diag(explain \@codes);
    like((body_json($s->json_req(GET => '/v1/me', undef, $x->{access_token})) // {})->{display_name},
         qr/^Patched \d$/, 'and were stored');
};

subtest 'the spares close once idle' => sub {
    my $deadline = time + 25;
    sleep 0.2 while backends() > $idle_backends && time < $deadline;
    is(backends(), $idle_backends, 'back to the connections of an idle pool within 25 s');
    is_code($s->json_req(GET => '/healthz'), 200, 'healthz 200');
};

subtest 'every state change is in the debug log' => sub {
    open my $fh, '<', "$data/log/nginx-error.log" or die "error log: $!";
    my $log = do { local $/; <$fh> };
    for my $re (qr/famcall pg conn #\d+: connecting/, qr/famcall pg conn #\d+: ready/,
                qr/famcall pg conn #\d+: stuck, \d+ in flight/,
                qr/famcall pg spare #\d+: opened/, qr/famcall pg spare #\d+: ready/,
                qr/famcall pg conn #\d+: moving again/,
                qr/famcall pg spare #\d+: closed, idle/) {
        like($log, $re, "logged: $re");
    }
};

subtest 'no spare left: healthz answers from the pool state' => sub {
    $s->nginx_reload(extra_conf => "$conf famcall_db_pool_max 2;");
    my $deadline = time + 10;
    sleep 0.05 until ($s->json_req(GET => '/healthz')->res->code // 0) == 200 || time > $deadline;

    my $holder = $s->hold_row('users', $x->{user}{id}, 60);
    my @blocked = map { in_child(PATCH => '/v1/me', { display_name => "Again $_" },
                                 $x->{access_token}) } 1 .. 4;
    wait_blocked(2);

    is_code($s->json_req(GET => '/healthz'), 200, 'healthz 200: connected, but busy');
    # a query now waits in the pool (not behind one connection's lock) and
    # goes to the first connection that moves
    my $queued = in_child(GET => '/v1/me', undef, $y->{access_token});
    sleep 0.3;
    ok(running($queued), "another user's GET /v1/me waits: no connection is free");

    ok(waitpid($holder, WNOHANG) == 0, 'the lock is still held');
    is(scalar(grep { running($_) } @blocked), 4, 'the 4 writes still wait');

    release($holder);
    $deadline = time + 15;
    my ($code) = finish($queued, $deadline);
    is($code, 200, 'the waiting GET /v1/me answers once a connection moves');
    is_deeply([ map { (finish($_, $deadline))[0] } @blocked ], [ (200) x 4 ],
              'the 4 writes complete');
    is(backends(), $idle_backends, 'no spare was opened');
};

# `nginx -t` in a directory of its own: its [emerg] must not land in the
# stack's error log, which teardown checks
subtest 'famcall_db_pool_max below famcall_db_pool_size is refused' => sub {
    my $dir = tempdir('famcall-c-XXXX', DIR => '/tmp', CLEANUP => 1);
    make_path("$dir/log", "$dir/nginx-tmp");
    for ([ 'jwt.key', $s->jwt_key ], [ 'extra.conf', "famcall_db_pool_max 1;\n" ]) {
        open my $fh, '>', "$dir/$_->[0]" or die "$_->[0]: $!";
        print $fh $_->[1];
        close $fh;
    }
    my $file = "$dir/nginx.conf";
    open my $fh, '>', $file or die "$file: $!";
    print $fh render_conf(data => $dir, http_port => 18080, pg_port => 15432);
    close $fh;
    my ($rc, $out) = nginx_t($dir, $file);
    isnt($rc, 0, 'nginx -t fails');
    like($out, qr/\[emerg\].*"famcall_db_pool_max" 1 is less than "famcall_db_pool_size" 2/,
         'and says why');
};

$s->stop;
done_testing;
