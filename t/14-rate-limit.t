# Message sending limited per user by nginx (limit_req_zone keyed by
# $famcall_user_id, as in conf/examples/production.conf): sends beyond the
# burst get 429 rate_limited in the JSON envelope, are not stored, and other
# users keep their own budget (docs/api.md, issue 3).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Mojo::UserAgent;
use Famcall::Test qw(is_error body_json check_json_response new_uuid);

# Under ASan, t/asan.supp hides nginx's own PCRE2 leak (its regex location).

my $limited = Famcall::Test::_free_port();
my $BURST = 3;

# A second server in the same nginx: POSTs to .../messages limited per user
# (1 a minute and a burst of 3: the first 4 pass); reading is not limited.
my $s = Famcall::Test->new(extra_conf => <<"CONF");
map \$request_method \$famcall_send_key {
    POST     \$famcall_user_id;
    default  "";
}
limit_req_zone \$famcall_send_key zone=send:1m rate=1r/m;
server {
    listen 127.0.0.1:$limited;
    limit_req_status 429;
    error_page 429 /_famcall_error;
    location = /_famcall_error { internal; famcall_error_page; }
    location ~ ^/v1/conversations/[^/]+/messages\$ {
        limit_req zone=send burst=$BURST nodelay;
        famcall_api;
    }
    location / {
        famcall_api;
    }
}
CONF

my $base = "http://127.0.0.1:$limited";
my $ua = Mojo::UserAgent->new(request_timeout => 10);

sub send_via {
    my ($user, $conv, $body, $cid) = @_;
    return $ua->post("$base/v1/conversations/$conv/messages"
                     => { Authorization => "Bearer $user->{access_token}" }
                     => json => { client_id => $cid // new_uuid(), body => $body });
}

my ($ann, $bob, $cyd) = ($s->signup, $s->signup, $s->signup);
$s->befriend($ann, $bob);
$s->befriend($cyd, $bob);
my $conv = $s->open_conversation($ann, $bob)->{id};
my $conv_yb = $s->open_conversation($cyd, $bob)->{id};

subtest 'sends beyond the burst: 429 rate_limited, not stored' => sub {
    for my $i (1 .. $BURST + 1) {
        my $tx = send_via($ann, $conv, "ok $i");
        is($tx->res->code, 201, "ann's send $i passes") or diag($tx->res->body);
    }
    my @limited_cids;
    for my $i (1 .. 3) {
        my $id = new_uuid();
        push @limited_cids, $id;
        my $tx = send_via($ann, $conv, "too many $i", $id);
        is_error($tx, 429, 'rate_limited');
        check_json_response($tx, {});
        is($tx->res->headers->cache_control, 'no-store', 'Cache-Control: no-store');
    }
    is($s->psql("select count(*) from messages where conversation_id = '$conv'"), $BURST + 1,
       'only the sends that passed are stored');
    my $in = join ',', map { "'$_'" } @limited_cids;
    is($s->psql("select count(*) from messages where client_id in ($in)"), 0,
       'no limited client_id was stored');
    is_deeply([ map { $_->{body} } @{ (body_json($ua->get("$base/v1/conversations/$conv/messages"
                                       => { Authorization => "Bearer $ann->{access_token}" }))
                                      // {})->{messages} // [] } ],
              [ map { "ok $_" } 1 .. $BURST + 1 ],
              'reading is not limited, and shows the stored messages only');
    is($s->psql("select last_seq from conversations where id = '$conv'"), $BURST + 1,
       'no seq was taken by a limited send');
};

subtest 'other users keep their own budget' => sub {
    my $tx = send_via($bob, $conv, 'bob answers');
    is($tx->res->code, 201, 'bob, in the same conversation: 201') or diag($tx->res->body);
    is((body_json($tx) // {})->{seq}, $BURST + 2, 'seq right after the stored ones');
    $tx = send_via($cyd, $conv_yb, 'cyd writes');
    is($tx->res->code, 201, 'a third user: 201') or diag($tx->res->body);
    is_error(send_via($ann, $conv, 'still too many'), 429, 'rate_limited');
    note('ann is still limited');
};

subtest 'the main server is not limited' => sub {
    my $tx = $s->send_message($ann, $conv, 'via the main server');
    is($tx->res->code, 201, 'ann sends through the unlimited server') or diag($tx->res->body);
};

$s->stop;
done_testing;
