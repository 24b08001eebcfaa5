# The privacy policy and terms (issue 25): the operator's directives,
# GET /v1/legal, the version recorded at sign-up (email and phone), GET
# /v1/me saying when a newer version must be accepted, POST /v1/me/legal.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases body_json is_error check_user);

my $LEGAL = <<'CONF';
famcall_legal_privacy_url https://famcall.test/privacy;
famcall_legal_terms_url https://famcall.test/terms;
CONF

my $s = Famcall::Test->new(extra_conf => $LEGAL . "famcall_legal_version 2026-01;\n"
                                          . "famcall_otp_limit_ip 1000 1h;\n");

sub me { body_json($s->json_req(GET => '/v1/me', undef, $_[0]{access_token})) }

subtest 'GET /v1/legal: no token needed' => sub {
    my $tx = $s->json_req(GET => '/v1/legal');
    is($tx->res->code, 200, 'status 200');
    is_deeply(body_json($tx), { privacy_url => 'https://famcall.test/privacy',
                                terms_url => 'https://famcall.test/terms',
                                version => '2026-01' }, 'the directives');
};

my $u = $s->signup;
subtest 'sign-up records the version; GET /v1/me says it is current' => sub {
    my $me = me($u);
    is($me->{legal}{accepted_version}, '2026-01', 'accepted_version');
    like($me->{legal}{accepted_at} // '', qr/Z$/, 'accepted_at');
    is($me->{legal}{current_version}, '2026-01', 'current_version');
    ok(!$me->{legal}{accept_required}, 'nothing to accept');
    delete $me->{legal};
    check_user($me, 'the rest of /v1/me');

    my $p = '+19990000001';
    $s->json_req(POST => '/v1/auth/otp/request', { phone => $p });
    my $code = $s->sms_code($p);
    my $ph = body_json($s->json_req(POST => '/v1/auth/otp/verify',
                                    { phone => $p, code => "$code", display_name => 'Ph' }));
    is(me($ph)->{legal}{accepted_version}, '2026-01', 'a phone sign-up records it too');
};

subtest 'a new version: GET /v1/me asks, POST /v1/me/legal accepts' => sub {
    $s->nginx_reload(extra_conf => $LEGAL . "famcall_legal_version 2026-06;\n");
    is(body_json($s->json_req(GET => '/v1/legal'))->{version}, '2026-06', 'the new version');
    my $me = me($u);
    is($me->{legal}{accepted_version}, '2026-01', 'the user accepted the old one');
    is($me->{legal}{current_version}, '2026-06', 'the current one');
    ok($me->{legal}{accept_required}, 'accept_required');

    run_cases($s, [
        { method => 'POST', path => '/v1/me/legal', body => { version => '2026-06' },
          status => 401, code => 'unauthorized' },
        { method => 'POST', path => '/v1/me/legal', body => {}, token => $u->{access_token},
          status => 422, code => 'missing_field', field => 'version' },
        { method => 'POST', path => '/v1/me/legal', body => { version => 7 },
          token => $u->{access_token}, status => 422, code => 'invalid_field', field => 'version' },
        { method => 'POST', path => '/v1/me/legal', body => { version => 'x' x 65 },
          token => $u->{access_token}, status => 422, code => 'invalid_field', field => 'version' },
        { name => 'an old version is not the one to accept',
          method => 'POST', path => '/v1/me/legal', body => { version => '2026-01' },
          token => $u->{access_token}, status => 409, code => 'version_mismatch',
          field => 'version' },
    ]);
    ok(me($u)->{legal}{accept_required}, 'still to accept');

    my $tx = $s->json_req(POST => '/v1/me/legal', { version => '2026-06' }, $u->{access_token});
    is($tx->res->code, 200, 'status 200');
    is(body_json($tx)->{accepted_version}, '2026-06', 'accepted');
    $me = me($u);
    is($me->{legal}{accepted_version}, '2026-06', 'GET /v1/me: the new one');
    ok(!$me->{legal}{accept_required}, 'nothing more to accept');
};

subtest 'no version configured: GET /v1/legal says null, /v1/me has no "legal"' => sub {
    $s->nginx_reload(extra_conf => '');
    is_deeply(body_json($s->json_req(GET => '/v1/legal')),
              { privacy_url => undef, terms_url => undef, version => undef }, 'nulls');
    my $me = me($u);
    ok(!exists $me->{legal}, 'no legal key');
    check_user($me);
    is_error($s->json_req(POST => '/v1/me/legal', { version => '2026-06' }, $u->{access_token}),
             409, 'version_mismatch');
};

$s->stop;
done_testing;
