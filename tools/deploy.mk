# The Lambda and SAM side, included by the Makefile (which sets SHELL, RUN_DIR and DDB):
#   make tools                              tools/venv from tools/requirements-deploy.txt; the arm64 Rust target
#   make build                              cargo lambda build --release --arm64: target/lambda/<binary>/bootstrap
#   make validate                           sam validate --lint and cfn-lint on template.yaml (offline)
#   make invoke FN=<binary> EVENT=<file>    one function on a sample event, without Docker, on DynamoDB Local
#   make deploy                             sam build, then sam deploy (--guided the first time)
# Every target installs what it needs when it is missing.

VENV := tools/venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
VENV_STAMP := $(VENV)/.installed-$(shell cksum < tools/requirements-deploy.txt | cut -d' ' -f1)
LAMBDA_TARGET := aarch64-unknown-linux-gnu
# tools/venv/bin first: cargo lambda finds zig there (python3 -m ziglang), and sam and cfn-lint.
WITH_TOOLS := env PATH="$(VENV_BIN):$$PATH" SAM_CLI_TELEMETRY=0
# The functions, as template.yaml builds them (tests/api/deploy.rs keeps it equal to the routes).
FUNCTIONS = $(shell sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\).*/\1/p' template.yaml)
# validate is offline; a region is all the linters need.
VALIDATE_REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
# make invoke: the company of the root key it creates, and the table on its DynamoDB Local.
INVOKE_COMPANY ?= acme
INVOKE_TABLE ?= apikeys
# Seconds for one invocation, the function's first (debug) compile under cargo lambda watch included.
INVOKE_TIMEOUT ?= 600

.PHONY: tools build validate invoke deploy

$(VENV_STAMP): tools/requirements-deploy.txt
	@echo "installing the deployment tools into $(VENV)" >&2
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-deploy.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

## make tools: the pinned deployment tools in tools/venv, and Rust's arm64 Linux target.
tools: $(VENV_STAMP)
	@rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET)

## make build: every function of template.yaml, release, arm64: target/lambda/<binary>/bootstrap.
build: tools
	@$(WITH_TOOLS) cargo lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do \
	  test -f target/lambda/$$f/bootstrap || { echo "target/lambda/$$f/bootstrap is missing" >&2; exit 1; }; \
	  echo "target/lambda/$$f/bootstrap  $$(stat -c %s target/lambda/$$f/bootstrap) bytes" >&2; \
	done

## make validate: the template through SAM's translator and cfn-lint; any warning fails.
validate: tools
	@$(WITH_TOOLS) AWS_DEFAULT_REGION=$(VALIDATE_REGION) sam validate --lint --template-file template.yaml
	@$(WITH_TOOLS) cfn-lint --regions $(VALIDATE_REGION) -- template.yaml
	@echo "template.yaml: valid, no lint findings" >&2

## make invoke FN=<binary> EVENT=events/<file>.json: DynamoDB Local on a free port, the table and
## a root key of INVOKE_COMPANY (the authorizer event gets it as its Authorization header), the
## function under `cargo lambda watch`, one `cargo lambda invoke`; then both stop, by PID.
invoke: tools deps
	@test -n "$(FN)" && test -n "$(EVENT)" || { echo "usage: make invoke FN=<binary> EVENT=events/<file>.json (binaries: $(FUNCTIONS))" >&2; exit 2; }
	@test -f "$(EVENT)" || { echo "no such event file: $(EVENT)" >&2; exit 2; }
	@cargo build --quiet --bin apikeys --bin $(FN)
	@mkdir -p $(RUN_DIR); \
	port=$$($(DDB) free-port); pidfile=$(RUN_DIR)/invoke-dynamodb-$$port.pid; \
	invoke_port=; watch_pidfile=/nonexistent; event=/nonexistent; \
	stop_watch() { \
	  [ -f "$$watch_pidfile" ] || return 0; pid=$$(cat "$$watch_pidfile"); \
	  kill -- -"$$pid" 2>/dev/null || kill "$$pid" 2>/dev/null || true; \
	  for _ in $$(seq 1 50); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done; \
	  kill -9 -- -"$$pid" 2>/dev/null || true; rm -f "$$watch_pidfile"; \
	}; \
	trap 'stop_watch; rm -f "$$event"; $(DDB) stop '$$pidfile EXIT; \
	$(DDB) start $$port $$pidfile; \
	invoke_port=$$($(DDB) free-port); watch_pidfile=$(RUN_DIR)/invoke-watch-$$invoke_port.pid; \
	export DYNAMODB_ENDPOINT=http://127.0.0.1:$$port TABLE_NAME=$(INVOKE_TABLE) RUST_LOG=$${RUST_LOG:-info}; \
	root=$$(target/debug/apikeys root-key create --company $(INVOKE_COMPANY) --description "make invoke"); \
	root_key=$$(printf '%s' "$$root" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'); \
	echo "root key of $(INVOKE_COMPANY) in table $(INVOKE_TABLE): $$root_key" >&2; \
	event=$(RUN_DIR)/invoke-event-$$invoke_port.json; \
	ROOT_KEY=$$root_key python3 -c 'import json,os,sys; e=json.load(open(sys.argv[1])); h=e.get("headers") or {}; \
	  h.update({"authorization": "Bearer " + os.environ["ROOT_KEY"]}) if e.get("type") == "REQUEST" else None; \
	  json.dump(e, open(sys.argv[2], "w"))' "$(EVENT)" "$$event"; \
	set -m; \
	$(WITH_TOOLS) cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port $$invoke_port \
	  --env-var DYNAMODB_ENDPOINT=$$DYNAMODB_ENDPOINT --env-var TABLE_NAME=$(INVOKE_TABLE) --env-var RUST_LOG=$$RUST_LOG \
	  >$(RUN_DIR)/invoke-watch-$$invoke_port.log 2>&1 & \
	echo $$! >$$watch_pidfile; set +m; \
	for _ in $$(seq 1 300); do \
	  (exec 3<>/dev/tcp/127.0.0.1/$$invoke_port) 2>/dev/null && break; \
	  kill -0 $$(cat $$watch_pidfile) 2>/dev/null || { cat $(RUN_DIR)/invoke-watch-$$invoke_port.log >&2; exit 1; }; \
	  sleep 0.2; \
	done; \
	status=0; \
	timeout $(INVOKE_TIMEOUT) $(WITH_TOOLS) cargo lambda invoke $(FN) --invoke-address 127.0.0.1 --invoke-port $$invoke_port --data-file $$event || status=$$?; \
	echo; echo "--- cargo lambda watch log ($(RUN_DIR)/invoke-watch-$$invoke_port.log):" >&2; \
	tail -n 20 $(RUN_DIR)/invoke-watch-$$invoke_port.log >&2; \
	exit $$status

## make deploy: sam build (cargo lambda, arm64), then sam deploy; --guided writes samconfig.toml the first time.
deploy: tools
	@$(WITH_TOOLS) SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 sam build --beta-features
	@if [ -f samconfig.toml ]; then \
	  $(WITH_TOOLS) sam deploy; \
	else \
	  $(WITH_TOOLS) sam deploy --guided; \
	fi
