# GET /v1/turn and the coturn the harness starts: the directives that
# `nginx -t` refuses, the route without TURN configured, the answer's
# shape and credentials, and allocations on the running coturn with
# issued, expired and forged credentials (turnutils_uclient).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha1);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Famcall::Test qw(run_cases body_json is_error render_conf nginx_t module_path);

-e module_path() or BAIL_OUT('famcall module not found at ' . module_path() . ': run make build');

my $UCLIENT = '/usr/bin/turnutils_uclient';

sub spew {
    my ($file, $text, $mode) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
    chmod $mode // 0600, $file;
}

# coturn's REST scheme, computed here independently of the module
sub credential {
    my ($secret, $username) = @_;
    return encode_base64(hmac_sha1($username, $secret), '');
}

#-------------------------------------------------------------------------
# nginx -t: mistakes in the directives are named (no PostgreSQL needed)
#-------------------------------------------------------------------------

my $conf_dir = tempdir('famcall-turn-c-XXXX', DIR => '/tmp', CLEANUP => 0);
make_path("$conf_dir/log", "$conf_dir/nginx-tmp");
spew("$conf_dir/jwt.key", join '', map { sprintf '%02x', int rand 256 } 1 .. 32);
spew("$conf_dir/extra.conf", '');

my $plain = render_conf(data => $conf_dir, http_port => 18080, pg_port => 15432);
unlike($plain, qr/^\s*famcall_turn_/m, 'without turn.key the TURN lines are commented out');

my $secret = join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
spew("$conf_dir/turn.key", "$secret\n");
my $base = render_conf(data => $conf_dir, http_port => 18080, pg_port => 15432,
                       turn_port => 13478);
like($base, qr{^\s*famcall_turn_secret_file \Q$conf_dir\E/turn\.key;}m,
     'with turn.key: famcall_turn_secret_file');
like($base, qr{famcall_turn_uris stun:127\.0\.0\.1:13478\s+turn:127\.0\.0\.1:13478\?transport=udp\s+turn:127\.0\.0\.1:13478\?transport=tcp;},
     'with turn.key: STUN, TURN over UDP and over TCP on FAMCALL_BIND and FAMCALL_TURN_PORT');

my $secret_line = qr/^\s*famcall_turn_secret_file\s[^;]*;/m;
my $uris_line   = qr/^\s*famcall_turn_uris\s[^;]*;/m;

sub try_conf {
    my ($edit) = @_;
    local $_ = $base;
    $edit->();
    die "the edit changed nothing: the template moved on?\n" if $_ eq $base;
    spew("$conf_dir/nginx.conf", $_, 0644);
    return nginx_t($conf_dir, "$conf_dir/nginx.conf");
}

sub conf_fails {
    my ($name, $mention, $edit) = @_;
    subtest "rejected: $name" => sub {
        my ($rc, $out) = try_conf($edit);
        isnt($rc, 0, 'nginx -t exits non-zero');
        like($out, qr/\[emerg\]/, 'an [emerg] message');
        like($out, $mention, "the message names $mention") or diag($out);
        unlike($out, qr/AddressSanitizer|Segmentation|core dumped/i, 'no crash');
    };
}

sub conf_ok {
    my ($name, $edit) = @_;
    my ($rc, $out) = try_conf($edit);
    is($rc, 0, "accepted: $name") or diag($out);
}

sub uris { my $u = shift; sub { s/$uris_line/famcall_turn_uris $u;/ } }

# the secret file
conf_fails('a secret file that does not exist', qr/famcall_turn_secret_file|no-such/,
           sub { s/$secret_line/famcall_turn_secret_file $conf_dir\/no-such.key;/ });
spew("$conf_dir/short.key", substr($secret, 0, 31));
conf_fails('a secret of 31 bytes', qr/famcall_turn_secret_file.*32 bytes/,
           sub { s/$secret_line/famcall_turn_secret_file $conf_dir\/short.key;/ });
spew("$conf_dir/open.key", $secret, 0644);
conf_fails('a secret file readable by others', qr/famcall_turn_secret_file.*0644/,
           sub { s/$secret_line/famcall_turn_secret_file $conf_dir\/open.key;/ });
