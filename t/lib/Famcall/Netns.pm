package Famcall::Netns;

# Two homes behind two NAT routers and a public segment, in network
# namespaces of a test's own, for the NAT suites (t/51-nat*.t). The test
# process itself moves into the public namespace, so the stack the harness
# starts there (Famcall::Test->new(bind => PUBLIC_IP, ...)) is on that
# segment; programs run in a home through run()/spawn().
#
#                         public segment 203.0.113.0/24 (bridge)
#         stack: PostgreSQL (loopback), nginx and coturn on 203.0.113.10
#              |                                            |
#   router a: wan 203.0.113.2                   router b: wan 203.0.113.3
#             lan 198.51.100.1/25                         lan 198.51.100.129/25
#              |                                            |
#   home a:   198.51.100.10                     home b:   198.51.100.130
#
# Routers are iptables NATs of one of these kinds (router()):
#   cone       MASQUERADE: endpoint-independent mapping, port-restricted
#              filtering (a home router's usual behaviour)
#   symmetric  MASQUERADE --random-fully: a new port for every destination
#   no-udp     cone, and no UDP leaves the home (TURN over TCP must do)
#   web-only   cone, and only TCP to the ports given (443, the API) leaves
# Every kind drops unsolicited inbound packets before conntrack confirms
# their entry: otherwise a peer's check that reaches the router before our
# own first packet to that peer takes the external port, our packet is
# mapped to another, and even a cone acts symmetric.
#
# Nothing is routed beyond the segment, yet the public side and the routers
# need a default route: peers offer private host candidates, and coturn,
# told to relay to one, closes the client's whole allocation when sendto
# fails (no route: ENETUNREACH; a blackhole route: EINVAL). A veth pair with
# both ends in the namespace, one end the default route (to a permanent
# neighbour, so no ARP), drops what it is given, as the internet would.
#
# Every namespace is removed when the object goes or the process ends (END);
# and however the test ends (a second SIGTERM in the middle of END, SIGKILL),
# a guardian process that outlives it kills whatever still runs in them and
# removes them once the test process is gone.

use strict;
use warnings;

use Carp qw(croak);
use Fcntl qw(O_RDWR);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our $IP       = '/usr/sbin/ip';
our $IPTABLES = '/usr/sbin/iptables';

our $PUBLIC_IP = '203.0.113.10';
my %HOME = (
    a => { wan => '203.0.113.2', gw => '198.51.100.1',   host => '198.51.100.10' },
    b => { wan => '203.0.113.3', gw => '198.51.100.129', host => '198.51.100.130' },
);
my $PREFIX = 'fcnat';
my $SINK_GW = '192.0.2.1';      # the sink's neighbour, never answers

my @LIVE;

# skip_reason() -> why these suites cannot run here, or undef
sub skip_reason {
    return 'needs root (network namespaces, iptables)' if $> != 0;
    for my $tool ($IP, $IPTABLES) {
        return "no $tool (packages iproute2, iptables: make deps)" unless -x $tool;
    }
    return 'no /dev/net/tun' unless -e '/dev/net/tun';
    my $probe = "${PREFIX}probe$$";
    my $out = `$IP netns add $probe 2>&1`;
    return "cannot make a network namespace: $out" if $?;
    system($IP, 'netns', 'del', $probe);
    return undef;
}

sub public_ip { $PUBLIC_IP }
sub home_ip   { $HOME{ $_[1] }{host} }
sub wan_ip    { $HOME{ $_[1] }{wan} }

