package Famcall::RawWS;

# A WebSocket client on a bare TCP socket, for protocol tests: every byte
# is built by hand, so frames can be wrong in exactly the way a test wants
# (unmasked, reserved bits, bad lengths, fragments, interleaved control
# frames), and what comes back is seen frame by frame, up to the TCP close.
# Core Perl, and Famcall::Test's waiting.
#
#   my $ws = Famcall::RawWS->connect($port, token => $jwt);   # 101 + hello
#   $ws->send(frame(TEXT, '{"type":"sync","ref":"a"}'));
#   my $f = $ws->next_frame(2);     # {op, fin, rsv, masked, payload}, or
#                                   # {eof => 1} / {reset => 1}, or undef
#   my ($code, $reason) = close_payload($f->{payload});
#
#   my $res = Famcall::RawWS->handshake($port, $request_bytes);  # refusals

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(sha1);
use Errno qw(EAGAIN EINTR ECONNRESET EPIPE);
use Exporter qw(import);
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Socket qw(SOL_SOCKET SO_RCVBUF IPPROTO_TCP TCP_NODELAY pack_sockaddr_in inet_aton);
use Time::HiRes qw(time);
use Famcall::Test qw(wait_until peer_has_read);

our @EXPORT_OK = qw(frame close_frame close_payload ws_accept ws_key
                    request CONT TEXT BINARY CLOSE PING PONG);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

use constant { CONT => 0x0, TEXT => 0x1, BINARY => 0x2,
               CLOSE => 0x8, PING => 0x9, PONG => 0xA };

my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

#-------------------------------------------------------------------------
# Building bytes
#-------------------------------------------------------------------------

# ws_key() -> a fresh Sec-WebSocket-Key (16 random bytes, base64)
sub ws_key {
    my $b = join '', map { chr int rand 256 } 1 .. 16;
    return encode_base64($b, '');
}

# ws_accept($key) -> the Sec-WebSocket-Accept a server must answer with
sub ws_accept { encode_base64(sha1($_[0] . $GUID), '') }

