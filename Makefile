# The entry points the README names. Each target is one subcommand of tools/dev.py (Python's
# standard library only; `python3 tools/dev.py --help` lists them), which installs what is
# missing and stops whatever it starts by PID, Ctrl-C at any moment included.
# The interpreter itself, not a launcher such as pyenv's shim, which may run it as a child and
# so not pass on the TERM that make sends when it is stopped.
PYTHON := $(shell python3 -c 'import sys; print(sys.executable)')
DEV := $(PYTHON) tools/dev.py

DYNAMODB_PORT ?= 8000
PORT ?= 3000
DEMO_COMPANY ?= demo
TABLE_NAME ?= apikeys
# make test TEST=<filter>: only the cargo tests whose name holds it.
TEST ?=

.PHONY: run test deps browser unit lint tools-test tools build validate invoke deploy sam-local sam-api seed \
  soak fuzz bench bench-deps bench-verify bench-offset schemathesis

deps:
	@$(DEV) deps

## The console's browser test drives Debian's chromium through chromedriver, installed when
## missing (as root, or through passwordless sudo); without them that one test says it is skipped.
browser:
	@$(DEV) browser

## make run: DynamoDB Local on DYNAMODB_PORT, the table, a demo root key, the API on PORT. Ctrl-C stops both.
run: deps
	@$(DEV) run --port $(PORT) --dynamodb-port $(DYNAMODB_PORT) --company $(DEMO_COMPANY) --table $(TABLE_NAME)

## make test: the tools' own test, then unit and integration tests against a DynamoDB Local of
## their own on a free port (the console's in headless chromium), the black-box suite against the
## local server it starts in process, then the heavy and time-bounded tests (offset cost, outage) alone.
test: deps browser tools-test
	@$(DEV) test $(TEST)

## make tools-test: DynamoDB Local started and stopped on one port back to back, twenty times,
## and started again while the previous one still shuts down; each start answered by its own
## instance, nothing left running.
tools-test: deps
	@$(DEV) tools-test

## make unit: the tests that need no database.
unit:
	cargo test --lib

## make lint: formatting, clippy and the docs, warnings as errors; then the dependencies'
## licenses, bans and sources against deny.toml (cargo-deny, installed when missing; offline).
CARGO_DENY_VERSION := 0.20.2

lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
	@command -v cargo-deny >/dev/null || cargo install --locked cargo-deny@$(CARGO_DENY_VERSION)
	cargo deny --offline check licenses bans sources

## --- The Lambda and SAM side (docs/operations.md) ----------------------------------------------

## make tools: the pinned deployment tools (tools/requirements-deploy.txt) in tools/venv, checkov
## in tools/venv-checkov, and Rust's arm64 Linux target.
tools:
	@$(DEV) tools

## make build: the one binary every function of template.yaml runs, release, arm64.
build: tools
	@$(DEV) build

## make validate: sam validate --lint, cfn-lint and checkov on template.yaml, offline; any finding fails.
VALIDATE_REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
validate: tools
	@$(DEV) validate --region $(VALIDATE_REGION)

## make invoke FN=<function> EVENT=events/<file>.json: one function under cargo lambda watch, on
## a DynamoDB Local of its own with a root key of INVOKE_COMPANY in the event.
INVOKE_COMPANY ?= acme
INVOKE_TABLE ?= apikeys
INVOKE_TIMEOUT ?= 600
invoke: tools deps
	@$(DEV) invoke "$(FN)" "$(EVENT)" --company $(INVOKE_COMPANY) --table $(INVOKE_TABLE) --timeout $(INVOKE_TIMEOUT)

## make deploy [CONFIG_ENV=prod] [STACK=name] [REGION=region] [PARAMS="Key=Value ..."]: sam
## build, then sam deploy from samconfig.toml; never prompts; stops first without AWS credentials.
CONFIG_ENV ?= default
deploy: tools
	@$(DEV) deploy --config-env "$(CONFIG_ENV)" --stack "$(STACK)" --region "$(REGION)" --params "$(PARAMS)"

## make schemathesis [SCHEMATHESIS_SECONDS=180]: Schemathesis (pinned in
## tools/requirements-schemathesis.txt, in tools/venv-schemathesis) against the local server on
## DynamoDB Local, every check; any failure or warning fails (docs/operations.md).
SCHEMATHESIS_SECONDS ?= 180
schemathesis: deps
	@$(DEV) schemathesis --seconds $(SCHEMATHESIS_SECONDS) --company $(DEMO_COMPANY)

## make sam-local: every function through `sam local invoke` on its event, in a private dockerd,
## against DynamoDB Local, each answer checked (needs root).
sam-local: tools deps
	@$(DEV) sam-local

## make sam-api: the same setup, every route behind `sam local start-api` on a free port, the
## black-box suite (tests/blackbox) and `apikeys smoke` against it (needs root).
sam-api: tools deps
	@$(DEV) sam-api

## make seed: the table and a root key of acme on DYNAMODB_ENDPOINT (default: make run's).
seed: deps
	@$(DEV) seed

## --- Reliability and benchmarks (docs/operations.md) -------------------------------------------

## make soak: 20,000 mixed operations from 8 careful clients with faults injected; fails unless
## no key is unknown, no secret lost, every counter equals its recount and every plaintext
## verifies as its key says (tests/soak.rs).
SOAK_OPS ?= 20000
SOAK_CLIENTS ?= 8
SOAK_FAULT_RATE ?= 0.01
soak: deps
	@$(DEV) soak --ops $(SOAK_OPS) --clients $(SOAK_CLIENTS) --fault-rate $(SOAK_FAULT_RATE)

## make fuzz: the cargo-fuzz target for the request decoder, FUZZ_SECONDS long (stable toolchain
## with RUSTC_BOOTSTRAP=1; cargo-fuzz installed when missing).
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?= request_decoder
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	RUSTC_BOOTSTRAP=1 cargo fuzz run $(FUZZ_TARGET) -- -max_total_time=$(FUZZ_SECONDS)

## make bench: every benchmark (criterion, calls per operation, cold start, wrk), then
## bench/results.md. BENCH_ARM64=0 skips building the arm64 binary for its size. WRK_DURATION,
## COLD_RUNS, FLOOR_ROUNDS, FLOOR_PER_ROUND tune the run's length (read by the harnesses).
BENCH_ARM64 ?= 1
bench-deps: deps
	@$(DEV) bench-deps

bench: bench-deps
	@$(DEV) bench --arm64 $(BENCH_ARM64)

## make bench-verify: the largest verify the caps allow, alone.
bench-verify: deps
	@$(DEV) bench-verify

## make bench-offset: offset=1000 against offset=0 alone; rewrites its section of bench/results.md.
bench-offset: deps
	@$(DEV) bench-offset
