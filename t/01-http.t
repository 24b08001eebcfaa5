# HTTP plumbing shared by every route: routing (404/405), request bodies
# (415/413/400), the JSON error envelope, /healthz.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(run_cases check_json_response body_json);

my $s = Famcall::Test->new(extra_conf => 'famcall_max_body_size 1k;');

subtest 'GET /healthz' => sub {
    $s->t->get_ok('/healthz')
         ->status_is(200)
         ->content_type_like(qr{^application/json}i)
         ->json_is('/status' => 'ok');
};

# A syntactically valid login body: its answer proves the request got past
# the content-type, size and JSON checks.
my $login_ok_shape = '{"email":"nobody@example.com","password":"wrong password"}';

run_cases($s, [
    # --- unknown routes --------------------------------------------------
    { path => '/',                  status => 404, code => 'not_found', field => undef },
    { path => '/nope',              status => 404, code => 'not_found' },
    { path => '/v1',                status => 404, code => 'not_found' },
    { path => '/v1/nope',           status => 404, code => 'not_found' },
    { path => '/v1/me/extra',       status => 404, code => 'not_found' },
    { path => '/v1/auth/signupx', method => 'POST', body => {},
      status => 404, code => 'not_found' },
    { path => '/healthz/x',         status => 404, code => 'not_found' },

    # --- wrong method: 405 with Allow ------------------------------------
    (map {
        { name => "GET $_ is 405", path => $_, status => 405,
          code => 'method_not_allowed', res_headers => { Allow => qr/\bPOST\b/ } }
    } qw(/v1/auth/signup /v1/auth/login /v1/auth/otp/request /v1/auth/otp/verify
         /v1/auth/refresh /v1/auth/logout)),
    { name => 'PUT /v1/me is 405', method => 'PUT', path => '/v1/me',
      status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/^(?=.*\bGET\b)(?=.*\bPATCH\b)(?=.*\bDELETE\b)/ } },
    { name => 'POST /v1/me is 405', method => 'POST', path => '/v1/me', body => {},
      status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/\bPATCH\b/ } },
    { name => 'POST /healthz is 405', method => 'POST', path => '/healthz', body => {},
      status => 405, code => 'method_not_allowed',
      res_headers => { Allow => qr/\bGET\b/ } },

    # --- content type ----------------------------------------------------
    { name => 'text/plain body is 415', method => 'POST', path => '/v1/auth/login',
      raw => $login_ok_shape, headers => { 'Content-Type' => 'text/plain' },
      status => 415, code => 'unsupported_media_type' },
    { name => 'form body is 415', method => 'POST', path => '/v1/auth/login',
      raw => 'email=a%40b.com&password=12345678',
      headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
      status => 415, code => 'unsupported_media_type' },
    { name => 'body without Content-Type is 415', method => 'POST',
      path => '/v1/auth/login', raw => $login_ok_shape,
      headers => { 'Content-Type' => undef },
      status => 415, code => 'unsupported_media_type' },
    { name => 'application/jsonp is not application/json', method => 'POST',
      path => '/v1/auth/login', raw => $login_ok_shape,
      headers => { 'Content-Type' => 'application/jsonp' },
      status => 415, code => 'unsupported_media_type' },
    { name => 'PATCH /v1/me checks the content type too', method => 'PATCH',
      path => '/v1/me', raw => '{"display_name":"x"}',
      headers => { 'Content-Type' => 'text/plain' },
      token => $s->signup->{access_token},
      status => 415, code => 'unsupported_media_type' },
    { name => 'charset parameter is accepted', method => 'POST', path => '/v1/auth/login',
      raw => $login_ok_shape,
      headers => { 'Content-Type' => 'application/json; charset=utf-8' },
      status => 401, code => 'invalid_credentials' },

    # --- body size (famcall_max_body_size 1k) -----------------------------
    { name => '2 KiB body is 413', method => 'POST', path => '/v1/auth/login',
      body => { email => 'a@example.com', password => 'p' x 2048 },
      status => 413, code => 'body_too_large' },
    { name => 'body just under the limit is read', method => 'POST',
      path => '/v1/auth/login',
      body => { email => 'nobody@example.com', password => 'p' x 100, pad => 'x' x 800 },
      status => 401, code => 'invalid_credentials' },

    # --- malformed JSON ---------------------------------------------------
    (map {
        { name => "invalid JSON: $_->[0]", method => 'POST', path => '/v1/auth/login',
          raw => $_->[1], status => 400, code => 'invalid_json' }
    } (
        [ 'truncated object',  '{"email": "a@example.com"' ],
        [ 'missing value',     '{"email": }' ],
        [ 'single quotes',     "{'email': 'a\@example.com'}" ],
        [ 'trailing garbage',  '{"email":"a@example.com","password":"12345678"} x' ],
        [ 'two objects',       '{}{}' ],
        [ 'bare word',         'hello' ],
        [ 'invalid UTF-8',     qq({"email":"\xff\xfe\@example.com","password":"12345678"}) ],
    )),
    (map {
        { name => "JSON but not an object: $_", method => 'POST',
          path => '/v1/auth/login', raw => $_, status => 400, code => 'invalid_json' }
    } ('[]', '["a@example.com","12345678"]', '"text"', '42', 'null', 'true')),
]);

subtest 'chunked body over the limit is 413' => sub {
    # No Content-Length: the limit must hold while reading, too.
    my $tx = $s->ua->build_tx(POST => '/v1/auth/login' =>
                              { 'Content-Type' => 'application/json' });
    my $content = $tx->req->content;
    my @chunks = ('{"email":"a@example.com","password":"', ('p' x 512) x 4, '"}');
    my $next;
    $next = sub {
        my $c = shift @chunks;
        $content->write_chunk(defined $c ? ($c => $next) : '');
    };
    $next->();
    $tx = $s->ua->start($tx);
    is($tx->res->code, 413, 'status 413') or diag($tx->res->body);
    check_json_response($tx, { code => 'body_too_large' });
};

subtest 'nginx-level errors use the JSON envelope too' => sub {
    # URI longer than large_client_header_buffers (8k): nginx answers 414
    # itself, through `error_page ... @famcall_error`.
    my $tx = $s->json_req(GET => '/v1/' . ('a' x 9000));
    is($tx->res->code, 414, 'long URI: 414');
    check_json_response($tx, {});
    like(eval { body_json($tx)->{error}{code} } // '', qr/^[a-z][a-z0-9_]*$/,
         'error.code is snake_case');

    # HTTP/1.1 without Host: nginx's own 400.
    my $res = $s->raw_http("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    is($res->code, 400, 'no Host: 400');
    like($res->headers->content_type // '', qr{^application/json}i, 'JSON content type');
    my $j = eval { Mojo::JSON::decode_json($res->body) };
    ok($j && ref $j->{error} eq 'HASH' && length($j->{error}{code} // '')
          && length($j->{error}{message} // ''),
       'error envelope with code and message') or diag($res->body);
};

$s->stop;
done_testing;
