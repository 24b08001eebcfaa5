# The benchmark tools still work (bench/, docs/benchmarks.md): wsload's own
# self-test against a stand-in server, and tiny runs of the WebSocket and
# HTTP chat benchmarks against the real module, checked for what a run must
# show (every message acked and delivered once, seqs without gaps, a clean
# error log). Figures are not asserted: speed is for the benchmarks.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test;

plan skip_all => 'the bench scripts start nginx without ASan'
    if $ENV{FAMCALL_ASAN};

my $repo = Famcall::Test::repo_dir();
my $module = Famcall::Test::module_path();

# small, quick and leaving the machine's scheduler setting alone
local $ENV{BENCH_WAL_WARM} = 0;
local $ENV{BENCH_AUTOGROUP} = 'keep';
local $ENV{BENCH_SHARED_BUFFERS} = '256MB';

sub run_out {
    my ($what, @cmd) = @_;
    my $out = qx{cd '$repo' && @cmd 2>&1};
    is($?, 0, "$what exits 0") or diag $out;
    return $out;
}

my $self = run_out('wsload selftest', 'bench/ws/selftest.sh');
my @oks = $self =~ /^ok - /mg;
is(scalar @oks, 5, 'wsload selftest: five checks passed') or diag $self;

{
    local @ENV{qw(WS_PARTS WS_RATE WS_SECONDS WS_PAIRS WS_CONNS WS_DRAIN
                  WS_PROCS WS_WORKERS WS_HOLD BENCH_WAITS BENCH_PG_SET WS_CONF
                  WS_HISTORY)}
        = ('chat nodes hold', 400, 2, 40, 80, 5, 2, 2, 2, 1,
           'commit_delay=7 synchronous_commit=on', 'famcall_send_streams 1;',
           400);
    my $ws = run_out('bench/ws/run.sh: chat on one node and two, hold',
                     'bench/ws/run.sh', $module);
    my @runs = $ws =~ /^  sent (\d+), acked (\d+), errors (\d+), delivered (\d+) \(not acked (\d+), not delivered (\d+), foreign (\d+), echoed (\d+)/mg;
    is(scalar @runs, 16, 'two chat runs reported') or diag $ws;
    while (my @r = splice @runs, 0, 8) {
        is_deeply(\@r, [800, 800, 0, 800, 0, 0, 0, 0],
                  '800 sent, every one acked and delivered once');
    }
    like($ws, qr/^40 pairs of users set up, 400 older messages;/m,
         'WS_HISTORY: the database had messages before the runs');
    my @seq = $ws =~ /seq check: (\d+) conversations, (\d+) with seq exactly/g;
    is_deeply(\@seq, [40, 40, 40, 40],
              'seqs 1..last_seq after both runs, following the history')
        or diag $ws;
    my @err = $ws =~ /nginx error log: (\d+) lines/g;
    is_deeply(\@err, [0, 0, 0], 'nothing at error level in nginx logs');
    like($ws, qr/connected 80 of 80 .*dropped 0, closed by the server 0 .*clean closes 80/,
         'hold: every socket connected, held and closed cleanly');
    like($ws, qr/after 2s idle: +Pss [\d.]+ MiB \([+-]\d+ B per socket\)/,
         'hold: memory per socket reported');
    like($ws, qr/two nodes: .*1 worker\(s\) each; famcall_send_streams 1;/,
         'the nodes run says its workers and its streams');
    like($ws, qr/to the socket +p50 [\d.]+ ms/, 'kernel receive latency reported');
    like($ws, qr/over 25 ms by second of sending, % of its messages:\n +[\d.]+ [\d.]+\n/,
         'the share over 25 ms second by second');
    my @met = $ws =~ /seconds meeting p99 < 25 ms \(under 1% of their messages over it\): (\d+) of (\d+) after the warm-up/g;
    is(scalar @met, 4, 'both chat runs say how many seconds met the target') or diag $ws;
    is_deeply([@met[1, 3]], [2, 2], '... out of the 2 seconds each sent for');
    like($ws, qr/steal by second, ms of CPU:\n +\d/, 'steal second by second');
    like($ws, qr/buffers written out: \d+ by backends/, 'buffer writes reported');
    like($ws, qr/batch backends by second, % of samples in WAL fsync\/on a lock:\n +\d+\/\d+ /,
         'BENCH_WAITS: the batches\' waits second by second');
    like($ws, qr/WAL: \d+ records, \d+ full-page images, \d+ MB, [1-9]\d* flushes of [\d.]+ ms on average/,
         'WAL written and flushed during the run reported');
    like($ws, qr/WAL flush by second, ms: the slowest mean a backend reported in it:\n +[\d.]+ /,
         'WAL flush time second by second');
    like($ws, qr/CPU seconds by process: .*nginx [\d.]+.*postgres:listen [\d.]+.*postgres:pool [\d.]+/,
         'CPU by kind of process reported');
    like($ws, qr/waiting for a core, seconds \(ms per turn on one\): .*nginx [\d.]+ \([\d.]+\).*postgres:pool [\d.]+ \([\d.]+\)/,
         'run-queue waits by kind of process reported');
    like($ws, qr/waits for a core by second, nginx's and PostgreSQL's processes together, ms:\n +\d+ /,
         'run-queue waits second by second');
    like($ws, qr/^PostgreSQL set for this experiment: commit_delay=7 synchronous_commit=on$/m,
         'BENCH_PG_SET took: the report reads the settings back');
    like($ws, qr/^nginx set for this run: famcall_send_streams 1;$/m,
         'WS_CONF: the report names the nginx directives of the run');
}

{
    # a bad WS_HISTORY is refused before anything starts, not taken as 0
    local $ENV{WS_HISTORY} = '3M';
    my $out = qx{cd '$repo' && bench/ws/run.sh $module 2>&1};
    is($? >> 8, 2, 'WS_HISTORY=3M: run.sh exits 2');
    like($out, qr/^WS_HISTORY: a number of messages, not '3M'$/m, '... and says why');
}

{
    local @ENV{qw(BENCH_DURATION BENCH_PAIRS BENCH_CONNECTIONS)} = ('2s', 4, 8);
    my $http = run_out('bench/chat.sh', 'bench/chat.sh', $module);
    my ($n) = $http =~ /persisted: (\d+) messages/;
    ok($n && $n > 0, 'messages sent over HTTP were persisted') or diag $http;
    like($http, qr/seq check: 4 conversations, 4 with seq exactly/,
         'seqs 1..last_seq after the HTTP run');
    unlike($http, qr/Non-2xx/, 'every send answered 2xx');
}

{
    # the cost of an analyze, and the plans, per statistics target
    local @ENV{qw(USERS PER PAIRS MESSAGES)} = (3000, 2, 200, 6000);
    my $out = run_out('analyze-cost.sh conversations',
                      'bench/sql/analyze-cost.sh', 'conversations', 10, 0);
    like($out, qr/^6000 rows in conversations, /m, 'it loads 2 x PER conversations a user');
    like($out, qr/^target 10: analyze conversations, ms: (\d+\.\d ){5}$/m,
         'five analyzes timed at target 10');
    like($out, qr/^  distinct values estimated: user_hi=[-\d.]+ user_lo=[-\d.]+ $/m,
         '... with the estimates of the users');
    like($out, qr/by pair:\n.*conversations_pair_key/, '... and the plan by pair');
    like($out, qr/^target 0: analyze conversations, ms: (\d+\.\d ){5}\n  distinct values estimated: \n/m,
         'at target 0, no estimates');
    $out = run_out('analyze-cost.sh messages', 'bench/sql/analyze-cost.sh', 'messages', 30);
    like($out, qr/^6000 rows in messages, /m, 'MESSAGES older messages loaded');
    like($out, qr/^  distinct values estimated: conversation_id=[-\d.]+ sender_id=[-\d.]+ seq=[-\d.]+ $/m,
         'estimates of the three columns');
    my ($sync) = $out =~ /^  sync:\n(.*?)^  purge:/ms;
    like($sync // '', qr/Nested Loop\n.*conversation_members_user_idx.*\n(.*\n)*.*messages_conversation_seq_key/,
         "sync's plan: from the user's conversations to their messages by index");
    my $bad = qx{cd '$repo' && bench/sql/analyze-cost.sh messages 10x 2>&1};
    is($? >> 8, 2, 'a bad target: exit 2');
    like($bad, qr/a target is a number, not '10x'/, '... and says why');
    $bad = qx{cd '$repo' && bench/sql/analyze-cost.sh users 2>&1};
    is($? >> 8, 2, 'a table it does not know: exit 2');
    like($bad, qr/^usage: /, '... with the usage');
    $bad = qx{cd '$repo' && MESSAGES=3M bench/sql/analyze-cost.sh messages 2>&1};
    is($? >> 8, 2, 'MESSAGES=3M: exit 2');
    like($bad, qr/MESSAGES is a count, not '3M'/, '... and says why');
}

done_testing;
