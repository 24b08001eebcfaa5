package Famcall::PushMock;

# The mock push providers for t/7x (t/push/mock-providers.js): Expo, FCM
# HTTP v1 with its OAuth2 endpoint, APNs (HTTP/2 over TLS) and an SMS
# webhook, with fresh keys for the stack: a TLS certificate for APNs, an
# RSA service account for FCM and an EC .p8 key for APNs, whose public
# halves the mock verifies the dispatcher's JWTs with.
#
#   my $mock = Famcall::PushMock->start;          # before the stack, whose
#                                                 # conf may name webhook_url
#   my $pid = $stack->start_pushd($mock->pushd_conf);
#   $mock->config(down => { apns => JSON::true });
#   my @pushes = $mock->log;     # what the providers accepted, in order
#   $mock->stop;                 # also at the end of the test

use strict;
use warnings;

use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Mojo::JSON qw(encode_json decode_json);
use Mojo::UserAgent;
use POSIX qw(WNOHANG);
use Famcall::Test qw(wait_until repo_dir);

my @LIVE;

sub _sh {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "$cmd: $out" if $?;
    return $out;
}

sub start {
    my ($class) = @_;
    my $dir = tempdir('famcall-push-XXXX', DIR => '/tmp', CLEANUP => 1);
    _sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        . "-keyout $dir/tls.key -out $dir/tls.crt -days 2 -subj /CN=localhost "
        . "-addext subjectAltName=IP:127.0.0.1");
    _sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $dir/fcm.key");
    _sh("openssl pkey -in $dir/fcm.key -pubout -out $dir/fcm.pub");
    _sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $dir/apns.p8");
    _sh("openssl pkey -in $dir/apns.p8 -pubout -out $dir/apns.pub");

    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/mock.log";
        open STDERR, '>&', \*STDOUT;
        no warnings 'exec';
        exec 'node', repo_dir() . '/t/push/mock-providers.js', '--dir', $dir,
             '--cert', "$dir/tls.crt", '--key', "$dir/tls.key",
             '--fcm-pub', "$dir/fcm.pub", '--apns-pub', "$dir/apns.pub";
        POSIX::_exit(127);
    }
    my $self = bless { dir => $dir, pid => $pid, ua => Mojo::UserAgent->new }, $class;
    push @LIVE, $self;
    wait_until { -e "$dir/ports.json" } 15, 'the mock providers to listen'
        or die "mock providers did not start:\n" . `cat $dir/mock.log`;
    $self->{ports} = decode_json(`cat $dir/ports.json`);
    $self->{base} = "http://127.0.0.1:$self->{ports}{http}";

    # the FCM service account, as Google hands it out, pointing at the mock
    open my $fh, '<', "$dir/fcm.key" or die;
    my $key = do { local $/; <$fh> };
    open my $out, '>', "$dir/service-account.json" or die;
    print $out encode_json({
        type => 'service_account', project_id => 'famcall-test',
        client_email => 'pushd@famcall-test.iam.gserviceaccount.com',
        private_key => $key, token_uri => "$self->{base}/fcm/token",
    });
    close $out;
    return $self;
}

sub base { $_[0]{base} }
sub webhook_url { "$_[0]{base}/webhook" }

# the dispatcher's configuration for these mocks (start_pushd's %conf)
sub pushd_conf {
    my ($self, %over) = @_;
    my $d = $self->{dir};
    return (
        expo_url => "$self->{base}/expo/send",
        expo_receipts_url => "$self->{base}/expo/receipts",
        receipt_delay => 0,
        fcm_url => "$self->{base}/fcm",
        fcm_service_account => "$d/service-account.json",
        apns_url => "https://127.0.0.1:$self->{ports}{apns}",
        apns_key_file => "$d/apns.p8",
        apns_key_id => 'KEYID12345',
        apns_team_id => 'TEAMID1234',
        apns_topic => 'org.famcall.test',
        ca_file => "$d/tls.crt",
        %over,
    );
}

sub log {
    my ($self) = @_;
    return @{ $self->{ua}->get("$self->{base}/_mock/log")->result->json };
}

sub stats { $_[0]{ua}->get("$_[0]{base}/_mock/stats")->result->json }

sub config {
    my ($self, %c) = @_;
    my $res = $self->{ua}->post("$self->{base}/_mock/config", json => \%c)->result;
    die 'mock config: ' . $res->body unless $res->is_success;
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    @LIVE = grep { $_ != $self } @LIVE;
}

END { $_->stop for @LIVE }

1;
