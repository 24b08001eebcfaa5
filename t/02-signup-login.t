# Email + password accounts: POST /v1/auth/signup, POST /v1/auth/login,
# GET /v1/me with the token; every kind of bad input.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases check_json_response body_json check_user
                     jwt_parts uniq uuid_re);

my $s = Famcall::Test->new;

my $JWT_RE     = qr/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
my $REFRESH_RE = qr/^[A-Za-z0-9_-]{43}$/;

# Token response shape (docs/api.md "Token response").
sub check_tokens {
    my ($j, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest "$name: token response" => sub {
        like($j->{access_token} // '', $JWT_RE, 'access_token is a JWT');
        like($j->{refresh_token} // '', $REFRESH_RE, 'refresh_token: 43 base64url chars');
        is($j->{token_type}, 'Bearer', 'token_type Bearer');
        is($j->{expires_in}, 900, 'expires_in = 15m default');
        my (undef, $claims) = eval { jwt_parts($j->{access_token}) };
        is($claims->{iss}, 'famcall', 'iss famcall');
        is($claims->{sub}, $j->{user}{id}, 'sub is the user id');
        is(($claims->{exp} // 0) - ($claims->{iat} // 0), 900, 'exp - iat = 900');
        ok(defined $claims->{sid} && length $claims->{sid}, 'sid present');
    };
}

# A valid signup body with unique email and username.
sub valid {
    my $u = uniq('s');
    return { email => "$u\@example.com", password => 'correct horse battery',
             display_name => "User $u", username => $u, @_ };
}

#--------------------------------------------------------------------------
# Success paths
#--------------------------------------------------------------------------

my $u = uniq('al');
my %alice = (
    email        => "  Alice.Smith+$u\@Example.COM ",
    password     => 'correct horse battery',
    display_name => '  Alice Smith  ',
    username     => "Al_\U$u",
);
my $signup = $s->json_req(POST => '/v1/auth/signup', \%alice);
is($signup->res->code, 201, 'signup: 201') or diag($signup->res->body);
check_json_response($signup, {});
my $a = body_json($signup) // {};
check_tokens($a, 'signup');
check_user($a->{user}, 'signup user');
is($a->{user}{email}, "alice.smith+$u\@example.com", 'email trimmed and lowercased');
is($a->{user}{username}, "al_$u", 'username lowercased');
is($a->{user}{display_name}, 'Alice Smith', 'display_name trimmed');
is($a->{user}{phone}, undef, 'phone null');
is($a->{user}{avatar_url}, undef, 'avatar_url null');

subtest 'GET /v1/me with the signup token' => sub {
    my $tx = $s->json_req(GET => '/v1/me', undef, $a->{access_token});
    is($tx->res->code, 200, 'status 200');
    check_json_response($tx, {});
    is_deeply(body_json($tx), $a->{user}, 'the same user object');
};

subtest 'login' => sub {
    my $tx = $s->json_req(POST => '/v1/auth/login',
        { email => " ALICE.SMITH+\U$u\E\@example.com", password => $alice{password} });
    is($tx->res->code, 200, '200 (email matched case-insensitively)')
        or return diag($tx->res->body);
    my $l = body_json($tx);
    check_tokens($l, 'login');
    is_deeply($l->{user}, $a->{user}, 'same user');
    isnt($l->{refresh_token}, $a->{refresh_token}, 'a new refresh token');
    my (undef, $c1) = jwt_parts($a->{access_token});
    my (undef, $c2) = jwt_parts($l->{access_token});
    isnt($c2->{sid}, $c1->{sid}, 'login starts a new refresh family (sid)');
    $s->t->get_ok('/v1/me', { Authorization => "Bearer $l->{access_token}" })
         ->status_is(200)->json_is('/id' => $a->{user}{id});
};

subtest 'unknown fields are ignored' => sub {
    my $tx = $s->json_req(POST => '/v1/auth/signup', valid(admin => \1, id => 'x'));
    is($tx->res->code, 201, 'status 201');
    my $j = body_json($tx) // {};
    check_user($j->{user});
    isnt($j->{user}{id}, 'x', 'id not taken from the request');
};

subtest 'boundary values are accepted' => sub {
    my $id = uniq('');
    my $local64 = $id . ('l' x (64 - length $id));
    my $email254 = "$id\@" . ('d' x (254 - length($id) - 1 - 4)) . '.com';
    my @ok = (
        [ 'password of 8 characters',               password => '12345678' ],
        [ 'password of 128 characters',             password => 'p' x 128 ],
        [ 'password of 8 two-byte characters',      password => 'é' x 8 ],
        [ 'password of 128 two-byte characters',    password => 'é' x 128 ],
        [ 'username of 3',                          username => 'x' . substr($id, -2) ],
        [ 'username of 32',                         username => $id . ('_' x (32 - length $id)) ],
        [ 'username with . and _',                  username => "a.b_$id" ],
        [ 'display_name of 64 characters',          display_name => 'ж' x 64 ],
        [ 'display_name with accents and emoji',    display_name => 'Zoë 🎉' ],
        [ 'email local part of 64',                 email => "$local64\@example.com" ],
        [ 'email of 254 bytes',                     email => $email254 ],
    );
    for my $c (@ok) {
        my ($name, %f) = @$c;
        my $tx = $s->json_req(POST => '/v1/auth/signup', valid(%f));
        is($tx->res->code, 201, $name) or diag($tx->res->body);
        my $user = (body_json($tx) // {})->{user} // {};
        my ($k) = keys %f;
        next if $k eq 'password';
        my $want = $k eq 'display_name' ? $f{$k} : lc $f{$k};
        ok($user->{$k} eq $want, "$name: stored as sent") if $tx->res->code == 201;
    }
};

#--------------------------------------------------------------------------
# Bad input
#--------------------------------------------------------------------------

my @signup_bad;
for my $f (qw(email password display_name username)) {
    my %b = %{ valid() };
    delete $b{$f};
    push @signup_bad,
        { name => "signup without $f", body => \%b, code => 'missing_field', field => $f },
        { name => "signup with $f null", body => valid($f => undef),
          code => 'missing_field', field => $f },
        { name => "signup with $f a number", body => valid($f => 12345678),
          code => 'invalid_field', field => $f },
        { name => "signup with $f an array", body => valid($f => ['x']),
          code => 'invalid_field', field => $f },
        { name => "signup with $f an object", body => valid($f => { a => 1 }),
          code => 'invalid_field', field => $f };
}

my @bad_emails = (
    [ 'empty',                 '' ],
    [ 'blank',                 '   ' ],
    [ 'no @',                  'alice.example.com' ],
    [ 'two @',                 'alice@@example.com' ],
    [ '@ twice apart',         'a@b@example.com' ],
    [ 'empty local part',      '@example.com' ],
    [ 'no domain',             'alice@' ],
    [ 'domain without a dot',  'alice@localhost' ],
    [ 'space inside',          'ali ce@example.com' ],
    [ 'space in domain',       'alice@exa mple.com' ],
    [ 'tab inside',            "ali\tce\@example.com" ],
    [ 'control character',     "ali\x01ce\@example.com" ],
    [ 'local part of 65',      ('l' x 65) . '@example.com' ],
    [ '255 bytes',             'a@' . ('d' x 249) . '.com' ],
);
push @signup_bad, map {
    { name => "email $_->[0]", body => valid(email => $_->[1]),
      code => 'invalid_field', field => 'email' }
} @bad_emails;

push @signup_bad, map {
    { name => "username $_->[0]", body => valid(username => $_->[1]),
      code => 'invalid_field', field => 'username' }
} (
    [ 'empty',           '' ],
    [ 'of 2',            'ab' ],
    [ 'of 33',           'a' x 33 ],
    [ 'with a dash',     'bad-name' ],
    [ 'with a space',    'bad name' ],
    [ 'with a slash',    'a/b' ],
    [ 'with an @',       'a@b' ],
    [ 'non-ASCII',       'émile' ],
    [ 'trailing space',  'name ' ],
);

push @signup_bad, map {
    { name => "password $_->[0]", body => valid(password => $_->[1]),
      code => 'invalid_field', field => 'password' }
} (
    [ 'empty',                        '' ],
    [ 'of 7',                         '1234567' ],
    [ 'of 7 two-byte characters',     'é' x 7 ],       # 14 bytes, 7 characters
    [ 'of 129',                       'p' x 129 ],
);

push @signup_bad, map {
    { name => "display_name $_->[0]", body => valid(display_name => $_->[1]),
      code => 'invalid_field', field => 'display_name' }
} (
    [ 'empty',                 '' ],
    [ 'only spaces',           '    ' ],
    [ 'of 65',                 'd' x 65 ],
    [ 'of 65 characters',      'ж' x 65 ],
    [ 'with a newline',        "two\nlines" ],
    [ 'with a control char',   "bell\x07" ],
);

run_cases($s, [ map { { method => 'POST', path => '/v1/auth/signup', status => 422, %$_ } }
                @signup_bad ]);

#--------------------------------------------------------------------------
# Conflicts
#--------------------------------------------------------------------------

my $bob = $s->signup;
run_cases($s, [
    { name => 'duplicate email (other case, spaces) is 409 email_taken',
      method => 'POST', path => '/v1/auth/signup',
      body => valid(email => '  ' . uc($bob->{email}) . ' '),
      status => 409, code => 'email_taken', field => 'email' },
    { name => 'duplicate username (other case) is 409 username_taken',
      method => 'POST', path => '/v1/auth/signup',
      body => valid(username => uc $bob->{user}{username}),
      status => 409, code => 'username_taken', field => 'username' },
]);

subtest 'a refused signup creates nothing' => sub {
    my $email = uniq('c') . '@example.com';
    my $tx = $s->json_req(POST => '/v1/auth/signup',
                          valid(email => $email, username => $bob->{user}{username}));
    is($tx->res->code, 409, 'username taken');
    $tx = $s->json_req(POST => '/v1/auth/signup', valid(email => $email));
    is($tx->res->code, 201, 'the email is still free');
};

#--------------------------------------------------------------------------
# Login failures
#--------------------------------------------------------------------------

subtest 'wrong password and unknown email look the same' => sub {
    my $wrong = $s->json_req(POST => '/v1/auth/login',
        { email => $bob->{email}, password => 'not the password' });
    my $unknown = $s->json_req(POST => '/v1/auth/login',
        { email => uniq('nobody') . '@example.com', password => 'not the password' });
    for ([ 'wrong password', $wrong ], [ 'unknown email', $unknown ]) {
        is($_->[1]->res->code, 401, "$_->[0]: 401");
        check_json_response($_->[1], { code => 'invalid_credentials', field => undef });
    }
    is($wrong->res->body, $unknown->res->body, 'identical bodies');
    is($wrong->res->headers->content_type, $unknown->res->headers->content_type,
       'identical content types');
};

subtest 'password is case-sensitive' => sub {
    my $tx = $s->json_req(POST => '/v1/auth/login',
        { email => $bob->{email}, password => uc $bob->{password} });
    is($tx->res->code, 401, 'status 401');
};

run_cases($s, [ map { { method => 'POST', path => '/v1/auth/login', status => 422, %$_ } } (
    { name => 'login without email', body => { password => 'whatever1' },
      code => 'missing_field', field => 'email' },
    { name => 'login without password', body => { email => $bob->{email} },
      code => 'missing_field', field => 'password' },
    { name => 'login with email null', body => { email => undef, password => 'whatever1' },
      code => 'missing_field', field => 'email' },
    { name => 'login with password a number',
      body => { email => $bob->{email}, password => 12345678 },
      code => 'invalid_field', field => 'password' },
    { name => 'login with email a number', body => { email => 42, password => 'whatever1' },
      code => 'invalid_field', field => 'email' },
    { name => 'login with a malformed email',
      body => { email => 'not-an-email', password => 'whatever1' },
      code => 'invalid_field', field => 'email' },
) ]);

$s->stop;
done_testing;