# new(a => KIND, b => KIND, link_a => \%impairment?) -> the topology, built,
# with the calling process moved into the public namespace. KIND as in
# router() (default cone); link_X: the home's link emulated (link()).
sub new {
    my ($class, %o) = @_;
    _sweep();
    my $self = bless { owner => $$, id => "$PREFIX$$" . 'x' . scalar(@LIVE),
                       pids => [], ns => [] }, $class;
    push @LIVE, $self;
    my $id = $self->{id};
    $self->{pub} = "$id-pub";
    $self->_guardian;

    $self->_ns($self->{pub});
    $self->_ip($self->{pub}, qw(link add br0 type bridge));
    $self->_ip($self->{pub}, qw(addr add), "$PUBLIC_IP/24", qw(dev br0));
    $self->_ip($self->{pub}, qw(link set br0 up));
    $self->_sink($self->{pub});

    for my $h (sort keys %HOME) {
        my $r = $self->{router}{$h} = "$id-r$h";
        my $n = $self->{home}{$h}   = "$id-h$h";
        $self->_ns($r);
        $self->_ns($n);
        $self->_sysctl($r, 'net.ipv4.ip_forward', 1);
        $self->_sysctl($r, 'net.netfilter.nf_conntrack_acct', 1);

        # the router's wan on the public bridge
        $self->_ip($self->{pub}, qw(link add), "p$h", 'type', 'veth', 'peer', 'name', 'wan',
                   'netns', $r);
        $self->_ip($self->{pub}, qw(link set), "p$h", qw(master br0 up));
        $self->_ip($r, qw(addr add), "$HOME{$h}{wan}/24", qw(dev wan));
        $self->_ip($r, qw(link set wan up));
        $self->_sink($r);

        # the home link: a veth pair, or two taps joined by an emulator
        if (my $imp = $o{"link_$h"}) {
            $self->_emulated_link($h, $imp);
        } else {
            $self->_ip($r, qw(link add lan type veth peer name eth0 netns), $n);
        }
        $self->_ip($r, qw(addr add), "$HOME{$h}{gw}/25", qw(dev lan));
        $self->_ip($r, qw(link set lan up));
        $self->_ip($n, qw(addr add), "$HOME{$h}{host}/25", qw(dev eth0));
        $self->_ip($n, qw(link set eth0 up));
        $self->_ip($n, qw(route add default via), $HOME{$h}{gw});

        $self->router($h, $o{$h} // 'cone');
    }

    $self->_enter($self->{pub});
    return $self;
}

# router($home, $kind, allow_tcp => [ports]) -> reconfigure a router's
# NAT and filter (kinds: see the top). Flows already tracked keep their
# mapping; new ones get the new rules.
sub router {
    my ($self, $h, $kind, %o) = @_;
    my $r = $self->{router}{$h} or croak "no home '$h'";
    $self->_ipt($r, '-t', 'nat', '-F');
    $self->_ipt($r, '-F');
    my @masq = ('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE');
    if ($kind eq 'symmetric') {
        push @masq, '--random-fully';
    } elsif ($kind !~ /^(?:cone|no-udp|web-only)$/) {
        croak "router kind '$kind': cone, symmetric, no-udp or web-only";
    }
    $self->_ipt($r, @masq);
    $self->_ipt($r, qw(-A INPUT -i wan -m conntrack --ctstate NEW -j DROP));
    $self->_ipt($r, qw(-A FORWARD -i wan -m conntrack --ctstate NEW -j DROP));
    if ($kind eq 'no-udp' || $kind eq 'web-only') {
        $self->_ipt($r, qw(-A FORWARD -i lan -p udp -j DROP));
    }
    if ($kind eq 'web-only') {
        my @ports = @{ $o{allow_tcp} // [443] };
        $self->_ipt($r, qw(-A FORWARD -i lan -p tcp -m multiport --dports),
                    join(',', @ports), '-j', 'ACCEPT');
        $self->_ipt($r, qw(-A FORWARD -i lan -j DROP));
    }
    $self->{kind}{$h} = $kind;
    return $self;
}

# dropped($home, 'udp') -> packets the router's filter dropped from the
# home (FORWARD rules with -i lan), by protocol ('udp', 'all' for the rest)
sub dropped {
    my ($self, $h, $proto) = @_;
    my ($rc, $out) = $self->run_router($h, $IPTABLES, qw(-L FORWARD -v -x -n));
    my %num = (udp => 17, tcp => 6, all => 0);
    my $n = 0;
    for (split /\n/, $out) {
        my ($pkts, undef, $target, $p, undef, $in) = split ' ';
        next unless defined $in && $target eq 'DROP' && $in eq 'lan';
        $n += $pkts if $p eq $proto || $p eq ($num{$proto} // '');
    }
    return $n;
}

# watch_tcp($home, $port): from now on the router counts the home's TCP
# segments to $port whose payload starts a TLS handshake record (0x16)
# and those that start a STUN message (its magic cookie 0x2112A442 in
# bytes 4 to 7): TURN over TLS or in the clear (watched()). Counting
# rules, no verdict.
sub watch_tcp {
    my ($self, $h, $port) = @_;
    my $payload = '0>>22&0x3C@12>>26&0x3C@';    # past the IP and TCP headers
    for ([tls => "${payload}0>>24=0x16"], [stun => "${payload}4=0x2112A442"]) {
        $self->_ipt($self->{router}{$h}, qw(-I FORWARD -i lan -p tcp --dport), $port,
                    '-m', 'u32', '--u32', $_->[1],
                    '-m', 'comment', '--comment', "$_->[0]-$port");
    }
}

# watched($home, 'tls'|'stun', $port) -> segments counted (watch_tcp)
sub watched {
    my ($self, $h, $what, $port) = @_;
    my (undef, $out) = $self->run_router($h, $IPTABLES, qw(-L FORWARD -v -x -n));
    my ($n) = $out =~ m{^\s*(\d+)\s.*/\* \Q$what-$port\E \*/}m;
    return $n // 0;
}

# flow_bytes($home, $proto, $dst, $dport?) -> bytes, both ways, of the
# router's tracked flows between the home and $dst:$dport (any port) that
# saw a reply: where the media went (routers count bytes per flow)
sub flow_bytes {
    my ($self, $h, $proto, $dst, $dport) = @_;
    my $host = $HOME{$h}{host};
    my $port = defined $dport ? qr/\Q$dport\E/ : qr/\d+/;
    my $n = 0;
    for (split /\n/, $self->conntrack($h)) {
        next unless /^ipv4\s+\d+\s+\Q$proto\E\s/ && !/\[UNREPLIED\]/
            && /^[^=]*src=\Q$host\E dst=\Q$dst\E sport=\d+ dport=$port\b/;
        $n += $_ for /\bbytes=(\d+)/g;
    }
    return $n;
}

# conntrack($home) -> the router's conntrack table (its text)
sub conntrack {
    my ($self, $h) = @_;
    my (undef, $out) = $self->run_router($h, '/bin/cat', '/proc/net/nf_conntrack');
    return $out;
}

sub ns_home   { $_[0]{home}{ $_[1] } }
sub ns_router { $_[0]{router}{ $_[1] } }
sub ns_public { $_[0]{pub} }

# run($home, @cmd) -> (exit code, output): a command in a home, waited for;
# stdout and stderr together. run_router() the same in its router.
sub run        { my $s = shift; my $h = shift; $s->_run_ns($s->{home}{$h}, @_) }
sub run_router { my $s = shift; my $h = shift; $s->_run_ns($s->{router}{$h}, @_) }

sub _run_ns {
    my ($self, $ns, @cmd) = @_;
    croak 'no such namespace' unless $ns;
    my $out = '';
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        { no warnings 'exec'; exec $IP, 'netns', 'exec', $ns, @cmd; }
        print "exec: $!\n";
        POSIX::_exit(127);
    }
    local $/;
    $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# spawn($home, \%io, @cmd) -> pid: a command in a home, in the background,
# in a process group of its own; io: out (file, default /dev/null), env
# (extra variables). Killed (the group) when the topology goes, if still
# running; reap it with finish().
sub spawn {
    my ($self, $h, $io, @cmd) = @_;
    my $ns = $self->{home}{$h} or croak "no home '$h'";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $io->{out} // '/dev/null' or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        $ENV{$_} = $io->{env}{$_} for keys %{ $io->{env} // {} };
        { no warnings 'exec'; exec $IP, 'netns', 'exec', $ns, @cmd; }
        print STDERR "exec: $!\n";
        POSIX::_exit(127);
    }
    push @{ $self->{pids} }, $pid;
    return $pid;
}

# finish($pid, $timeout) -> its exit code, or undef when it had to be
# killed after $timeout seconds (SIGTERM, then SIGKILL)
sub finish {
    my ($self, $pid, $timeout) = @_;
    my $end = time + $timeout;
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{pids} = [ grep { $_ != $pid } @{ $self->{pids} } ];
            return $? & 127 ? 128 + ($? & 127) : $? >> 8;
        }
        sleep 0.1;
    }
    _stop_group($pid);
    $self->{pids} = [ grep { $_ != $pid } @{ $self->{pids} } ];
    return undef;
}

