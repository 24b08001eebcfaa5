# famcall-client's TURN over TLS (client/gstreamer-app/tunnel.c): libnice
# speaks TURN in the clear even to a turns: server, so the client carries
# it through a TLS tunnel of its own. A call forced through coturn's TLS
# port connects with relay candidates, every byte on that port is TLS (a
# recording proxy in between sees TLS records only), and a certificate
# the client does not trust gives no relay at all.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Mojo::JSON qw(decode_json);
use POSIX ();
use Famcall::Test qw(wait_until repo_dir);

my $CLIENT = $ENV{FAMCALL_CLIENT} // repo_dir() . '/build/client/famcall-client';
-x $CLIENT or BAIL_OUT("no famcall-client at $CLIENT: run `make client`");

# coturn with a TLS port comes with the NAT work (scripts/turn.sh's
# FAMCALL_TURN_TLS_PORT, the harness's turn_tls)
plan skip_all => 'scripts/turn.sh has no TLS port yet'
    unless (do { open my $fh, '<', repo_dir() . '/scripts/turn.sh'; local $/; <$fh> } // '')
           =~ /FAMCALL_TURN_TLS_PORT/;

my $home = tempdir('famcall-client-tls-XXXX', DIR => '/tmp', CLEANUP => 1);
my $out = `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\
    -keyout $home/key.pem -out $home/cert.pem -days 1 -subj /CN=turn.famcall.test \\
    -addext subjectAltName=IP:127.0.0.1 2>&1`;
die "openssl: $out" if $?;
chmod 0644, "$home/key.pem";           # coturn may run as another user

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0)
        or die "no port: $!";
    return $s->sockport;
}

# a recording proxy on $port in front of coturn's TLS port: the first
# bytes each connection sends go to $home/first.log, as hex
my ($tls_port, $proxy_port) = (free_port(), free_port());
my $s = Famcall::Test->new(turn => 1,
    turn_tls => { port => $tls_port, cert => "$home/cert.pem", key => "$home/key.pem" },
    extra_conf => "famcall_turn_uris turns:127.0.0.1:$proxy_port?transport=tcp;");

my $proxy = fork // die "fork: $!";
if (!$proxy) {
    my $l = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                  LocalPort => $proxy_port, ReuseAddr => 1) or POSIX::_exit(1);
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $l->accept) {
        next if fork;
        my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $tls_port)
            or POSIX::_exit(1);
        my $sel = IO::Select->new($c, $u);
        my $first = 1;
        while (my @r = $sel->can_read) {
            for my $from (@r) {
                my $n = sysread $from, my $buf, 65536;
                POSIX::_exit(0) unless $n;
                if ($from == $c && $first) {
                    open my $fh, '>>', "$home/first.log";
                    print $fh unpack('H6', $buf), "\n";
                    close $fh;
                    $first = 0;
                }
                syswrite($from == $c ? $u : $c, $buf) // POSIX::_exit(0);
            }
        }
        POSIX::_exit(0);
    }
    POSIX::_exit(0);
}
wait_until { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $proxy_port) }
    10, 'the proxy';

my %env = (XDG_CONFIG_HOME => "$home/config", FAMCALL_SERVER => $s->base_url,
           FAMCALL_PROFILE => undef, FAMCALL_PASSWORD => 'correct horse battery');

sub run_bg {
    my ($name, @args) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$home/$name.out";
        open STDERR, '>', "$home/$name.err";
        while (my ($k, $v) = each %env) {
            if (defined $v) { $ENV{$k} = $v } else { delete $ENV{$k} }
        }
        { no warnings 'exec'; exec $CLIENT, @args; }
        POSIX::_exit(127);
    }
    return $pid;
}

sub done {
    my ($pid, $name) = @_;
    my $ok = wait_until { waitpid($pid, POSIX::WNOHANG()) == $pid } 60, $name;
    my $rc = $ok ? $? >> 8 : do { kill 'KILL', $pid; waitpid $pid, 0; 'killed' };
    my $slurp = sub { open my $fh, '<', $_[0] or return ''; local $/; <$fh> // '' };
    my $err = $slurp->("$home/$name.err");
    # a client built with SANITIZE=1 (FAMCALL_CLIENT) reports here
    fail("no sanitizer report from $name") and diag($err)
        if $err =~ /ERROR: \w+Sanitizer|runtime error:/;
    return { rc => $rc, out => $slurp->("$home/$name.out"), err => $err };
}

sub client { my $n = 'c' . int(rand 1e9); done(run_bg($n, @_), $n) }

my %who;
for my $name (qw(ann ben)) {
    $who{$name} = "$name$$";
    is(client('signup', '--profile', $name, '--email', "$who{$name}\@example.com",
              '--username', $who{$name})->{rc}, 0, "signup $name");
}
is(client('add', '--profile', 'ann', $who{ben})->{rc}, 0, 'ann asks ben');
is(client('add', '--profile', 'ben', $who{ann})->{rc}, 0, 'ben accepts');

sub call {
    my (@extra) = @_;
    my @media = ('--headless', '--test-media', '--relay-only', '--turn-transport', 'tls', @extra);
    my $b = run_bg('ben', 'answer', '--profile', 'ben', '--auto-answer', '--wait', 30,
                   '--stats-json', "$home/ben.json", @media);
    wait_until { -s "$home/ben.out" && `cat $home/ben.out` =~ /^Waiting/m } 20, "ben's socket";
    my $a = run_bg('ann', 'call', '--profile', 'ann', $who{ben}, '--duration', 4,
                   '--stats-json', "$home/ann.json", @media);
    my ($ra, $rb) = (done($a, 'ann'), done($b, 'ben'));
    my $j = sub { open my $fh, '<', $_[0] or return {}; local $/; decode_json(<$fh>) };
    return ($ra, $rb, $j->("$home/ann.json"), $j->("$home/ben.json"));
}

subtest 'through the tunnel, trusting the server with --turn-ca' => sub {
    unlink "$home/first.log";
    my ($ra, $rb, $sa, $sb) = call('--turn-ca', "$home/cert.pem");
    is($ra->{rc}, 0, 'the caller') or diag("$ra->{out}$ra->{err}");
    is($rb->{rc}, 0, 'the callee') or diag("$rb->{out}$rb->{err}");
    for ([$sa, 'the caller'], [$sb, 'the callee']) {
        my ($st, $side) = @$_;
        is($st->{selected_pair}{local_type}, 'relay', "$side: a relay candidate");
        is_deeply($st->{turn_transports}, ['tls'], "$side: TURN over TLS only");
        cmp_ok($st->{video_frames_received}, '>=', 30, "$side decoded video");
        cmp_ok($st->{audio_buffers_received}, '>=', 100, "$side decoded audio");
    }
    my @first = split /\n/, (do { open my $fh, '<', "$home/first.log"; local $/; <$fh> } // '');
    cmp_ok(scalar @first, '>=', 2, 'both clients connected to the TLS port');
    is_deeply([ grep { !/^160301|^160303/ } @first ], [],
              'each connection began with a TLS handshake record, none in the clear')
        or diag("@first");
};

subtest 'a certificate the client does not trust' => sub {
    my ($ra, $rb) = call();
    is($ra->{rc}, 16, 'no relay, so nothing decoded: 16');
    like($ra->{err}, qr/TURN over TLS to 127\.0\.0\.1:\d+: .*certificate/i,
         'the certificate is named as the reason');
};

kill 'TERM', $proxy;
waitpid $proxy, 0;
$s->stop;
done_testing;
