#!/usr/bin/env perl
# A stand-in for famcall's gateway, only to self-test wsload (never for
# figures): GET /v1/ws with the famcall.v1 subprotocol and the access token
# as the second one, HS256 checked with the same key file; hello; pings
# every --ping seconds and closes with 4000 a socket silent for --idle
# seconds (so a client that does not answer pings shows up as closed);
# message:send between the two users of a conversation of the pairs file:
# ack to the sender, message:new to the other user's sockets.
# On SIGTERM prints "pongs=N sockets=N" to stderr.
#
# perl bench/ws/fake_server.pl --pairs PAIRS --secret KEY \
#      --listen http://127.0.0.1:P [--listen http://127.0.0.1:Q] [--ping 1] [--idle 3]
use Mojolicious::Lite -signatures;
use Mojo::IOLoop;
use Mojo::JSON qw(decode_json encode_json);
use Mojo::Util qw(b64_decode);
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64);
use Getopt::Long;

my ($pairs, $secret, $ping, $idle, @listen) = (undef, undef, 30, 75);
GetOptions('pairs=s' => \$pairs, 'secret=s' => \$secret, 'listen=s' => \@listen,
           'ping=f' => \$ping, 'idle=f' => \$idle) or die "bad options\n";

open my $kf, '<', $secret or die "$secret: $!\n";
my $key = do { local $/; <$kf> };
$key =~ s/[\r\n]+\z//;

my %members;    # conversation -> [a, b]
open my $pf, '<', $pairs or die "$pairs: $!\n";
while (<$pf>) {
    my ($a, undef, $b, undef, $conv) = split;
    $members{$conv} = [$a, $b] if $conv;
}

my %sockets;    # user -> { id => controller }
my ($pongs, $opened, $seq) = (0, 0, 0);

sub b64url ($s) { my $e = encode_base64($s, ''); $e =~ tr{+/}{-_}; $e =~ s/=+\z//; $e }
sub unb64url ($s) { $s =~ tr{-_}{+/}; $s .= '=' x ((4 - length($s) % 4) % 4); b64_decode($s) }

# the claims of a valid token, or undef
sub verify ($tok) {
    my ($h, $p, $sig) = split /\./, $tok // '';
    return undef unless defined $sig && b64url(hmac_sha256("$h.$p", $key)) eq $sig;
    my $hdr = eval { decode_json(unb64url($h)) } or return undef;
    my $cl = eval { decode_json(unb64url($p)) } or return undef;
    return undef unless ($hdr->{alg} // '') eq 'HS256' && ($cl->{iss} // '') eq 'famcall'
        && ($cl->{exp} // 0) > time && ($cl->{sub} // '') =~ /^[0-9a-f-]{36}\z/;
    return $cl;
}

websocket '/v1/ws' => sub ($c) {
    my ($tok) = ($c->req->headers->sec_websocket_protocol // '') =~ /access_token\.([^,\s]+)/;
    my $cl = verify($tok);
    return $c->render(status => 401, json => {error => {code => 'unauthorized',
                                                        message => 'bad token'}})
        unless $cl && $c->tx->with_protocols('famcall.v1');

    my $me = $cl->{sub};
    my $id = ++$opened;
    $sockets{$me}{$id} = $c;
    $c->inactivity_timeout(3600);
    my $last = time;
    my $timer = Mojo::IOLoop->recurring($ping => sub {
        return $c->finish(4000) if time - $last > $idle;
        $c->send([1, 0, 0, 0, 9, 'p']);
    });
    $c->on(frame => sub ($ws, $f) { $last = time; $pongs++ if $f->[4] == 10 });
    $c->on(finish => sub { Mojo::IOLoop->remove($timer); delete $sockets{$me}{$id} });
    $c->on(message => sub ($ws, $text) {
        my $ev = eval { decode_json($text) };
        my $ref = $ev->{ref};
        my $conv = $ev && $members{$ev->{data}{conversation_id} // ''};
        if (!$ev || ($ev->{type} // '') ne 'message:send' || !$conv
            || !grep { $_ eq $me } @$conv) {
            return $c->send(encode_json({type => 'error', ref => $ref,
                error => {code => 'not_found', message => 'no such conversation'}}));
        }
        my $msg = {id => sprintf('00000000-0000-4000-8000-%012d', ++$seq),
                   conversation_id => $ev->{data}{conversation_id}, seq => $seq,
                   sender_id => $me, client_id => $ev->{data}{client_id},
                   body => $ev->{data}{body}, sent_at => time,
                   delivered_at => undef, read_at => undef};
        $c->send(encode_json({type => 'ack', ref => $ref, data => $msg}));
        my $new = encode_json({type => 'message:new', data => $msg});
        for my $u (@$conv) {
            for my $sid (keys %{$sockets{$u} // {}}) {
                $sockets{$u}{$sid}->send($new) unless $sid == $id;
            }
        }
    });
    $c->send(encode_json({type => 'hello', data => {user_id => $me,
        expires_at => $cl->{exp}, ping_interval => $ping}}));
};

$SIG{TERM} = sub { print STDERR "pongs=$pongs sockets=$opened\n"; exit 0 };
app->log->level('warn');
app->start('daemon', '--clients=30000', map { ('-l', $_) } @listen);