sub _stop_group {
    my ($pid) = @_;
    kill 'TERM', -$pid;
    for (1 .. 30) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.1;
    }
    kill 'KILL', -$pid;
    waitpid $pid, 0;
}

#-------------------------------------------------------------------------
# Building blocks
#-------------------------------------------------------------------------

sub _sh {
    my ($self, @cmd) = @_;
    my $out = `@{[ join ' ', map { _q($_) } @cmd ]} 2>&1`;
    croak "@cmd: exit " . ($? >> 8) . ": $out" if $?;
    return $out;
}

sub _q { my $s = shift; $s =~ /^[\w.,:\/=+-]+$/ ? $s : "'" . ($s =~ s/'/'\\''/gr) . "'" }

sub _ns {
    my ($self, $ns) = @_;
    $self->_sh($IP, 'netns', 'add', $ns);
    push @{ $self->{ns} }, $ns;
    print { $self->{guard} } "$ns\n";
    $self->_ip($ns, qw(link set lo up));
}

# A process of its own session, deaf to the signals that end a test, that
# learns the namespaces' names through a pipe and, when the pipe closes
# (the test process has exited, however), kills what still runs in them
# and removes them.
sub _guardian {
    my ($self) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $wr;
        POSIX::setsid();
        $SIG{$_} = 'IGNORE' for qw(INT TERM HUP PIPE);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        my @ns;
        while (my $line = <$rd>) { chomp $line; push @ns, $line }
        for my $ns (reverse @ns) {
            next unless -e "/run/netns/$ns";
            for (1 .. 2) {
                my @pids = grep { /^\d+$/ } split /\s+/, `$IP netns pids $ns 2>/dev/null`;
                last unless @pids;
                kill 'KILL', @pids;
                sleep 0.2;
            }
            system($IP, 'netns', 'del', $ns);
        }
        POSIX::_exit(0);
    }
    close $rd;
    my $old = select $wr; $| = 1; select $old;
    $self->{guard} = $wr;
}

