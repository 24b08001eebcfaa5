package Famcall::NatStack;

# What every NAT suite starts with: the topology (Famcall::Netns) and the
# stack in its public namespace, coturn there with UDP and TCP on its port
# and TLS on 443 (a certificate made here for the public address), and
# GET /v1/turn naming all three. Skips the whole file, with the reason,
# where the topology cannot be built (not root, no iptables).

use strict;
use warnings;

use Exporter qw(import);
use File::Temp qw(tempdir);
use Mojo::JSON qw(decode_json);
use POSIX ();
use Test::More;
use Famcall::Netns;
use Famcall::Test qw(module_path repo_dir wait_until);

our @EXPORT_OK = qw(nat_stack uclient client_path call_pair nat_call media_ok pair_of);

sub client_path { $ENV{FAMCALL_CLIENT} // repo_dir() . '/build/client/famcall-client' }

our $UCLIENT = '/usr/bin/turnutils_uclient';
our $TLS_PORT = 443;
our $UCLIENT_TIMEOUT = 20;      # seconds; less where it is meant to fail
our $CERT;                      # coturn's certificate, its own authority

# nat_stack(a => KIND, b => KIND, link_a => {...}, ...) -> ($net, $stack)
sub nat_stack {
    my (%o) = @_;
    my $client = delete $o{client};
    if (my $why = Famcall::Netns::skip_reason()) {
        plan skip_all => $why;
    }
    -x client_path() or BAIL_OUT('no famcall-client at ' . client_path() . ': run make client')
        if $client;
    -e module_path() or BAIL_OUT('famcall module not found at ' . module_path()
                                 . ': run make build');
    my $ip = Famcall::Netns->public_ip;
    my $certs = tempdir('famcall-nat-XXXX', DIR => '/tmp', CLEANUP => 1);
    my $out = `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\
        -keyout $certs/key.pem -out $certs/cert.pem -days 1 -subj /CN=turn.famcall.test \\
        -addext subjectAltName=IP:$ip 2>&1`;
    die "openssl: $out" if $?;

    $Famcall::NatStack::CERT = "$certs/cert.pem";
    my $net = Famcall::Netns->new(%o);
    my $s = Famcall::Test->new(
        bind => $ip, turn => 1,
        turn_tls => { port => $TLS_PORT, cert => "$certs/cert.pem", key => "$certs/key.pem" },
        extra_conf => "famcall_turn_uris turns:$ip:$TLS_PORT?transport=tcp;",
    );
    return ($net, $s);
}

# uclient($net, $home, $stack, \%cred, @flags) -> (exit code, output):
# turnutils_uclient in a home: two allocations on coturn that relay to each
# other (-y), a few messages; -t for TCP, -S for TLS, -p for the port.
sub uclient {
    my ($net, $h, $s, $cred, @flags) = @_;
    my @port = grep({ $_ eq '-p' } @flags) ? () : ('-p', $s->turn_port);
    return $net->run($h, '/usr/bin/timeout', $UCLIENT_TIMEOUT, $UCLIENT, @flags, @port, '-y', '-c',
                     '-n', '2', '-m', '1', '-l', '50', '-u', $cred->{username},
                     '-w', $cred->{credential}, Famcall::Netns->public_ip);
}

#-------------------------------------------------------------------------
# Calls between the homes with famcall-client
#-------------------------------------------------------------------------

# call_pair($net, $s) -> { dir, a => {profile, id, name}, b => {...} }: two
# users who are contacts, each signed in from a home (home a and home b)
# with famcall-client, so the token files name the public server
sub call_pair {
    my ($net, $s) = @_;
    my $dir = tempdir('famcall-natc-XXXX', DIR => '/tmp', CLEANUP => 1);
    my $pair = { dir => $dir, n => 0 };
    my %u = map { $_ => $s->signup } qw(a b);
    $s->befriend($u{a}, $u{b});
    for my $h (qw(a b)) {
        $pair->{$h} = { profile => "home$h", id => $u{$h}{user}{id} };
        my ($rc, $out) = $net->run($h, 'env', _client_env($pair, $s), client_path(), 'login',
                                   '--profile', "home$h", '--email', $u{$h}{email},
                                   '--password', $u{$h}{password});
        die "famcall-client login in home $h: exit $rc\n$out" if $rc;
    }
    return $pair;
}

sub _client_env {
    my ($pair, $s) = @_;
    return ("XDG_CONFIG_HOME=$pair->{dir}/config", 'FAMCALL_SERVER=' . $s->base_url);
}

# nat_call($net, $s, $pair, caller => [args], callee => [args], during => sub,
# watch => { name => [home, proto, dst, dport] }) -> { a => {rc, out,
# stats}, b => {...}, bytes => { name => n } }: home b answers (auto), home
# a calls it; both headless with test media, each with --stats-json; bytes:
# what the router counted on the watched flows (flow_bytes) meanwhile
sub nat_call {
    my ($net, $s, $pair, %o) = @_;
    my $n = ++$pair->{n};
    my %r;
    my %file = map { $_ => "$pair->{dir}/$_$n" } qw(a b);
    my @env = _client_env($pair, $s);
    # coturn's certificate is trusted, as a real one would be
    my @media = ('--headless', '--test-media', '--turn-ca', $CERT);
    my %before = map { $_ => $net->flow_bytes(@{ $o{watch}{$_} }) } keys %{ $o{watch} // {} };
    my $bpid = $net->spawn(b => { out => "$file{b}.out" }, 'env', @env, client_path(),
        'answer', '--profile', $pair->{b}{profile}, '--auto-answer', '--wait', 60, @media,
        '--stats-json', "$file{b}.json", @{ $o{callee} // [] });
    # it rings once the callee's socket is open (a presence row)
    wait_until { $s->psql("select count(*) from presence where user_id = '$pair->{b}{id}'") > 0 }
        20, "the callee's socket";
    my $apid = $net->spawn(a => { out => "$file{a}.out" }, 'env', @env, client_path(),
        'call', '--profile', $pair->{a}{profile}, $pair->{b}{id}, @media,
        '--stats-json', "$file{a}.json", @{ $o{caller} // [] });
    $o{during}->() if $o{during};
    $r{a}{rc} = $net->finish($apid, $o{timeout} // 90);
    $r{b}{rc} = $net->finish($bpid, 15);
    $r{bytes}{$_} = $net->flow_bytes(@{ $o{watch}{$_} }) - $before{$_} for keys %before;
    for my $h (qw(a b)) {
        $r{$h}{out} = _slurp("$file{$h}.out");
        $r{$h}{stats} = eval { decode_json(_slurp("$file{$h}.json")) };
    }
    return \%r;
}

sub _slurp { open my $fh, '<', $_[0] or return ''; local $/; <$fh> // '' }

# pair_of($r, $h) -> 'local/remote protocol' of a side's selected pair
sub pair_of {
    my ($r, $h) = @_;
    my $p = ($r->{$h}{stats} // {})->{selected_pair} // {};
    return join('/', $p->{local_type} // '-', $p->{remote_type} // '-')
         . ' ' . ($p->{protocol} // '-');
}

# media_ok($r, $secs): both sides ended well and decoded a steady stream
# of video frames and audio buffers from the other (15 frames and 50 Opus
# packets a second are sent; most of the call's last $secs seconds
# decode); $min_share lowers the bar for a lossy link
sub media_ok {
    my ($r, $secs, $min_share) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $min_share //= 0.5;
    for my $h (qw(a b)) {
        my $side = $h eq 'a' ? 'the caller (home a)' : 'the callee (home b)';
        is($r->{$h}{rc}, 0, "$side: exit 0") or diag($r->{$h}{out});
        my $st = $r->{$h}{stats};
        ok($st, "$side wrote --stats-json") or next;
        cmp_ok($st->{video_frames_received} // 0, '>=', int(15 * $secs * $min_share),
               "$side decoded video frames");
        cmp_ok($st->{audio_buffers_received} // 0, '>=', int(50 * $secs * $min_share),
               "$side decoded audio");
    }
}

1;
