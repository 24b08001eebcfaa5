# famcall-client (client/gstreamer-app, issue 20) against a stack of our
# own on loopback: the command line and its exit codes, accounts and
# contacts, chat both ways, a headless video call with media decoded on
# both sides and both quality reports in the history, a call forced
# through coturn over TCP (--relay-only), and the call outcomes a user
# meets (declined, nobody calling).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use Mojo::JSON qw(decode_json);
use POSIX ();
use Time::HiRes qw(time);
use Famcall::Test qw(wait_until repo_dir);

my $CLIENT = $ENV{FAMCALL_CLIENT} // repo_dir() . '/build/client/famcall-client';
-x $CLIENT or BAIL_OUT("no famcall-client at $CLIENT: run `make client`");

# rings out in 3 s, a lost side is given up after 3 s, enough invites a
# minute for every call below, and access tokens that live 70 s (the
# client renews a minute ahead: on the socket after 10 s)
my $s = Famcall::Test->new(turn => 1, extra_conf => "famcall_jwt_ttl 70s;\n"
    . "famcall_call_ring_timeout 3s;\n"
    . "famcall_call_sweep_interval 200ms;\nfamcall_call_reconnect_grace 3s;\n"
    . "famcall_call_invite_rate 100;\n");
my $home = tempdir('famcall-client-XXXX', DIR => '/tmp', CLEANUP => 1);
my %env = (XDG_CONFIG_HOME => "$home/config", FAMCALL_SERVER => $s->base_url,
           FAMCALL_PROFILE => undef, FAMCALL_PASSWORD => undef);
my $n = 0;

# start(\@args, stdin => text) -> a handle for finish(): the client runs
# in the background, its output in files
sub start {
    my ($args, %o) = @_;
    my $base = "$home/run" . ++$n;
    if (defined $o{stdin}) {
        open my $fh, '>', "$base.in" or die $!;
        print $fh $o{stdin};
        close $fh;
    }
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', defined $o{stdin} ? "$base.in" : '/dev/null';
        open STDOUT, '>', "$base.out" or POSIX::_exit(126);
        open STDERR, '>', "$base.err" or POSIX::_exit(126);
        while (my ($k, $v) = each %env) {
            if (defined $v) { $ENV{$k} = $v } else { delete $ENV{$k} }
        }
        { no warnings 'exec'; exec $CLIENT, @$args; }
        POSIX::_exit(127);
    }
    return { pid => $pid, base => $base, args => $args };
}