sub _ip       { my ($s, $ns, @a) = @_; $s->_sh($IP, '-n', $ns, @a) }
sub _ipt      { my ($s, $ns, @a) = @_; $s->_sh($IP, 'netns', 'exec', $ns, $IPTABLES, '-w', @a) }
sub _sysctl   { my ($s, $ns, $k, $v) = @_;
                $s->_sh($IP, 'netns', 'exec', $ns, 'sysctl', '-q', '-w', "$k=$v") }

# the lossy default route (see the top)
sub _sink {
    my ($self, $ns) = @_;
    $self->_ip($ns, qw(link add sink0 type veth peer name sink1));
    $self->_ip($ns, qw(link set sink0 up));
    $self->_ip($ns, qw(link set sink1 up));
    $self->_ip($ns, qw(neigh add), $SINK_GW, qw(lladdr 02:00:00:00:00:01 dev sink0 nud permanent));
    $self->_ip($ns, qw(route add default via), $SINK_GW, qw(dev sink0 onlink));
}

# setns(2) into a namespace: the calling process and what it starts later
sub _enter {
    my ($self, $ns) = @_;
    require 'syscall.ph';
    open my $fh, '<', "/run/netns/$ns" or die "/run/netns/$ns: $!";
    syscall(&SYS_setns, fileno($fh), 0x40000000) == 0    # CLONE_NEWNET
        or die "setns $ns: $!";
    close $fh;
}

# namespaces of ours whose process is gone (a test killed with SIGKILL)
sub _sweep {
    opendir my $d, '/run/netns' or return;
    for my $ns (readdir $d) {
        next unless $ns =~ /^\Q$PREFIX\E(\d+)x\d+-/;
        next if $1 == $$ || kill 0, $1;
        system($IP, 'netns', 'del', $ns);
    }
}

#-------------------------------------------------------------------------
# The emulated home link
#-------------------------------------------------------------------------

