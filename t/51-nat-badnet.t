# A bad home link: 300 ms more round trip (150 ms each way), 5% loss and
# 500 kbit/s each way on home a's link: `tc qdisc ... netem delay 150ms
# loss 5% rate 500kbit` on both ends of it. This kernel has no sch_netem,
# so Famcall::Netns emulates the link in a process of its own. The call
# still connects and both sides keep decoding video and audio.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Famcall::NatStack qw(nat_stack call_pair nat_call media_ok pair_of);

my %bad = (delay_ms => 150, loss => 0.05, rate_kbit => 500);
my ($net, $s) = nat_stack(a => 'cone', b => 'cone', link_a => \%bad, client => 1);
my $pub = Famcall::Netns->public_ip;
my $url = "http://$pub:" . $s->http_port . '/healthz';

# connect_s($home) -> seconds curl took to open a TCP connection to the API
sub connect_s {
    my ($h) = @_;
    my ($rc, $out) = $net->run($h => '/usr/bin/curl', '-sS', '-o', '/dev/null', '-m', '10',
                               '-w', '%{time_connect}', $url);
    return $rc ? diag("curl from home $h: exit $rc: $out") : $out;
}

subtest 'the link is as bad as it should be' => sub {
    cmp_ok(connect_s('a') // 0, '>=', 0.3, "a TCP handshake from home a takes the delay");
    cmp_ok(connect_s('b') // 1, '<', 0.1, "home b's link is not delayed");
    # 200 datagrams of 1000 bytes at 40 a second: 5% lost (1 to 20 of
    # them, allowing for chance), the rest arrive
    my $srv = IO::Socket::INET->new(LocalAddr => $pub, LocalPort => 0, Proto => 'udp')
        or die "udp: $!";
    my $pid = $net->spawn(a => {}, '/usr/bin/perl', '-MIO::Socket::INET', '-MTime::HiRes=sleep',
        '-e', 'my $u = IO::Socket::INET->new(PeerAddr => $ARGV[0], Proto => "udp") or die;'
            . 'for (1 .. 200) { $u->send("x" x 1000); sleep 0.025 }', "$pub:" . $srv->sockport);
    my $sel = IO::Select->new($srv);
    my $n = 0;
    while ($sel->can_read(3)) { $srv->recv(my $d, 2000); $n++ }
    $net->finish($pid, 5);
    cmp_ok(200 - $n, '>=', 1, 'some datagrams were lost');
    cmp_ok(200 - $n, '<=', 20, 'about one in twenty');
};

my $pair = call_pair($net, $s);
my $r = nat_call($net, $s, $pair, caller => ['--duration', 12]);
# the thresholds allow for a busy machine, where ICE and DTLS over this
# link take seconds more
media_ok($r, 12, 0.2);
for my $h (qw(a b)) {
    my $st = $r->{$h}{stats} // {};
    my $first = ($st->{setup_ms}{first_frame} // 1e9) / 1000;
    cmp_ok($first, '<', 10, "home $h decoded its first frame within 10 s of the answer");
    # after it, most of the call's frames (15 a second) still decode
    cmp_ok($st->{video_frames_received} // 0, '>=', int(15 * (12 - $first) * 0.4),
           "home $h kept decoding frames after the first")
        or diag(explain($st));
    note("home $h: " . pair_of($r, $h) . ", $st->{video_frames_received} frames, "
         . "$st->{audio_buffers_received} audio buffers, first frame after ${first}s");
}

$s->stop;
$net->destroy;
done_testing;