# frame($opcode, $payload, %o) -> the bytes of one client frame.
#   fin => 0|1 (1), rsv => 0..7 (RSV1 = 4, RSV2 = 2, RSV3 = 1), mask => 0|1 (1),
#   len => 7|16|64: force the length encoding (default: the shortest),
#   len_value => N: put N in the length field whatever the payload is,
#   key => 4 bytes (random by default)
sub frame {
    my ($op, $payload, %o) = @_;
    $payload //= '';
    utf8::downgrade($payload);    # bytes only: callers encode text first
    my $fin  = $o{fin} // 1;
    my $mask = $o{mask} // 1;
    my $n    = $o{len_value} // length $payload;
    my $form = $o{len} // ($n < 126 ? 7 : $n < 65536 ? 16 : 64);
    my $m    = $mask ? 0x80 : 0;

    my $bytes = chr(($fin ? 0x80 : 0) | (($o{rsv} // 0) << 4) | ($op & 0x0f));
    if    ($form == 7)  { $bytes .= chr($m | $n) }
    elsif ($form == 16) { $bytes .= chr($m | 126) . pack('n', $n) }
    else                { $bytes .= chr($m | 127) . pack('Q>', $n) }

    return $bytes . $payload unless $mask;
    my $key = $o{key} // join '', map { chr int rand 256 } 1 .. 4;
    my $rep = substr($key x (int(length($payload) / 4) + 1), 0, length $payload);
    return $bytes . $key . ($payload ^ $rep);
}

# close_frame($code, $reason, %frame_opts): a close frame ($code undef: empty)
sub close_frame {
    my ($code, $reason, %o) = @_;
    my $p = defined $code ? pack('n', $code) . ($reason // '') : '';
    return frame(CLOSE, $p, %o);
}

# close_payload($payload) -> ($code, $reason): undef code for an empty one
sub close_payload {
    my ($p) = @_;
    return (undef, '') if length($p // '') < 2;
    return (unpack('n', $p), substr($p, 2));
}

# request($port, %o) -> the bytes of a handshake request:
#   path ('/v1/ws'), method ('GET'), version ('HTTP/1.1'), key,
#   token (as the access_token.<JWT> subprotocol), protocols (the whole
#   Sec-WebSocket-Protocol value), bearer (Authorization: Bearer),
#   omit => [default header names to leave out],
#   headers => [Name => value, ...] (added after the defaults)
sub request {
    my ($port, %o) = @_;
    my %omit = map { lc($_) => 1 } @{ $o{omit} // [] };
    my @h = (
        Host                    => "127.0.0.1:$port",
        Upgrade                 => 'websocket',
        Connection              => 'Upgrade',
        'Sec-WebSocket-Key'     => $o{key} // ws_key(),
        'Sec-WebSocket-Version' => 13,
    );
    my $protos = exists $o{protocols} ? $o{protocols}
               : defined $o{token}    ? "famcall.v1, access_token.$o{token}"
               :                        undef;
    push @h, 'Sec-WebSocket-Protocol' => $protos if defined $protos;
    push @h, Authorization => "Bearer $o{bearer}" if defined $o{bearer};

    my $req = sprintf "%s %s %s\r\n", $o{method} // 'GET', $o{path} // '/v1/ws',
                      $o{version} // 'HTTP/1.1';
    for (my $i = 0; $i < @h; $i += 2) {
        next if $omit{ lc $h[$i] } || !defined $h[$i + 1];
        $req .= "$h[$i]: $h[$i + 1]\r\n";
    }
    my @extra = @{ $o{headers} // [] };        # never omitted
    while (my ($k, $v) = splice @extra, 0, 2) { $req .= "$k: $v\r\n" }
    return "$req\r\n";
}

#-------------------------------------------------------------------------
# The connection
#-------------------------------------------------------------------------

# handshake($port, $request_bytes, %o) -> client object with
#   status, reason, headers ({lowercase name => value}), body, head (raw)
# after the response head (and, unless 101, its Content-Length body) is read.
#   also => bytes sent in the same write as the request (pipelined frames)
#   rcvbuf => N: SO_RCVBUF before connecting (a client slow to read)
#   timeout => seconds (5)
sub handshake {
    my ($class, $port, $req, %o) = @_;
    # unconnected first: a receive buffer must be set before the SYN
    my $sock = IO::Socket::INET->new(Proto => 'tcp') or croak "socket: $!";
    setsockopt($sock, SOL_SOCKET, SO_RCVBUF, $o{rcvbuf}) or croak "SO_RCVBUF: $!"
        if $o{rcvbuf};
    $sock->connect(pack_sockaddr_in($port, inet_aton('127.0.0.1')))
        or croak "connect to $port: $!";
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);    # small writes go at once
    binmode $sock;
    $sock->autoflush(1);
    my $self = bless { sock => $sock, buf => '', sel => IO::Select->new($sock),
                       pings => [] }, $class;
    $self->send($req . ($o{also} // ''));

    my $deadline = time + ($o{timeout} // 5);
    while ($self->{buf} !~ /\r\n\r\n/) {
        $self->_fill($deadline) or last;
    }
    my $end = index $self->{buf}, "\r\n\r\n";
    croak "no HTTP response head within the timeout: '$self->{buf}'" if $end < 0;
    my $head = substr $self->{buf}, 0, $end + 4, '';
    $self->{head} = $head;
    my ($status_line, @lines) = split /\r\n/, $head;
    @$self{qw(status reason)} = $status_line =~ m{^HTTP/1\.\d (\d{3}) ?(.*)$}
        or croak "bad status line '$status_line'";
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $self->{headers}{$k} = exists $self->{headers}{$k}
                             ? "$self->{headers}{$k}, $v" : $v;
    }
    if ($self->{status} != 101) {
        my $len = $self->{headers}{'content-length'} // 0;
        while (length $self->{buf} < $len) { $self->_fill($deadline) or last }
        $self->{body} = substr $self->{buf}, 0, $len, '';
    }
    return $self;
}

# connect($port, %o) -> a client past the 101 and the hello frame (in
# ->{hello}, decoded). %o: request options (token, bearer, ...), also,
# rcvbuf, and no_hello => 1 to leave the hello unread.
sub connect {
    my ($class, $port, %o) = @_;
    my $key = $o{key} //= ws_key();
    my $self = $class->handshake($port, request($port, %o), %o);
    croak "handshake refused: $self->{status} $self->{body}" unless $self->{status} == 101;
    croak 'bad Sec-WebSocket-Accept'
        unless ($self->{headers}{'sec-websocket-accept'} // '') eq ws_accept($key);
    unless ($o{no_hello}) {
        my $f = $self->next_frame(5);
        croak 'no hello frame' unless $f && ($f->{op} // -1) == TEXT;
        require Mojo::JSON;
        $self->{hello} = Mojo::JSON::decode_json($f->{payload});
    }
    return $self;
}

sub sock   { $_[0]{sock} }
sub status { $_[0]{status} }
sub header { $_[0]{headers}{ lc $_[1] } }
sub body   { $_[0]{body} }
sub hello  { $_[0]{hello} }
sub pings  { $_[0]{pings} }     # payloads of server pings skipped so far

# send(@byte_strings): one write per string (blocking: a test that wants
# several frames in one TCP segment concatenates them). False when the
# server is gone (EPIPE/ECONNRESET).
sub send {
    my ($self, @chunks) = @_;
    local $SIG{PIPE} = 'IGNORE';
    for my $bytes (@chunks) {
        my $off = 0;
        while ($off < length $bytes) {
            my $n = syswrite $self->{sock}, $bytes, length($bytes) - $off, $off;
            if (!defined $n) {
                next if $! == EINTR || $! == EAGAIN;
                return 0;
            }
            $off += $n;
        }
    }
    return 1;
}

# server_has_read() -> 1 once the server has read every byte sent on this
# connection so far, 'gone' once either end has closed (peer_has_read)
sub server_has_read {
    my ($self) = @_;
    return peer_has_read($self->{sock}->sockport, $self->{sock}->peerport);
}

# send_apart(@chunks): a write per chunk, each once the server has read the
# one before, so that it gets them in separate reads however busy the
# machine is. It stops, false, when the server closes (more bytes would
# only draw a reset) or has not read a chunk within 10 s.
sub send_apart {
    my ($self, @chunks) = @_;
    for my $c (@chunks) {
        $self->send($c) or return 0;
        my $read = wait_until { $self->server_has_read } 10, 'the server to read a chunk';
        return 0 if !$read || $read eq 'gone';
    }
    return 1;
}

# _fill($deadline): read what is there into buf; false on timeout/EOF/reset
sub _fill {
    my ($self, $deadline) = @_;
    return 0 if $self->{eof};
    my $left = $deadline - time;
    return 0 if $left <= 0 || !$self->{sel}->can_read($left);
    my $n = sysread $self->{sock}, my $chunk, 65536;
    if (!defined $n) {
        return 1 if $! == EINTR || $! == EAGAIN;
        $self->{eof} = ($! == ECONNRESET) ? 'reset' : "error: $!";
        return 0;
    }
    if ($n == 0) { $self->{eof} = 'eof'; return 0 }
    $self->{buf} .= $chunk;
    return 1;
}

# _parse: one server frame off the front of buf, or undef if incomplete
sub _parse {
    my ($self) = @_;
    my $b = \$self->{buf};
    return undef if length $$b < 2;
    my ($b0, $b1) = unpack 'CC', $$b;
    my $len = $b1 & 0x7f;
    my $pos = 2;
    if ($len == 126) {
        return undef if length $$b < 4;
        $len = unpack 'n', substr($$b, 2, 2);
        $pos = 4;
    } elsif ($len == 127) {
        return undef if length $$b < 10;
        $len = unpack 'Q>', substr($$b, 2, 8);
        $pos = 10;
    }
    my $masked = $b1 & 0x80;
    my $key;
    if ($masked) {
        return undef if length $$b < $pos + 4;
        $key = substr $$b, $pos, 4;
        $pos += 4;
    }
    return undef if length $$b < $pos + $len;
    my $payload = substr $$b, $pos, $len;
    substr($$b, 0, $pos + $len) = '';
    $payload ^= substr($key x (int($len / 4) + 1), 0, $len) if $masked;
    return { fin => $b0 >> 7, rsv => ($b0 >> 4) & 7, op => $b0 & 0x0f,
             masked => $masked ? 1 : 0, payload => $payload,
             header_len => $pos };
}

# next_frame($timeout, %o) -> the next frame the server sent, or
# {eof => 'eof'|'reset'|'error: ...'} once the connection ended with nothing
# left to read, or undef at the timeout. Server pings are skipped (their
# payloads collected in ->pings) unless pings => 1; answer_pings => 1
# answers each skipped ping with a pong.
sub next_frame {
    my ($self, $timeout, %o) = @_;
    my $deadline = time + ($timeout // 2);
    while (1) {
        while (my $f = $self->_parse) {
            if ($f->{op} == PING && !$o{pings}) {
                push @{ $self->{pings} }, $f->{payload};
                $self->send(frame(PONG, $f->{payload})) if $o{answer_pings};
                next;
            }
            return $f;
        }
        return { eof => $self->{eof} } if $self->{eof};
        $self->_fill($deadline) or $self->{eof} or return undef;
    }
}

# next_json($timeout) -> the next text frame decoded (undef if none, or
# {op => ...} for a frame that is not text)
sub next_json {
    my ($self, $timeout, %o) = @_;
    my $f = $self->next_frame($timeout, %o) or return undef;
    return $f if $f->{eof} || $f->{op} != TEXT;
    require Mojo::JSON;
    return eval { Mojo::JSON::decode_json($f->{payload}) } // { not_json => $f->{payload} };
}

# wait_eof($timeout) -> 'eof' | 'reset' | undef (still open): reads and
# drops frames until the server closes the TCP connection
sub wait_eof {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 3);
    while (1) {
        my $f = $self->next_frame($deadline - time, pings => 1);
        return $f->{eof} if $f && $f->{eof};
        return undef unless $f;
    }
}

sub close_socket {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    delete $self->{sock};
}

sub DESTROY { $_[0]->close_socket }

1;
