# PostgreSQL goes away and comes back while nginx keeps running: requests
# that need the database answer 503 `unavailable`, and service resumes by
# itself once the database is back.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(check_json_response body_json is_error wait_until);

# Generous client timeout: we assert the answer, not its speed.
my $s = Famcall::Test->new(request_timeout => 10);
my $u = $s->signup;
my $tok = $u->{access_token};
my $master = $s->nginx_pid;
my @workers = sort $s->worker_pids;

# Requests on fresh connections, so that every worker gets some.
my %close = (Connection => 'close');
sub healthz { $s->json_req(GET => '/healthz', undef, undef, {%close}) }
sub me      { $s->json_req(GET => '/v1/me', undef, $tok, {%close}) }

# the workers' always-open database connections (their pools and the
# node's LISTEN), by the names they give themselves; spares come and go
# with load, so they are left out of the count
sub backends {
    $s->psql("select count(*) from pg_stat_activity where backend_type = 'client backend' "
           . "and application_name in ('famcall conn', 'famcall listener')");
}

my $backends;
subtest 'before' => sub {
    is(healthz()->res->code, 200, 'healthz 200');
    is(me()->res->code, 200, '/v1/me 200');
    $backends = backends();
    cmp_ok($backends, '>=', 2 * @workers, "every worker's pool is connected ($backends)");
};

$s->pg_stop;

subtest 'database down' => sub {
    for my $i (1 .. 4) {
        for ([ 'healthz', healthz() ], [ '/v1/me', me() ],
             [ 'login', $s->json_req(POST => '/v1/auth/login',
                 { email => $u->{email}, password => $u->{password} }, undef, {%close}) ]) {
            my ($name, $tx) = @$_;
            if (!$tx->res->code) {
                fail("$name #$i: no response (" . ($tx->error->{message} // '?') . ')');
                next;
            }
            is($tx->res->code, 503, "$name #$i: 503") or diag($tx->res->body);
            check_json_response($tx, { code => 'unavailable' });
            unlike($tx->res->body, qr/PQ|libpq|psql|socket|\.s\.PGSQL|connection to server|SELECT|famcall_/i,
                   "$name #$i: no database internals in the body");
        }
    }
    # Token checks need no database: a bad token is still 401.
    is_error($s->json_req(GET => '/v1/me', undef, "${tok}x"), 401, 'unauthorized');
};

$s->pg_start;

subtest 'database back' => sub {
    my ($h, $m);
    wait_until {
        $h = healthz()->res->code // 0;
        $m = me()->res->code // 0;
        $h == 200 && $m == 200;
    } 15, 'healthz and /v1/me to answer 200';
    is($h, 200, 'healthz 200 again within 15 s');
    is($m, 200, '/v1/me 200 again within 15 s');

    # Every pooled connection of every worker must be usable again, not just
    # the first one that happened to reconnect: all of them back (a worker
    # still in its reconnect backoff answers 503 meanwhile, as it should),
    # then requests spread over the workers.
    wait_until { backends() >= $backends } 15, 'every connection back';
    is(backends(), $backends, 'every connection is back within 15 s');
    my @codes = map { (healthz()->res->code // 0, me()->res->code // 0) } 1 .. 20;
    is_deeply([ grep { $_ != 200 } @codes ], [], '40 more requests on fresh connections: all 200');

    my $tx = $s->json_req(POST => '/v1/auth/login',
                          { email => $u->{email}, password => $u->{password} });
    is($tx->res->code, 200, 'login works');
};

subtest 'nginx itself kept running' => sub {
    is($s->nginx_pid, $master, 'same master');
    ok(kill(0, $master), 'master alive');
    is_deeply([ sort $s->worker_pids ], \@workers, 'same workers (none crashed and respawned)');
};

$s->stop;
done_testing;
