# famcall_metrics (docs/metrics.md): after a known workload, the scrape
# says what happened, summed over the workers, in a text Prometheus' own
# parser accepts (promtool check metrics). Every figure is checked as the
# difference between two scrapes, so the harness's own requests (signups)
# do not matter.
#
# Two workers, requests on fresh connections: the figures must be the sum
# of both workers' slots. A reload with the same configuration keeps the
# counters (the zone is kept). The database going away shows in the pool's
# figures: errors, connections lost, reconnects, and connections back.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempfile);
use Famcall::Test qw(wait_until);
use Famcall::RawWS qw(:all);

my $PROMTOOL = '/usr/bin/promtool';
plan skip_all => "no $PROMTOOL (scripts/deps.sh installs prometheus)" unless -x $PROMTOOL;

my $s = Famcall::Test->new(workers => 2, request_timeout => 10);
my $u = $s->signup;
my $tok = $u->{access_token};
my %close = (Connection => 'close');

# scrape() -> ({"name{labels}" => value}, body, tx)
sub scrape {
    my $tx = $s->ua->get($s->url('/metrics') => {%close});
    my $body = $tx->res->body // '';
    my %m;
    for (split /\n/, $body) {
        next if /^#/ || !length;
        my ($k, $v) = /^(\S+(?:\{.*\})?) (\S+)$/ or next;
        $m{$k} = $v;
    }
    return (\%m, $body, $tx);
}

sub req_key {
    my ($route, $method, $class, $suffix) = @_;
    my $name = $suffix ? "famcall_http_request_duration_seconds_$suffix" : 'famcall_http_requests_total';
    return qq/$name\{route="$route",method="$method",status="$class"}/;
}

