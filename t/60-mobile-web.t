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
use Test::More;
use Famcall::Test;
use Famcall::Mobile qw(web_build web_stack run_browser);

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $dist = web_build();
my ($bundle) = glob "$dist/_expo/static/js/web/*.js";
ok($bundle && -s $bundle, 'the web bundle is there');
my $js = do { local (@ARGV, $/) = $bundle; <> } // '';
unlike($js, qr/WebRTCModule/, 'the web bundle has the browser shim, not react-native-webrtc');
like($js, qr/__famcallCall/, 'the web bundle exposes the call for the browser test');

my $s = web_stack($dist, turn => 1);
my $done = run_browser('web.mjs', {
    BASE_URL => $s->base_url,
    SMS_LOG  => $s->data_dir . '/sms.log',
    SHOTS    => $ENV{FAMCALL_SHOTS}
                // tempdir('famcall-shots-XXXX', DIR => '/tmp', CLEANUP => 1),
}, 300);

# What the server kept.
my $f = $done ? $done->{facts} : {};
SKIP: {
    skip 'the browser run did not get far enough', 8 unless $f->{call_id};
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
    is($s->psql("select count(*) from users where phone = '$f->{phone_c}'"), 0,
       "carol's account is gone");
}

$s->stop;
done_testing;
