# A worker's presence rows name its instance row (sql/008), which the worker
# registers on another pooled connection as it starts. A socket opened
# before that registration has committed (right after a reload, with the
# database slow) must still make its user online once it does, not fail the
# presence row's foreign key and leave the user offline until the next
# heartbeat a minute later.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test qw(wait_until);
use Famcall::WS;

my $s = Famcall::Test->new(workers => 2);
my $b = $s->signup;

sub online_rows {
    $s->psql("select count(*) from presence where user_id = '$b->{user}{id}'");
}

# wait (5 s at most) for b's presence rows to be there, or gone
sub online  { my $why = shift; wait_until { online_rows() > 0 } 5, $why }
sub offline { my $why = shift; wait_until { online_rows() == 0 } 5, $why }

my $ws = Famcall::WS->open($s, $b->{access_token}) or die 'no socket';
ok(online('online before the reload'), 'online before the reload');
$ws->close;
ok(offline('offline once the socket closed'), 'offline once the socket closed');

# Registering waits behind this lock (an insert into gateway_instances);
# the foreign key's check of a presence row does not, so before the fix it
# failed at once.
my $locker = $s->hold_lock('gateway_instances', 3, 'share row exclusive');
$s->nginx_reload;

my @socks = map { Famcall::WS->open($s, $b->{access_token}) or die 'no socket' } 1 .. 4;
is(online_rows(), 0, 'not online while the new workers cannot register');
waitpid($locker, 0);

ok(online('online once the workers registered'), 'online once the workers registered');
unlike($s->error_log, qr/presence_instance_id_fkey/, 'no presence row refused for its instance');
$_->close for @socks;
ok(offline('offline again when the sockets close'), 'offline again when the sockets close');

done_testing;