# delta($before, $after, $key) -> the change (a series absent counts as 0)
sub delta { ($_[1]{ $_[2] } // 0) - ($_[0]{ $_[2] } // 0) }

my ($m0, $body0, $tx0) = scrape();

subtest 'the scrape itself' => sub {
    is($tx0->res->code, 200, 'answered');
    is($tx0->res->headers->content_type, 'text/plain; version=0.0.4; charset=utf-8',
       'the text format 0.0.4');
    like($body0, qr/^# TYPE famcall_http_requests_total counter$/m, 'a TYPE line');
    ok(exists $m0->{'famcall_ws_sockets_open'}, 'famcall_ws_sockets_open is there');
    # (nginx's 405 goes to famcall_error_page: an unmatched API request)
    is($s->ua->post($s->url('/metrics'))->res->code, 405, 'POST: 405');
    my ($fh, $file) = tempfile(UNLINK => 1);
    print $fh $body0;
    close $fh;
    my $out = `$PROMTOOL check metrics < $file 2>&1`;
    is($? >> 8, 0, 'promtool check metrics accepts it') or diag($out);
};

subtest 'requests by route and status class' => sub {
    ($m0) = scrape();
    $s->json_req(GET => '/v1/me', undef, $tok, {%close}) for 1 .. 5;
    $s->json_req(GET => '/v1/me', undef, undef, {%close}) for 1 .. 3;
    $s->json_req(GET => '/v1/no-such-route', undef, undef, {%close}) for 1 .. 2;

    my $ok  = req_key('/v1/me', 'GET', '2xx');
    my $bad = req_key('/v1/me', 'GET', '4xx');
    my $um  = req_key('unmatched', 'any', '4xx');
    my $m1;
    wait_until {
        ($m1) = scrape();
        delta($m0, $m1, $ok) >= 5 && delta($m0, $m1, $bad) >= 3 && delta($m0, $m1, $um) >= 2;
    } 10, 'the requests counted';
    is(delta($m0, $m1, $ok), 5, '5 answered 2xx on GET /v1/me');
    is(delta($m0, $m1, $bad), 3, '3 answered 4xx (no token)');
    is(delta($m0, $m1, $um), 2, '2 unmatched, 4xx');
    is(delta($m0, $m1, req_key('/v1/me', 'GET', '5xx')), 0, 'no 5xx');

    is(delta($m0, $m1, req_key('/v1/me', 'GET', '2xx', 'count')), 5, 'the histogram counted 5');
    is($m1->{ req_key('/v1/me', 'GET', '2xx', 'count') }, $m1->{$ok},
       'a histogram counts what the counter counts');
    my $inf = qq/famcall_http_request_duration_seconds_bucket{route="\/v1\/me",method="GET",status="2xx",le="+Inf"}/;
    is($m1->{$inf}, $m1->{ req_key('/v1/me', 'GET', '2xx', 'count') }, '+Inf is the count');

    # buckets are cumulative: never fewer under a higher bound
    my @b = map { [ $_ =~ /le="([^"]+)"/, $m1->{$_} ] }
            grep { /^famcall_http_request_duration_seconds_bucket\{route="\/v1\/me",method="GET",status="2xx"/ } keys %$m1;
    @b = sort { ($a->[0] eq '+Inf' ? 1e9 : $a->[0]) <=> ($b->[0] eq '+Inf' ? 1e9 : $b->[0]) } @b;
    ok(@b >= 10, scalar(@b) . ' buckets');
    my @bad = grep { $b[$_][1] < $b[$_ - 1][1] } 1 .. $#b;
    is_deeply(\@bad, [], 'cumulative');
    ok($m1->{ req_key('/v1/me', 'GET', '2xx', 'sum') } >= 0, 'a sum in seconds');
};

subtest 'WebSocket sockets' => sub {
    my ($ma) = scrape();
    my @ws = map { Famcall::RawWS->connect($s->http_port, token => $tok) } 1 .. 3;
    my $mb;
    wait_until { ($mb) = scrape(); delta($ma, $mb, 'famcall_ws_sockets_open') >= 3 } 10, 'three open';
    is(delta($ma, $mb, 'famcall_ws_sockets_open'), 3, '3 open');
    is(delta($ma, $mb, 'famcall_ws_sockets_opened_total'), 3, '3 opened');
    is(delta($ma, $mb, req_key('/v1/ws', 'GET', '1xx')), 3, 'the 3 handshakes: GET /v1/ws 1xx');

    # one closes with 1000, one with 4242 (an application's code: "other"),
    # one drops the connection without a close frame (1006)
    $ws[0]->send(close_frame(1000, 'bye'));
    $ws[1]->send(close_frame(4242, 'mine'));
    $ws[2]->close_socket;
    $_->wait_eof(10) for @ws[0, 1];

    my $mc;
    wait_until { ($mc) = scrape(); delta($ma, $mc, 'famcall_ws_sockets_open') == 0 } 10, 'all closed';
    is(delta($ma, $mc, 'famcall_ws_sockets_open'), 0, 'none open again');
    is(delta($ma, $mc, 'famcall_ws_sockets_opened_total'), 3, 'still 3 opened');
    is(delta($ma, $mc, 'famcall_ws_sockets_closed_total{code="1000"}'), 1, 'one closed 1000');
    is(delta($ma, $mc, 'famcall_ws_sockets_closed_total{code="other"}'), 1, 'one closed with another code');
    is(delta($ma, $mc, 'famcall_ws_sockets_closed_total{code="1006"}'), 1, 'one dropped (1006)');
};

subtest 'labels are bounded' => sub {
    my (undef, $body) = scrape();
    unlike($body, qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-/, 'no id in any series');
    unlike($body, qr/no-such-route/, 'an unknown path is not a label');
};

subtest 'a reload keeps the counters' => sub {
    my ($ma) = scrape();
    $s->nginx_reload;
    $s->json_req(GET => '/v1/me', undef, $tok, {%close});
    my $key = req_key('/v1/me', 'GET', '2xx');
    my $mb;
    wait_until { ($mb) = scrape(); delta($ma, $mb, $key) >= 1 } 10, 'the request after the reload';
    is(delta($ma, $mb, $key), 1, 'counted on top of the old figure');
    is($mb->{'famcall_ws_sockets_open'}, 0, 'no socket open');
};

subtest 'the database pool' => sub {
    my $ma;
    # two workers, famcall_db_pool_size 2, and a listener in one of them
    wait_until { ($ma) = scrape(); ($ma->{'famcall_db_connections{state="ready"}'} // 0) >= 5 }
        10, 'the pools connected';
    cmp_ok($ma->{'famcall_db_connections{state="ready"}'}, '>=', 5, 'every pool connection ready');
    is($ma->{famcall_db_queries_waiting}, 0, 'nothing waiting');

    $s->pg_stop;
    my @codes = map { $s->json_req(GET => '/v1/me', undef, $tok, {%close})->res->code // 0 } 1 .. 4;
    is_deeply([ grep { $_ != 503 } @codes ], [], '4 requests: 503');
    my $mb;
    wait_until {
        ($mb) = scrape();
        delta($ma, $mb, 'famcall_db_query_errors_total{reason="unavailable"}') >= 4
          && delta($ma, $mb, 'famcall_db_connections_lost_total') >= 5
          && delta($ma, $mb, 'famcall_db_reconnects_total') >= 1;
    } 10, 'the outage counted';
    cmp_ok(delta($ma, $mb, 'famcall_db_query_errors_total{reason="unavailable"}'), '>=', 4,
           'the refused queries counted as unavailable');
    cmp_ok(delta($ma, $mb, 'famcall_db_connections_lost_total'), '>=', 5, 'every connection lost');
    cmp_ok(delta($ma, $mb, 'famcall_db_reconnects_total'), '>=', 1, 'reconnects tried');
    is($mb->{'famcall_db_connections{state="ready"}'}, 0, 'none ready');
    is(delta($ma, $mb, req_key('/v1/me', 'GET', '5xx')), 4, 'the 503s in the requests');

    $s->pg_start;
    my $mc;
    wait_until { ($mc) = scrape(); ($mc->{'famcall_db_connections{state="ready"}'} // 0) >= 5 }
        20, 'the pools back';
    cmp_ok($mc->{'famcall_db_connections{state="ready"}'}, '>=', 5, 'every connection back');
};

subtest 'conf/monitoring' => sub {
    my $dir = Famcall::Test::repo_dir() . '/conf/monitoring';
    my $out = `$PROMTOOL check config $dir/prometheus.yml 2>&1`;
    is($? >> 8, 0, 'promtool check config: prometheus.yml') or diag($out);
    $out = `$PROMTOOL check rules $dir/famcall-alerts.yml 2>&1`;
    is($? >> 8, 0, 'promtool check rules: famcall-alerts.yml') or diag($out);

    # every famcall_* name the rules use is one the scrape declares
    my (undef, $body) = scrape();
    my %declared = map { $_ => 1 } $body =~ /^# TYPE (\S+) /mg;
    open my $fh, '<', "$dir/famcall-alerts.yml" or die $!;
    my %used;
    while (<$fh>) { $used{$_} = 1 for /\b(famcall_[a-z_]+)/g }
    for my $n (sort keys %used) {
        (my $family = $n) =~ s/_bucket$//;
        ok($declared{$family}, "$n is served");
    }
};

done_testing;