# A home's link as two tap devices (the router's lan, the home's eth0)
# joined by a process that forwards frames each way after a delay, losing
# some and holding the rest to a rate: what `tc qdisc add ... netem delay
# 300ms loss 5% rate 500kbit` on both ends of a veth does, for kernels
# built without sch_netem (this one). Impairment: delay_ms, loss (0..1),
# rate_kbit, limit (frames queued each way before tail drop, 100).
sub _emulated_link {
    my ($self, $h, $imp) = @_;
    my ($r, $n) = ($self->{router}{$h}, $self->{home}{$h});
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        close $self->{guard};       # the guardian waits for the test alone
        setpgrp(0, 0);
        my $ok = eval {
            $self->_enter($r);
            my $lan = _tap('lan');
            $self->_enter($n);
            my $eth = _tap('eth0');
            print $wr "ok\n";
            close $wr;
            _forward($lan, $eth, $imp);
            1;
        };
        print $wr "error: $@\n" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    close $wr;
    my $line = <$rd> // 'error: the link process died';
    close $rd;
    push @{ $self->{pids} }, $pid;
    croak "emulated link for home $h: $line" unless $line eq "ok\n";
    $self->{emulator}{$h} = $pid;
}

sub _tap {
    my ($name) = @_;
    sysopen(my $fh, '/dev/net/tun', O_RDWR) or die "/dev/net/tun: $!";
    # struct ifreq: the name, then flags IFF_TAP | IFF_NO_PI
    my $ifr = pack('Z16 s x22', $name, 0x0002 | 0x1000);
    ioctl($fh, 0x400454ca, $ifr) or die "TUNSETIFF $name: $!";     # TUNSETIFF
    return $fh;
}

# frames both ways: [fh in, fh out, queue of [due, frame], link busy until]
sub _forward {
    my ($a, $b, $imp) = @_;
    my $delay = ($imp->{delay_ms} // 0) / 1000;
    my $loss  = $imp->{loss} // 0;
    my $rate  = ($imp->{rate_kbit} // 0) * 1000;       # bits/s; 0: unlimited
    my $limit = $imp->{limit} // 100;
    my @dir = ([$a, $b, [], 0], [$b, $a, [], 0]);
    my $rin = '';
    vec($rin, fileno($_), 1) = 1 for $a, $b;
    while (1) {
        my $now = time;
        my $next = 1;
        for my $d (@dir) {
            my $q = $d->[2];
            while (@$q && $q->[0][0] <= $now) {
                my $f = shift @$q;
                syswrite($d->[1], $f->[1]);
            }
            $next = $q->[0][0] - $now if @$q && $q->[0][0] - $now < $next;
        }
        select(my $rout = $rin, undef, undef, $next > 0 ? $next : 0) >= 0
            or next;
        $now = time;
        for my $d (@dir) {
            next unless vec($rout, fileno($d->[0]), 1);
            my $len = sysread($d->[0], my $frame, 65536);
            POSIX::_exit(0) unless defined $len && $len > 0;
            next if rand() < $loss;
            next if @{ $d->[2] } >= $limit;
            # serialised at the rate after what is already on the wire,
            # then the propagation delay
            my $start = $d->[3] > $now ? $d->[3] : $now;
            my $done  = $rate ? $start + $len * 8 / $rate : $now;
            $d->[3] = $done;
            push @{ $d->[2] }, [ $done + $delay, $frame ];
        }
    }
}

#-------------------------------------------------------------------------
# Teardown
#-------------------------------------------------------------------------

# destroy(): stop what runs in the homes, remove every namespace. The
# stack the harness runs in the public namespace keeps it alive (the
# kernel frees a namespace when its last process leaves) until it stops.
sub destroy {
    my ($self) = @_;
    return if $self->{destroyed} || $self->{owner} != $$;
    $self->{destroyed} = 1;
    @LIVE = grep { $_ != $self } @LIVE;
    _stop_group($_) for @{ $self->{pids} };
    $self->{pids} = [];
    system($IP, 'netns', 'del', $_) for reverse @{ $self->{ns} };
    close $self->{guard} if $self->{guard};    # nothing left for it
}

sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    $self->destroy;
}

END {
    my $status = $?;
    $_->destroy for grep { $_->{owner} == $$ } @LIVE;
    $? = $status;
}

1;
