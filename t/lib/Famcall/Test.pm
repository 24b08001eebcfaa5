package Famcall::Test;

# The famcall test harness: one hermetic stack (PostgreSQL + nginx with the
# module, and coturn when asked) per test file, plus helpers that keep the test files short.
# The POD at the end of this file is the manual; `perldoc t/lib/Famcall/Test.pm`.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256 hmac_sha512);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64url decode_base64url);
use Mojo::JSON qw(encode_json decode_json);
use Mojo::UserAgent;
use POSIX qw(WNOHANG);
use Test::Mojo;
use Test::More;
use Time::HiRes qw(sleep time);

our @EXPORT    = qw(run_cases);
our @EXPORT_OK = qw(run_cases check_json_response is_error body_json check_user
                    uuid_re jwt_sign jwt_parts b64url unb64url
                    render_conf nginx_t uniq repo_dir module_path new_uuid
                    wait_until peer_has_read);

my $REPO  = abs_path(dirname(__FILE__) . '/../../..');
my $NGINX = '/usr/sbin/nginx';
my $PGBIN = '/usr/lib/postgresql/15/bin';

my @LIVE;       # stacks not yet stopped, for the END safety net
my $SEQ = 0;    # uniq() counter

# prove -j and Ctrl-C: make sure END runs (and tears the stacks down) on
# SIGINT/SIGTERM instead of leaving nginx and postgres behind.
$SIG{INT}  = sub { exit 130 };
$SIG{TERM} = sub { exit 143 };

#-------------------------------------------------------------------------
# Small functions (exportable)
#-------------------------------------------------------------------------

sub repo_dir { $REPO }

# Absolute: nginx resolves a relative load_module path against its prefix.
sub module_path {
    require File::Spec;
    return File::Spec->rel2abs($ENV{FAMCALL_MODULE})
        if $ENV{FAMCALL_MODULE};
    return "$REPO/build/nginx/objs/ngx_http_famcall_module.so";
}

# A string unique for this test run: prefix . pid . 'x' . counter, lowercase,
# fit for usernames ([a-z0-9_.], <= 32 chars for a short prefix).
sub uniq {
    my $prefix = shift // 'u';
    $SEQ++;
    return lc("${prefix}${$}x$SEQ");
}

# wait_until { CONDITION } $timeout, $what -> the condition's first true
# value, or its last false one once $timeout seconds have passed (with a
# diag saying what was awaited and for how long). Tests wait for what they
# need (a row, a log line, a frame, a code past its expiry), never for a
# fixed time: a fixed sleep is too short on a loaded machine and wasted on
# an idle one. The condition runs at once, then after pauses that grow
# from 10 to 100 ms; it may do work of its own (read a socket, answer a
# ping). Set the timeout for the slowest run (ASan, a busy host): a passing
# test never waits it out.
sub wait_until(&$;$) {
    my ($cond, $timeout, $what) = @_;
    my $start = time;
    my $pause = 0.01;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        my $left = $start + $timeout - time;
        if ($left <= 0) {
            diag(sprintf 'waited %.1f s for %s, in vain', time - $start,
                 $what // 'a condition');
            return $v;
        }
        sleep($pause < $left ? $pause : $left);
        $pause = $pause * 2 < 0.1 ? $pause * 2 : 0.1;
    }
}

# peer_has_read($local_port, $peer_port) -> 1 once the other end of this
# loopback TCP connection has read every byte sent from this end (none is
# unacknowledged here, none waits unread in the peer's receive queue);
# 'gone' when either end is closed or gone (nothing more will be read);
# false otherwise. For tests that need the server to take bytes in separate
# reads, or to have taken a request in before their next step. The queues
# come from the kernel's socket diagnostics (netlink NETLINK_SOCK_DIAG, as
# `ss` reads them), looked up by address and port: no privilege needed, and
# a lookup costs the same however many sockets the host holds.
sub peer_has_read {
    my ($local, $peer) = @_;
    my ($wstate, undef, $unacked) = _tcp_queues($local, $peer);
    return 'gone' if !defined $wstate || $wstate != 1;  # 1: TCP_ESTABLISHED
    return 0 if $unacked;
    my ($rstate, $unread) = _tcp_queues($peer, $local);
    return 'gone' if !defined $rstate || $rstate != 1;
    return $unread ? 0 : 1;
}

# _tcp_queues($local_port, $remote_port) -> (state, receive queue, send
# queue) of the socket 127.0.0.1:$local_port -> 127.0.0.1:$remote_port, or
# () when there is none. For an established socket the receive queue is
# what its process has yet to read, the send queue what its peer has yet
# to acknowledge. Structures from linux/inet_diag.h and linux/netlink.h.
sub _tcp_queues {
    my ($local, $remote) = @_;
    my ($AF_NETLINK, $SOCK_DGRAM, $NETLINK_SOCK_DIAG) = (16, 2, 4);
    my ($SOCK_DIAG_BY_FAMILY, $NLM_F_REQUEST, $AF_INET, $IPPROTO_TCP) = (20, 1, 2, 6);
    socket(my $nl, $AF_NETLINK, $SOCK_DGRAM, $NETLINK_SOCK_DIAG)
        or die "netlink socket: $!";
    my $lo = pack('C4', 127, 0, 0, 1) . ("\0" x 12);
    # inet_diag_req_v2: family, protocol, ext, pad, states (all), then
    # inet_diag_sockid: ports (network order), addresses, interface, and
    # the cookie INET_DIAG_NOCOOKIE (look up by address alone)
    my $req = pack('CCCCL', $AF_INET, $IPPROTO_TCP, 0, 0, 0xffffffff)
            . pack('nn', $local, $remote) . $lo . $lo . pack('LLL', 0, 0xffffffff, 0xffffffff);
    my $msg = pack('LSSLL', 16 + length $req, $SOCK_DIAG_BY_FAMILY, $NLM_F_REQUEST, 1, 0) . $req;
    send($nl, $msg, 0, pack('SSLL', $AF_NETLINK, 0, 0, 0)) or die "netlink send: $!";
    defined recv($nl, my $res, 8192, 0) or die "netlink recv: $!";
    close $nl;
    # an inet_diag_msg (or NLMSG_ERROR: no such socket): family, state,
    # timer, retrans, sockid (48 bytes), expires, rqueue, wqueue, ...
    my (undef, $type) = unpack('LS', $res);
    return () unless $type == $SOCK_DIAG_BY_FAMILY && length $res >= 16 + 64;
    my $state = unpack('C', substr($res, 17, 1));
    my ($rqueue, $wqueue) = unpack('LL', substr($res, 16 + 56, 8));
    return ($state, $rqueue, $wqueue);
}

sub b64url   { encode_base64url($_[0]) }    # no padding, url alphabet
sub unb64url { decode_base64url($_[0]) }

