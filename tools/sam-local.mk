# SAM local invocation with Docker, included by the Makefile (which sets SHELL, RUN_DIR and DDB):
#   make sam-local   every function through `sam local invoke` on its event in events/ and
#                    events/env.json, against DynamoDB Local, each answer checked
#                    (tools/sam-local.sh run: private dockerd, base image or its stand-in,
#                    functions built for this machine, a generated template, seed, invoke)
#   make sam-api     the same setup, then every route behind `sam local start-api` on a free
#                    port, the black-box suite (tests/blackbox) and `apikeys smoke` against it
#                    (tools/sam-local.sh api)
#   make seed        the table and a root key of company acme on DYNAMODB_ENDPOINT (default
#                    http://127.0.0.1:8000, `make run`'s DynamoDB Local), for invoking by hand
# Both need root on this machine (dockerd; apt-get for docker.io and debootstrap when missing).

.PHONY: sam-local sam-api seed

## make sam-local: sam local invoke of every function on its event, against DynamoDB Local.
sam-local: tools deps
	@tools/sam-local.sh run

## make sam-api: the black-box suite and the smoke check through sam local start-api.
sam-api: tools deps
	@tools/sam-local.sh api

## make seed: table and root key (company acme) the events expect, on DYNAMODB_ENDPOINT.
seed: deps
	@tools/sam-local.sh seed
