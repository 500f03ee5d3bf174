# The Lambda and SAM side, included by the Makefile (which sets SHELL, RUN_DIR and DDB):
#   make tools                              tools/venv and tools/venv-checkov from tools/requirements-deploy.txt;
#                                           the arm64 Rust target
#   make build                              cargo lambda build --release --arm64 of the one binary every
#                                           function runs: target/lambda/lambda/bootstrap
#   make validate                           sam validate --lint, cfn-lint and checkov on template.yaml (offline)
#   make invoke FN=<function> EVENT=<file>  one function on a sample event, without Docker, on DynamoDB Local
#   make deploy [CONFIG_ENV=prod] [STACK=name] [REGION=region] [PARAMS="Key=Value ..."]
#                                           sam build, then sam deploy from samconfig.toml; never prompts
# Every target installs what it needs when it is missing.

VENV := tools/venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
VENV_STAMP := $(VENV)/.installed-$(shell cksum < tools/requirements-deploy.txt | cut -d' ' -f1)
# checkov pins libraries (boto3 among them) that SAM CLI pins otherwise: it gets a virtualenv of its own.
CHECKOV_VENV := tools/venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < tools/requirements-deploy.txt | cut -d' ' -f1)
LAMBDA_TARGET := aarch64-unknown-linux-gnu
# tools/venv/bin first: cargo lambda finds zig there (python3 -m ziglang), and sam and cfn-lint.
WITH_TOOLS := env PATH="$(VENV_BIN):$$PATH" SAM_CLI_TELEMETRY=0
# The functions, as template.yaml names them in each one's FUNCTION (tests/api/deploy.rs keeps
# them equal to LambdaFunction::all in src/entry/http/routes.rs), and the one binary they all run.
FUNCTIONS = $(shell sed -n 's/^ *FUNCTION: *\([A-Za-z0-9_-]*\).*/\1/p' template.yaml)
LAMBDA_BINARY = $(shell sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\).*/\1/p' template.yaml | sort -u)
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
	@grep -v '^checkov' tools/requirements-deploy.txt >$(VENV)/requirements.txt
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(VENV)/requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

$(CHECKOV_STAMP): tools/requirements-deploy.txt
	@echo "installing checkov into $(CHECKOV_VENV)" >&2
	@test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	@grep '^checkov' tools/requirements-deploy.txt >$(CHECKOV_VENV)/requirements.txt
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(CHECKOV_VENV)/requirements.txt
	@rm -f $(CHECKOV_VENV)/.installed-*
	@touch $@

## make tools: the pinned deployment tools in tools/venv (checkov in tools/venv-checkov), and
## Rust's arm64 Linux target.
tools: $(VENV_STAMP) $(CHECKOV_STAMP)
	@rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET)

## make build: the one binary every function of template.yaml runs, release, arm64, built
## once: target/lambda/lambda/bootstrap.
build: tools
	@test "$(words $(LAMBDA_BINARY))" = 1 || { echo "template.yaml's functions must all build one binary, not: $(LAMBDA_BINARY)" >&2; exit 1; }
	@$(WITH_TOOLS) cargo lambda build --release --arm64 --bin $(LAMBDA_BINARY)
	@test -f target/lambda/$(LAMBDA_BINARY)/bootstrap || { echo "target/lambda/$(LAMBDA_BINARY)/bootstrap is missing" >&2; exit 1; }
	@echo "target/lambda/$(LAMBDA_BINARY)/bootstrap  $$(stat -c %s target/lambda/$(LAMBDA_BINARY)/bootstrap) bytes, for: $(FUNCTIONS)" >&2

## make validate: the template through SAM's translator, cfn-lint and checkov; any finding fails.
## checkov's findings are fixed or skipped in the resource's Metadata with a reason; it runs
## offline (--skip-download).
validate: tools
	@$(WITH_TOOLS) AWS_DEFAULT_REGION=$(VALIDATE_REGION) sam validate --lint --template-file template.yaml
	@$(WITH_TOOLS) cfn-lint --regions $(VALIDATE_REGION) -- template.yaml
	@$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	@echo "template.yaml: valid, no lint or checkov findings" >&2

