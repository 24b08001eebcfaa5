# The load generator of the benchmarks (bench/ws/wsload) against a stand-in
# server, bench/ws/selftest.sh: no famcall, no database, a few seconds. The
# suite tests the product; the benchmarks themselves are checked by
# `make bench-selftest` (bench/selftest.sh), outside it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test;

my $repo = Famcall::Test::repo_dir();
my $out = qx{cd '$repo' && bench/ws/selftest.sh 2>&1};
is($?, 0, 'bench/ws/selftest.sh passes') or diag $out;

done_testing;