spew("$conf_dir/spaced.key", "$secret $secret");
conf_fails('a secret with a space', qr/famcall_turn_secret_file.*printable/,
           sub { s/$secret_line/famcall_turn_secret_file $conf_dir\/spaced.key;/ });
spew("$conf_dir/big.key", 'a' x 5000);
conf_fails('a secret file of 5000 bytes', qr/famcall_turn_secret_file.*4096/,
           sub { s/$secret_line/famcall_turn_secret_file $conf_dir\/big.key;/ });
conf_fails('a directory as the secret file', qr/famcall_turn_secret_file/,
           sub { s/$secret_line/famcall_turn_secret_file $conf_dir\/log;/ });
conf_fails('two secret files', qr/famcall_turn_secret_file.*duplicate/,
           sub { s/($secret_line)/$1\n    famcall_turn_secret_file $conf_dir\/turn.key;/ });

# the URIs
conf_fails('an http: URI', qr/famcall_turn_uris.*http:\/\/x.*stun:/,
           uris('http://x'));
conf_fails('a URI without a host', qr/famcall_turn_uris.*no host/, uris('turn::3478'));
conf_fails('port 0', qr/famcall_turn_uris.*port/, uris('turn:example.org:0'));
conf_fails('port 65536', qr/famcall_turn_uris.*port/, uris('turn:example.org:65536'));
conf_fails('a stun: URI with a transport', qr/famcall_turn_uris.*query/,
           uris('stun:example.org?transport=udp'));
conf_fails('transport=sctp', qr/famcall_turn_uris.*transport=udp/,
           uris('turn:example.org?transport=sctp'));
conf_fails('a path after the port', qr/famcall_turn_uris.*after the host/,
           uris('turn:example.org:3478/x'));
conf_fails('an unclosed IPv6 address', qr/famcall_turn_uris.*IPv6/, uris('turn:[::1:3478'));
conf_fails('a URI of 300 bytes', qr/famcall_turn_uris.*too long/,
           uris('turn:' . ('a' x 295)));
conf_fails('famcall_turn_uris without a value', qr/famcall_turn_uris/,
           sub { s/$uris_line/famcall_turn_uris;/ });

