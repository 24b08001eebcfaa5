# What operators rely on around the module: $famcall_user_id in access logs
# and as a limit_req_zone key (429 in the JSON envelope), the webhook SMS
# driver queueing codes in the outbox, and a graceful shutdown that does not
# cut off requests still waiting for Argon2.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::Promise;
use Mojo::UserAgent;
use Famcall::Test qw(is_error body_json wait_until);

my $limited = Famcall::Test::_free_port();

# A second server in the same nginx, limited per signed-in user.
my $s = Famcall::Test->new(extra_conf => <<"CONF");
log_format famcall_user '\$famcall_user_id \$status \$request_uri';
limit_req_zone \$famcall_user_id zone=per_user:1m rate=1r/m;
server {
    listen 127.0.0.1:$limited;
    access_log log/per-user.log famcall_user;
    limit_req_status 429;
    error_page 429 /_famcall_error;
    location = /_famcall_error { internal; famcall_error_page; }
    location / {
        limit_req zone=per_user nodelay;
        famcall_api;
    }
}
CONF

my $ann = $s->signup;
my $bob = $s->signup;
my $ua = Mojo::UserAgent->new;
my $base = "http://127.0.0.1:$limited";
sub me { $ua->get("$base/v1/me" => { Authorization => "Bearer $_[0]" }) }

# Each feature module (config: core, auth, users, chat, gateway) adds its
# routes at postconfiguration: every one reaches the router.
subtest 'every feature module serves its routes' => sub {
    my $get = sub { $ua->get($s->url($_[0]) => { %{ $_[1] // {} } }) };
    is($get->('/healthz')->res->code, 200, 'core: /healthz');
    is($ua->post($s->url('/v1/auth/login') => json => {})->res->code, 422,
       'auth: login checks its body');
    is($get->('/v1/me')->res->code, 401, 'users: /v1/me wants a token');
    is($get->('/v1/conversations', { Authorization => "Bearer $ann->{access_token}" })
       ->res->code, 200, 'chat: /v1/conversations lists');
    is(body_json($get->('/v1/ws'))->{error}{code}, 'bad_handshake',
       'gateway: /v1/ws wants a WebSocket handshake');
    my $tx = $ua->put($s->url('/v1/contacts'));
    is($tx->res->code, 405, 'a route of other methods: 405');
    is($tx->res->headers->header('Allow'), 'GET, HEAD, POST', 'Allow lists them');
    is($get->('/v1/no/such/route')->res->code, 404, 'no route: 404');
};

subtest 'limit_req keyed by $famcall_user_id' => sub {
    is(me($ann->{access_token})->res->code, 200, 'ann: first request passes');
    my $tx = me($ann->{access_token});
    is($tx->res->code, 429, 'ann: second within the minute is limited');
    is(body_json($tx)->{error}{code}, 'rate_limited', '429 in the JSON envelope');
    is(me($bob->{access_token})->res->code, 200, 'bob has his own budget');
    is($ua->get("$base/healthz")->res->code, 200, 'anonymous requests are not keyed');
    is($ua->get("$base/healthz")->res->code, 200, '... again');
};

subtest 'access log names the user' => sub {
    my $log = '';
    wait_until {        # nginx writes the log line after the response
        $log = do { local (@ARGV, $/) = ($s->data_dir . '/log/per-user.log'); <> } // '';
        ($log =~ tr/\n//) >= 5;
    } 5, 'five lines in per-user.log';
    my $a = $ann->{user}{id};
    my $b = $bob->{user}{id};
    like($log, qr{^\Q$a\E 200 /v1/me$}m, 'ann 200');
    like($log, qr{^\Q$a\E 429 /v1/me$}m, 'ann 429');
    like($log, qr{^\Q$b\E 200 /v1/me$}m, 'bob 200');
    like($log, qr{^- 200 /healthz$}m, 'anonymous: -');
    unlike($log, qr/eyJ/, 'no token in the log');
};

$s->stop;

# The webhook driver: the code goes to the outbox, in the same transaction.
my $w = Famcall::Test->new(conf_edit => sub {
    s{famcall_otp_sms log [^;]*;}{famcall_otp_sms webhook https://sms.example.test/send;}
});

subtest 'webhook driver queues the code in the outbox' => sub {
    my $tx = $w->json_req(POST => '/v1/auth/otp/request', { phone => '+14155550199' });
    is($tx->res->code, 202, 'requested');
    my $row = $w->psql("select kind, payload->>'to', payload->>'webhook', "
                     . "payload->>'body' ~ '^Your famcall code is [0-9]{6}\$', "
                     . "delivered_at is null from outbox");
    is($row, "sms|+14155550199|https://sms.example.test/send|t|t",
       'one undelivered sms row with the number, the gateway and the code');
    ok(!-e $w->data_dir . '/sms.log' || -z $w->data_dir . '/sms.log',
       'nothing written to a log file');

    # The code in the outbox verifies.
    my ($code) = $w->psql("select payload->>'body' from outbox") =~ /(\d{6})/;
    $tx = $w->json_req(POST => '/v1/auth/otp/verify',
                       { phone => '+14155550199', code => $code, display_name => 'Nan' });
    is($tx->res->code, 200, 'the queued code signs in');
};

$w->stop;

# Graceful shutdown (SIGQUIT) while logins wait for the hashing threads: at
# twice the production Argon2 cost, 24 logins queue for seconds on the 2
# threads.
my $g = Famcall::Test->new(conf_edit => sub {
    s{include \S+/extra\.conf;}{famcall_password_opslimit 4; famcall_password_memlimit 128m;}
});

subtest 'graceful shutdown finishes queued logins' => sub {
    my $u = $g->signup;
    my $nb = Mojo::UserAgent->new(request_timeout => 60, inactivity_timeout => 60);
    my $n = 24;
    my @p = map {
        $nb->post_p($g->url('/v1/auth/login') => json =>
                    { email => $u->{email}, password => $u->{password} })
          ->then(sub { $_[0]->res->code // 0 }, sub { "error: @_" });
    } 1 .. $n;

    # Quit when the first login is answered: a hash takes a few hundred ms,
    # so by then every request is read (a few ms on loopback, even on a busy
    # machine; a fixed 0.5 s was not always enough under `prove -j2`) and
    # most hashes are still to come.
    my $quit = 0;
    $_->then(sub { kill 'QUIT', $g->nginx_pid unless $quit++ }) for @p;
    my @codes;
    Mojo::Promise->all(@p)->then(sub { @codes = map { $_->[0] } @_ })->wait;

    is(scalar(grep { $_ eq '200' } @codes), $n, "all $n logins answered 200")
        or diag(join ' ', @codes);
};

$g->stop;       # fails on [alert] lines such as "open socket left"
done_testing;
