# make schemathesis [SCHEMATHESIS_SECONDS=180]: Schemathesis (pinned in
# tools/requirements-schemathesis.txt, installed into tools/venv-schemathesis when missing)
# against the local server on DynamoDB Local, both on free ports with a root key, every check;
# any failure or warning fails (tools/schemathesis.py, tools/schemathesis.toml).
SCHEMATHESIS_VENV := tools/venv-schemathesis
SCHEMATHESIS_STAMP := $(SCHEMATHESIS_VENV)/.installed-$(shell cksum < tools/requirements-schemathesis.txt | cut -d' ' -f1)
SCHEMATHESIS_SECONDS ?= 180

.PHONY: schemathesis

$(SCHEMATHESIS_STAMP): tools/requirements-schemathesis.txt
	@echo "installing Schemathesis into $(SCHEMATHESIS_VENV)" >&2
	@test -x $(SCHEMATHESIS_VENV)/bin/python || python3 -m venv $(SCHEMATHESIS_VENV)
	@$(SCHEMATHESIS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-schemathesis.txt
	@rm -f $(SCHEMATHESIS_VENV)/.installed-*
	@touch $@

schemathesis: deps $(SCHEMATHESIS_STAMP)
	@cargo build --bin local_server
	@python3 tools/schemathesis.py --dynamodb-local $(DDB) --st $(SCHEMATHESIS_VENV)/bin/st --seconds $(SCHEMATHESIS_SECONDS)
