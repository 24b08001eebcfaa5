# `nginx -t` rejects bad famcall configuration and says which directive is
# wrong. No PostgreSQL, no running nginx: render a conf, edit it, test it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use Famcall::Test qw(render_conf nginx_t module_path);

-e module_path() or BAIL_OUT('famcall module not found at ' . module_path() . ': run make build');

my $data = tempdir('famcall-c-XXXX', DIR => '/tmp', CLEANUP => 0);
make_path("$data/log", "$data/nginx-tmp", "$data/pg");
sub spew { open my $fh, '>', $_[0] or die "$_[0]: $!"; print $fh $_[1]; close $fh }
spew("$data/jwt.key", join '', map { sprintf '%02x', int rand 256 } 1 .. 32);
spew("$data/extra.conf", '');

my $base = render_conf(data => $data, http_port => 18080, pg_port => 15432);
like($base, qr/^\s*famcall_db\s/m, 'template has famcall_db');
like($base, qr/^\s*famcall_jwt_secret_file\s/m, 'template has famcall_jwt_secret_file');

our $unchanged = sub { };

# try_conf($name, $edit) -> ($exit_code, $output): $edit gets the conf text
# (in $_) and changes it.
sub try_conf {
    my ($edit) = @_;
    local $_ = $base;
    $edit->();
    # an edit that matches nothing would test the template, not the case
    die "the edit changed nothing: the template moved on?\n"
        if $_ eq $base && $edit != $unchanged;
    spew("$data/nginx.conf", $_);
    return nginx_t($data, "$data/nginx.conf");
}

sub conf_ok {
    my ($name, $edit) = @_;
    my ($rc, $out) = try_conf($edit);
    is($rc, 0, "accepted: $name") or diag($out);
}

sub conf_fails {
    my ($name, $mention, $edit) = @_;
    subtest "rejected: $name" => sub {
        my ($rc, $out) = try_conf($edit);
        isnt($rc, 0, 'nginx -t exits non-zero');
        like($out, qr/\[emerg\]/, 'an [emerg] message');
        like($out, $mention, "the message names $mention") or diag($out);
        unlike($out, qr/AddressSanitizer|Segmentation|core dumped/i, 'no crash');
    };
}

my $jwt_line = qr/^\s*famcall_jwt_secret_file\s[^;]*;/m;

conf_ok('the rendered template', $unchanged);
conf_ok('famcall_jwt_secret of 32 bytes',
        sub { s/$jwt_line/famcall_jwt_secret "0123456789abcdef0123456789abcdef";/ });
conf_ok('famcall_otp_sms webhook',
        sub { s/^\s*famcall_otp_sms\s[^;]*;/famcall_otp_sms webhook https:\/\/sms.example.com\/send;/m });
conf_ok('famcall_db_pool_size 1', sub { s/famcall_db_pool_size \d+;/famcall_db_pool_size 1;/ });
# the node's user index is sized from the workers' connections: a node for
# 100,000 sockets and more (its shared memory must hold the index)
conf_ok('16 workers of 20000 connections', sub {
    s/^worker_processes \S+;/worker_processes 16;/m;
    s/worker_connections \d+;/worker_connections 20000;/;
});

conf_ok('famcall_send_turns on', sub {
    s/^(\s*famcall_db_pool_size\s[^;]*;)/$1\n    famcall_send_turns on;/m });
conf_fails('famcall_send_turns sometimes', qr/famcall_send_turns/,
           sub { s/^(\s*famcall_db_pool_size\s[^;]*;)/$1 famcall_send_turns sometimes;/m });

conf_ok('famcall_send_streams 1 and famcall_send_queue_size 64k', sub {
    s/^(\s*famcall_db_pool_size\s[^;]*;)/$1\n    famcall_send_streams 1;\n    famcall_send_queue_size 64k;/m });

conf_fails('famcall_jwt_secret of 31 bytes', qr/famcall_jwt_secret\b/,
           sub { s/$jwt_line/famcall_jwt_secret "0123456789abcdef0123456789abcde";/ });