# jwt_sign(\%header_or_json_string, \%payload_or_json_string, $key)
# Header/payload may be hashrefs (encoded with Mojo::JSON) or raw JSON strings
# (kept byte for byte). alg HS256 and HS512 are signed; anything else gets an
# empty signature (as `alg: none` would).
sub jwt_sign {
    my ($header, $payload, $key) = @_;
    my $h = ref $header  ? encode_json($header)  : $header;
    my $p = ref $payload ? encode_json($payload) : $payload;
    my $alg = ref $header ? $header->{alg} : (decode_json($h)->{alg} // '');
    my $input = b64url($h) . '.' . b64url($p);
    my $sig = $alg eq 'HS256' ? hmac_sha256($input, $key)
            : $alg eq 'HS512' ? hmac_sha512($input, $key)
            :                   '';
    return $input . '.' . b64url($sig);
}

# jwt_parts($token) -> ($header_hashref, $payload_hashref, $payload_json, $sig_b64)
sub jwt_parts {
    my ($token) = @_;
    my ($h, $p, $s) = split /\./, $token, -1;
    croak "not a JWT: $token" unless defined $s;
    my $pj = unb64url($p);
    return (decode_json(unb64url($h)), decode_json($pj), $pj, $s);
}

# Free loopback TCP port: bind to port 0 and ask the kernel.
sub _free_port {
    my $sock = IO::Socket::INET->new(
        Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
        ReuseAddr => 1,
    ) or die "cannot bind a loopback port: $!";
    my $port = $sock->sockport;
    close $sock;
    return $port;
}

# _run({ENV => val, ...}, \%io, @cmd): run a command, wait for it.
# %io: out => file for stdout (default: a temp file), err => file for
# stderr (default: same as out). Returns (exit_code, stdout_text, stderr_text).
# Output goes to files, not pipes, so a daemon that a script leaves running
# (pg_ctl start) cannot keep us waiting for EOF.
sub _run {
    my ($env, $io, @cmd) = @_;
    my $out = $io->{out} // do { my (undef, $f) = File::Temp::tempfile(UNLINK => 1); $f };
    my $err = $io->{err} // $out;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        if ($err eq $out) { open STDERR, '>&', \*STDOUT }
        else              { open STDERR, '>', $err or POSIX::_exit(126) }
        while (my ($k, $v) = each %$env) {
            if (defined $v) { $ENV{$k} = $v } else { delete $ENV{$k} }
        }
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    my $slurp = sub { open my $fh, '<', $_[0] or return ''; local $/; <$fh> // '' };
    return ($rc, $slurp->($out), $err eq $out ? '' : $slurp->($err));
}

# worker_start_leaks_only($report): true when a LeakSanitizer report holds
# nothing but the arrays nginx allocates once as a worker starts (its
# connections and their read and write events: ngx_alloc from
# ngx_event_process_init, under ngx_worker_process_init and
# ngx_worker_process_cycle, static functions that Debian's stripped nginx
# leaves unnamed). nginx frees them by exiting, and they point only at each
# other, so LeakSanitizer calls them leaked whenever no stale pointer into
# them happens to survive in the exiting worker (one run of t/12 in six to
# sixteen here). A stack with a frame of ours, of any library, or of the event
# loop (ngx_process_events_and_timers) does not match; nor does any other
# kind of report.
sub worker_start_leaks_only {
    my ($report) = @_;
    return 0 unless $report =~ /ERROR: LeakSanitizer: detected memory leaks/
                and $report !~ /ERROR: AddressSanitizer/;
    my @blocks = $report =~ /^((?:Direct|Indirect) leak of .*?)(?=^\s*$|^SUMMARY|\z)/msg;
    return 0 unless @blocks;
    for my $b (@blocks) {
        my @frames = $b =~ /^\s+#\d+ 0x[0-9a-f]+ (.*)$/mg;
        my $i = 1;
        return 0 unless @frames > 5 && $frames[0] =~ /^in (?:__interceptor_)?malloc /
                        && $frames[$i++] =~ m{^in ngx_alloc \(/usr/sbin/nginx\+};
        for (1 .. 3) {      # the three static functions, unnamed
            return 0 unless $frames[$i++] =~ m{^ \(/usr/sbin/nginx\+0x[0-9a-f]+\)$};
        }
        return 0 unless $frames[$i] =~ m{^in ngx_spawn_process \(/usr/sbin/nginx\+};
    }
    return 1;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    local $/;
    return <$fh>;
}

sub _spew {
    my ($file, $text, $mode) = @_;
    open my $fh, '>', $file or die "write $file: $!";
    print $fh $text;
    close $fh or die "write $file: $!";
    chmod $mode, $file if defined $mode;
}

# Environment for every nginx run (also `nginx -t`): the ASan runtime must be
# preloaded when the module was built with -fsanitize=address (Debian's nginx
# is not). $asan_log: where reports go; undef: stderr, leaks off (nginx -t
# leaks its whole cycle by design).
sub _nginx_env {
    my ($asan_log) = @_;
    return {} unless $ENV{FAMCALL_ASAN};
    chomp(my $lib = `gcc -print-file-name=libasan.so`);
    die "FAMCALL_ASAN: no libasan.so (gcc -print-file-name gave '$lib')\n" unless -e $lib;
    # (The module pins itself in memory when built with ASan, so leak
    # reports still name its frames after nginx's dlclose() at exit.)
    my %env = (LD_PRELOAD => $lib);
    $env{ASAN_OPTIONS} = defined $asan_log
        ? "detect_leaks=1:fast_unwind_on_malloc=0:log_path=$asan_log:abort_on_error=0"
        : "detect_leaks=0:abort_on_error=0";
    $env{LSAN_OPTIONS} = "suppressions=$REPO/t/asan.supp:print_suppressions=0"
        if -e "$REPO/t/asan.supp";
    return \%env;
}

# render_conf(%opts) -> nginx.conf text, via scripts/render-conf.sh.
# opts: data (dir, required), http_port, pg_port, turn_port, extra_conf
# (file), module, bind. The TURN directives are rendered when $data/turn.key
# exists. On loopback, whatever FAMCALL_BIND the caller has, unless bind
# names another address (the NAT suites' public namespace).
sub render_conf {
    my (%o) = @_;
    my ($rc, $out, $err) = _run({
            FAMCALL_DATA_DIR   => $o{data},
            FAMCALL_HTTP_PORT  => $o{http_port} // 1,
            FAMCALL_PG_PORT    => $o{pg_port} // 1,
            FAMCALL_TURN_PORT  => $o{turn_port} // 3478,
            FAMCALL_BIND       => $o{bind} // '127.0.0.1',
            FAMCALL_EXTRA_CONF => $o{extra_conf} // "$o{data}/extra.conf",
            FAMCALL_WORKERS    => $o{workers},
            FAMCALL_LOG_LEVEL  => $o{log_level},
        }, { out => "$o{data}/.render.out", err => "$o{data}/.render.err" },
        "$REPO/scripts/render-conf.sh", $o{module} // module_path());
    die "render-conf.sh failed ($rc):\n$err$out" if $rc;
    unlink "$o{data}/.render.out", "$o{data}/.render.err";
    return $out;
}

# nginx_t($data_dir, $conf_file) -> ($exit_code, $output): `nginx -t`.
sub nginx_t {
    my ($data, $conf) = @_;
    my ($rc, $out) = _run(_nginx_env(undef), {},
        $NGINX, '-t', '-p', "$data/", '-c', $conf, '-e', "$data/log/nginx-error.log");
    return ($rc, $out);
}

#-------------------------------------------------------------------------
# The stack
#-------------------------------------------------------------------------

sub new {
    my ($class, %opts) = @_;
    my $self = bless {
        opts      => \%opts,
        owner     => $$,
        module    => $opts{module} // module_path(),
        http_port => _free_port(),
        bind      => $opts{bind} // '127.0.0.1',
    }, $class;
    do { $self->{pg_port} = _free_port() } while $self->{pg_port} == $self->{http_port};

    # node_of => $stack: one more nginx node on that stack's database, with
    # its key (as `make node` does); its PostgreSQL is not ours to stop.
    if (my $main = $opts{node_of}) {
        $self->{pg_port} = $main->pg_port;
        $self->{pg_dir}  = "$main->{data}/pg";
        $self->{jwt_key} = $main->jwt_key;
        # the same coturn, as `make node` shares it
        @$self{qw(turn_key turn_port)} = @$main{qw(turn_key turn_port)};
    }

    $self->{nginx_wanted} = $opts{nginx} // 1;
    if ($self->{nginx_wanted} && !-e $self->{module}) {
        die "famcall module not found at $self->{module}: run `make build` "
          . "(or set FAMCALL_MODULE)\n";
    }

    # Short path: the PostgreSQL socket is $data/pg/.s.PGSQL.<port> and a
    # unix socket path is limited to 107 bytes.
    my $data = tempdir('famcall-t-XXXX', DIR => '/tmp', CLEANUP => 0);
    $self->{data} = $data;
    push @LIVE, $self;

    # Other users must reach into it: postgres runs as `postgres` (it refuses
    # root) and nginx workers run as `nobody` (they write sms.log, ASan logs).
    chmod 0755, $data;
    make_path("$data/log", "$data/nginx-tmp");
    chmod 01777, "$data/log";

    $self->{pg_dir} //= "$data/pg";
    $self->_start_pg unless $opts{node_of};
    $self->_start_turn if $opts{turn};
    _spew("$data/turn.key", $self->{turn_key}, 0600) if $self->{turn_key};
    $self->_start_nginx if $self->{nginx_wanted};
    return $self;
}

# turn => 1: coturn through scripts/turn.sh (as `make run` starts it) on a
# free loopback port, its secret in turn.key (which also makes nginx serve
# GET /v1/turn), its relay ports in a range of its own; stop() ends it.
sub _start_turn {
    my ($self) = @_;
    my $data = $self->{data};
    do { $self->{turn_port} = _free_port() }
        while grep { $_ == $self->{turn_port} } @$self{qw(http_port pg_port)};
    open my $rnd, '<:raw', '/dev/urandom' or die "urandom: $!";
    read $rnd, my $bytes, 32;
    close $rnd;
    $self->{turn_key} = unpack 'H*', $bytes;
    _spew("$data/turn.key", $self->{turn_key}, 0600);

    # 200 relay ports somewhere in 50000-64999, so that two suites (or a
    # `make run` on 49160-49660) seldom share any; coturn skips busy ones
    my $min = 50000 + 200 * int(rand 75);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$data/log/turnserver-stdout.log";
        open STDERR, '>&', \*STDOUT;
        @ENV{qw(FAMCALL_DATA_DIR FAMCALL_TURN_PORT FAMCALL_BIND FAMCALL_TURN_RELAY_PORTS)}
            = ($data, $self->{turn_port}, $self->{bind}, "$min-" . ($min + 199));
        if (my $tls = $self->{opts}{turn_tls}) {
            @ENV{qw(FAMCALL_TURN_TLS_PORT FAMCALL_TURN_CERT FAMCALL_TURN_PKEY)}
                = @$tls{qw(port cert key)};
        }
        { no warnings "exec"; exec "$REPO/scripts/turn.sh"; }
        print STDERR "exec scripts/turn.sh: $!\n";
        POSIX::_exit(127);
    }
    $self->{turn_pid} = $pid;

    # up once it takes a TCP connection (it opens UDP and TCP together)
    my $up = wait_until {
        die "coturn exited at startup (status $?):\n"
          . (_slurp("$data/log/turnserver.log") // '')
          . (_slurp("$data/log/turnserver-stdout.log") // '')
            if waitpid($pid, WNOHANG) == $pid;
        IO::Socket::INET->new(PeerAddr => $self->{bind}, PeerPort => $self->{turn_port},
                              Proto => 'tcp', Timeout => 1);
    } 15, 'coturn to listen';
    die "coturn did not listen on port $self->{turn_port}:\n"
      . (_slurp("$data/log/turnserver.log") // '') unless $up;
}

sub turn_port { $_[0]{turn_port} }
sub turn_key  { $_[0]{turn_key} }
sub turn_log  { _slurp("$_[0]{data}/log/turnserver.log") // '' }

sub data_dir  { $_[0]{data} }
sub http_port { $_[0]{http_port} }
sub pg_port   { $_[0]{pg_port} }
sub bind_addr { $_[0]{bind} }
sub base_url  { "http://$_[0]{bind}:$_[0]{http_port}" }

# url('/v1/me') -> 'http://127.0.0.1:PORT/v1/me'
sub url { my ($self, $path) = @_; return $self->base_url . ($path // '/') }

# libpq environment for psql / migrate.sh.
sub pg_env {
    my ($self) = @_;
    return {
        PGHOST => $self->{pg_dir}, PGPORT => $self->{pg_port},
        PGUSER => 'famcall', PGDATABASE => 'famcall',
        PGPASSWORD => undef, PGSERVICE => undef, PGOPTIONS => undef,
    };
}

sub _pg_sh {
    my ($self, @args) = @_;
    my $script = "$REPO/scripts/pg.sh";
    die "$script is missing\n" unless -x $script;
    my ($rc, $out) = _run({ FAMCALL_PG_FAST => 1 }, {}, $script, @args);
    die "scripts/pg.sh @args failed (exit $rc):\n$out" if $rc;
    return $out;
}

sub _start_pg {
    my ($self) = @_;
    my $pg = "$self->{data}/pg";
    $self->_pg_sh(init  => $pg, $self->{pg_port});
    $self->_pg_sh(start => $pg, $self->{pg_port});
    $self->{pg_running} = 1;
    my ($rc, $out) = _run($self->pg_env, {}, "$REPO/scripts/migrate.sh");
    die "scripts/migrate.sh failed (exit $rc):\n$out" if $rc;
}

sub pg_stop {
    my ($self) = @_;
    $self->_pg_sh(stop => "$self->{data}/pg");
    $self->{pg_running} = 0;
}

sub pg_start {
    my ($self) = @_;
    $self->_pg_sh(start => "$self->{data}/pg", $self->{pg_port});
    $self->{pg_running} = 1;
}

# psql($sql) -> output of `psql -X -At` (rows on lines, columns split by |).
# Dies with psql's stderr when the statement fails.
sub psql {
    my ($self, $sql) = @_;
    my ($rc, $out, $err) = _run($self->pg_env,
        { out => "$self->{data}/.psql.out", err => "$self->{data}/.psql.err" },
        '/usr/bin/psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', $sql);
    die "psql failed (exit $rc): $err\nSQL: $sql\n" if $rc;
    chomp $out;
    return $out;
}

sub _write_extra_conf {
    my ($self) = @_;
    # Defaults for speed (Argon2id at its cheapest), then the test's own.
    my $extra = "famcall_password_opslimit 1;\nfamcall_password_memlimit 8m;\n"
              . ($self->{opts}{extra_conf} // '') . "\n";
    _spew("$self->{data}/extra.conf", $extra);
}

sub _start_nginx {
    my ($self) = @_;
    my $data = $self->{data};

    # 32 random bytes as 64 hex characters, no newline: the key is the text.
    unless ($self->{jwt_key}) {
        open my $rnd, '<:raw', '/dev/urandom' or die "urandom: $!";
        read $rnd, my $bytes, 32;
        close $rnd;
        $self->{jwt_key} = unpack 'H*', $bytes;
    }
    _spew("$data/jwt.key", $self->{jwt_key}, 0644);

    $self->_write_extra_conf;
    my $conf = render_conf(
        data => $data, http_port => $self->{http_port}, pg_port => $self->{pg_port},
        turn_port => $self->{turn_port}, bind => $self->{bind},
        extra_conf => "$data/extra.conf", module => $self->{module},
        workers => $self->{opts}{workers}, log_level => $self->{opts}{log_level},
    );
    # conf_edit: a test's own change to the rendered nginx.conf (in $_), for
    # what extra_conf cannot do (replace a directive of the template).
    if (my $edit = $self->{opts}{conf_edit}) {
        local $_ = $conf;
        $edit->();
        croak 'conf_edit changed nothing' if $_ eq $conf;
        $conf = $_;
    }
    _spew("$data/nginx.conf", $conf);

    my ($rc, $out) = nginx_t($data, "$data/nginx.conf");
    die "nginx -t failed (exit $rc):\n$out\n--- extra.conf:\n"
      . _slurp("$data/extra.conf") if $rc;

    my $env = _nginx_env("$data/log/asan");
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);    # our own group: a Ctrl-C to prove reaches us, not nginx
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$data/log/nginx-stdout.log";
        open STDERR, '>&', \*STDOUT;
        $ENV{$_} = $env->{$_} for keys %$env;
        no warnings "exec";
        exec $NGINX, '-p', "$data/", '-c', "$data/nginx.conf",
             '-e', "$data/log/nginx-error.log";
        print STDERR "exec nginx: $!\n";
        POSIX::_exit(127);
    }
    $self->{nginx_pid} = $pid;
    $self->_wait_nginx_up;
}

sub _wait_nginx_up {
    my ($self) = @_;
    my $deadline = time + ($ENV{FAMCALL_ASAN} ? 60 : 15);
    while (time < $deadline) {
        if (waitpid($self->{nginx_pid}, WNOHANG) == $self->{nginx_pid}) {
            delete $self->{nginx_pid};
            die "nginx exited at startup (status $?):\n" . $self->_error_log_tail(40);
        }
        my $sock = IO::Socket::INET->new(
            PeerAddr => $self->{bind}, PeerPort => $self->{http_port},
            Proto => 'tcp', Timeout => 1,
        );
        if ($sock) {
            # The master listens before the workers run: wait for an answer.
            print $sock "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
            my $line = <$sock>;
            return if defined $line && $line =~ m{^HTTP/1\.\d \d{3}};
        }
        sleep 0.05;
    }
    die "nginx did not answer on port $self->{http_port}:\n" . $self->_error_log_tail(40);
}

# error_log() -> the text of nginx's error log so far
sub error_log { _slurp("$_[0]{data}/log/nginx-error.log") // '' }

sub _error_log_tail {
    my ($self, $n) = @_;
    my $log = _slurp("$self->{data}/log/nginx-error.log") // '';
    $log .= _slurp("$self->{data}/log/nginx-stdout.log") // '';
    my @l = split /\n/, $log;
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l) . "\n";
}


# start_pushd(%conf) -> pid: the push dispatcher (dispatcher/, as `make
# run` starts it) on this stack's database, its configuration the
# defaults below, then %conf ("name value" lines of famcall-pushd.conf),
# in $data/pushd-<n>.conf; its log in $data/log/pushd-<n>.log. The binary:
# $FAMCALL_PUSHD, else build/pushd-asan/ under FAMCALL_ASAN (its
# sanitizer reports then fail the teardown), else build/pushd/. stop()
# ends it (SIGTERM) and fails on a crash or a sanitizer report; so does
# stop_pushd($pid).
sub start_pushd {
    my ($self, %conf) = @_;
    my $data = $self->{data};
    my $n = ++$self->{pushd_seq};
    my %c = (db => "host=$self->{pg_dir} port=$self->{pg_port} dbname=famcall user=famcall",
             poll_ms => 200, receipt_poll_ms => 200, backoff_base_ms => 200,
             backoff_max_ms => 2000, %conf);
    _spew("$data/pushd-$n.conf", join('', map { "$_ $c{$_}\n" } sort keys %c));
    my $bin = $ENV{FAMCALL_PUSHD}
        // ($ENV{FAMCALL_ASAN} ? "$REPO/build/pushd-asan/famcall-pushd"
                              : "$REPO/build/pushd/famcall-pushd");
    die "famcall-pushd not found at $bin: run `make build`\n" unless -x $bin;
    my $log = "$data/log/pushd-$n.log";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        if ($ENV{FAMCALL_ASAN}) {
            $ENV{ASAN_OPTIONS} = "detect_leaks=1:log_path=$data/log/asan-pushd-$n";
            $ENV{UBSAN_OPTIONS} = "print_stacktrace=1:log_path=$data/log/asan-pushd-$n";
        }
        { no warnings "exec"; exec $bin, '-c', "$data/pushd-$n.conf", '-v'; }
        print STDERR "exec $bin: $!\n";
        POSIX::_exit(127);
    }
    $self->{pushd}{$pid} = $n;
    $self->{pushd_live}{$pid} = 1;
    wait_until { (_slurp($log) // '') =~ /listening on famcall_outbox/
                 or waitpid($pid, WNOHANG) == $pid && die "famcall-pushd exited:\n" . (_slurp($log) // '') }
        ($ENV{FAMCALL_ASAN} ? 60 : 15), 'famcall-pushd to listen'
        or die "famcall-pushd did not start:\n" . (_slurp($log) // '');
    return $pid;
}

# pushd_log($pid) -> the text of that dispatcher's log so far
sub pushd_log {
    my ($self, $pid) = @_;
    return _slurp("$self->{data}/log/pushd-$self->{pushd}{$pid}.log") // '';
}

# stop_pushd($pid, $signal) -> a list of problems (empty: it exited 0 on
# SIGTERM, no sanitizer report). $signal KILL: no checks, as a crash.
sub stop_pushd {
    my ($self, $pid, $sig) = @_;
    delete $self->{pushd_live}{$pid} or return;
    my $n = $self->{pushd}{$pid};
    $sig //= 'TERM';
    kill $sig, $pid;
    my $gone = wait_until { waitpid($pid, WNOHANG) == $pid } 30, 'famcall-pushd to exit';
    my $status = $?;
    return () if $sig eq 'KILL';
    my @problems;
    unless ($gone) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        push @problems, "famcall-pushd $pid did not exit on SIG$sig";
    }
    push @problems, "famcall-pushd $pid exited with status $status" if $gone && $status;
    for my $f (sort glob "$self->{data}/log/asan-pushd-$n.*") {
        push @problems, "sanitizer report $f:\n" . (_slurp($f) // '');
    }
    return @problems;
}

# Children of the master (its workers), from /proc.
sub worker_pids { $_[0]->_worker_pids }
sub nginx_pid   { $_[0]{nginx_pid} }

sub _worker_pids {
    my ($self) = @_;
    my $master = $self->{nginx_pid} or return ();
    my @pids;
    for my $st (glob '/proc/[0-9]*/stat') {
        my $s = _slurp($st) // next;
        # pid (comm) state ppid ...; comm may hold spaces and parens.
        push @pids, $1 if $s =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $master;
    }
    return @pids;
}

# nginx_reload(extra_conf => '...'?): optionally replace the test's extra
# directives, re-render, `nginx -t`, SIGHUP, and wait until the old workers
# are gone and new ones run.
sub nginx_reload {
    my ($self, %o) = @_;
    my $data = $self->{data};
    if (exists $o{extra_conf}) {
        $self->{opts}{extra_conf} = $o{extra_conf};
        $self->_write_extra_conf;
    }
    my ($rc, $out) = nginx_t($data, "$data/nginx.conf");
    die "nginx -t failed before reload (exit $rc):\n$out" if $rc;
    my %old = map { $_ => 1 } $self->_worker_pids;
    kill 'HUP', $self->{nginx_pid};
    wait_until { my @now = $self->_worker_pids; @now && !grep { $old{$_} } @now }
        $ENV{FAMCALL_ASAN} ? 60 : 15, 'new workers in place of the old'
        or die "nginx reload did not replace the workers:\n" . $self->_error_log_tail(20);
    return 1;
}

# hold_lock($table, $secs[, $mode]) -> pid: a psql session holds $table in
# $mode ('exclusive' unless given, or for example 'share row exclusive')
# for $secs (the writes that need it wait); returns once the lock is
# granted. The caller waitpid()s.
sub hold_lock {
    my ($self, $table, $secs, $mode) = @_;
    $mode //= 'exclusive';
    (my $name = join '', map { ucfirst } split / /, $mode) .= 'Lock';
    return $self->_hold("lock table $table in $mode mode", $secs,
        "select count(*) from pg_locks where relation = '$table'::regclass "
        . "and mode = '$name' and granted");
}

# hold_row($table, $id, $secs) -> pid: the same for one row (by id), locked
# FOR UPDATE: only the writes to that row wait.
sub hold_row {
    my ($self, $table, $id, $secs) = @_;
    return $self->_hold("select 1 from $table where id = '$id' for update /* hold_row */",
        $secs,
        "select count(*) from pg_stat_activity where state = 'active' "
        . "and query like '%hold_row%pg_sleep%' and pid <> pg_backend_pid()");
}

# a psql session: begin, $sql, then pg_sleep($secs) and commit; returns
# once $ready (a count) is non-zero, or after 5 s
sub _hold {
    my ($self, $sql, $secs, $ready) = @_;
    my $env = $self->pg_env;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        for (keys %$env) { defined $env->{$_} ? ($ENV{$_} = $env->{$_}) : delete $ENV{$_} }
        open STDOUT, '>', '/dev/null';
        { exec '/usr/bin/psql', '-X', '-q', '-c',
              "begin; $sql; select pg_sleep($secs); commit;" }
        POSIX::_exit(1);
    }
    wait_until { $self->psql($ready) } 5, 'the lock held';
    return $pid;
}

# forgive_kill($pid): a test killed that worker on purpose; its "exited on
# signal 9" alert is taken out of the error log, which teardown checks.
sub forgive_kill {
    my ($self, $pid) = @_;
    my $log = "$self->{data}/log/nginx-error.log";
    my $text = _slurp($log) // '';
    $text =~ s/^.*worker process \Q$pid\E exited on signal 9.*\n//mg;
    _spew($log, $text);
}

# server_tcp_nodelay($client_sock) -> 1 or 0, or undef with a reason: the
# TCP_NODELAY option of the worker's end of $client_sock, read through a copy
# of the worker's descriptor (pidfd_getfd, Linux 5.6+, needs ptrace rights).
sub server_tcp_nodelay {
    my ($self, $client) = @_;
    require 'syscall.ph';
    require Socket;    # TCP_NODELAY
    my $port = $client->sockport;
    my $name = $client->sockname;     # the worker's end has it as its peer
    for my $pid ($self->_worker_pids) {
        my $pidfd = syscall(&SYS_pidfd_open, $pid + 0, 0);
        return (undef, "pidfd_open: $!") if $pidfd < 0;
        for my $path (glob "/proc/$pid/fd/*") {
            next unless (readlink($path) // '') =~ /^socket:/;
            my ($n) = $path =~ m{/(\d+)$};
            my $fd = syscall(&SYS_pidfd_getfd, $pidfd, $n + 0, 0);
            if ($fd < 0) { POSIX::close($pidfd); return (undef, "pidfd_getfd: $!") }
            open(my $h, '+<&=', $fd) or do { POSIX::close($fd); next };
            my $ours = (getpeername($h) // '') eq $name;
            my $opt = $ours && getsockopt($h, Socket::IPPROTO_TCP(), Socket::TCP_NODELAY());
            close $h;
            next unless $ours;
            POSIX::close($pidfd);
            return $opt ? (unpack('i', $opt) ? 1 : 0) : (undef, "getsockopt: $!");
        }
        POSIX::close($pidfd);
    }
    return (undef, "no worker holds the other end of port $port");
}

#-------------------------------------------------------------------------
# HTTP helpers
#-------------------------------------------------------------------------

# A Mojo::UserAgent whose relative URLs ('/v1/me') go to this stack.
sub ua {
    my ($self) = @_;
    return $self->{ua} //= do {
        my $ua = Mojo::UserAgent->new(
            connect_timeout => 5, inactivity_timeout => 20,
            request_timeout => $self->{opts}{request_timeout} // 10,
            max_redirects => 0,
        );
        my ($host, $port) = @$self{qw(bind http_port)};
        $ua->on(prepare => sub {
            my $url = $_[1]->req->url;
            $url->scheme('http')->host($host)->port($port) unless $url->is_abs;
        });
        $ua;
    };
}

# A Test::Mojo on the same user agent: $s->t->get_ok('/healthz')->status_is(200)
sub t {
    my ($self) = @_;
    return $self->{t} //= do { my $t = Test::Mojo->new; $t->ua($self->ua); $t };
}

# json_req($method, $path, $body, $token, \%headers) -> Mojo::Transaction::HTTP
#   $body: undef (no body), a ref (sent as JSON), or a string (sent as is,
#   with Content-Type application/json unless %headers sets one).
#   $token: sent as `Authorization: Bearer $token` when defined.
sub json_req {
    my ($self, $method, $path, $body, $token, $headers) = @_;
    my %h = %{ $headers // {} };
    $h{Authorization} = "Bearer $token" if defined $token && !exists $h{Authorization};
    my @body;
    if (defined $body) {
        @body = ref $body ? (encode_json($body)) : ($body);
        $h{'Content-Type'} = 'application/json'
            unless grep { lc eq 'content-type' } keys %h;
    }
    delete $h{$_} for grep { !defined $h{$_} } keys %h;    # undef: do not send
    my $tx = $self->ua->build_tx($method => $path => \%h => @body);
    return $self->ua->start($tx);
}

# raw_http($bytes) -> Mojo::Message::Response: send bytes as they are on a
# fresh connection (for requests Mojo would not build: no Host, bad syntax)
# and parse what comes back until the server closes or 5 s pass.
sub raw_http {
    my ($self, $bytes) = @_;
    my $sock = IO::Socket::INET->new(
        PeerAddr => $self->{bind}, PeerPort => $self->{http_port}, Proto => 'tcp',
        Timeout => 5,
    ) or die "connect: $!";
    print $sock $bytes;
    my $data = '';
    my $deadline = time + 5;
    require IO::Select;
    my $sel = IO::Select->new($sock);
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread $sock, my $buf, 65536;
        last unless $n;
        $data .= $buf;
    }
    close $sock;
    require Mojo::Message::Response;
    return Mojo::Message::Response->new->parse($data);
}

# Response JSON (undef when the body is not JSON).
sub body_json {
    my ($tx) = @_;
    my $b = $tx->res->body;
    my $j = eval { decode_json($b) };
    return $j;
}

# signup(%fields) -> the 201 body ({access_token, refresh_token, user, ...})
# plus `password` and `email` as sent. Unset fields get unique valid values.
sub signup {
    my ($self, %f) = @_;
    my $u = uniq('u');
    $f{email}        //= "$u\@example.com";
    $f{username}     //= $u;
    $f{password}     //= 'correct horse battery';
    $f{display_name} //= "User $u";
    my $tx = $self->json_req(POST => '/v1/auth/signup', \%f);
    my $code = $tx->res->code // 'no response: ' . ($tx->error->{message} // '?');
    croak "signup failed: $code " . $tx->res->body unless $code eq '201';
    my $res = decode_json($tx->res->body);
    $res->{password} = $f{password};
    $res->{email}    = $f{email};
    return $res;
}

# sms_code($phone) -> the last code the `log` driver wrote for this phone
# (waits up to 3 s for it to appear), or undef.
sub sms_code {
    my ($self, $phone) = @_;
    return wait_until {
        my @codes = (_slurp("$self->{data}/sms.log") // '') =~ /^\Q$phone\E (\d+)$/mg;
        $codes[-1];
    } 3, "a code for $phone in sms.log";
}

# How many codes were sent to $phone so far.
sub sms_count {
    my ($self, $phone) = @_;
    my $log = _slurp("$self->{data}/sms.log") // '';
    my @codes = $log =~ /^\Q$phone\E (\d+)$/mg;
    return scalar @codes;
}

sub jwt_key { $_[0]{jwt_key} }

# new_uuid() -> a random (version 4) UUID string, lowercase: client_id
# values, ids that exist nowhere.
sub new_uuid {
    open my $fh, '<:raw', '/dev/urandom' or die "urandom: $!";
    read $fh, my $b, 16;
    close $fh;
    substr($b, 6, 1) = chr((ord(substr $b, 6, 1) & 0x0f) | 0x40);
    substr($b, 8, 1) = chr((ord(substr $b, 8, 1) & 0x3f) | 0x80);
    my $h = unpack 'H*', $b;
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
                     substr($h, 16, 4), substr($h, 20);
}

sub _want {
    my ($tx, $what, @codes) = @_;
    my $code = $tx->res->code // 0;
    return body_json($tx) if grep { $_ == $code } @codes;
    croak "$what: expected @codes, got "
        . ($code || 'no response: ' . ($tx->error->{message} // '?'))
        . ' ' . substr($tx->res->body // '', 0, 300);
}

# befriend($a, $b): $a asks $b to be a contact and $b accepts, through the
# API ($a, $b: signup() results). Croaks unless both steps succeed; returns
# the accepted contact object $b gets.
sub befriend {
    my ($self, $a, $b) = @_;
    _want($self->json_req(POST => '/v1/contacts', { user_id => $b->{user}{id} },
                          $a->{access_token}), 'befriend: request', 200, 201);
    return _want($self->json_req(POST => "/v1/contacts/$a->{user}{id}/accept",
                                 undef, $b->{access_token}), 'befriend: accept', 200);
}

# open_conversation($a, $b) -> the conversation object $a gets from
# POST /v1/conversations (201 or 200); croaks otherwise.
sub open_conversation {
    my ($self, $a, $b) = @_;
    return _want($self->json_req(POST => '/v1/conversations', { user_id => $b->{user}{id} },
                                 $a->{access_token}), 'open_conversation', 200, 201);
}

# send_message($user, $conversation_id, $body, $client_id?) -> the
# transaction of POST /v1/conversations/{id}/messages (a fresh client_id
# unless one is given).
sub send_message {
    my ($self, $user, $conv, $body, $client_id) = @_;
    return $self->json_req(POST => "/v1/conversations/$conv/messages",
        { client_id => $client_id // new_uuid(), body => $body }, $user->{access_token});
}

#-------------------------------------------------------------------------
# Data-driven requests
#-------------------------------------------------------------------------

# run_cases($s, \@cases): one subtest per case. A case:
#   name     test name (default "METHOD PATH")
#   method   default GET; path (required)
#   body     a Perl structure sent as JSON; or
#   raw      a string sent as is (Content-Type application/json unless
#            `headers` sets another or undef to send none)
#   headers  request headers; token: a bearer token
#   status   expected HTTP status (required)
#   code     expected error.code (for status >= 400: required)
#   field    expected error.field; `field => undef` asserts there is none
#   res_headers  { Name => 'exact' or qr/.../ } to check in the response
#   check    sub { my ($tx, $json) = @_; ... } for anything else
# Every response must be Content-Type application/json (except 204), and an
# error must have the envelope {"error": {"code", "message", ...}}.
sub run_cases {
    my ($s, $cases) = @_;
    for my $c (@$cases) {
        my $method = $c->{method} // 'GET';
        my $name = $c->{name} // "$method $c->{path}";
        subtest $name => sub {
            my $body = exists $c->{raw} ? $c->{raw} : $c->{body};
            my $tx = $s->json_req($method, $c->{path}, $body, $c->{token}, $c->{headers});
            my $res = $tx->res;
            if (!$res->code) {
                fail('got a response');
                diag('transport error: ' . ($tx->error->{message} // '?'));
                return;
            }
            is($res->code, $c->{status}, "status $c->{status}")
                or diag('body: ' . substr($res->body, 0, 500));
            check_json_response($tx, $c);
            for my $h (sort keys %{ $c->{res_headers} // {} }) {
                my $want = $c->{res_headers}{$h};
                my $got = $res->headers->header($h);
                if (ref $want eq 'Regexp') { like($got // '', $want, "header $h") }
                else                       { is($got, $want, "header $h") }
            }
            $c->{check}->($tx, body_json($tx)) if $c->{check};
        };
    }
}

# check_json_response($tx, {code => ..., field => ...}): the checks every
# response gets: JSON content type; for errors, the envelope shape.
sub check_json_response {
    my ($tx, $c) = @_;
    my $res = $tx->res;
    if ($res->code == 204) {
        is($res->body, '', '204 has no body');
        return;
    }
    like($res->headers->content_type // '', qr{^application/json\b}i,
         'Content-Type application/json');
    my $json = body_json($tx);
    ok(ref $json eq 'HASH', 'body is a JSON object')
        or return diag('body: ' . substr($res->body, 0, 500));
    return unless $res->code >= 400;
    my $err = $json->{error};
    ok(ref $err eq 'HASH', 'error envelope') or return diag('body: ' . $res->body);
    is($err->{code}, $c->{code}, "error.code $c->{code}") if defined $c->{code};
    ok(defined $err->{message} && !ref $err->{message} && length $err->{message},
       'error.message is a non-empty string');
    if (exists $c->{field}) {
        is($err->{field}, $c->{field},
           defined $c->{field} ? "error.field $c->{field}" : 'no error.field');
    }
}

# check_user($user, $name): the user object's shape (docs/api.md):
# every key present, id a UUID, created_at RFC 3339 UTC with a Z and not far
# from now, nothing else that should stay on the server.
my $UUID_RE = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
sub uuid_re { $UUID_RE }

sub check_user {
    my ($user, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $name //= 'user';
    subtest "$name object shape" => sub {
        ok(ref $user eq 'HASH', 'is an object') or return;
        is_deeply([sort keys %$user],
                  [sort qw(id username display_name avatar_url email phone created_at)],
                  'exactly the documented keys');
        like($user->{id} // '', $UUID_RE, 'id is a UUID string');
        ok(defined $user->{display_name} && !ref $user->{display_name}, 'display_name is a string');
        for my $k (qw(username avatar_url email phone)) {
            ok(!ref $user->{$k}, "$k is a string or null");
        }
        my $ts = $user->{created_at} // '';
        like($ts, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/, 'created_at RFC 3339 UTC (Z)');
        if ($ts =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/) {
            require Time::Local;
            my $t = Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1);
            cmp_ok(abs($t - CORE::time()), '<', 3600, 'created_at is close to now (UTC)');
        }
    };
}

# Assert one error response quickly: is_error($tx, 401, 'unauthorized', $field?)
sub is_error {
    my ($tx, $status, $code, @field) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = is($tx->res->code, $status, "status $status ($code)");
    diag('body: ' . substr($tx->res->body // '', 0, 500)) unless $ok;
    my $json = body_json($tx) // {};
    $ok &= is(eval { $json->{error}{code} }, $code, "error.code $code");
    $ok &= is(eval { $json->{error}{field} }, $field[0], "error.field " . ($field[0] // 'none'))
        if @field;
    return $ok;
}

#-------------------------------------------------------------------------
# Teardown
#-------------------------------------------------------------------------

# stop(): stop nginx (SIGQUIT, wait for the master), check its logs, stop
# PostgreSQL, remove the data dir (kept with FAMCALL_KEEP=1). Run the checks
# as tests: call it before done_testing. Idempotent. The END block calls it
# for stacks a test left running (then problems are reported with diag and
# the exit status, since the plan is already out).
sub stop {
    my ($self, %o) = @_;
    return if $self->{stopped} || $self->{owner} != $$;
    $self->{stopped} = 1;
    @LIVE = grep { $_ != $self } @LIVE;
    my $data = $self->{data};
    my @problems;

    if (my $pid = delete $self->{nginx_pid}) {
        kill 'QUIT', $pid;
        my $deadline = time + ($ENV{FAMCALL_ASAN} ? 60 : 20);
        my $gone;
        while (time < $deadline) {
            if (waitpid($pid, WNOHANG) == $pid) { $gone = 1; last }
            sleep 0.05;
        }
        unless ($gone) {
            push @problems, "nginx master $pid did not exit on SIGQUIT; killed";
            my @w = (_worker_pids({ nginx_pid => $pid }));
            kill 'KILL', $pid, @w;
            waitpid $pid, 0;
        }

        # Error log: [alert], [emerg] and crashes are failures.
        my @bad = grep { /\[(?:alert|emerg)\]|segfault|exited on signal/ }
                  split /\n/, _slurp("$data/log/nginx-error.log") // '';
        push @problems, "nginx-error.log has alerts/crashes:\n" . join("\n", @bad) if @bad;

        # AddressSanitizer / LeakSanitizer reports.
        for my $f (sort glob "$data/log/asan.*") {
            my $report = _slurp($f) // '';
            next if worker_start_leaks_only($report);
            push @problems, "sanitizer report $f:\n$report";
        }
    }

    for my $pid (sort keys %{ $self->{pushd_live} // {} }) {
        push @problems, $self->stop_pushd($pid);
    }

    if (my $pid = delete $self->{turn_pid}) {
        kill 'TERM', $pid;
        my $gone = wait_until { waitpid($pid, WNOHANG) == $pid } 10, 'coturn to exit';
        unless ($gone) {
            push @problems, "coturn $pid did not exit on SIGTERM; killed";
            kill 'KILL', $pid;
            waitpid $pid, 0;
        }
    }

    if ($self->{pg_running} && -d "$data/pg") {
        eval { $self->pg_stop; 1 } or push @problems, "pg.sh stop: $@";
    }

    if ($o{from_end}) {
        if (@problems) {
            diag("teardown of $data:\n" . join("\n", @problems));
            $? ||= 1;
        }
    } elsif ($self->{nginx_wanted}) {
        ok(!@problems, 'teardown: nginx exited cleanly, no alerts or sanitizer reports')
            or diag(join "\n", @problems);
    } elsif (@problems) {
        fail('teardown');
        diag(join "\n", @problems);
    }

    my $failed = grep { !$_ } Test::More->builder->summary;
    if ($failed && -d $data && !$o{from_end}) {
        diag("last lines of $data/log/nginx-error.log:\n" . $self->_error_log_tail(30))
            if -s "$data/log/nginx-error.log";
    }
    if ($ENV{FAMCALL_KEEP}) { diag("kept $data") }
    else                    { remove_tree($data) }
}

sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    $self->stop(from_end => 1) unless $self->{stopped};
}

END {
    my $status = $?;
    $_->stop(from_end => 1) for grep { $_->{owner} == $$ } @LIVE;
    $? = $status if $status && !$?;
}

1;

__END__

=head1 NAME

Famcall::Test - a hermetic famcall stack (PostgreSQL + nginx) per test file

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::More;
    use Famcall::Test qw(run_cases);

    my $s = Famcall::Test->new(extra_conf => 'famcall_max_body_size 1k;');
    $s->t->get_ok('/healthz')->status_is(200)->json_is('/status', 'ok');

    run_cases($s, [
        { path => '/nope', status => 404, code => 'not_found' },
        { method => 'POST', path => '/v1/auth/login', raw => '{',
          status => 400, code => 'invalid_json' },
    ]);

    my $a = $s->signup;               # {access_token, refresh_token, user, password, email}
    my $tx = $s->json_req(GET => '/v1/me', undef, $a->{access_token});

    $s->stop;                         # teardown checks run as tests
    done_testing;

=head1 WHAT new() DOES

=over

=item * a data dir C</tmp/famcall-t-XXXX> (short: the PostgreSQL socket lives in
C<$data/pg>), with C<log/> and C<nginx-tmp/>;

=item * two free loopback ports (HTTP, PostgreSQL);

=item * C<scripts/pg.sh init> and C<start> (C<FAMCALL_PG_FAST=1>), then
C<scripts/migrate.sh> with C<PGHOST=$data/pg PGPORT PGUSER=famcall PGDATABASE=famcall>;

=item * C<$data/jwt.key>: 64 random hex characters, no newline;

=item * C<$data/extra.conf>: C<famcall_password_opslimit 1; famcall_password_memlimit 8m;>
and the C<extra_conf> option;

=item * C<$data/nginx.conf> from C<scripts/render-conf.sh>, checked with
C<nginx -t> (dies with its output), then nginx in the foreground of a child
process; returns when it answers HTTP.

=back

Options: C<turn =E<gt> 1> (coturn for the suite, from C<scripts/turn.sh>:
a free loopback port, its own secret in C<$data/turn.key>, 0600, which also
configures C<GET /v1/turn>; stopped with the stack), C<turn_tls =E<gt>
{port, cert, key}> (coturn takes TLS there too), C<bind> (the address nginx
and coturn listen on, and the harness talks to: C<FAMCALL_BIND>; default
127.0.0.1; the NAT suites use their public namespace's, Famcall::Netns), C<extra_conf> (http-level directives), C<conf_edit> (a sub that edits the rendered nginx.conf in C<$_>), C<nginx =E<gt> 0> (PostgreSQL
only), C<module> (path of the .so), C<workers>, C<log_level>,
C<request_timeout> (client, seconds; default 10).

Environment: C<FAMCALL_MODULE> (the .so; default
C<build/nginx/objs/ngx_http_famcall_module.so>), C<FAMCALL_ASAN> (preload
libasan; sanitizer reports under C<$data/log/asan.*> fail the teardown,
but for a leak report of nothing but the arrays nginx allocates as a worker
starts (C<worker_start_leaks_only>); suppressions from C<t/asan.supp> if
present), C<FAMCALL_KEEP> (keep the data
dir).

=head1 METHODS

C<url($path)>, C<base_url>, C<ua> (Mojo::UserAgent; relative URLs go to the
stack), C<t> (Test::Mojo on that agent), C<json_req($method, $path, $body,
$token, \%headers)> (returns the transaction), C<signup(%fields)>,
C<sms_code($phone)>, C<sms_count($phone)>, C<psql($sql)>, C<pg_stop>,
C<befriend($a, $b)> (accepted contacts through the API),
C<open_conversation($a, $b)> (the conversation object),
C<send_message($user, $conversation_id, $body, $client_id?)> (the transaction),
C<pg_start>, C<nginx_reload(extra_conf =E<gt> ...)>, C<error_log> (its text so far), C<data_dir>,
C<http_port>, C<bind_addr>, C<pg_port>, C<jwt_key>, C<turn_port>, C<turn_key>, C<turn_log>, C<worker_pids>, C<hold_lock($table,
$secs)>, C<forgive_kill($pid)>, C<server_tcp_nodelay($client_socket)>,
C<start_pushd(%conf)> (the push dispatcher on this stack's database;
C<stop> ends and checks it), C<stop_pushd($pid, $signal)>,
C<pushd_log($pid)>, C<stop>.

Functions: C<run_cases($s, \@cases)> (exported; see the comment above it for
the case keys), C<check_json_response>, C<is_error($tx, $status, $code,
$field?)>, C<body_json($tx)>, C<jwt_sign>, C<jwt_parts>, C<b64url>,
C<unb64url>, C<uniq($prefix)>, C<new_uuid>, C<render_conf>, C<nginx_t>,
C<wait_until { ... } $timeout, $what>, C<peer_has_read($local_port,
$peer_port)>.

=head1 WAITING

A test never sleeps a fixed time for something to happen: it waits for
what it needs with C<wait_until>, which polls a condition until it holds or
a deadline passes (a row, a log line, a frame, a code past its expiry by the
database's clock):

    my $online = wait_until { $s->psql($count) == 1 } 10, 'the presence row';
    ok($online, 'online');

Where the server must take bytes in separate reads, the next write waits
until it has read the last one: C<peer_has_read>, or
C<Famcall::RawWS::send_apart>. The deadline is for the slowest run (ASan, a
busy host); a passing test never waits it out. Fixed waits are left only
where a test shows that something does I<not> happen within a time.

=head1 TEARDOWN

C<stop> sends SIGQUIT to the nginx master and waits for it, then fails if
C<nginx-error.log> has C<[alert]>/C<[emerg]> lines, C<segfault> or
C<exited on signal>, or if an ASan report exists; then C<scripts/pg.sh stop>
and the data dir is removed. An END block does the same for stacks a test
did not stop (problems then go to diag and the exit status).

=cut
