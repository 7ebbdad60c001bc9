# stsguard - GNU Make build.  See docs/architecture.md for the layout.
#
#   make deps      install missing Debian 12 packages (root)
#   make / all     build/stsguard and the unit-test binary
#   make test      deps + build + every test (unit and, as root, world)
#   make asan      the same tests under ASan+UBSan (build-asan/)
#   make run       deps + build + start `stsguard serve` with defaults
#   make install   PREFIX=/usr/local DESTDIR=
#   make world-up / world-down   the private test world, for manual use

CXX       ?= g++
PREFIX    ?= /usr/local
DESTDIR   ?=
BUILD     ?= build
VERSION   := 0.1.0
# Parallel compile jobs for the builds that `make test` and `make asan`
# start (one per CPU; JOBS=1 for a serial build).
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

CXXFLAGS  ?= -O2 -g
override CXXFLAGS += -std=c++20 -Wall -Wextra -Werror -pthread
CPPFLAGS  += -I. -DSTSGUARD_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS    += -lldns -lcurl -lssl -lcrypto -llmdb -lidn2 -lmilter -lsystemd -lmicrohttpd -pthread

# Debian 12 packages: build, run, test world.
DEB_BUILD := g++ make pkg-config libldns-dev libcurl4-openssl-dev libssl-dev \
             liblmdb-dev libmilter-dev libidn2-dev libsystemd-dev doctest-dev \
             nlohmann-json3-dev libcli11-dev libmicrohttpd-dev
DEB_TEST  := python3 python3-aiosmtpd unbound nginx-light postfix swaks \
             faketime iproute2 dnsutils openssl curl lmdb-utils procps
DEB_ALL   := $(DEB_BUILD) $(DEB_TEST)

LIB_DIRS  := policy-cache checker postfix plugin
LIB_SRCS  := $(sort $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cc)))
CLI_SRCS  := $(sort $(wildcard cli/*.cc))
TEST_SRCS := $(sort $(wildcard tests/*.cc) $(foreach d,$(LIB_DIRS) cli,$(wildcard tests/$(d)/*.cc)))
CLI_LIB_SRCS := $(filter-out cli/main.cc,$(CLI_SRCS))

LIB_OBJS  := $(LIB_SRCS:%.cc=$(BUILD)/obj/%.o)
CLI_OBJS  := $(CLI_SRCS:%.cc=$(BUILD)/obj/%.o)
CLI_LIB_OBJS := $(CLI_LIB_SRCS:%.cc=$(BUILD)/obj/%.o)
TEST_OBJS := $(TEST_SRCS:%.cc=$(BUILD)/obj/%.o)
LIBA      := $(BUILD)/libstsguard.a

.PHONY: all deps test unit-test asan run install clean format tidy world-up world-down check-root bench
.DEFAULT_GOAL := all

all: $(BUILD)/stsguard $(BUILD)/unit-tests

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJS) $(CLI_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/stsguard: $(BUILD)/obj/cli/main.o $(LIBA)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(TEST_OBJS) $(LIBA)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d)

deps:
	@missing=""; for p in $(DEB_ALL); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: missing packages:$$missing" >&2; \
	  echo "deps: run 'make deps' as root (or: apt-get install$$missing)" >&2; exit 1; fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || { echo "deps: apt-get install failed" >&2; exit 1; }; \
	echo "deps: done"

# The whole suite: unit tests, then world tests (root only; skipped otherwise).
test: deps
	$(MAKE) --no-print-directory -j$(JOBS) all
	@STSGUARD=$(abspath $(BUILD)/stsguard) UNIT_TESTS=$(abspath $(BUILD)/unit-tests) tests/run

unit-test: all
	$(BUILD)/unit-tests

asan: deps
	$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan \
	  CXXFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  STSGUARD=$(abspath build-asan/stsguard) UNIT_TESTS=$(abspath build-asan/unit-tests) tests/run

# Foreground, logging to the terminal; embedded defaults unless
# /etc/stsguard/stsguard.conf exists.
run: deps all
	@echo "main.cf:  smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix"
	$(BUILD)/stsguard serve --log-to-stderr

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 $(BUILD)/stsguard $(DESTDIR)$(PREFIX)/sbin/stsguard
	for m in docs/*.8; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man8/ || true; done
	for m in docs/*.5; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man5/ || true; done

clean:
	rm -rf build build-asan

format:
	clang-format -i $(LIB_SRCS) $(CLI_SRCS) $(TEST_SRCS) $(wildcard */*.h tests/*/*.h)

tidy:
	clang-tidy $(LIB_SRCS) $(CLI_SRCS) -- $(CPPFLAGS) -std=c++20

# Benchmarks (issue 7): never part of `make test`.  bench/bench.mk defines
# bench-deps (the peer, postfix-mta-sts-resolver) and bench-run.
-include bench/bench.mk

bench: deps all
	$(MAKE) --no-print-directory bench-deps
	$(MAKE) --no-print-directory bench-run

world-up:
	tests/world/world up

world-down:
	tests/world/world down
