# The two commands of the README: `make run` and `make test`. Everything they need is installed
# here when missing. DynamoDB Local is started and stopped by PID, never by name: each start has a
# pid file of its own (the recipe shell's $$ in its name), and the trap that stops it is set
# before the start, so Ctrl-C at any moment leaves nothing running (tools/dynamodb-local.sh).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

DYNAMODB_PORT ?= 8000
PORT ?= 3000
DEMO_COMPANY ?= demo
TABLE_NAME ?= apikeys
RUN_DIR := .run
DDB := tools/dynamodb-local.sh

.PHONY: run test deps browser unit lint tools-test

deps:
	@$(DDB) install

## The console's browser test drives Debian's chromium through chromedriver: installed here when
## missing (as root, or through passwordless sudo). Without them that one test says it is skipped.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then as_root=; elif sudo -n true 2>/dev/null; then as_root="sudo -n"; \
	  else echo "make: cannot install chromium and chromium-driver (not root, no sudo): the browser test will be skipped" >&2; exit 0; fi; \
	  echo "Installing chromium and chromium-driver (Debian packages) for the console's browser test"; \
	  $$as_root apt-get update -qq; \
	  $$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	fi

## make run: DynamoDB Local on DYNAMODB_PORT, the table, a demo root key, the API on PORT. Ctrl-C stops both.
run: deps
	@cargo build --bin local_server
	@pidfile=$(RUN_DIR)/run-dynamodb-$(DYNAMODB_PORT)-$$$$.pid; \
	trap '$(DDB) stop "$$pidfile"' EXIT; \
	$(DDB) start $(DYNAMODB_PORT) $$pidfile; \
	DYNAMODB_ENDPOINT=http://127.0.0.1:$(DYNAMODB_PORT) TABLE_NAME=$(TABLE_NAME) PORT=$(PORT) \
	  DEMO_COMPANY=$(DEMO_COMPANY) target/debug/local_server || true

## make test: unit and integration tests against a DynamoDB Local of their own, on a free port,
## the console's among them in headless chromium, and the black-box suite (tests/blackbox)
## against the local server it starts in process; then the offset cost tests, alone (ignored in
## the first run: their 200 MB of writes would starve the other tests into timeouts); first the
## tools' own test (tools-test).
test: deps browser tools-test
	@cargo test --lib --test api --test blackbox --no-run
	@port=$$($(DDB) free-port); pidfile=$(RUN_DIR)/test-dynamodb-$$port-$$$$.pid; \
	trap '$(DDB) stop "$$pidfile"' EXIT; \
	$(DDB) start $$port $$pidfile; \
	DYNAMODB_ENDPOINT=http://127.0.0.1:$$port cargo test --lib --test api --test blackbox; \
	echo "make test: the offset cost tests, alone on DynamoDB Local (their keys and events at the caps are heavy)" >&2; \
	DYNAMODB_ENDPOINT=http://127.0.0.1:$$port cargo test --test api offset_cost:: -- --ignored --skip bench

## make tools-test: DynamoDB Local started and stopped on one port back to back, twenty times,
## and started again while the previous one still shuts down; each start answered by its own
## instance, nothing left running (tools/dynamodb-local-test.sh, about a minute or more on a busy machine).
tools-test: deps
	@tools/dynamodb-local-test.sh

## make unit: the tests that need no database.
unit:
	cargo test --lib

## make lint: formatting, clippy and the docs, warnings as errors (what every commit of Rust code
## passes); then the dependencies' licenses, bans and sources against deny.toml (cargo-deny,
## installed here when missing; offline, as these checks need no advisory database).
CARGO_DENY_VERSION := 0.20.2

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
	@command -v cargo-deny >/dev/null || cargo install --locked cargo-deny@$(CARGO_DENY_VERSION)
	cargo deny --offline check licenses bans sources

# build, validate, invoke, deploy: the Lambda and SAM side (tools/deploy.mk).
-include tools/deploy.mk

# sam-local, seed: every function through `sam local invoke` in Docker (tools/sam-local.mk).
-include tools/sam-local.mk

# soak (20,000 operations with faults injected) and fuzz (cargo-fuzz): tools/reliability.mk.
-include tools/reliability.mk

# bench (criterion, verify vs GetItem, calls per operation, cold start, wrk): tools/bench.mk.
-include tools/bench.mk
