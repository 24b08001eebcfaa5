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

if ($ENV{FAMCALL_KEEP}) { diag("kept $data") } else { remove_tree($data) }
done_testing;
