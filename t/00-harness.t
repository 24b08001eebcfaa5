#!/usr/bin/env perl
# The harness's own judgement of a sanitizer report (t/lib/Famcall/Test.pm,
# worker_start_leaks_only): the one LeakSanitizer report it lets pass is
# nginx's per-worker arrays at exit; anything else still fails a teardown.
# The fixture is a real report of make test-asan (t/12), so the judgement is
# tested on what LeakSanitizer prints, not on a report written to fit it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Famcall::Test;

my $report = do {
    local (@ARGV, $/) = "$FindBin::Bin/fixtures/asan-worker-start-leak.txt";
    <>;
};
my $ok = \&Famcall::Test::worker_start_leaks_only;

ok($ok->($report), "nginx's connection and event arrays, leaked at a worker's exit: passed");

my %variants = (
    'a frame of the module in the stack' => sub {
        s{#3 0x\S+  \(/usr/sbin/nginx\+0x[0-9a-f]+\)}
         {#3 0x7f0bb3000000 in ngx_famcall_gw_init (/x/ngx_http_famcall_module.so+0x1)} },
    'allocated in the event loop' => sub {
        s{#4 0x\S+  \(/usr/sbin/nginx\+0x[0-9a-f]+\)}
         {#4 0x55c8661c0000 in ngx_process_events_and_timers (/usr/sbin/nginx+0x4b000)} },
    'one more leak, of ours, beside them' => sub {
        s{^SUMMARY}{Direct leak of 64 byte(s) in 1 object(s) allocated from:
    #0 0x7f0bb36b89cf in __interceptor_malloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x7f0bb3000100 in ngx_famcall_json_dup (/x/ngx_http_famcall_module.so+0x100)
    #2 0x55c8661c1cfe in ngx_alloc (/usr/sbin/nginx+0x4ccfe)

SUMMARY}m },
    'not a leak report' => sub { s/LeakSanitizer: detected memory leaks/AddressSanitizer: heap-use-after-free/ },
    'allocated by another nginx function than ngx_alloc' => sub { s/in ngx_alloc /in ngx_pstrdup /g },
    'one unnamed frame more (deeper in the worker start, as epoll\'s list)' => sub {
        s{(#2 0x\S+  \(/usr/sbin/nginx\+0x47af7\)\n)}{$1    #3 0x55c8661bd000  (/usr/sbin/nginx+0x48000)\n} },
    'empty' => sub { $_ = '' },
);
for my $name (sort keys %variants) {
    local $_ = $report;
    $variants{$name}->();
    isnt($_, $report, "$name: the fixture was changed") unless $name eq 'empty';
    ok(!$ok->($_), "$name: reported");
}

done_testing;
