package Famcall::Mobile;

# What the mobile app's browser suites (t/60-mobile-*.t) share: the web
# build (`expo export`), a stack whose nginx serves it beside the API (one
# origin, as deployed), and a browser script of mobile/e2e/ run with its
# steps reported as tests.

use strict;
use warnings;

use Exporter qw(import);
use File::Temp qw(tempdir);
use Mojo::JSON qw(decode_json);
use Test::More;
use Famcall::Test;

our @EXPORT_OK = qw(mobile_dir web_build web_stack run_browser);

sub mobile_dir { Famcall::Test::repo_dir() . '/mobile' }

# web_build() -> the folder of the exported web app; fails (and bails out)
# when the packages or the browser are missing.
sub web_build {
    my $mobile = mobile_dir();
    ok(-d "$mobile/node_modules/expo", 'mobile/node_modules is installed')
        or BAIL_OUT('run `make deps` first (npm ci in mobile/)');
    ok(-x '/usr/bin/chromium', 'Debian chromium is installed')
        or BAIL_OUT('run `make deps` first (chromium)');
    my $dist = tempdir('famcall-web-XXXX', DIR => '/tmp', CLEANUP => 1);
    chmod 0755, $dist;    # nginx's workers (nobody) read it
    my $log = `cd '$mobile' && CI=1 npx expo export --platform web --output-dir '$dist' 2>&1`;
    is($?, 0, 'expo export --platform web') or diag($log);
    return $dist;
}

# web_stack($dist, %harness_options) -> a Famcall::Test stack whose nginx
# serves the app at / and the API at /v1/ and /healthz.
sub web_stack {
    my ($dist, %o) = @_;
    return Famcall::Test->new(
        %o,
        conf_edit => sub {
            s{location / \{\s*famcall_api;\s*\}}{
        location /v1/ { famcall_api; }
        location = /healthz { famcall_api; }
        location / {
            types { text/html html; application/javascript js; text/css css;
                    image/png png; application/json json; }
            root $dist;
            try_files \$uri /index.html;
        }}s;
        },
    );
}

# run_browser($script, \%env, $timeout) -> the script's last line ({done,
# failed, facts}) or undef; each {"step"} line it prints is a test.
sub run_browser {
    my ($script, $env, $timeout) = @_;
    local @ENV{ keys %$env } = values %$env;
    my (@logs, $done);
    my $tail = sub { join "\n", @logs > 30 ? @logs[-30 .. -1] : @logs };
    my $pid = open(my $fh, '-|', 'node', mobile_dir() . "/e2e/$script") // die "node: $!";
    eval {
        local $SIG{ALRM} = sub { kill 'TERM', $pid; die "timed out after $timeout s\n" };
        alarm $timeout;
        while (my $line = <$fh>) {
            my $ev = eval { decode_json($line) };
            if (!$ev) { push @logs, $line; next }
            if (exists $ev->{step}) {
                ok($ev->{ok}, $ev->{step})
                    or diag(($ev->{info} // '') . "\n" . $tail->());
                note("$ev->{step}: $ev->{ms} ms");
            } elsif ($ev->{done}) {
                $done = $ev;
            } elsif ($ev->{log}) {
                push @logs, $ev->{log};
            }
        }
        alarm 0;
        1;
    } or fail("the browser run ($script): $@");
    close $fh;
    ok($done, "the browser run ($script) finished") or diag($tail->());
    is($done && $done->{failed}, 0, 'no browser step failed');
    return $done;
}

1;
