# famcall: `make run` starts the local stack, `make test` runs every suite of
# the product; `make bench*` are the benchmarks (bench/).
# See README.md. Everything is built under build/, runtime state under $(DATA_DIR).

SHELL        := /bin/bash
NGX_SRC      := /usr/share/nginx/src
BUILD        := $(CURDIR)/build
MODULE       := $(BUILD)/nginx/objs/ngx_http_famcall_module.so
MODULE_ASAN  := $(BUILD)/nginx-asan/objs/ngx_http_famcall_module.so
SOURCES      := config $(wildcard ngx_famcall_module/*/*.[ch])
PUSHD        := $(BUILD)/pushd/famcall-pushd
PUSHD_ASAN   := $(BUILD)/pushd-asan/famcall-pushd

export FAMCALL_HTTP_PORT ?= 8080
export FAMCALL_DATA_DIR  ?= $(CURDIR)/var
export FAMCALL_PG_PORT   ?= 5433
export FAMCALL_TURN_PORT ?= 3478

.PHONY: all deps build build-asan run node test test-unit test-asan fuzz bench clean
.PHONY: client demo

all: build

# Debian packages the project needs; quick when all are present.
deps:
	@scripts/deps.sh

# mobile/: its Node packages from the lockfile (npm ci), again only when
# package.json or the lockfile changed since the last install.
MOBILE_STAMP := mobile/node_modules/.package-lock.json
deps: $(MOBILE_STAMP)
$(MOBILE_STAMP): mobile/package.json mobile/package-lock.json
	cd mobile && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: deps $(MODULE) $(PUSHD)
build-asan: deps $(MODULE_ASAN) $(PUSHD_ASAN)

# The module's sources as config finds them (every .c under
# ngx_famcall_module/): rewritten only when a file comes or goes, so that
# adding one configures again and editing one does not.
SOURCE_LIST  := $(BUILD)/sources.list
$(SOURCE_LIST): FORCE
	@mkdir -p $(BUILD)
	@ls ngx_famcall_module/*/*.c | cmp -s - $@ || ls ngx_famcall_module/*/*.c > $@

.PHONY: FORCE
FORCE:

# configure once per build dir (again when `config` or the list of sources
# changes), then rebuild the module alone: seconds.
$(BUILD)/%/Makefile.stamp: config $(SOURCE_LIST)
	rm -rf $(BUILD)/$* && mkdir -p $(BUILD) && cp -r $(NGX_SRC) $(BUILD)/$*
	cd $(BUILD)/$* && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    $(if $(findstring asan,$*),--with-cc-opt="-fsanitize=address -fno-omit-frame-pointer -g -O1" --with-ld-opt="-fsanitize=address") \
	    --add-dynamic-module=$(CURDIR) > configure.log
	touch $@

$(MODULE): $(BUILD)/nginx/Makefile.stamp $(SOURCES)
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules > /dev/null

$(MODULE_ASAN): $(BUILD)/nginx-asan/Makefile.stamp $(SOURCES)
	$(MAKE) -C $(BUILD)/nginx-asan -f objs/Makefile modules > /dev/null

# The push dispatcher (dispatcher/): a daemon of its own beside nginx.
PUSHD_SRCS   := $(wildcard dispatcher/*.c)
PUSHD_CFLAGS := -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -g -I/usr/include/postgresql
PUSHD_LIBS   := -lpq -lcurl -ljansson -lcrypto
$(PUSHD): $(PUSHD_SRCS) $(wildcard dispatcher/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(PUSHD_CFLAGS) -O2 -o $@ $(PUSHD_SRCS) $(PUSHD_LIBS)
$(PUSHD_ASAN): $(PUSHD_SRCS) $(wildcard dispatcher/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(PUSHD_CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -o $@ $(PUSHD_SRCS) $(PUSHD_LIBS)

run: build
	scripts/run.sh $(MODULE) $(PUSHD)

# famcall-client, the GStreamer desktop client (client/gstreamer-app/)
CLIENT := $(BUILD)/client/famcall-client
client: deps
	@$(MAKE) -s -C client/gstreamer-app OUT=$(BUILD)/client

# against a running `make run`: two headless clients chat and call
demo: client
	client/gstreamer-app/demo.sh $(CLIENT)

# one more nginx node on the running stack's database (FAMCALL_HTTP_PORT=...)
node: build
	scripts/node.sh $(MODULE)

# Pure C pieces (validation, tokens, WebSocket frames and events) as TAP programs.
UNIT_CFLAGS := -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -g -Ingx_famcall_module/core -Ingx_famcall_module/gateway
UNIT_LIBS   := -ljansson -ljwt -lcrypto
UNIT_SRCS   := ngx_famcall_module/core/ngx_famcall_validate.c ngx_famcall_module/core/ngx_famcall_json.c \
               ngx_famcall_module/core/ngx_famcall_token.c ngx_famcall_module/gateway/ngx_famcall_ws_frame.c \
               ngx_famcall_module/gateway/ngx_famcall_event.c ngx_famcall_module/gateway/ngx_famcall_event_fields.c \
               ngx_famcall_module/gateway/ngx_famcall_gw_index.c
$(BUILD)/unit/%: t/unit/%.c $(UNIT_SRCS) t/unit/tap.h $(wildcard ngx_famcall_module/*/*.h)
	@mkdir -p $(BUILD)/unit
	$(CC) $(UNIT_CFLAGS) $(UNIT_CFLAGS_EXTRA) -o $@ $< $(UNIT_SRCS) $(UNIT_LIBS)

