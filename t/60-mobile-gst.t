# The two clients of the project talk to each other: the mobile app's web
# build in headless Chromium places a video call to the GStreamer desktop
# client (famcall-client, answering headless with its test pictures and
# tone), media flows both ways (the browser reads getStats, the client
# writes its --stats-json), and the browser hangs up.
use strict;
use warnings;
use lib 't/lib';

use File::Temp qw(tempdir);
use Mojo::JSON qw(decode_json);
use POSIX ();
use Test::More;
use Famcall::Test qw(wait_until repo_dir);
use Famcall::Mobile qw(web_build web_stack run_browser);

my $CLIENT = $ENV{FAMCALL_CLIENT} // repo_dir() . '/build/client/famcall-client';
-x $CLIENT or BAIL_OUT("no famcall-client at $CLIENT: run `make client`");

my $dist = web_build();
my $s = web_stack($dist, turn => 1);
my $home = tempdir('famcall-mgst-XXXX', DIR => '/tmp', CLEANUP => 1);
local $ENV{XDG_CONFIG_HOME} = "$home/config";
local $ENV{FAMCALL_SERVER}  = $s->base_url;

sub client {
    my $out = `'$CLIENT' @_ 2>&1`;
    return ($? >> 8, $out);
}

# Bob on the desktop (email); Alice by phone through the API, so the
# browser signs in to an account that exists.
my $bob = Famcall::Test::uniq('bob');
my ($rc, $out) = client('signup', '--profile', 'bob', '--email', "$bob\@example.com",
                        '--username', $bob, '--display-name', 'Bob', '--password', "'a long secret'");
is($rc, 0, 'bob signs up with the desktop client') or diag($out);

my $phone = '+4475' . substr(sprintf('%08d', $$ * 7 + time % 100000), -8);
my $tx = $s->json_req(POST => '/v1/auth/otp/request', { phone => $phone });
is($tx->res->code, 202, 'a code for alice');
$tx = $s->json_req(POST => '/v1/auth/otp/verify',
                   { phone => $phone, code => $s->sms_code($phone), display_name => 'Alice' });
is($tx->res->code, 200, 'alice has an account by phone');
my $alice = $tx->res->json;
$tx = $s->json_req(POST => '/v1/contacts', { username => $bob }, $alice->{access_token});
is($tx->res->code, 201, 'alice asks bob');
($rc, $out) = client('add', '--profile', 'bob', $phone);
is($rc, 0, 'bob asks back from the desktop, which accepts') or diag($out);

# Bob's client waits for the call and answers it.
my $stats = "$home/bob.json";
my $pid = fork // die "fork: $!";
if (!$pid) {
    open STDOUT, '>', "$home/bob.out";
    open STDERR, '>&', \*STDOUT;
    open STDIN, '<', '/dev/null';
    { no warnings 'exec'; exec $CLIENT, 'answer', '--profile', 'bob', '--auto-answer',
          '--headless', '--test-media', '--stats-json', $stats, '--wait', 90; }
    POSIX::_exit(127);
}
my $slurp = sub { open my $fh, '<', $_[0] or return ''; local $/; <$fh> // '' };
my $waiting = wait_until { $slurp->("$home/bob.out") =~ /^Waiting for a call/m } 30,
    "bob's socket";
ok($waiting, 'the desktop client waits for a call') or diag($slurp->("$home/bob.out"));

my $done = run_browser('gst.mjs', {
    BASE_URL => $s->base_url,
    SMS_LOG  => $s->data_dir . '/sms.log',
    PHONE    => $phone,
    SHOTS    => $ENV{FAMCALL_SHOTS} // '',
}, 180);

my $exited = wait_until { waitpid($pid, POSIX::WNOHANG()) == $pid } 30,
    'the client to exit';
if ($exited) {
    is($? >> 8, 0, 'the desktop client ends cleanly when the web app hangs up');
} else {
    fail('the desktop client ends when the web app hangs up');
    kill 'KILL', $pid;
    waitpid $pid, 0;
}
my $bout = $slurp->("$home/bob.out");
like($bout, qr/^Incoming video call from Alice/m, 'the client saw who called');
like($bout, qr/^Alice hung up$/m, 'and who hung up') or diag($bout);
my $st = eval { decode_json($slurp->($stats)) } // {};
cmp_ok($st->{video_frames_received} // 0, '>', 20, 'the client decoded video from the browser');
cmp_ok($st->{audio_buffers_received} // 0, '>', 50, 'and sound');
is($st->{call_id}, $done && $done->{facts}{call_id}, 'the same call on both sides');

$s->stop;
done_testing;
