# The NAT topology on its own, before any call: from a home behind each
# kind of router, the API answers (and sees the router's public address),
# the router maps and filters UDP as its kind says, and coturn allocates
# relays over UDP, TCP and TLS on 443 where the router lets them through.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Mojo::JSON qw(decode_json);
use Famcall::Test qw(wait_until);
use Famcall::NatStack qw(nat_stack uclient);

my ($net, $s) = nat_stack(a => 'cone', b => 'symmetric');
my $pub  = Famcall::Netns->public_ip;
my $port = $s->turn_port;

# curl in a home: (HTTP status, body)
sub curl {
    my ($h, $method, $path, $body, $token) = @_;
    my @args = ('/usr/bin/curl', '-sS', '-m', '10', '-o', '-', '-w', '\n%{http_code}',
                '-X', $method, "http://$pub:" . $s->http_port . $path);
    push @args, '-H', 'Content-Type: application/json', '-d', $body if defined $body;
    push @args, '-H', "Authorization: Bearer $token" if $token;
    my ($rc, $out) = $net->run($h, @args);
    my ($text, $code) = $out =~ /^(.*)\n(\d{3})$/s;
    return ($code // "curl exit $rc: $out", $text);
}

my $cred;
subtest 'the API from a home, through its router' => sub {
    my ($code, $text) = curl(a => GET => '/healthz');
    is($code, 200, 'GET /healthz from home a');
    my $name = "nat$$";
    ($code, $text) = curl(a => POST => '/v1/auth/signup',
        qq({"email":"$name\@example.com","password":"a long secret",)
      . qq("display_name":"N","username":"$name"}));
    is($code, 201, 'sign up from home a') or return diag($text);
    my $token = decode_json($text)->{access_token};
    ($code, $text) = curl(b => GET => '/v1/turn', undef, $token);
    is($code, 200, 'GET /v1/turn from home b') or return diag($text);
    my $ice = decode_json($text)->{ice_servers}[0];
    is_deeply($ice->{urls}, [ "stun:$pub:$port", "turn:$pub:$port?transport=udp",
                              "turn:$pub:$port?transport=tcp", "turns:$pub:443?transport=tcp" ],
              'the ICE servers name coturn on the public address: UDP, TCP, TLS on 443');
    $cred = $ice;
    my $log = do { local $/; open my $fh, '<', $s->data_dir . '/log/nginx-access.log';
                   <$fh> // '' };
    like($log, qr/^\Q${\ $net->wan_ip('a')}\E .*"POST \/v1\/auth\/signup/m,
         "nginx saw home a's request from router a's public address");
    unlike($log, qr/^198\.51\.100\./m, 'never from a home address');
};

# probe($home): from one UDP socket in the home, a datagram to each of
# two ports of ours on the public address; the external address and port
# the router gave each; then a datagram back to the first mapping from a
# third port (unsolicited) and one from the first port (a reply), and what
# the home received
sub probe {
    my ($h) = @_;
    my @srv = map { IO::Socket::INET->new(LocalAddr => $pub, LocalPort => 0, Proto => 'udp')
                    or die "udp: $!" } 1 .. 3;
    my $out = $s->data_dir . "/probe-$h.out";
    unlink $out;
    my $script = sprintf <<'PL', $pub, $srv[0]->sockport, $srv[1]->sockport;
use IO::Socket::INET; use IO::Select;
my $u = IO::Socket::INET->new(Proto => 'udp', LocalPort => 0) or die $!;
for (1 .. 5) {
    for my $p (%2$d, %3$d) { $u->send("hello", 0, pack_sockaddr_in($p, inet_aton("%1$s"))) }
    my $sel = IO::Select->new($u);
    my $end = time + 1;
    while ($sel->can_read(0.3)) { $u->recv(my $d, 100); print "got $d\n"; $| = 1 }
}
PL
    my $pid = $net->spawn($h, { out => $out }, '/usr/bin/perl', '-e', $script);
    my (@map);
    for my $i (0, 1) {
        my $sel = IO::Select->new($srv[$i]);
        if ($sel->can_read(5)) {
            my $from = $srv[$i]->recv(my $d, 100);
            my ($p, $a) = Socket::unpack_sockaddr_in($from);
            $map[$i] = [ Socket::inet_ntoa($a), $p ];
        }
    }
    if ($map[0]) {
        my $to = Socket::pack_sockaddr_in($map[0][1], Socket::inet_aton($map[0][0]));
        $srv[2]->send('unsolicited', 0, $to);
        select undef, undef, undef, 0.2;
        $srv[0]->send('reply', 0, $to);
    }
    $net->finish($pid, 10);
    my $got = do { local $/; open my $fh, '<', $out; <$fh> // '' };
    return (\@map, $got);
}

sub mapping_is {
    my ($h, $kind) = @_;
    subtest "router $h ($kind): UDP mapping and filtering" => sub {
        my ($map, $got) = probe($h);
        my $wan = $net->wan_ip($h);
        if ($kind eq 'no-udp' || $kind eq 'web-only') {
            ok(!$map->[0] && !$map->[1], 'no datagram leaves the home');
            cmp_ok($net->dropped($h, 'udp'), '>', 0, 'the router dropped them');
            return;
        }
        ok($map->[0] && $map->[1], 'both datagrams arrived') or return;
        is($map->[0][0], $wan, "from the router's public address");
        is($map->[1][0], $wan, "both from the router's public address");
        if ($kind eq 'symmetric') {
            isnt($map->[0][1], $map->[1][1], 'a new external port for each destination');
        } else {
            is($map->[0][1], $map->[1][1], 'one external port for both destinations');
        }
        like($got, qr/^got reply$/m, 'the reply from the port it sent to came back in');
        unlike($got, qr/unsolicited/, 'a datagram from another port did not');
    };
}

mapping_is(a => 'cone');
mapping_is(b => 'symmetric');

SKIP: {
    skip "no $Famcall::NatStack::UCLIENT (Debian's coturn package)", 1
        unless -x $Famcall::NatStack::UCLIENT && $cred;

    # the summary line's count: messages relayed there and back
    my $relayed = sub { my ($rc, $out) = @_; $rc == 0 && ($out =~ /tot_recv_msgs=(\d+)\s*$/m)[0] };
    my $allocates = sub {
        my ($h, $what, $want, @flags) = @_;
        local $Famcall::NatStack::UCLIENT_TIMEOUT = $want ? 20 : 6;
        my ($rc, $out) = uclient($net, $h, $s, $cred, @flags);
        my $ok = $relayed->($rc, $out);
        ok($want ? $ok : !$ok, ($want ? '' : 'no ') . "relay from home $h over $what")
            or diag("exit $rc\n$out");
    };

    subtest 'coturn from the homes (turnutils_uclient)' => sub {
        $allocates->(a => 'UDP', 1);
        $allocates->(a => 'TCP', 1, '-t');
        $net->watch_tcp(a => 443);
        $allocates->(a => 'TLS on 443', 1, '-t', '-S', '-p', 443);
        cmp_ok($net->watched(a => tls => 443), '>', 0, 'in TLS records (counted at router a)');
        is($net->watched(a => stun => 443), 0, 'no STUN in the clear');
        $allocates->(b => 'UDP behind the symmetric NAT', 1);

        $net->router(a => 'no-udp');
        mapping_is(a => 'no-udp');
        $allocates->(a => 'UDP (blocked)', 0);
        $allocates->(a => 'TCP', 1, '-t');

        $net->router(a => 'web-only', allow_tcp => [443, $s->http_port]);
        $allocates->(a => 'TCP to port ' . $port . ' (blocked)', 0, '-t');
        $allocates->(a => 'TLS on 443', 1, '-t', '-S', '-p', 443);
        my ($code) = curl(a => GET => '/healthz');
        is($code, 200, 'the API is still allowed');
    };
}

$s->stop;
$net->destroy;
done_testing;
