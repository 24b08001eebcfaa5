# Socket events as a table of handlers (issue 18): every event the gateway
# registers reaches its own handler through the table, an unregistered one
# is unknown_type, and error_log at debug tells a socket's story (the
# event dispatched, the socket's state changes).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Famcall::Test qw(new_uuid);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 1, log_level => 'debug');
my $log = $s->data_dir . '/log/nginx-error.log';

my ($a, $b) = map { $s->signup } 1 .. 2;
$s->befriend($a, $b);
my $conv = $s->open_conversation($a, $b)->{id};

sub log_text { open my $f, '<', $log or return ''; local $/; my $t = <$f>; $t }

# poll the error log for $re until a deadline
sub log_has {
    my ($re, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        return 1 if log_text() =~ $re;
        return 0 if time >= $deadline;
        select undef, undef, undef, 0.05;
    }
}

my $ws = Famcall::WS->open($s, $a->{access_token});
ok($ws, 'a socket');

subtest 'each registered event reaches its handler' => sub {
    my %data = (
        'message:send'      => { conversation_id => $conv, client_id => new_uuid(), body => 'hi' },
        'message:delivered' => { conversation_id => $conv, up_to_seq => 1 },
        'message:read'      => { conversation_id => $conv, up_to_seq => 1 },
        'typing'            => { conversation_id => $conv, state => 'start' },
        'sync'              => {},
        'auth'              => { access_token => $a->{access_token} },
    );
    for my $type (sort keys %data) {
        my $r = $ws->request($type, $data{$type});
        is($r->{type}, 'ack', "$type: acked") or diag explain $r;
        ok(log_has(qr/famcall ws: event "\Q$type\E"/), "$type: dispatched through the table");
    }
};

subtest 'an event nobody registered' => sub {
    my $r = $ws->request('pager:page', { to => $b->{user}{id} });
    is($r->{type}, 'error', 'refused');
    is($r->{error}{code}, 'unknown_type', 'unknown_type');
    my $r2 = $ws->request('call:invite2', { candidate => 'x' });
    is($r2->{error}{code}, 'unknown_type', 'a name next to a registered one');
};

subtest 'the socket says what happens to it at debug level' => sub {
    ok(log_has(qr/famcall ws: handshake/), 'handshake');
    ok(log_has(qr/famcall ws: taken over/), 'taken over');
    $ws->close;
    ok(log_has(qr/famcall ws: close received/), 'close received');
    ok(log_has(qr/famcall ws: finalize/), 'finalized');
};

# The takeover frees the request under a connection that stays open and
# gives nginx's header buffers back: it leans on nginx's internals
# (ngx_famcall_ws_free_request()), each checked as it runs.  If nginx
# changes what the takeover relies on, this fails.
subtest "the takeover's contract with nginx holds" => sub {
    my $big = Famcall::WS->open($s, $a->{access_token},
                                headers => { 'X-Pad' => 'p' x 3000 });
    ok($big, 'a handshake with 3 KB of headers, past client_header_buffer_size');
    ok(log_has(qr/famcall ws: request freed, 2 header buffers given back/),
       'the header buffer and the large one are given back');
    my $small = Famcall::WS->open($s, $a->{access_token});
    ok(log_has(qr/famcall ws: request freed, 1 header buffers given back/),
       'an ordinary handshake: its one header buffer');
    is($big->request('sync', {})->{type}, 'ack', 'the socket serves events');
    $_->close for $big, $small;
    ok(log_has(qr/famcall ws: finalized/), 'closed with ngx_http_close_connection');
    unlike(log_text(), qr/takeover contract/, 'no alert: nginx still does what the takeover relies on');
};

# The seam between the transport and the gateway: the transport reaches its
# owner only through the handler struct it is given (issue 18).
subtest 'the transport names nothing of the gateway' => sub {
    my $dir = Famcall::Test::repo_dir() . '/ngx_famcall_module/gateway';
    for my $f ('ngx_famcall_ws.h', 'ngx_famcall_ws.c') {
        open my $fh, '<', "$dir/$f" or die "$f: $!";
        my @hits = grep { /ngx_famcall_gw_|gw\.h|gw_user|gw_link/ } <$fh>;
        is(scalar @hits, 0, "$f: no gateway name") or diag @hits;
    }
};

done_testing;
