# The mobile app's static checks: TypeScript (strict) and ESLint with no
# errors or warnings, the component tests (jest-expo, Testing Library:
# every screen), and the native configuration as `expo config` and
# `expo prebuild --no-install` make it: the camera and microphone
# permission texts and the plugins. Native binaries are not built here
# (no Android SDK or Xcode); t/60-mobile-web.t drives the web build.
use strict;
use warnings;
use lib 't/lib';

use File::Temp qw(tempdir);
use Mojo::JSON qw(decode_json);
use Test::More;
use Famcall::Test;

my $mobile = Famcall::Test::repo_dir() . '/mobile';
ok(-d "$mobile/node_modules/expo", 'mobile/node_modules is installed')
    or BAIL_OUT('run `make deps` first (npm ci in mobile/)');

sub run_in {
    my ($dir, $cmd) = @_;
    my $out = `cd '$dir' && CI=1 $cmd 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = run_in($mobile, 'npx tsc --noEmit');
is($rc, 0, 'tsc --noEmit (strict): no errors') or diag($out);

($rc, $out) = run_in($mobile, 'npx eslint --max-warnings 0 .');
is($rc, 0, 'eslint: no errors, no warnings') or diag($out);

# Jest, its results read from its JSON report.
my $tmp = tempdir('famcall-jest-XXXX', DIR => '/tmp', CLEANUP => 1);
($rc, $out) = run_in($mobile, "npx jest --ci --forceExit --json --outputFile='$tmp/jest.json'");
my $res = eval { decode_json(do { local (@ARGV, $/) = "$tmp/jest.json"; <> }) };
ok($res, 'jest wrote its JSON results') or diag($out);
$res //= {};
my ($passed, $failed) = ($res->{numPassedTests} // 0, $res->{numFailedTests} // 0);
note("jest: $passed passed, $failed failed");
is($rc, 0, "jest: $passed passed, $failed failed") or diag($out);
cmp_ok($passed, '>=', 40, 'jest ran the screen tests');
my %suites = map { ($_->{name} =~ m{([^/]+)\.test\.tsx?$})[0] => $_->{status} }
             @{ $res->{testResults} // [] };
for my $s (qw(auth lists chat call settings account lib)) {
    is($suites{$s}, 'passed', "jest suite $s");
}

# What the native builds would be configured with.
($rc, $out) = run_in($mobile, 'npx expo config --type introspect --json');
is($rc, 0, 'expo config --type introspect');
my $cfg = eval { decode_json($out =~ /(\{.*\})/s ? $1 : $out) } // {};
my $plist = $cfg->{_internal}{modResults}{ios}{infoPlist} // {};
like($plist->{NSCameraUsageDescription} // '', qr/camera .*see you/,
     'iOS: the camera permission text');
like($plist->{NSMicrophoneUsageDescription} // '', qr/microphone .*hear you/,
     'iOS: the microphone permission text');
my @perms = map { $_->{'$'}{'android:name'} }
            @{ $cfg->{_internal}{modResults}{android}{manifest}{manifest}{'uses-permission'} // [] };
for my $p (qw(CAMERA RECORD_AUDIO POST_NOTIFICATIONS)) {
    ok((grep { $_ eq "android.permission.$p" } @perms), "Android: $p permission");
}
my %hist = %{ $cfg->{_internal}{pluginHistory} // {} };
ok($hist{$_}, "plugin $_ applied") for qw(react-native-webrtc expo-notifications expo-secure-store);

# prebuild writes android/ and ios/: in a copy, so the tree stays clean.
my $copy = tempdir('famcall-prebuild-XXXX', DIR => '/tmp', CLEANUP => 1);
system("cd '$mobile' && tar cf - --exclude=./node_modules --exclude=./dist --exclude=./android --exclude=./ios . | tar xf - -C '$copy'") == 0
    or die "copy: $?";
symlink("$mobile/node_modules", "$copy/node_modules") or die "symlink: $!";
($rc, $out) = run_in($copy, 'npx expo prebuild --no-install');
is($rc, 0, 'expo prebuild --no-install') or diag($out);
my $manifest = do { local (@ARGV, $/) = "$copy/android/app/src/main/AndroidManifest.xml"; <> } // '';
like($manifest, qr/android\.permission\.CAMERA/, 'AndroidManifest.xml asks for the camera');
my ($info) = glob "$copy/ios/*/Info.plist";
my $plist_xml = $info ? do { local (@ARGV, $/) = $info; <> } : '';
like($plist_xml, qr{<key>NSMicrophoneUsageDescription</key>\s*<string>famcall uses the microphone},
     'Info.plist explains the microphone');

done_testing;
