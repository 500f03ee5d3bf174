# Benchmarks, included by the Makefile (which sets SHELL, RUN_DIR and DDB). Not part of `make test`:
#   make bench    builds what it needs, starts its own DynamoDB Local on a free port, runs
#                 - criterion, in process (bench/benches/inprocess.rs): each function vs a lambda_http echo
#                 - against DynamoDB Local (bench/benches/store.rs): calls per operation; raw GetItem,
#                   raw BatchGetItem, the verify function in process and target/release/local_server's
#                   verify over HTTP keep-alive, at concurrency 1 and 4; cold start of
#                   target/release/lambda (FUNCTION=get_key) under a fake Runtime API
#                 - wrk (bench/throughput.sh): the local server's mixed workload vs raw GetItem
#                 - the largest verify the caps allow (bench/benches/bounds.rs), in process
#               and writes bench/results.md (bench/report.py). Everything it starts it stops, by PID.
#   make bench-offset   offset=1000 against offset=0 over 1,010 keys (and events) at the caps: calls,
#               read capacity, p50 (an ignored test of tests/api/offset_cost.rs, its own DynamoDB
#               Local); writes target/bench-out/offset.json and that section of bench/results.md.
#   make bench-verify   only the largest allowed verify (criterion, its own DynamoDB Local to
#               record the one read it replays); prints the figures, writes target/bench-out/.
# BENCH_ARM64=0 skips building the arm64 binary (for its size) when target/lambda/ lacks it.
# WRK_DURATION (10s), COLD_RUNS (15), FLOOR_ROUNDS (6), FLOOR_PER_ROUND (400) tune the run's length.

BENCH_ARM64 ?= 1
BENCH_OUT := target/bench-out

.PHONY: bench bench-deps bench-verify bench-offset

bench-deps: deps
	@command -v wrk >/dev/null 2>&1 || { echo "wrk not found: installing it with apt-get" >&2; \
	  apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	@command -v zip >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq zip >/dev/null; }

## make bench: every benchmark (criterion, calls per operation, cold start, wrk), then bench/results.md.
bench: bench-deps
	@started=$$(date +%s); \
	rm -rf $(BENCH_OUT) target/criterion/keys target/criterion/lambda target/criterion/local target/criterion/sdk target/criterion/bounds; mkdir -p $(BENCH_OUT) $(RUN_DIR); \
	cat /proc/loadavg >$(BENCH_OUT)/load-before.txt; \
	busy() { ps -eo comm= | grep -E '^(rustc|cc|ld|ld.lld|zig|clang|java)$$' | sort | uniq -c | awk '{printf "%s%s ×%s", sep, $$2, $$1; sep=", "}'; }; \
	echo "building: release $(LAMBDA_BINARY) (every function's binary) and local_server, the bench harnesses" >&2; \
	cargo build --release --bin $(LAMBDA_BINARY) --bin local_server; \
	cargo bench -p apikeys-bench --no-run; \
	missing=0; test -f target/lambda/$(LAMBDA_BINARY)/bootstrap || missing=1; \
	if [ "$$missing" = 1 ] && [ "$(BENCH_ARM64)" = 1 ]; then \
	  echo "building the arm64 binary for its size (make build)" >&2; \
	  $(MAKE) --no-print-directory build || echo "make build failed: results.md lists the sizes as not built" >&2; \
	fi; \
	echo "before the run: $$(busy)" >$(BENCH_OUT)/busy-start.txt; \
	port=$$($(DDB) free-port); pidfile=$(RUN_DIR)/bench-dynamodb-$$port-$$$$.pid; \
	trap '$(DDB) stop "$$pidfile"' EXIT; \
	$(DDB) start $$port $$pidfile; \
	export DYNAMODB_ENDPOINT=http://127.0.0.1:$$port BENCH_OUT=$(CURDIR)/$(BENCH_OUT) BENCH_COLD_BIN=$(CURDIR)/target/release/$(LAMBDA_BINARY) \
	  BENCH_LOCAL_SERVER=$(CURDIR)/target/release/local_server; \
	echo "== in process (criterion)" >&2; \
	cargo bench -q -p apikeys-bench --bench inprocess 2>&1 | tee $(BENCH_OUT)/inprocess.txt | grep -vE '^\s*$$|Found [0-9]+ outliers|^\s+[0-9]+ \(' >&2; \
	echo "== the largest verify the caps allow (criterion)" >&2; \
	cargo bench -q -p apikeys-bench --bench bounds 2>&1 | tee $(BENCH_OUT)/bounds.txt | grep -vE '^\s*$$|Found [0-9]+ outliers|^\s+[0-9]+ \(' >&2; \
	during="$$(busy)"; \
	echo "== against DynamoDB Local: calls per operation, verify vs GetItem and BatchGetItem, cold start" >&2; \
	cargo bench -q -p apikeys-bench --bench store -- calls floor cold 2>&1 | tee $(BENCH_OUT)/store.txt >&2; \
	echo "== offset=1000 against offset=0 (tests/api/offset_cost.rs, ignored)" >&2; \
	cargo test -q --test api offset_cost::bench -- --ignored --nocapture 2>&1 | tee $(BENCH_OUT)/offset.txt | grep -E 'calls|test result' >&2; \
	echo "== throughput (wrk)" >&2; \
	bench/throughput.sh $$port; \
	printf 'at the start: %s; during: %s; at the end: %s\n' "$$(sed 's/^before the run: //' $(BENCH_OUT)/busy-start.txt)" "$$during" "$$(busy)" >$(BENCH_OUT)/busy.txt; \
	python3 bench/report.py --out bench/results.md; \
	echo "make bench: done in $$(( $$(date +%s) - started )) s; see bench/results.md" >&2

## make bench-verify: the largest verify the caps allow, alone (bench/benches/bounds.rs).
bench-verify: deps
	@cargo bench -p apikeys-bench --bench bounds --no-run
	@mkdir -p $(BENCH_OUT) $(RUN_DIR); rm -rf target/criterion/bounds; \
	port=$$($(DDB) free-port); pidfile=$(RUN_DIR)/bench-verify-dynamodb-$$port-$$$$.pid; \
	trap '$(DDB) stop "$$pidfile"' EXIT; \
	$(DDB) start $$port $$pidfile; \
	DYNAMODB_ENDPOINT=http://127.0.0.1:$$port BENCH_OUT=$(CURDIR)/$(BENCH_OUT) \
	  cargo bench -q -p apikeys-bench --bench bounds 2>&1 | tee $(BENCH_OUT)/bounds.txt | grep -vE '^\s*$$|Found [0-9]+ outliers|^\s+[0-9]+ \(' >&2

## make bench-offset: offset=1000 against offset=0 alone; rewrites its section of bench/results.md.
bench-offset: deps
	@cargo test --test api --no-run
	@mkdir -p $(BENCH_OUT) $(RUN_DIR); \
	port=$$($(DDB) free-port); pidfile=$(RUN_DIR)/bench-offset-dynamodb-$$port.pid; \
	$(DDB) start $$port $$pidfile; \
	trap '$(DDB) stop '$$pidfile EXIT; \
	DYNAMODB_ENDPOINT=http://127.0.0.1:$$port BENCH_OUT=$(CURDIR)/$(BENCH_OUT) \
	  cargo test -q --test api offset_cost::bench -- --ignored --nocapture 2>&1 | tee $(BENCH_OUT)/offset.txt | grep -E 'calls|test result' >&2; \
	python3 bench/report.py --offset-only
