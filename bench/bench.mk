# bench/bench.mk - the benchmark suite (issue 7), included by the Makefile:
#   -include bench/bench.mk
#
#   make bench-deps   as root: installs the Debian packages the benchmark needs
#   make bench-run    builds bench/ tools (and stsguard) and runs bench/run_bench.py
#   BENCH_ARGS='--phases hit --seconds 2'   passes options to run_bench.py
#
# Never part of `make test`.  Uses the Makefile's $(BUILD), $(CXX),
# $(CXXFLAGS), $(CPPFLAGS), $(LDLIBS) and $(LIBA).

BENCH_DIR   := $(BUILD)/bench
BENCH_TOOLS := $(BENCH_DIR)/loadgen $(BENCH_DIR)/refserver $(BENCH_DIR)/fill_cache $(BENCH_DIR)/store_cost
BENCH_ARGS  ?=
# postfix-mta-sts-resolver is the peer; python3-uvloop is its Recommends
# (the daemon uses uvloop when present, as a default install does).
BENCH_DEB   := postfix-mta-sts-resolver python3-uvloop python3-cryptography unbound nginx-light openssl iproute2 valgrind

.PHONY: bench-run bench-deps bench-tools

bench-tools: $(BENCH_TOOLS)

# Stand-alone tools: no project library.
$(BENCH_DIR)/loadgen: bench/loadgen.cc
	@mkdir -p $(@D)
	$(CXX) $(filter-out -MMD -MP,$(CPPFLAGS)) $(CXXFLAGS) -o $@ $< -pthread

$(BENCH_DIR)/refserver: bench/refserver.cc
	@mkdir -p $(@D)
	$(CXX) $(filter-out -MMD -MP,$(CPPFLAGS)) $(CXXFLAGS) -o $@ $< -llmdb

# Linked with the project library.
$(BENCH_DIR)/fill_cache: bench/fill_cache.cc $(LIBA)
	@mkdir -p $(@D)
	$(CXX) $(filter-out -MMD -MP,$(CPPFLAGS)) $(CXXFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

$(BENCH_DIR)/store_cost: bench/store_cost.cc $(LIBA)
	@mkdir -p $(@D)
	$(CXX) $(filter-out -MMD -MP,$(CPPFLAGS)) $(CXXFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

bench-run: $(BUILD)/stsguard $(BENCH_TOOLS)
	@if [ "$$(id -u)" != 0 ]; then echo "bench: the cold path needs root (network namespace); run as root or BENCH_ARGS='--phases hit,startup'" >&2; fi
	/usr/bin/python3 bench/run_bench.py --build $(BUILD) $(BENCH_ARGS)

bench-deps:
	@missing=""; for p in $(BENCH_DEB); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "bench-deps: all Debian packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "bench-deps: missing packages:$$missing (run as root)" >&2; exit 1; fi; \
	echo "bench-deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || { echo "bench-deps: apt-get install failed" >&2; exit 1; }; \
	if [ -d /run/systemd/system ]; then \
	  systemctl disable --now postfix-mta-sts-resolver.service >/dev/null 2>&1 || true; \
	  echo "bench-deps: the peer's own service (127.0.0.1:8461) is disabled; the benchmark runs it itself"; \
	fi; \
	echo "bench-deps: done"
