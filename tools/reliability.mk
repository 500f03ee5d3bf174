# Reliability targets (soak, fuzz), included by the Makefile (`-include tools/reliability.mk`);
# they use its DDB, RUN_DIR and deps.
#   make soak   20,000 mixed operations from 8 clients with faults injected between the service
#               and DynamoDB (tests/soak.rs), against a DynamoDB Local of its own on a free port,
#               stopped by PID on exit; then counters, lookup items, audit trail and every
#               plaintext's verification are checked. SOAK_OPS, SOAK_CLIENTS, SOAK_FAULT_RATE.
#   make fuzz   the cargo-fuzz target for the request decoder (fuzz/), FUZZ_SECONDS long
#               (default 60). cargo-fuzz needs nightly flags: this runs them on the stable
#               toolchain with RUSTC_BOOTSTRAP=1, and installs cargo-fuzz when missing.
# The fault, fuzz (proptest) and secret-log tests of tests/api run in `make test`.

SOAK_OPS ?= 20000
SOAK_CLIENTS ?= 8
SOAK_FAULT_RATE ?= 0.01
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?= request_decoder

.PHONY: soak fuzz

soak: deps
	@cargo test --test soak --no-run
	@port=$$($(DDB) free-port); pidfile=$(RUN_DIR)/soak-dynamodb-$$port-$$$$.pid; \
	trap '$(DDB) stop "$$pidfile"' EXIT; \
	$(DDB) start $$port $$pidfile; \
	DYNAMODB_ENDPOINT=http://127.0.0.1:$$port SOAK_OPS=$(SOAK_OPS) SOAK_CLIENTS=$(SOAK_CLIENTS) \
	  SOAK_FAULT_RATE=$(SOAK_FAULT_RATE) cargo test --test soak -- --ignored --nocapture

fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	RUSTC_BOOTSTRAP=1 cargo fuzz run $(FUZZ_TARGET) -- -max_total_time=$(FUZZ_SECONDS)
