# Access tokens (JWT HS256, alg pinned) and refresh tokens (rotation, grace
# window, reuse detection, logout).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases check_json_response body_json is_error
                     jwt_sign jwt_parts b64url unb64url uniq);
use Mojo::JSON qw(encode_json);

my $s = Famcall::Test->new;
my $key = $s->jwt_key;
my $alice = $s->signup;
my $bob   = $s->signup;
my ($hdr, $claims, $payload_json, $sig) = jwt_parts($alice->{access_token});

sub me { my ($s, $tok, $hdrs) = @_; $s->json_req(GET => '/v1/me', undef, $tok, $hdrs) }

# 401 unauthorized with the Bearer challenge.
sub refused {
    my ($tx, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest "refused: $name" => sub {
        is($tx->res->code, 401, 'status 401');
        check_json_response($tx, { code => 'unauthorized' });
        like($tx->res->headers->www_authenticate // '', qr/^Bearer\b/,
             'WWW-Authenticate: Bearer');
    };
}

#--------------------------------------------------------------------------
# Controls: what a valid token looks like, and that we can mint one.
#--------------------------------------------------------------------------

subtest 'the issued token' => sub {
    is($hdr->{alg}, 'HS256', 'alg HS256');
    is($claims->{iss}, 'famcall', 'iss');
    is($claims->{sub}, $alice->{user}{id}, 'sub');
    ok($claims->{exp} > time, 'exp in the future');
    is(me($s, $alice->{access_token})->res->code, 200, 'accepted');
};

subtest 'a token minted here with the key from jwt.key is accepted' => sub {
    # Positive control for everything below: the key is the text of jwt.key
    # and our HS256 signing matches the module's.
    my ($h64, $p64) = split /\./, $alice->{access_token};
    is(jwt_sign(unb64url($h64), unb64url($p64), $key), $alice->{access_token},
       'same bytes re-signed: identical token');
    my $tok = jwt_sign({ alg => 'HS256', typ => 'JWT' },
                       { %$claims, exp => time + 120 }, $key);
    is(me($s, $tok)->res->code, 200, 'our own HS256 token with another exp: 200');
};

#--------------------------------------------------------------------------
# Refused access tokens
#--------------------------------------------------------------------------

my %good = (%$claims, iat => time - 10, exp => time + 600);
my $H256 = { alg => 'HS256', typ => 'JWT' };

{
    my ($h, $p, $sg) = split /\./, $alice->{access_token};

    # Payload changed (sub = bob), signature kept.
    my $p2 = b64url(encode_json({ %$claims, sub => $bob->{user}{id} }));
    refused(me($s, "$h.$p2.$sg"), 'tampered payload');

    # Signature changed in its first character (so the decoded bytes differ;
    # the last character of 43 carries only 4 bits).
    my $sg2 = (substr($sg, 0, 1) eq 'A' ? 'Q' : 'A') . substr($sg, 1);
    refused(me($s, "$h.$p.$sg2"), 'tampered signature');

    refused(me($s, "$h.$p."), 'signature removed');
}

refused(me($s, jwt_sign({ alg => 'none', typ => 'JWT' }, \%good, '')), 'alg none');
refused(me($s, jwt_sign({ alg => 'None', typ => 'JWT' }, \%good, '')), 'alg None');
{
    # alg none but carrying a real HS256 signature of the same input.
    my $h = b64url(encode_json({ alg => 'none', typ => 'JWT' }));
    my $p = b64url(encode_json(\%good));
    my $sg = (split /\./, jwt_sign({ alg => 'HS256', typ => 'JWT' }, \%good, $key))[2];
    refused(me($s, "$h.$p.$sg"), 'alg none with a signature');
}
refused(me($s, jwt_sign($H256, \%good, 'f' x 64)), 'signed with another key');
refused(me($s, jwt_sign({ alg => 'HS512', typ => 'JWT' }, \%good, $key)),
        'HS512 with the right key (alg pinned)');
refused(me($s, jwt_sign($H256, { %good, iat => time - 1000, exp => time - 60 }, $key)),
        'expired');
{
    my %c = %good; delete $c{exp};
    refused(me($s, jwt_sign($H256, \%c, $key)), 'no exp');
    %c = %good; delete $c{sub};
    refused(me($s, jwt_sign($H256, \%c, $key)), 'no sub');
    %c = %good; delete $c{iss};
    refused(me($s, jwt_sign($H256, \%c, $key)), 'no iss');
}
refused(me($s, jwt_sign($H256, { %good, iss => 'evil' }, $key)), 'wrong iss');
refused(me($s, jwt_sign($H256, { %good, sub => '00000000-0000-4000-8000-000000000000' }, $key)),
        'sub of no user');
refused(me($s, jwt_sign($H256, { %good, exp => "" . (time + 600) }, $key)),
        'exp a string');

refused(me($s, undef), 'no Authorization');
refused(me($s, undef, { Authorization => $alice->{access_token} }), 'token without Bearer');
refused(me($s, undef, { Authorization => "Token $alice->{access_token}" }), 'Token scheme');
refused(me($s, undef, { Authorization => "Basic " . MIME::Base64::encode_base64('a:b', '') }),
        'Basic credentials');
refused(me($s, undef, { Authorization => 'Bearer ' }), 'Bearer and nothing');
refused(me($s, 'abc'), 'not a JWT');
refused(me($s, 'a.b'), 'two parts');
refused(me($s, 'a.b.c'), 'three garbage parts');
refused(me($s, b64url('not json') . '.' . b64url('{}') . '.' . b64url('x' x 32)), 'header not JSON');
refused(me($s, "$alice->{access_token}x"), 'junk appended');

#--------------------------------------------------------------------------
# Refresh: rotation and the grace window (default 10s)
#--------------------------------------------------------------------------

sub refresh { $_[0]->json_req(POST => '/v1/auth/refresh', { refresh_token => $_[1] }) }

subtest 'rotation' => sub {
    my $u = $s->signup;
    my $tx = refresh($s, $u->{refresh_token});
    is($tx->res->code, 200, 'refresh: 200') or return diag($tx->res->body);
    my $n = body_json($tx);
    like($n->{refresh_token} // '', qr/^[A-Za-z0-9_-]{43}$/, 'new refresh token');
    isnt($n->{refresh_token}, $u->{refresh_token}, 'it differs from the old one');
    is($n->{token_type}, 'Bearer', 'token_type');
    is($n->{expires_in}, 900, 'expires_in');
    is_deeply($n->{user}, $u->{user}, 'user');
    my (undef, $c0) = jwt_parts($u->{access_token});
    my (undef, $c1) = jwt_parts($n->{access_token});
    is($c1->{sid}, $c0->{sid}, 'same family (sid)');
    is(me($s, $n->{access_token})->res->code, 200, 'new access token works');

    # Within the grace window the spent token works once more (a client that
    # lost the response), then no more.
    my $again = refresh($s, $u->{refresh_token});
    is($again->res->code, 200, 'spent token within grace: 200 once')
        or diag($again->res->body);
    my $third = refresh($s, $u->{refresh_token});
    is($third->res->code, 401, 'spent token a third time: 401');
    like(eval { body_json($third)->{error}{code} } // '',
         qr/^(?:refresh_token_reused|invalid_refresh_token)$/, 'refused as reused or invalid');
};

#--------------------------------------------------------------------------
# Logout
#--------------------------------------------------------------------------

subtest 'logout revokes' => sub {
    my $u = $s->signup;
    my $tx = $s->json_req(POST => '/v1/auth/logout', { refresh_token => $u->{refresh_token} });
    is($tx->res->code, 204, 'logout: 204');
    is($tx->res->body, '', 'no body');
    is_error(refresh($s, $u->{refresh_token}), 401, 'invalid_refresh_token');
    $tx = $s->json_req(POST => '/v1/auth/logout', { refresh_token => $u->{refresh_token} });
    is($tx->res->code, 204, 'logout again: 204');
};

subtest 'logout of the newest token ends the family' => sub {
    my $u = $s->signup;
    my $n = body_json(refresh($s, $u->{refresh_token}));
    my $tx = $s->json_req(POST => '/v1/auth/logout', { refresh_token => $n->{refresh_token} });
    is($tx->res->code, 204, 'logout: 204');
    is(refresh($s, $n->{refresh_token})->res->code, 401, 'newest token refused');
    is(refresh($s, $u->{refresh_token})->res->code, 401, 'the old one (in grace) refused too');
};

my $random = b64url(join '', map { chr int rand 256 } 1 .. 32);
run_cases($s, [
    { name => 'logout with an unknown token is 204', method => 'POST',
      path => '/v1/auth/logout', body => { refresh_token => $random }, status => 204 },
    { name => 'refresh with an unknown token is 401', method => 'POST',
      path => '/v1/auth/refresh', body => { refresh_token => $random },
      status => 401, code => 'invalid_refresh_token' },
    (map {
        my $route = $_;
        (
          { name => "$route: token too short", method => 'POST', path => "/v1/auth/$route",
            body => { refresh_token => 'abc' },
            status => 422, code => 'invalid_field', field => 'refresh_token' },
          { name => "$route: token of 44", method => 'POST', path => "/v1/auth/$route",
            body => { refresh_token => "${random}A" },
            status => 422, code => 'invalid_field', field => 'refresh_token' },
          { name => "$route: standard base64 (+/)", method => 'POST', path => "/v1/auth/$route",
            body => { refresh_token => '+/' . substr($random, 2) },
            status => 422, code => 'invalid_field', field => 'refresh_token' },
          { name => "$route: a number", method => 'POST', path => "/v1/auth/$route",
            body => { refresh_token => 42 },
            status => 422, code => 'invalid_field', field => 'refresh_token' },
          { name => "$route: missing", method => 'POST', path => "/v1/auth/$route",
            body => {}, status => 422, code => 'missing_field', field => 'refresh_token' },
        )
    } qw(refresh logout)),
]);

#--------------------------------------------------------------------------
# Reuse detection: a second stack with famcall_refresh_grace 0s
#--------------------------------------------------------------------------

my $s0 = Famcall::Test->new(extra_conf => 'famcall_refresh_grace 0s;');

subtest 'reuse of a spent token revokes the family (grace 0s)' => sub {
    my $u = $s0->signup;
    my $other = body_json($s0->json_req(POST => '/v1/auth/login',
                          { email => $u->{email}, password => $u->{password} }));
    my $tx = refresh($s0, $u->{refresh_token});
    is($tx->res->code, 200, 'first refresh: 200') or return diag($tx->res->body);
    my $n = body_json($tx);

    is_error(refresh($s0, $u->{refresh_token}), 401, 'refresh_token_reused');
    is_error(refresh($s0, $n->{refresh_token}), 401, 'invalid_refresh_token')
        or diag('the newest token of a revoked family must be refused');

    my $o = refresh($s0, $other->{refresh_token});
    is($o->res->code, 200, 'another family of the same user is untouched');
};

$s0->stop;
$s->stop;
done_testing;