# finish($h, $timeout) -> { rc, out, err }; kills a client that overstays
sub finish {
    my ($h, $timeout) = @_;
    my $done = wait_until { waitpid($h->{pid}, POSIX::WNOHANG()) == $h->{pid} }
        $timeout // 60, "famcall-client @{ $h->{args} }";
    my $rc;
    if ($done) {
        $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    } else {
        kill 'KILL', $h->{pid};
        waitpid $h->{pid}, 0;
        $rc = 'killed';
    }
    my $slurp = sub { open my $fh, '<', $_[0] or return ''; local $/; <$fh> // '' };
    my $err = $slurp->("$h->{base}.err");
    # a client built with SANITIZE=1 (FAMCALL_CLIENT) reports here
    fail("no sanitizer report from famcall-client @{ $h->{args} }")
        and diag($err) if $err =~ /ERROR: \w+Sanitizer|runtime error:/;
    return { rc => $rc, out => $slurp->("$h->{base}.out"), err => $err };
}

sub client { finish(start([@_]), 30) }

# is_rc($r, $code, $name): with the output shown when it is not
sub is_rc {
    my ($r, $code, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($r->{rc}, $code, "$name: exit $code") or diag("out: $r->{out}\nerr: $r->{err}");
}

sub stats_of {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    local $/;
    return eval { decode_json(<$fh>) };
}

subtest 'the command line' => sub {
    my $r = client('--help');
    is_rc($r, 0, '--help');
    like($r->{out}, qr/^\s+$_\b/m, "--help names $_")
        for qw(signup login contacts add chat call answer history);
    like($r->{out}, qr/Exit codes:/, '--help lists the exit codes');
    for my $cmd (qw(signup login logout me contacts add chat call answer history)) {
        $r = client($cmd, '--help');
        is_rc($r, 0, "$cmd --help");
        like($r->{out}, qr/famcall-client \Q$cmd\E/, "$cmd --help shows its usage");
    }
    $r = client('call', '--help');
    like($r->{out}, qr/--$_\b/, "call --help: --$_")
        for qw(test-media headless relay-only stats-json server);
    like(client('answer', '--help')->{out}, qr/--auto-answer/, 'answer --help: --auto-answer');

    is_rc(client(), 2, 'no command');
    is_rc(client('dance'), 2, 'an unknown command');
    is_rc(client('call', '--bogus', 'x'), 2, 'an unknown option');
    is_rc(client('call'), 2, 'call without a contact');
    is_rc(client('call', 'x', '--turn-transport', 'carrier-pigeon'), 2, 'a bad --turn-transport');
    is_rc(client('signup', '--email', 'x@example.com'), 2, 'signup without --username');
    is_rc(client('contacts', '--profile', '../etc'), 2, 'a --profile that is a path');
    {
        # a GStreamer that has none of the plugins
        local $env{GST_PLUGIN_SYSTEM_PATH_1_0} = "$home/no-plugins";
        local $env{GST_PLUGIN_PATH_1_0} = "$home/no-plugins";
        local $env{GST_REGISTRY_1_0} = "$home/empty-registry.bin";
        $r = client('call', 'someone', '--headless', '--test-media');
        is_rc($r, 6, 'call without the GStreamer plugins');
        like($r->{err}, qr/missing GStreamer elements:.*\bwebrtcbin\b.*\bvp8enc\b/,
             'names the missing ones');
    }
    $r = client('contacts');
    is_rc($r, 3, 'contacts before signing in');
    like($r->{err}, qr/not signed in/, 'says so');
    is_rc(client('contacts', '--server', 'http://127.0.0.1:1', '--profile', 'nobody'), 3,
          'no tokens for that server: not signed in');
    $r = client('signup', '--server', 'http://127.0.0.1:1', '--profile', 'nobody',
                '--email', 'x@example.com', '--username', 'xyz', '--password', 'x' x 12);
    is_rc($r, 4, 'a server that does not answer');
    like($r->{err}, qr/127\.0\.0\.1:1/, 'named');
};

my %who;
subtest 'signup, login by email and by phone code, tokens' => sub {
    for my $name (qw(alice bob)) {
        my $u = "$name${$}";
        my $r = client('signup', '--profile', $name, '--email', "$u\@example.com",
                       '--username', $u, '--display-name', ucfirst $name,
                       '--password', 'correct horse battery');
        is_rc($r, 0, "signup $name");
        like($r->{out}, qr/Signed in as \Q$u\E/, 'signed in');
        $who{$name} = $u;
    }
    my $file = "$home/config/famcall/alice.json";
    ok(-f $file, 'a token file per profile');
    is((stat $file)[2] & 0777, 0600, 'the token file is 0600');
    is((stat "$home/config/famcall")[2] & 0777, 0700, 'in a 0700 directory');

    my $r = client('signup', '--profile', 'dup', '--email', "other$$\@example.com",
                   '--username', $who{alice}, '--password', 'correct horse battery');
    is_rc($r, 5, 'signup with a taken username is refused');

    $r = client('login', '--profile', 'alice2', '--email', "$who{alice}\@example.com",
                '--password', 'wrong password here');
    is_rc($r, 3, 'a wrong password');
    {
        local $env{FAMCALL_PASSWORD} = 'correct horse battery';
        $r = client('login', '--profile', 'alice2', '--email', "$who{alice}\@example.com");
    }
    is_rc($r, 0, 'login by email, the password from $FAMCALL_PASSWORD');
    like(client('me', '--profile', 'alice2')->{out}, qr/\(\Q$who{alice}\E\)/, 'me: alice');
    is_rc(client('logout', '--profile', 'alice2'), 0, 'logout');
    ok(!-e "$home/config/famcall/alice2.json", 'logout forgets the tokens');
    is_rc(client('me', '--profile', 'alice2'), 3, 'signed out');

    my $phone = '+1555' . sprintf('%07d', $$ % 10_000_000);
    $r = client('login', '--profile', 'carol', '--phone', $phone, '--request-only');
    is_rc($r, 0, 'a code is requested');
    my $code = $s->sms_code($phone);
    ok($code, 'and sent');
    my $bad = $code eq '000000' ? '111111' : '000000';
    is_rc(client('login', '--profile', 'carol', '--phone', $phone, '--code', $bad,
                 '--display-name', 'Carol'), 3, 'a wrong code');
    is_rc(client('login', '--profile', 'carol', '--phone', $phone, '--code', $code,
                 '--display-name', 'Carol'), 0, 'the right code signs a new user in');
    like(client('me', '--profile', 'carol')->{out}, qr/^Carol /, 'me: Carol');

    # an access token past its expiry is refreshed, and the file rewritten
    my $tf = "$home/config/famcall/bob.json";
    my $before = stats_of($tf);
    $before->{access_expires_at} = 0;
    open my $fh, '>', $tf or die $!;
    print $fh Mojo::JSON::encode_json($before);
    close $fh;
    $r = client('me', '--profile', 'bob');
    is_rc($r, 0, 'me with an expired access token');
    my $after = stats_of($tf);
    isnt($after->{refresh_token}, $before->{refresh_token}, 'the refresh token was spent and replaced');
    cmp_ok($after->{access_expires_at}, '>', time, 'a fresh access token');
    is((stat $tf)[2] & 0777, 0600, 'still 0600');
};

subtest 'contacts' => sub {
    my $r = client('add', '--profile', 'alice', $who{bob});
    is_rc($r, 0, 'alice asks bob');
    like($r->{out}, qr/waiting for them/, 'pending');
    like(client('contacts', '--profile', 'bob')->{out},
         qr/^\Q$who{alice}\E .*wants to be your contact/m, 'bob sees the request');
    is_rc(client('call', '--profile', 'alice', $who{bob}), 5, 'no call before bob accepts');
    $r = client('add', '--profile', 'bob', $who{alice});
    is_rc($r, 0, 'bob asks back');
    like($r->{out}, qr/now a contact/, 'which accepts');
    like(client('contacts', '--profile', 'alice')->{out}, qr/^\Q$who{bob}\E .*contact$/m,
         'alice lists bob as a contact');
    is_rc(client('add', '--profile', 'alice', "nobody$$"), 5, 'adding nobody');
    is_rc(client('chat', '--profile', 'alice', "nobody$$", '--send', 'x'), 5,
          'chat with a stranger');
};

subtest 'chat both ways' => sub {
    my $a = start(['chat', '--profile', 'alice', $who{bob}, '--send', 'hello bob',
                   '--send', 'are you there?', '--until-received', 1, '--timeout', 30]);
    my $b = start(['chat', '--profile', 'bob', $who{alice}, '--send', 'hi alice',
                   '--until-received', 2, '--timeout', 30]);
    my ($ra, $rb) = (finish($a, 40), finish($b, 40));
    is_rc($ra, 0, 'alice: sent two, got one');
    is_rc($rb, 0, 'bob: sent one, got two');
    is_deeply([ $rb->{out} =~ /^(Alice: .*)$/mg ], [ 'Alice: hello bob', 'Alice: are you there?' ],
              'bob reads both, once each, in order');
    like($ra->{out}, qr/^Bob: hi alice$/m, 'alice reads the reply');
    like($ra->{out}, qr/^sent: hello bob$/m, 'alice saw her send acked');
    is($s->psql("select count(*) from messages"), 3, 'three messages stored, no duplicate');
    is_rc(client('chat', '--profile', 'bob', $who{alice}, '--until-received', 1,
                 '--timeout', 1), 12, 'waiting for a message in vain: exit 12');

    # a socket kept past its token's renewal stays open and delivers
    my $before = stats_of("$home/config/famcall/bob.json")->{refresh_token};
    $b = start(['chat', '--profile', 'bob', $who{alice}, '--until-received', 1,
                '--timeout', 40, '--verbose']);
    my $renewed = wait_until {
        open my $fh, '<', "$b->{base}.err" or return 0;
        local $/;
        (<$fh> // '') =~ /token renewed on the socket/;
    } 30, 'the renewal';
    ok($renewed, 'the access token is renewed on the socket');
    is_rc(client('chat', '--profile', 'alice', $who{bob}, '--send', 'still there?'), 0,
          'alice writes after it');
    $rb = finish($b, 20);
    is_rc($rb, 0, 'bob gets it on the same socket');
    like($rb->{out}, qr/^Alice: still there\?$/m, 'the message');
    unlike($rb->{err}, qr/socket closed/, 'the socket never closed');
    unlike($rb->{err}, qr/\Q$before\E|eyJ/, 'no token in the verbose log');
    isnt(stats_of("$home/config/famcall/bob.json")->{refresh_token}, $before,
         'the token file holds the new tokens');
};

# wait_output($h, $re) -> true once the running client printed it
sub wait_output {
    my ($h, $re, $what) = @_;
    return wait_until {
        open my $fh, '<', "$h->{base}.out" or return 0;
        local $/;
        (<$fh> // '') =~ $re;
    } 30, $what;
}

# call(\@caller_args, \@callee_args, during => sub { my ($a, $b) = @_ },
# stdin => text for the callee, callee => profile) -> (caller result,
# callee result, caller stats, callee stats)
sub call {
    my ($cargs, $aargs, %o) = @_;
    my ($sa, $sb) = ("$home/a$n.json", "$home/b$n.json");
    my $callee = $o{callee} // 'bob';
    my $b = start(['answer', '--profile', $callee, '--headless', '--test-media',
                   '--stats-json', $sb, '--wait', 30, @$aargs], stdin => $o{stdin});
    # the callee rings once its socket is open (it says so after hello)
    wait_output($b, qr/^Waiting for a call/m, "${callee}'s socket");
    my $a = start(['call', '--profile', $o{caller} // 'alice', $o{to} // $who{bob},
                   '--headless', '--test-media', '--stats-json', $sa, @$cargs]);
    $o{during}->($a, $b) if $o{during};
    my ($ra, $rb) = (finish($a, 60), finish($b, 60));
    return ($ra, $rb, stats_of($sa), stats_of($sb));
}

sub media_ok {
    my ($st, $side, $secs) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    # 15 frames and 50 Opus packets a second are sent; a steady stream
    # decodes most of them over the call's last seconds
    cmp_ok($st->{video_frames_received} // 0, '>=', 8 * $secs, "$side decoded video frames");
    cmp_ok($st->{audio_buffers_received} // 0, '>=', 25 * $secs, "$side decoded audio");
    cmp_ok($st->{video_frames_sent} // 0, '>=', 8 * $secs, "$side sent video frames");
}

my $call_id;
subtest 'a video call, media both ways, hung up, both reports in the history' => sub {
    my ($ra, $rb, $sa, $sb) = call(['--duration', 5], ['--auto-answer']);
    is_rc($ra, 0, 'the caller hangs up');
    is_rc($rb, 0, 'the callee hears the hangup');
    like($ra->{out}, qr/^Ringing/m, 'the caller heard it ring');
    like($rb->{out}, qr/^Incoming video call from Alice/m, 'the callee saw who called');
    like($rb->{out}, qr/^Alice hung up$/m, 'and who hung up');
    like($ra->{out}, qr/^\Q$who{alice}\E: \d+ video frames, \d+ audio buffers decoded/m,
         'one summary line per side');
    ok($sa && $sb, 'both wrote --stats-json') or return;
    media_ok($sa, 'the caller', 5);
    media_ok($sb, 'the callee', 5);
    $call_id = $sa->{call_id};
    is($sb->{call_id}, $call_id, 'the same call');
    is($sa->{role}, 'caller', 'roles');
    is($sb->{role}, 'callee', 'roles');
    like($sa->{selected_pair}{local_type} // '', qr/^(host|srflx|prflx)$/,
         'a direct pair on loopback');
    for my $k (qw(ringing ice_connected first_frame)) {
        ok(defined $sa->{setup_ms}{$k}, "the caller timed $k");
    }
    ok(defined $sb->{setup_ms}{first_frame}, 'the callee timed its first frame');
    cmp_ok($sa->{setup_ms}{first_frame} // 1e9, '<', 5000, 'first frame within the call');

    my $tx = $s->json_req(GET => '/v1/calls', undef,
                          stats_of("$home/config/famcall/alice.json")->{access_token});
    my $c = (Famcall::Test::body_json($tx)->{calls} // [])->[0] // {};
    is($c->{call_id}, $call_id, 'the call is in the history');
    is($c->{status}, 'ended', 'ended');
    is($c->{end_reason}, 'hangup', 'by a hangup');
    my @rows = split /\n/, $s->psql("select user_id, local_type, "
        . "setup_first_frame_ms is not null from call_stats "
        . "where call_id = '$call_id' order by user_id");
    is(scalar @rows, 2, 'both quality reports are stored');
    like($_, qr/\|(host|srflx|prflx)\|t$/, 'with the pair and the first-frame time')
        for @rows;
    like(client('history', '--profile', 'bob')->{out},
         qr/incoming\s+video\s+\Q$who{alice}\E\s+ended/, 'history lists it for bob');
};

subtest '--relay-only through coturn over TCP' => sub {
    my $port = $s->turn_port;
    my $tcp = 0;
    my @relay = ('--relay-only', '--turn-transport', 'tcp');
    my ($ra, $rb, $sa, $sb) = call(['--duration', 4, @relay], ['--auto-answer', @relay],
        during => sub {
            # both clients hold a TCP connection to coturn during the call
            wait_until {
                my @e = `ss -tnH state established '( dport = :$port )'`;
                $tcp = @e;
                @e >= 2;
            } 20, 'two TCP connections to coturn';
        });
    is_rc($ra, 0, 'the caller');
    is_rc($rb, 0, 'the callee');
    cmp_ok($tcp, '>=', 2, 'both clients reached coturn over TCP');
    ok($sa && $sb, 'stats') or return;
    is($sa->{selected_pair}{local_type}, 'relay', "the caller's candidate is a relay");
    is($sa->{selected_pair}{remote_type}, 'relay', 'so is the remote one');
    is($sb->{selected_pair}{local_type}, 'relay', "the callee's too");
    is_deeply($sa->{turn_transports}, ['tcp'], 'TURN over TCP only');
    media_ok($sa, 'the caller', 4);
    media_ok($sb, 'the callee', 4);
};

subtest 'declined, nobody calling' => sub {
    my ($ra, $rb) = call([], [], stdin => "n\n");
    is_rc($ra, 10, 'declined: the caller exits 10');
    like($ra->{out}, qr/declined/, 'and says so');
    is_rc($rb, 0, 'the callee who declined: 0');

    my $r = client('answer', '--profile', 'bob', '--headless', '--test-media', '--wait', 1);
    is_rc($r, 12, 'nobody called within --wait');
    like($r->{err}, qr/nobody called/, 'says so');
};

subtest 'rang out, and the caller hanging up first' => sub {
    my ($ra, $rb) = call([], []);
    is_rc($ra, 12, 'no answer: the caller exits 12');
    like($ra->{out}, qr/^no answer$/m, 'and says so');
    is_rc($rb, 12, 'the callee that let it ring: 12');
    like($rb->{out}, qr/^missed call$/m, 'a missed call');

    ($ra, $rb) = call([], [], during => sub {
        my ($a, $b) = @_;
        wait_output($b, qr/^Incoming/m, 'the call to ring');
        kill 'INT', $a->{pid};
    });
    is_rc($ra, 0, 'Ctrl-C while it rings: the caller cancels, 0');
    like($ra->{out}, qr/^cancelled$/m, 'cancelled');
    is_rc($rb, 14, 'the callee hears the caller hung up: 14');
    like($rb->{out}, qr/^the caller hung up$/m, 'and says so');
};

subtest 'busy, answered on another device, an audio call the callee ends' => sub {
    # carol (the phone user) and bob become contacts
    my $phone_user = stats_of("$home/config/famcall/carol.json")->{user}{id};
    is_rc(client('add', '--profile', 'bob', $phone_user), 0, 'bob asks carol');
    is_rc(client('add', '--profile', 'carol', $who{bob}), 0, 'carol accepts');

    my $busy;
    my ($ra, $rb, $sa) = call(['--duration', 4], ['--auto-answer'], during => sub {
        my ($a, $b) = @_;
        wait_output($b, qr/^Media connected/m, 'the call to connect');
        $busy = client('call', '--profile', 'carol', $who{bob}, '--headless', '--test-media');
    });
    is_rc($busy, 11, 'calling someone in a call: busy, 11');
    like($busy->{out}, qr/busy/, 'says so');
    is_rc($ra, 0, 'the call itself went on');
    is_rc($rb, 0, 'for both');

    # a second device of bob's
    {
        local $env{FAMCALL_PASSWORD} = 'correct horse battery';
        is_rc(client('login', '--profile', 'bob2', '--email', "$who{bob}\@example.com"), 0,
              'bob signs in on a second device');
    }
    my $other = start(['answer', '--profile', 'bob2', '--auto-answer', '--headless',
                       '--test-media', '--wait', 30, '--duration', 3]);
    wait_output($other, qr/^Waiting for a call/m, "bob2's socket");
    my ($rb2, $sb);
    ($ra, $rb, $sa, $sb) = call(['--audio-only'], ['--auto-answer', '--duration', 3],
        during => sub { $rb2 = finish($other, 30) });
    # whichever device accepted first keeps the call; the other hears so
    my ($won, $lost) = $rb2->{rc} eq '13' ? ($rb, $rb2) : ($rb2, $rb);
    is_rc($lost, 13, 'the device that lost the answer: 13');
    like($lost->{out}, qr/answered on another device/, 'says so');
    is_rc($won, 0, 'the device that answered');
    is_rc($ra, 0, 'the caller');
    like($ra->{out}, qr/hung up$/m, 'hears the callee hang up') if $won == $rb;
    ok($sa && $sa->{audio_buffers_received} > 0 && $sa->{video_frames_received} == 0,
       'an audio call: audio, no video') or diag explain $sa;
};

subtest 'in-call keys: mute and camera off' => sub {
    # keys come as lines when stdin is not a terminal; read once connected
    my ($ra, $rb, $sa, $sb) = call(['--duration', 4], ['--auto-answer'], stdin => "m\nv\n");
    is_rc($ra, 0, 'the caller');
    is_rc($rb, 0, 'the callee');
    like($rb->{out}, qr/^Muted$/m, 'm mutes');
    like($rb->{out}, qr/^Camera off$/m, 'v turns the camera off');
    cmp_ok($sb->{video_frames_sent}, '<', 5, 'the callee sends (almost) no video');
    cmp_ok($sa->{video_frames_received}, '<', 5, 'the caller sees (almost) none');
    cmp_ok($sa->{audio_buffers_received}, '>', 50, 'and still hears the (muted) sound');
    cmp_ok($sb->{video_frames_received}, '>', 20, "while the callee sees the caller's");
};

subtest 'the server restarts its sockets mid-call; a peer vanishes' => sub {
    my ($ra, $rb, $sa, $sb) = call(['--duration', 7], ['--auto-answer'], during => sub {
        my ($a, $b) = @_;
        wait_output($_, qr/^Media connected/m, 'the call to connect') for $a, $b;
        $s->nginx_reload;       # every socket is closed with 1001
        wait_output($_, qr/^Signaling reconnected/m, 'the call to be taken back')
            for $a, $b;
    });
    is_rc($ra, 0, 'the caller hangs up as planned');
    is_rc($rb, 0, 'the callee hears it');
    like($_->{out}, qr/^Signaling reconnected; the call goes on$/m, 'both said so')
        for $ra, $rb;
    media_ok($sa, 'the caller', 7);
    media_ok($sb, 'the callee', 7);

    ($ra, $rb) = call([], ['--auto-answer'], during => sub {
        my ($a, $b) = @_;
        wait_output($b, qr/^Media connected/m, 'the call to connect');
        kill 'KILL', $a->{pid};
    });
    is($ra->{rc}, 137, 'the caller was killed');
    is_rc($rb, 15, 'the callee: connection lost, 15');
    like($rb->{out}, qr/connection_lost|connection was lost/, 'says so');
};

$s->stop;
done_testing;