UNIT_TESTS := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/*.c))

test-unit: deps $(UNIT_TESTS)
	prove $(UNIT_TESTS)

test: build client test-unit
	FAMCALL_MODULE=$(MODULE) prove -r -j2 t/

# The whole suite with the module built under AddressSanitizer (LeakSanitizer
# on): nginx itself is Debian's, so the ASan runtime is preloaded.
test-asan: build-asan client
	$(MAKE) test-unit UNIT_CFLAGS_EXTRA="-fsanitize=address,undefined -fno-omit-frame-pointer" BUILD=$(BUILD)/asan-unit
	FAMCALL_MODULE=$(MODULE_ASAN) FAMCALL_ASAN=1 prove -r -j2 t/

# libFuzzer on the WebSocket frame reader and on the client event decoder
# (the gateway's events and the calls module's), FUZZ_SECONDS long each, on
# copies of the seed corpora (inputs they find accumulate in
# build/fuzz/corpus/).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -Ingx_famcall_module/core -Ingx_famcall_module/gateway \
                -Ingx_famcall_module/calls

$(BUILD)/fuzz/ws_frame_fuzz: t/fuzz/ws_frame_fuzz.c ngx_famcall_module/gateway/ngx_famcall_ws_frame.c \
                             ngx_famcall_module/gateway/ngx_famcall_ws_frame.h
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< ngx_famcall_module/gateway/ngx_famcall_ws_frame.c

EVENT_FUZZ_SRCS := ngx_famcall_module/gateway/ngx_famcall_event.c ngx_famcall_module/gateway/ngx_famcall_event_fields.c \
                   ngx_famcall_module/core/ngx_famcall_json.c \
                   ngx_famcall_module/core/ngx_famcall_validate.c \
                   ngx_famcall_module/calls/ngx_famcall_call_fields.c
$(BUILD)/fuzz/event_fuzz: t/fuzz/event_fuzz.c $(EVENT_FUZZ_SRCS) $(wildcard ngx_famcall_module/*/*.h)
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(EVENT_FUZZ_SRCS) -ljansson

fuzz: $(BUILD)/fuzz/ws_frame_fuzz $(BUILD)/fuzz/event_fuzz
	mkdir -p $(BUILD)/fuzz/corpus/ws_frame $(BUILD)/fuzz/corpus/event
	cp t/fuzz/corpus/ws_frame/* $(BUILD)/fuzz/corpus/ws_frame/
	cp t/fuzz/corpus/event/* $(BUILD)/fuzz/corpus/event/
	cd $(BUILD)/fuzz && ./ws_frame_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 corpus/ws_frame
	cd $(BUILD)/fuzz && ./event_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 -max_len=8192 -dict=$(CURDIR)/t/fuzz/event.dict corpus/event

bench: build
	bench/run.sh $(MODULE)
	bench/chat.sh $(MODULE)

# WebSocket gateway: sockets held and their memory, chat on one and two nodes
# (bench/ws/run.sh; WS_* variables for shorter runs)
.PHONY: bench-ws
bench-ws: build
	bench/ws/run.sh $(MODULE)

# calls: webrtc:ice relayed between the two devices of real calls at fixed
# offered rates, on one node and across two, beside the PeerJS server
# (npm peer, bench/calls/package.json) in the same run; call setups per
# second and their database cost (bench/calls/run.sh; CALLS_* variables for
# shorter runs)
.PHONY: bench-calls
bench-calls: build
	bench/calls/run.sh $(MODULE)

# call setup with two GStreamer clients (issue 20): consecutive calls on
# loopback, direct and through coturn over TCP; invite to ringing, answer
# to ICE connected and to the first frame (bench/calls/call-setup.sh;
# SETUP_* variables)
.PHONY: bench-call-setup
bench-call-setup: build client
	bench/calls/call-setup.sh $(MODULE) $(CLIENT)

# the bench scripts still work: wsload's self-test, tiny runs of make bench,
# bench/chat.sh and make bench-ws that must come out sound, analyze-cost.sh,
# refusals of bad input (bench/selftest.sh). Not part of `make test`.
.PHONY: bench-selftest
bench-selftest: build client
	bench/selftest.sh $(MODULE) $(CLIENT)

# what a batch of sends and a page of messages cost PostgreSQL, in
# instructions (callgrind)
.PHONY: bench-sql
bench-sql: deps
	bench/sql/batch-cost.sh
	bench/sql/list-cost.sh

# the push dispatcher against the mock providers: commit to the provider's
# answer at a steady rate, and pushes a second through a burst
# (bench/push/bench.pl; PUSH_* variables for other sizes)
.PHONY: bench-push
bench-push: build
	bench/push/bench.pl

clean:
	rm -rf $(BUILD)