# halves and the TTL
conf_fails('URIs without a secret', qr/famcall_turn_uris.*needs.*famcall_turn_secret_file/,
           sub { s/$secret_line// });
conf_fails('a secret without URIs', qr/famcall_turn_secret_file.*needs.*famcall_turn_uris/,
           sub { s/$uris_line// });
conf_fails('famcall_turn_ttl 0', qr/famcall_turn_ttl/,
           sub { s/($uris_line)/$1\n    famcall_turn_ttl 0;/ });
conf_fails('famcall_turn_ttl 30s', qr/famcall_turn_ttl/,
           sub { s/($uris_line)/$1\n    famcall_turn_ttl 30s;/ });
conf_fails('famcall_turn_ttl 8d', qr/famcall_turn_ttl/,
           sub { s/($uris_line)/$1\n    famcall_turn_ttl 8d;/ });
conf_fails('famcall_turn_ttl soon', qr/famcall_turn_ttl/,
           sub { s/($uris_line)/$1\n    famcall_turn_ttl soon;/ });
conf_fails('famcall_turn_uris inside server', qr/famcall_turn_uris/,
           sub { s/(server_name localhost;)/$1\n        famcall_turn_uris stun:x;/ });

# what is accepted
conf_ok('the rendered template', sub { s/famcall_turn_secret_file /famcall_turn_secret_file  / });
spew("$conf_dir/group.key", "$secret\r\n", 0640);
conf_ok('a secret file readable by its group, ending in CRLF',
        sub { s/$secret_line/famcall_turn_secret_file $conf_dir\/group.key;/ });
conf_ok('URIs over several directives, turns:, IPv6, names and ports', sub {
    s/$uris_line/famcall_turn_uris stun:stun.example.org turn:[2001:db8::1]:3478?transport=udp;
    famcall_turn_uris turns:turn.example.org:443?transport=tcp turns:turn-2.example.org;/ });
conf_ok('famcall_turn_ttl 1m', sub { s/($uris_line)/$1\n    famcall_turn_ttl 1m;/ });
conf_ok('famcall_turn_ttl 7d', sub { s/($uris_line)/$1\n    famcall_turn_ttl 7d;/ });
conf_ok('no TURN at all', sub { s/$secret_line//; s/$uris_line// });

remove_tree($conf_dir);

#-------------------------------------------------------------------------
# Without TURN configured: 503, but only to a signed-in caller
#-------------------------------------------------------------------------

{
    my $s = Famcall::Test->new;
    my $u = $s->signup;
    run_cases($s, [
        { name => 'no token', path => '/v1/turn', status => 401, code => 'unauthorized' },
        { name => 'not configured', path => '/v1/turn', token => $u->{access_token},
          status => 503, code => 'turn_unavailable' },
    ]);
    $s->stop;
}

#-------------------------------------------------------------------------
# With coturn: the answer, and what coturn makes of it
#-------------------------------------------------------------------------

my $s = Famcall::Test->new(turn => 1, extra_conf => 'famcall_turn_ttl 2h;');
my $port = $s->turn_port;
my $key  = $s->turn_key;
my $u    = $s->signup;
my $v    = $s->signup;

subtest 'coturn: its secret is in a 0600 file, not on its command line' => sub {
    my $conf = $s->data_dir . '/turn/turnserver.conf';
    ok(-e $conf, 'turn/turnserver.conf') or return;
    is((stat $conf)[2] & 07777, 0600, 'mode 0600');
    is((stat($s->data_dir . '/turn.key'))[2] & 07777, 0600, 'turn.key mode 0600');
    open my $fh, '<', $s->data_dir . '/turn/turnserver.pid' or return fail("pid file: $!");
    chomp(my $pid = <$fh> // '');
    like($pid, qr/^\d+$/, 'pid file under the data dir');
    open my $cl, '<', "/proc/$pid/cmdline" or return fail("cmdline: $!");
    my $cmdline = do { local $/; <$cl> };
    like($cmdline, qr/turnserver/, 'the pid is turnserver');
    unlike($cmdline, qr/\Q$key\E/, 'the secret is not on its command line');
    like($s->turn_log, qr/SQLite DB connection success: \Q${\ $s->data_dir}\E/,
         'its database is under the data dir');
};

run_cases($s, [
    { name => 'no token', path => '/v1/turn', status => 401, code => 'unauthorized',
      res_headers => { 'WWW-Authenticate' => 'Bearer' } },
    { name => 'a bad token', path => '/v1/turn', token => "$u->{access_token}x",
      status => 401, code => 'unauthorized' },
    { name => 'POST', method => 'POST', path => '/v1/turn', token => $u->{access_token},
      status => 405, code => 'method_not_allowed' },
]);

# issue($user) -> the answer's body, checked
sub issue {
    my ($user) = @_;
    my $tx = $s->json_req(GET => '/v1/turn', undef, $user->{access_token});
    is($tx->res->code, 200, 'GET /v1/turn is 200') or diag($tx->res->body);
    is($tx->res->headers->cache_control, 'no-store', 'not cached');
    return body_json($tx);
}

my $issued;
subtest 'the answer' => sub {
    my $t0 = time;
    my $j = issue($u);
    $issued = $j;
    is_deeply([sort keys %$j], [qw(ice_servers ttl)], 'ice_servers and ttl');
    is($j->{ttl}, 7200, 'ttl is famcall_turn_ttl (2h)');
    ok(ref $j->{ice_servers} eq 'ARRAY' && @{ $j->{ice_servers} } == 1, 'one ICE server')
        or return;
    my $ice = $j->{ice_servers}[0];
    is_deeply([sort keys %$ice], [qw(credential urls username)], 'urls, username, credential');
    is_deeply($ice->{urls}, [ "stun:127.0.0.1:$port", "turn:127.0.0.1:$port?transport=udp",
                              "turn:127.0.0.1:$port?transport=tcp" ],
              'the configured URIs, in order');
    my ($expiry, $id) = split /:/, $ice->{username}, 2;
    is($id, $u->{user}{id}, "the username's user id is the caller's");
    like($expiry, qr/^\d+$/, 'the username starts with a unix time');
    cmp_ok($expiry, '>=', $t0 + 7200 - 2, 'expiry is now + ttl (not earlier)');
    cmp_ok($expiry, '<=', time + 7200 + 2, 'expiry is now + ttl (not later)');
    is($ice->{credential}, credential($key, $ice->{username}),
       'credential is base64(HMAC-SHA1(secret, username))');
};

subtest "another caller gets a username of their own" => sub {
    my $j = issue($v);
    my ($expiry, $id) = split /:/, $j->{ice_servers}[0]{username}, 2;
    is($id, $v->{user}{id}, "the second caller's id");
};

# uclient($username, $password, @flags) -> (exit code, output): one client
# allocates a relay, and with -y a second relays to it (loopback peers are
# allowed in the test configuration); -c: no RTCP pair.
sub uclient {
    my ($user, $pass, @flags) = @_;
    my $out = $s->data_dir . '/uclient.out';
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec';
          exec '/usr/bin/timeout', '60', $UCLIENT, @flags, '-y', '-c', '-n', '2', '-m', '1',
               '-l', '50', '-p', $port, '-u', $user, '-w', $pass, '127.0.0.1'; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? >> 8;
    open my $fh, '<', $out or return ($rc, '');
    return ($rc, do { local $/; <$fh> });
}

sub relayed {
    my ($out) = @_;
    my ($recv) = $out =~ /tot_recv_msgs=(\d+)\s*$/m;
    return ($recv // 0) > 0;
}

SKIP: {
    skip "no $UCLIENT (Debian's coturn package)", 8 unless -x $UCLIENT;
    my ($user, $pass) = @{ $issued->{ice_servers}[0] }{qw(username credential)};

    # the refusals first: each must fail where the issued one succeeds
    my $past = (time - 60) . ":$u->{user}{id}";
    my ($rc, $out) = uclient($past, credential($key, $past), '-t');
    ok($rc != 0 && !relayed($out), 'TCP: an expired credential (right secret) allocates nothing')
        or diag($out);

    my $forged = (time + 3600) . ":$u->{user}{id}";
    ($rc, $out) = uclient($forged, credential('x' x 64, $forged), '-t');
    ok($rc != 0 && !relayed($out), 'TCP: a credential made with another secret allocates nothing')
        or diag($out);

    (my $other = $user) =~ s/:.*/:$v->{user}{id}/;
    ($rc, $out) = uclient($other, $pass, '-t');
    ok($rc != 0 && !relayed($out), "TCP: the credential under another user's name allocates nothing")
        or diag($out);

    # refused by its authentication, not for another reason
    my $log = $s->turn_log;
    for ([$past, 'expired'], [$forged, 'forged'], [$other, "another user's"]) {
        like($log, qr/check_stun_auth: .*<\Q$_->[0]\E>/, "coturn refused the $_->[1] username");
    }

    ($rc, $out) = uclient($user, $pass, '-t');
    ok($rc == 0 && relayed($out), 'TCP: the issued credential allocates and relays')
        or diag($out);

    # turnutils_uclient (unlike libnice) reaches 127.0.0.1 over UDP too
    ($rc, $out) = uclient($user, $pass);
    ok($rc == 0 && relayed($out), 'UDP: the issued credential allocates and relays')
        or diag($out);
}

# the default TTL, once the directive is gone
$s->nginx_reload(extra_conf => '');
subtest 'famcall_turn_ttl defaults to 24h' => sub {
    my $j = issue($u);
    is($j->{ttl}, 86400, 'ttl 86400');
    my ($expiry) = split /:/, $j->{ice_servers}[0]{username};
    cmp_ok(abs($expiry - (time + 86400)), '<=', 3, 'expiry is a day from now');
};

$s->stop;
done_testing;