## make invoke FN=<function> EVENT=events/<file>.json: DynamoDB Local on a free port, the table
## and a root key of INVOKE_COMPANY (a route event gets it as its Authorization header), the
## one binary under `cargo lambda watch` with FUNCTION=<function>, one `cargo lambda invoke`;
## then both stop, by PID.
invoke: tools deps
	@test -n "$(FN)" && test -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>.json (functions: $(FUNCTIONS))" >&2; exit 2; }
	@case " $(FUNCTIONS) " in *" $(FN) "*) ;; *) echo "no function $(FN) in template.yaml (functions: $(FUNCTIONS))" >&2; exit 2;; esac
	@test -f "$(EVENT)" || { echo "no such event file: $(EVENT)" >&2; exit 2; }
	@cargo build --quiet --bin apikeys --bin $(LAMBDA_BINARY)
	@mkdir -p $(RUN_DIR); \
	port=$$($(DDB) free-port); pidfile=$(RUN_DIR)/invoke-dynamodb-$$port-$$$$.pid; \
	invoke_port=; watch_pidfile=/nonexistent; event=/nonexistent; \
	stop_watch() { \
	  [ -f "$$watch_pidfile" ] || return 0; pid=$$(cat "$$watch_pidfile"); \
	  kill -- -"$$pid" 2>/dev/null || kill "$$pid" 2>/dev/null || true; \
	  for _ in $$(seq 1 50); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done; \
	  kill -9 -- -"$$pid" 2>/dev/null || true; rm -f "$$watch_pidfile"; \
	}; \
	trap 'stop_watch; rm -f "$$event"; $(DDB) stop "$$pidfile"' EXIT; \
	$(DDB) start $$port $$pidfile; \
	invoke_port=$$($(DDB) free-port); watch_pidfile=$(RUN_DIR)/invoke-watch-$$invoke_port.pid; \
	export DYNAMODB_ENDPOINT=http://127.0.0.1:$$port TABLE_NAME=$(INVOKE_TABLE) RUST_LOG=$${RUST_LOG:-info}; \
	root=$$(target/debug/apikeys root-key create --company $(INVOKE_COMPANY) --description "make invoke"); \
	root_key=$$(printf '%s' "$$root" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'); \
	echo "root key of $(INVOKE_COMPANY) in table $(INVOKE_TABLE): $$root_key" >&2; \
	event=$(RUN_DIR)/invoke-event-$$invoke_port.json; \
	ROOT_KEY=$$root_key python3 -c 'import json,os,sys; e=json.load(open(sys.argv[1])); \
	  e["headers"].update({"authorization": "Bearer " + os.environ["ROOT_KEY"]}) if "headers" in e else None; \
	  json.dump(e, open(sys.argv[2], "w"))' "$(EVENT)" "$$event"; \
	set -m; \
	$(WITH_TOOLS) cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port $$invoke_port \
	  --env-var FUNCTION=$(FN) --env-var DYNAMODB_ENDPOINT=$$DYNAMODB_ENDPOINT --env-var TABLE_NAME=$(INVOKE_TABLE) --env-var RUST_LOG=$$RUST_LOG \
	  >$(RUN_DIR)/invoke-watch-$$invoke_port.log 2>&1 & \
	echo $$! >$$watch_pidfile; set +m; \
	for _ in $$(seq 1 300); do \
	  (exec 3<>/dev/tcp/127.0.0.1/$$invoke_port) 2>/dev/null && break; \
	  kill -0 $$(cat $$watch_pidfile) 2>/dev/null || { cat $(RUN_DIR)/invoke-watch-$$invoke_port.log >&2; exit 1; }; \
	  sleep 0.2; \
	done; \
	status=0; \
	timeout $(INVOKE_TIMEOUT) $(WITH_TOOLS) cargo lambda invoke $(LAMBDA_BINARY) --invoke-address 127.0.0.1 --invoke-port $$invoke_port --data-file $$event || status=$$?; \
	echo; echo "--- cargo lambda watch log ($(RUN_DIR)/invoke-watch-$$invoke_port.log):" >&2; \
	tail -n 20 $(RUN_DIR)/invoke-watch-$$invoke_port.log >&2; \
	exit $$status

## make deploy: sam build (cargo lambda, arm64: the one binary, one build every function shares),
## then sam deploy with samconfig.toml's CONFIG_ENV
## (default: `default`); STACK, REGION and PARAMS ("Key=Value ...") override the config. Never
## prompts (stdin is closed for sam, no changeset confirmation); without usable AWS credentials
## it stops before building.
CONFIG_ENV ?= default
STACK ?=
REGION ?=
PARAMS ?=
DEPLOY_FLAGS = --config-env $(CONFIG_ENV) $(if $(STACK),--stack-name $(STACK)) $(if $(REGION),--region $(REGION)) \
  $(if $(PARAMS),--parameter-overrides $(PARAMS)) --no-confirm-changeset --no-fail-on-empty-changeset
deploy: tools
	@$(WITH_TOOLS) REGION=$(REGION) CONFIG_ENV=$(CONFIG_ENV) tools/deploy-preflight.sh
	@$(WITH_TOOLS) SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 sam build --config-env $(CONFIG_ENV) --beta-features </dev/null
	@$(WITH_TOOLS) sam deploy $(DEPLOY_FLAGS) </dev/null