conf_fails('famcall_jwt_secret_file with 16 bytes', qr/famcall_jwt_secret/, sub {
    spew("$data/short.key", '0123456789abcdef');
    s/$jwt_line/famcall_jwt_secret_file $data\/short.key;/;
});
conf_fails('famcall_jwt_secret_file that does not exist', qr/famcall_jwt_secret_file|no-such\.key/,
           sub { s/$jwt_line/famcall_jwt_secret_file $data\/no-such.key;/ });
conf_fails('no jwt secret at all', qr/famcall_jwt_secret/, sub { s/$jwt_line//; });
conf_fails('unknown famcall_otp_sms driver', qr/famcall_otp_sms/,
           sub { s/^\s*famcall_otp_sms\s[^;]*;/famcall_otp_sms carrier_pigeon \/tmp\/x;/m });
conf_fails('famcall_send_streams 0', qr/famcall_send_streams/,
           sub { s/^(\s*famcall_db_pool_size\s[^;]*;)/$1 famcall_send_streams 0;/m });
conf_fails('famcall_send_streams 65', qr/famcall_send_streams/,
           sub { s/^(\s*famcall_db_pool_size\s[^;]*;)/$1 famcall_send_streams 65;/m });
conf_fails('famcall_send_queue_size 16k', qr/famcall_send_queue_size" must be at least 64k/,
           sub { s/^(\s*famcall_db_pool_size\s[^;]*;)/$1 famcall_send_queue_size 16k;/m });
conf_fails('famcall_db_pool_size 0', qr/famcall_db_pool_size/,
           sub { s/famcall_db_pool_size \d+;/famcall_db_pool_size 0;/ });
conf_fails('famcall_db_pool_size not a number', qr/famcall_db_pool_size/,
           sub { s/famcall_db_pool_size \d+;/famcall_db_pool_size many;/ });
conf_fails('famcall_api without famcall_db', qr/famcall_db\b/,
           sub { s/^\s*famcall_db\s[^;]*;//m });
conf_fails('famcall_otp_ttl not a time', qr/famcall_otp_ttl/,
           sub { s/^(\s*famcall_otp_sms\s[^;]*;)/$1\n    famcall_otp_ttl soon;/m });

# Each feature is a module of its own (auth, users, chat, gateway, after the
# core): its directives keep their names and meanings, are checked by its
# own conf, and are only allowed at http level.
my $db_line = qr/^(\s*famcall_db_pool_size\s[^;]*;)/m;
sub http_add { my ($lines) = @_; return sub { s/$db_line/$1\n    $lines/ } }

conf_ok('every feature directive at http level', http_add(join "\n    ",
    'famcall_jwt_ttl 5m;', 'famcall_refresh_ttl 7d;', 'famcall_refresh_grace 5s;',
    'famcall_password_opslimit 3;', 'famcall_password_memlimit 32m;',
    'famcall_otp_ttl 2m;', 'famcall_otp_max_attempts 3;',
    'famcall_otp_limit_phone 5 10m;', 'famcall_otp_limit_ip 50 1h;',
    'famcall_send_streams 4;', 'famcall_send_queue_size 2m;',
    'famcall_ws_max_message 16k;', 'famcall_ws_max_queue 64k;',
    'famcall_ws_ping_interval 10s;', 'famcall_ws_idle_timeout 25s;',
    'famcall_db_timeout 2s;', 'famcall_max_body_size 16k;'));

# Without famcall_api the module is loaded but idle: its directives parse,
# nothing else is checked or started (as before the split).
conf_ok('feature directives without famcall_api', sub {
    s/^\s*famcall_api;//m;
    s/$db_line/$1\n    famcall_jwt_ttl 5m;\n    famcall_ws_ping_interval 10s;\n    famcall_send_streams 4;/;
});
conf_ok('no famcall_db and no secret without famcall_api', sub {
    s/^\s*famcall_api;//m;
    s/^\s*famcall_db\s[^;]*;//m;
    s/$jwt_line//;
});
conf_fails('a bad feature value still fails the parse without famcall_api',
           qr/famcall_send_streams/, sub {
    s/^\s*famcall_api;//m;
    s/$db_line/$1 famcall_send_streams 0;/;
});

for my $d (['famcall_jwt_ttl', '5m'], ['famcall_otp_ttl', '2m'],
           ['famcall_send_streams', '3'], ['famcall_ws_max_message', '16k'],
           ['famcall_db_timeout', '2s']) {
    my ($name, $v) = @$d;
    conf_fails("$name twice", qr/"\Q$name\E" directive is duplicate/,
               http_add("$name $v;\n    $name $v;"));
}
conf_fails('famcall_db twice', qr/famcall_db/,
           sub { s/^(\s*famcall_db\s[^;]*;)/$1\n$1/m });
conf_fails('famcall_otp_limit_ip twice', qr/famcall_otp_limit_ip/,
           http_add("famcall_otp_limit_ip 5 1h;\n    famcall_otp_limit_ip 6 1h;"));

for my $d ('famcall_jwt_ttl 5m', 'famcall_send_streams 2', 'famcall_ws_max_queue 64k',
           'famcall_db_timeout 2s') {
    my ($name) = split ' ', $d;
    conf_fails("$name in a server", qr/"\Q$name\E" directive is not allowed here/,
               sub { s/(server_name localhost;)/$1\n        $d;/ });
}

# each module's own checks, now in its own init_main_conf
conf_fails('famcall_jwt_ttl 0 (auth)', qr/famcall_jwt_ttl/,
           http_add('famcall_jwt_ttl 0;'));
conf_fails('famcall_refresh_ttl shorter than the access token (auth)',
           qr/famcall_refresh_ttl/,
           http_add("famcall_jwt_ttl 1h;\n    famcall_refresh_ttl 10m;"));
conf_fails('famcall_password_memlimit 1k (auth)', qr/famcall_password_memlimit/,
           http_add('famcall_password_memlimit 1k;'));
conf_fails('famcall_password_opslimit 33 (auth)', qr/famcall_password_opslimit/,
           http_add('famcall_password_opslimit 33;'));
conf_fails('famcall_otp_max_attempts 0 (auth)', qr/famcall_otp_max_attempts/,
           http_add('famcall_otp_max_attempts 0;'));
conf_fails('famcall_otp_limit_phone without a window (auth)', qr/famcall_otp_limit_phone/,
           http_add('famcall_otp_limit_phone 5 soon;'));
conf_fails('famcall_password_thread_pool unknown (auth)', qr/famcall_nowhere/,
           sub { s/famcall_password_thread_pool \S+;/famcall_password_thread_pool famcall_nowhere;/ });
conf_fails('famcall_ws_ping_interval 500ms (gateway)', qr/famcall_ws_ping_interval/,
           http_add('famcall_ws_ping_interval 500ms;'));
conf_fails('famcall_ws_idle_timeout not past the ping (gateway)', qr/famcall_ws_idle_timeout/,
           http_add("famcall_ws_ping_interval 30s;\n    famcall_ws_idle_timeout 30s;"));
conf_fails('famcall_ws_max_message 512 (gateway)', qr/famcall_ws_max_message/,
           http_add('famcall_ws_max_message 512;'));
conf_fails('famcall_send_turns maybe (chat)', qr/famcall_send_turns/,
           http_add('famcall_send_turns maybe;'));
conf_fails('famcall_max_body_size not a size (core)', qr/famcall_max_body_size/,
           http_add('famcall_max_body_size lots;'));
conf_fails('an unknown famcall_ directive', qr/famcall_no_such_thing/,
           http_add('famcall_no_such_thing on;'));

if ($ENV{FAMCALL_KEEP}) { diag("kept $data") } else { remove_tree($data) }
done_testing;
