# The mobile app's web build, served by the stack's own nginx beside the
# API, driven in headless Chromium (playwright-core, Debian's chromium,
# fake camera and microphone) as two people would use it: sign in by phone,
# find each other, chat both ways live, a video call whose frames are
# counted from WebRTC's statistics on both sides, a missed call; then what
# the server kept of it. The browser's part is mobile/e2e/web.mjs; each of
# its steps is a test here. FAMCALL_SHOTS=<dir> keeps its screenshots.
use strict;
use warnings;
use lib 't/lib';

use File::Temp qw(tempdir);
use Mojo::JSON qw(decode_json);
use Test::More;
use Famcall::Test;

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $repo   = Famcall::Test::repo_dir();
my $mobile = "$repo/mobile";

ok(-d "$mobile/node_modules/expo", 'mobile/node_modules is installed')
    or BAIL_OUT('run `make deps` first (npm ci in mobile/)');
ok(-x '/usr/bin/chromium', 'Debian chromium is installed')
    or BAIL_OUT('run `make deps` first (chromium)');

# The web build, as `expo export` makes it for a deployment.
my $dist = tempdir('famcall-web-XXXX', DIR => '/tmp', CLEANUP => 1);
chmod 0755, $dist;
my $log = `cd '$mobile' && CI=1 npx expo export --platform web --output-dir '$dist' 2>&1`;
is($?, 0, 'expo export --platform web') or diag($log);
my ($bundle) = glob "$dist/_expo/static/js/web/*.js";
ok($bundle && -s $bundle, 'the web bundle is there');
my $js = do { local (@ARGV, $/) = $bundle; <> } // '';
unlike($js, qr/WebRTCModule/, 'the web bundle has the browser shim, not react-native-webrtc');
like($js, qr/__famcallCall/, 'the web bundle exposes the call for the browser test');

# nginx serves the app and the API from one origin, as a deployment would:
# no CORS, and the socket on the same host.
my $s = Famcall::Test->new(
    turn      => 1,
    conf_edit => sub {
        s{location / \{\s*famcall_api;\s*\}}{
        location /v1/ { famcall_api; }
        location = /healthz { famcall_api; }
        location / {
            types { text/html html; application/javascript js; text/css css;
                    image/png png; application/json json; }
            root $dist;
            try_files \$uri /index.html;
        }}s;
    },
);

my $shots = $ENV{FAMCALL_SHOTS} // tempdir('famcall-shots-XXXX', DIR => '/tmp', CLEANUP => 1);
local $ENV{BASE_URL} = $s->base_url;
local $ENV{SMS_LOG}  = $s->data_dir . '/sms.log';
local $ENV{SHOTS}    = $shots;

my (@logs, $done);
sub tail_logs { join "\n", @logs > 30 ? @logs[-30 .. -1] : @logs }
my $pid = open(my $fh, '-|', 'node', "$mobile/e2e/web.mjs") // die "node: $!";
{
    local $SIG{ALRM} = sub { kill 'TERM', $pid; die "e2e timed out\n" };
    alarm 300;
    eval {
        while (my $line = <$fh>) {
            my $ev = eval { decode_json($line) };
            if (!$ev) { push @logs, $line; next }
            if (exists $ev->{step}) {
                ok($ev->{ok}, $ev->{step})
                    or diag(($ev->{info} // '') . "\n" . tail_logs());
                note("$ev->{step}: $ev->{ms} ms");
            } elsif ($ev->{done}) {
                $done = $ev;
            } elsif ($ev->{log}) {
                push @logs, $ev->{log};
            }
        }
        1;
    } or fail("the browser run: $@");
    alarm 0;
}
close $fh;
ok($done, 'the browser run finished') or diag(tail_logs());
is($done && $done->{failed}, 0, 'no browser step failed');

# What the server kept.
my $f = $done ? $done->{facts} : {};
SKIP: {
    skip 'the browser run did not get far enough', 7 unless $f->{call_id};
    my ($a, $b) = map { $s->psql("select id from users where phone = '$_'") }
                  @$f{qw(phone_a phone_b)};
    like($a, Famcall::Test::uuid_re(), 'alice has an account by phone');
    is($s->psql("select display_name || ' ' || coalesce(username, '') from users where id = '$b'"),
       "Bob $f->{username_b}", 'bob has the name and username he gave');
    is($s->psql("select status from contacts where user_id = '$a' and contact_id = '$b'"),
       'accepted', 'they are contacts');
    is($s->psql("select string_agg(body || ':' || (read_at is not null)::text, '|' order by seq)
                 from messages"),
       'Hello Bob, it is Alice:true|Hi Alice:true', 'both messages stored, both read');
    is($s->psql("select status || ' ' || end_reason || ' ' || (answered_at is not null)::text
                 from calls where id = '$f->{call_id}'"),
       'ended hangup true', 'the video call was answered and ended by a hang-up');
    is($s->psql("select count(*) from call_stats where call_id = '$f->{call_id}'
                   and bitrate_in > 0 and local_type is not null
                   and setup_first_frame_ms is not null"),
       2, 'both sides reported the call quality (pair, bitrates, time to first frame)');
    is($s->psql("select status from calls where id <> '$f->{call_id}'"),
       'cancelled', 'the second call is cancelled (bob missed it)');
}

$s->stop;
done_testing;
