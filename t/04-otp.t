# Phone sign-in with one-time codes: POST /v1/auth/otp/request and
# /v1/auth/otp/verify; codes come from the `log` driver ($data/sms.log).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases check_json_response body_json is_error check_user uuid_re
                     wait_until);

# Main stack: at most 2 sends per phone per 10 min; the IP limit out of the way.
my $s = Famcall::Test->new(extra_conf => <<'CONF');
famcall_otp_limit_phone 2 10m;
famcall_otp_limit_ip 1000 1h;
CONF

my $n = 0;
sub phone { sprintf '+1555%07d', ++$n }    # E.164, unique in this file

sub request { $_[0]->json_req(POST => '/v1/auth/otp/request', { phone => $_[1] }) }
sub verify {
    my ($s, $phone, $code, %more) = @_;
    # "$code": a string that took part in arithmetic would go out as a JSON number.
    return $s->json_req(POST => '/v1/auth/otp/verify',
                        { phone => $phone, code => "$code", %more });
}
# A 6-digit code that is not $code.
sub other_code { sprintf '%06d', ($_[0] + 1) % 1_000_000 }

#--------------------------------------------------------------------------
# New user, then the same user again
#--------------------------------------------------------------------------

my $p1 = phone();
my $user_id;
subtest 'request, verify, new user' => sub {
    my $tx = request($s, $p1);
    is($tx->res->code, 202, 'request: 202') or return diag($tx->res->body);
    check_json_response($tx, {});
    is(body_json($tx)->{expires_in}, 300, 'expires_in: 5m default');

    my $code = $s->sms_code($p1);
    like($code // '', qr/^\d{6}$/, "a 6-digit code in sms.log") or return;

    # No account yet and no display_name: 422, the code is kept.
    is_error(verify($s, $p1, $code), 422, 'missing_field', 'display_name');
    is_error(verify($s, $p1, $code, display_name => ''), 422, 'invalid_field', 'display_name');

    $tx = verify($s, $p1, $code, display_name => '  Phone User ');
    is($tx->res->code, 200, 'verify with display_name: 200') or return diag($tx->res->body);
    my $j = body_json($tx);
    is($j->{new_user}, 1, 'new_user true');
    ok(ref $j->{new_user} && $j->{new_user} eq '1', 'new_user is a JSON boolean');
    like($j->{access_token} // '', qr/^[\w-]+\.[\w-]+\.[\w-]+$/, 'access_token');
    like($j->{refresh_token} // '', qr/^[A-Za-z0-9_-]{43}$/, 'refresh_token');
    is($j->{token_type}, 'Bearer', 'token_type');
    check_user($j->{user});
    is($j->{user}{phone}, $p1, 'phone');
    is($j->{user}{display_name}, 'Phone User', 'display_name trimmed');
    is($j->{user}{email}, undef, 'no email');
    $user_id = $j->{user}{id};

    $s->t->get_ok('/v1/me', { Authorization => "Bearer $j->{access_token}" })
         ->status_is(200)->json_is('/id' => $user_id)->json_is('/phone' => $p1);

    is_error(verify($s, $p1, $code, display_name => 'Again'), 401, 'code_expired');
};

subtest 'the same phone signs in again' => sub {
    is(request($s, $p1)->res->code, 202, 'request: 202');
    my $code = $s->sms_code($p1);
    my $tx = verify($s, $p1, $code);    # no display_name needed now
    is($tx->res->code, 200, 'verify: 200') or return diag($tx->res->body);
    my $j = body_json($tx);
    ok(defined $j->{new_user} && !$j->{new_user}, 'new_user false');
    is($j->{user}{id}, $user_id, 'same user id');
    is($j->{user}{display_name}, 'Phone User', 'display_name unchanged');
};

#--------------------------------------------------------------------------
# Wrong codes
#--------------------------------------------------------------------------

subtest 'wrong code, then too many attempts' => sub {
    my $p = phone();
    is(request($s, $p)->res->code, 202, 'request');
    my $code = $s->sms_code($p);
    for my $left (reverse 1 .. 4) {
        my $tx = verify($s, $p, other_code($code), display_name => 'X');
        is_error($tx, 401, 'invalid_code');
        is(eval { body_json($tx)->{error}{attempts_left} }, $left, "attempts_left $left");
    }
    # The 5th wrong try kills the code (answered as the last invalid_code or
    # already as too_many_attempts).
    my $tx = verify($s, $p, other_code($code), display_name => 'X');
    my $j = body_json($tx) // {};
    ok(($tx->res->code == 401 && ($j->{error}{code} // '') eq 'invalid_code'
                              && ($j->{error}{attempts_left} // -1) == 0)
       || ($tx->res->code == 429 && ($j->{error}{code} // '') eq 'too_many_attempts'),
       '5th wrong try: invalid_code with attempts_left 0, or too_many_attempts')
        or diag($tx->res->code . ' ' . $tx->res->body);

    is_error(verify($s, $p, $code, display_name => 'X'), 429, 'too_many_attempts');

    # A new code works.
    is(request($s, $p)->res->code, 202, 'new request');
    my $code2 = $s->sms_code($p);
    is(verify($s, $p, $code2, display_name => 'X')->res->code, 200, 'new code: 200');
};

subtest 'a new request kills the earlier code' => sub {
    my $p = phone();
    is(request($s, $p)->res->code, 202, 'first request');
    my $c1 = $s->sms_code($p);
    is(request($s, $p)->res->code, 202, 'second request');
    is($s->sms_count($p), 2, 'two codes sent');
    my $c2 = $s->sms_code($p);
    if ($c1 ne $c2) {
        is_error(verify($s, $p, $c1, display_name => 'X'), 401, 'invalid_code');
    }
    is(verify($s, $p, $c2, display_name => 'X')->res->code, 200, 'the newest code works');
};

is_error(verify($s, phone(), '123456', display_name => 'X'), 401, 'code_expired');

#--------------------------------------------------------------------------
# Send limit per phone (2 per 10m here)
#--------------------------------------------------------------------------

subtest 'rate limit per phone' => sub {
    my $p = phone();
    is(request($s, $p)->res->code, 202, 'send 1');
    is(request($s, $p)->res->code, 202, 'send 2');
    my $code = $s->sms_code($p);
    my $tx = request($s, $p);
    is($tx->res->code, 429, 'send 3: 429') or return diag($tx->res->body);
    check_json_response($tx, { code => 'rate_limited' });
    my $ra = $tx->res->headers->header('Retry-After') // '';
    like($ra, qr/^\d+$/, 'Retry-After is delay-seconds');
    cmp_ok($ra, '>=', 1, 'Retry-After >= 1');
    cmp_ok($ra, '<=', 600, 'Retry-After <= the 10m window');
    my $body_ra = eval { body_json($tx)->{error}{retry_after} };
    like($body_ra // '', qr/^\d+$/, 'error.retry_after is an integer');
    ok(defined $body_ra && abs($body_ra - $ra) <= 1, 'error.retry_after matches Retry-After');
    is($s->sms_count($p), 2, 'no third code sent');

    is(request($s, phone())->res->code, 202, 'another phone is not limited');
    is(verify($s, $p, $code, display_name => 'X')->res->code, 200,
       'the live code still works after a refused request');
};

#--------------------------------------------------------------------------
# Input validation
#--------------------------------------------------------------------------

run_cases($s, [
    { name => 'shortest E.164 (7 digits) is accepted', method => 'POST',
      path => '/v1/auth/otp/request', body => { phone => '+1234567' }, status => 202 },
    { name => 'longest E.164 (15 digits) is accepted', method => 'POST',
      path => '/v1/auth/otp/request', body => { phone => '+123456789012345' }, status => 202 },
    (map {
        { name => "request: phone $_->[0]", method => 'POST', path => '/v1/auth/otp/request',
          body => { phone => $_->[1] }, status => 422, code => 'invalid_field', field => 'phone' },
        { name => "verify: phone $_->[0]", method => 'POST', path => '/v1/auth/otp/verify',
          body => { phone => $_->[1], code => '123456', display_name => 'X' },
          status => 422, code => 'invalid_field', field => 'phone' }
    } (
        [ 'empty',                '' ],
        [ 'without +',            '15551234567' ],
        [ 'leading 0',            '+05551234567' ],
        [ 'of 6 digits',          '+123456' ],
        [ 'of 16 digits',         '+1234567890123456' ],
        [ 'with spaces',          '+1 555 123 4567' ],
        [ 'with dashes',          '+1-555-123-4567' ],
        [ 'with letters',         '+1555CALLNOW' ],
        [ 'with a trailing newline', "+15551234567\n" ],
        [ 'a number',             15551234567 ],
    )),
    { name => 'request: phone missing', method => 'POST', path => '/v1/auth/otp/request',
      body => {}, status => 422, code => 'missing_field', field => 'phone' },
    { name => 'verify: phone missing', method => 'POST', path => '/v1/auth/otp/verify',
      body => { code => '123456' }, status => 422, code => 'missing_field', field => 'phone' },
    { name => 'verify: code missing', method => 'POST', path => '/v1/auth/otp/verify',
      body => { phone => '+15559999999' }, status => 422, code => 'missing_field', field => 'code' },
    (map {
        { name => "verify: code $_->[0]", method => 'POST', path => '/v1/auth/otp/verify',
          body => { phone => '+15559999999', code => $_->[1], display_name => 'X' },
          status => 422, code => 'invalid_field', field => 'code' }
    } (
        [ 'of 5 digits',  '12345' ],
        [ 'of 7 digits',  '1234567' ],
        [ 'with a letter', '12a456' ],
        [ 'with a space',  '123 456' ],
        [ 'a number',      123456 ],
        [ 'empty',         '' ],
    )),
]);

#--------------------------------------------------------------------------
# Expiry and the per-IP limit: a second stack (1s codes, 3 sends per IP)
#--------------------------------------------------------------------------

my $s2 = Famcall::Test->new(extra_conf => <<'CONF');
famcall_otp_ttl 1s;
famcall_otp_limit_ip 3 1h;
CONF

subtest 'an expired code is refused' => sub {
    my $p = phone();
    my $tx = request($s2, $p);
    is($tx->res->code, 202, 'request: 202') or return diag($tx->res->body);
    is(body_json($tx)->{expires_in}, 1, 'expires_in 1');
    my $code = $s2->sms_code($p);
    # the database's clock decides (expires_at <= now()): wait until it has
    # passed the code's expiry, then try the right code
    my $row = "from otp_codes where phone = '$p'";
    is($s2->psql("select expires_at - created_at = interval '1 s' $row"), 't',
       'stored to expire 1 s after it was made');
    my $expired = wait_until { $s2->psql("select count(*) $row and expires_at <= now()") }
                             10, 'the code past its expiry';
    ok($expired, 'the code expires by the database clock');
    is_error(verify($s2, $p, $code, display_name => 'X'), 401, 'code_expired');
};

subtest 'rate limit per IP' => sub {
    # One send above happened already from 127.0.0.1.
    is(request($s2, phone())->res->code, 202, 'send 2 (another phone)');
    is(request($s2, phone())->res->code, 202, 'send 3 (another phone)');
    my $p = phone();
    my $tx = request($s2, $p);
    is($tx->res->code, 429, 'send 4: 429') or return diag($tx->res->body);
    check_json_response($tx, { code => 'rate_limited' });
    like($tx->res->headers->header('Retry-After') // '', qr/^[1-9]\d*$/, 'Retry-After');
    like(eval { body_json($tx)->{error}{retry_after} } // '', qr/^[1-9]\d*$/,
         'error.retry_after');
    is($s2->sms_count($p), 0, 'no code sent');
};

$s2->stop;
$s->stop;
done_testing;
