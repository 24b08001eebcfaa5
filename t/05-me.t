# The signed-in user's own profile: GET and PATCH /v1/me.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases check_json_response body_json is_error check_user uniq);

my $s = Famcall::Test->new;
my $me    = $s->signup;
my $other = $s->signup;
my $tok   = $me->{access_token};

sub get_me  { $s->json_req(GET => '/v1/me', undef, $tok) }
sub patch   { $s->json_req(PATCH => '/v1/me', $_[0], $tok) }

# PATCH, expect 200, return the user; and GET must agree (it was stored).
sub patch_ok {
    my ($body, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $tx = patch($body);
    is($tx->res->code, 200, "$name: 200") or diag($tx->res->body);
    my $u = body_json($tx) // {};
    is_deeply(body_json(get_me()), $u, "$name: GET /v1/me shows the same");
    return $u;
}

subtest 'GET /v1/me' => sub {
    my $tx = get_me();
    is($tx->res->code, 200, 'status 200');
    check_json_response($tx, {});
    check_user(body_json($tx));
    is_deeply(body_json($tx), $me->{user}, 'the signup user');
};

subtest 'change display_name' => sub {
    my $u = patch_ok({ display_name => '  Neue Name ' }, 'display_name');
    is($u->{display_name}, 'Neue Name', 'trimmed');
    is($u->{username}, $me->{user}{username}, 'username untouched');
    is($u->{email}, $me->{user}{email}, 'email untouched');
    is($u->{created_at}, $me->{user}{created_at}, 'created_at untouched');
    check_user($u);
};

subtest 'change username' => sub {
    my $new = uniq('nu');
    my $u = patch_ok({ username => uc $new }, 'username');
    is($u->{username}, $new, 'lowercased');
    $u = patch_ok({ username => $new }, 'the same username again');
    is($u->{username}, $new, 'still mine (not a conflict with myself)');
};

subtest 'avatar_url: set, replace, clear' => sub {
    my $url = 'https://cdn.example.com/a/b.png?size=128#x';
    my $u = patch_ok({ avatar_url => $url }, 'https avatar');
    is($u->{avatar_url}, $url, 'set');
    $u = patch_ok({ avatar_url => 'http://example.com/b.jpg' }, 'http avatar');
    is($u->{avatar_url}, 'http://example.com/b.jpg', 'replaced');
    $u = patch_ok({ avatar_url => 'https://e.example/' . ('a' x (2048 - 18)) }, '2048-byte avatar');
    is(length($u->{avatar_url} // ''), 2048, 'kept whole');
    $u = patch_ok({ avatar_url => undef }, 'avatar null');
    is($u->{avatar_url}, undef, 'cleared');
};

subtest 'several fields at once' => sub {
    my $name = uniq('multi');
    my $u = patch_ok({ display_name => 'Multi', username => $name,
                       avatar_url => 'https://example.com/m.png' }, 'three fields');
    is($u->{display_name}, 'Multi', 'display_name');
    is($u->{username}, $name, 'username');
    is($u->{avatar_url}, 'https://example.com/m.png', 'avatar_url');
};

subtest 'fields that are not patchable are ignored' => sub {
    my $u = patch_ok({ display_name => 'Only Name', email => 'hijack@example.com',
                       phone => '+15550001111', id => '00000000-0000-4000-8000-000000000000' },
                     'with email/phone/id');
    is($u->{email}, $me->{user}{email}, 'email unchanged');
    is($u->{phone}, undef, 'phone unchanged');
    is($u->{id}, $me->{user}{id}, 'id unchanged');
};

subtest 'username of another user: 409' => sub {
    my $before = body_json(get_me());
    my $tx = patch({ username => uc $other->{user}{username}, display_name => 'Should Not Stick' });
    is_error($tx, 409, 'username_taken', 'username');
    is_deeply(body_json(get_me()), $before, 'nothing changed');
};

subtest 'a rejected PATCH changes nothing' => sub {
    my $before = body_json(get_me());
    my $tx = patch({ display_name => 'Fine Name', username => 'bad name' });
    is_error($tx, 422, 'invalid_field', 'username');
    is_deeply(body_json(get_me()), $before, 'display_name not applied either');
};

run_cases($s, [
    (map { { method => 'PATCH', path => '/v1/me', token => $tok, status => 422, %$_ } } (
        { name => 'empty object', body => {} },
        { name => 'only unknown fields', body => { colour => 'blue' } },
        { name => 'display_name empty', body => { display_name => '' },
          code => 'invalid_field', field => 'display_name' },
        { name => 'display_name blank', body => { display_name => '   ' },
          code => 'invalid_field', field => 'display_name' },
        { name => 'display_name of 65', body => { display_name => 'ж' x 65 },
          code => 'invalid_field', field => 'display_name' },
        { name => 'display_name with a control char', body => { display_name => "a\x1bb" },
          code => 'invalid_field', field => 'display_name' },
        { name => 'display_name a number', body => { display_name => 5 },
          code => 'invalid_field', field => 'display_name' },
        { name => 'display_name null', body => { display_name => undef },
          field => 'display_name' },
        { name => 'username of 2', body => { username => 'ab' },
          code => 'invalid_field', field => 'username' },
        { name => 'username of 33', body => { username => 'a' x 33 },
          code => 'invalid_field', field => 'username' },
        { name => 'username with a dash', body => { username => 'a-b-c' },
          code => 'invalid_field', field => 'username' },
        { name => 'username a number', body => { username => 12345 },
          code => 'invalid_field', field => 'username' },
        { name => 'avatar_url ftp', body => { avatar_url => 'ftp://example.com/a.png' },
          code => 'invalid_field', field => 'avatar_url' },
        { name => 'avatar_url javascript:', body => { avatar_url => 'javascript:alert(1)' },
          code => 'invalid_field', field => 'avatar_url' },
        { name => 'avatar_url relative', body => { avatar_url => '/a.png' },
          code => 'invalid_field', field => 'avatar_url' },
        { name => 'avatar_url with a space', body => { avatar_url => 'https://example.com/a b.png' },
          code => 'invalid_field', field => 'avatar_url' },
        { name => 'avatar_url with a newline', body => { avatar_url => "https://example.com/a\n" },
          code => 'invalid_field', field => 'avatar_url' },
        { name => 'avatar_url of 2049', body => { avatar_url => 'https://e.example/' . ('a' x (2049 - 18)) },
          code => 'invalid_field', field => 'avatar_url' },
        { name => 'avatar_url empty', body => { avatar_url => '' },
          code => 'invalid_field', field => 'avatar_url' },
        { name => 'avatar_url an object', body => { avatar_url => { url => 'https://x.example/' } },
          code => 'invalid_field', field => 'avatar_url' },
    )),
    { name => 'GET without a token', path => '/v1/me', status => 401, code => 'unauthorized',
      res_headers => { 'WWW-Authenticate' => qr/^Bearer\b/ } },
    { name => 'PATCH without a token', method => 'PATCH', path => '/v1/me',
      body => { display_name => 'x' }, status => 401, code => 'unauthorized',
      res_headers => { 'WWW-Authenticate' => qr/^Bearer\b/ } },
    { name => 'PATCH with a bad token', method => 'PATCH', path => '/v1/me',
      body => { display_name => 'x' }, token => "${tok}x", status => 401, code => 'unauthorized' },
]);

subtest 'the other user is untouched by all this' => sub {
    my $tx = $s->json_req(GET => '/v1/me', undef, $other->{access_token});
    is_deeply(body_json($tx), $other->{user}, 'same as at signup');
};

$s->stop;
done_testing;
