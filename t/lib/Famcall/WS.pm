package Famcall::WS;

# A WebSocket client for the tests (Mojo::UserAgent underneath): connects
# with the famcall.v1 subprotocol and a token, collects every event the
# server sends, and waits for the ones a test expects.
#
#   my $ws = Famcall::WS->open($stack, $token);      # dies unless 101
#   my $ack = $ws->request('message:send', { ... });  # ack or error frame
#   my $ev = $ws->expect('message:new');             # next event of a type
#   $ws->none('typing', 0.5);                         # nothing of it arrives

use strict;
use warnings;
use Mojo::UserAgent;
use Mojo::IOLoop;
use Mojo::JSON qw(encode_json decode_json);
use Time::HiRes qw(time);
use Famcall::Test qw(peer_has_read);

my $refs = 0;

# open($stack_or_url, $token, protocols => [...], headers => {...},
#      port => N) -> client, or (undef, $tx) when the handshake is refused
sub open {
    my ($class, $stack, $token, %o) = @_;
    my $port = $o{port} // $stack->http_port;
    my $url = "ws://127.0.0.1:$port/v1/ws";
    my @protos = $o{protocols} ? @{ $o{protocols} }
               : defined $token ? ('famcall.v1', "access_token.$token")
               : ('famcall.v1');
    my $self = bless { frames => [], closed => 0, close_code => undef, port => $port,
                       unsent => 0 }, $class;
    my $ua = Mojo::UserAgent->new(inactivity_timeout => 0);
    $ua->max_response_size(0);
    $self->{ua} = $ua;
    my ($done, $refused);
    $ua->websocket($url => ($o{headers} // {}) => \@protos => sub {
        my (undef, $tx) = @_;
        $done = 1;
        if (!$tx->is_websocket) { $refused = $tx; return }
        $tx->max_websocket_size(1 << 20);
        $self->{tx} = $tx;
        # text: the raw UTF-8 bytes (message would decode them first)
        $tx->on(text => sub {
            my (undef, $msg) = @_;
            my $ev = eval { decode_json($msg) } // { type => '(not json)', raw => $msg };
            push @{ $self->{frames} }, $ev;
        });
        $tx->on(finish => sub {
            my (undef, $code, $reason) = @_;
            $self->{closed} = 1;
            $self->{close_code} = $code;
            $self->{close_reason} = $reason;
        });
    });
    my $deadline = time + ($o{timeout} // 10);
    Mojo::IOLoop->one_tick while !$done && time < $deadline;
    return wantarray ? (undef, $refused) : undef if $refused || !$self->{tx};
    $self->{hello} = $self->expect('hello') unless $o{no_hello};
    return $self;
}

sub tx         { $_[0]{tx} }
sub hello      { $_[0]{hello} }
sub closed     { $_[0]{closed} }
sub close_code { $_[0]{close_code} }
sub frames     { $_[0]{frames} }

# send($type, $data, $ref) (ref undef: none)
sub send {
    my ($self, $type, $data, $ref) = @_;
    my %ev = (type => $type);
    $ev{data} = $data if defined $data;
    $ev{ref} = $ref if defined $ref;
    $self->send_raw(encode_json(\%ev));    # bytes, as they are
}

# send_raw($bytes): one text frame of exactly these bytes. Mojo writes it
# while its loop runs; `unsent` is set until it has (the drain event).
sub send_raw {
    my ($self, $bytes) = @_;
    my $unsent = \$self->{unsent};
    $$unsent = 1;
    $self->{tx}->send({ text => $bytes }, sub { $$unsent = 0 });
}

# server_has_read() -> true once every frame sent so far is out of the
# client and read by the server (see Famcall::Test's peer_has_read). It
# runs the client's loop for a moment: frames go out only then.
sub server_has_read {
    my ($self) = @_;
    Mojo::IOLoop->one_tick_for(0.005);
    return 0 if $self->{unsent};
    my $stream = Mojo::IOLoop->stream($self->{tx}->connection);
    return 0 if $stream && $stream->bytes_waiting;
    return peer_has_read($self->{tx}->local_port, $self->{port});
}

# request($type, $data) -> the ack or error frame answering it
sub request {
    my ($self, $type, $data, %o) = @_;
    my $ref = 'r' . ++$refs;
    $self->send($type, $data, $ref);
    return $self->wait_for(sub { ($_[0]{ref} // '') eq $ref }, $o{timeout});
}

# wait_for(sub { $frame }, $timeout) -> first frame (removed) for which the
# predicate holds, or undef at the timeout or close
sub wait_for {
    my ($self, $pred, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (1) {
        my $frames = $self->{frames};
        for my $i (0 .. $#$frames) {
            if ($pred->($frames->[$i])) {
                return splice(@$frames, $i, 1);
            }
        }
        return undef if time >= $deadline || ($self->{closed} && !@$frames);
        Mojo::IOLoop->one_tick_for(0.01);
    }
}

sub expect {
    my ($self, $type, $timeout, $pred) = @_;
    return $self->wait_for(sub { ($_[0]{type} // '') eq $type
                                 && (!$pred || $pred->($_[0])) }, $timeout);
}

# nothing of $type within $secs
sub none {
    my ($self, $type, $secs) = @_;
    return !defined $self->expect($type, $secs // 0.5);
}

sub wait_closed {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    Mojo::IOLoop->one_tick_for(0.01) while !$self->{closed} && time < $deadline;
    return $self->{closed};
}

# the pid of the nginx worker holding the server side of this socket
sub server_pid {
    my ($self, $server_port) = @_;
    my $port = $self->{tx}->local_port;
    my $out = `ss -Htnp state established '( sport = :$server_port and dport = :$port )' 2>/dev/null`;
    return $out =~ /pid=(\d+)/ ? $1 : undef;
}

sub close {
    my ($self, $code) = @_;
    return if $self->{closed};
    $self->{tx}->finish($code // 1000);
    $self->wait_closed(5);
}

package Mojo::IOLoop;
# one tick, but never longer than $secs
sub one_tick_for {
    my ($class, $secs) = @_;
    my $loop = Mojo::IOLoop->singleton;
    my $id = $loop->timer($secs => sub { });
    $loop->one_tick;
    $loop->remove($id);
}

1;
