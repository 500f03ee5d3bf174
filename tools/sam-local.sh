#!/usr/bin/env bash
# `sam local invoke` of every function of template.yaml on its event in events/, against DynamoDB
# Local, in Docker. Everything it starts it stops, by PID:
#   run     a private dockerd (own socket, data root and bridge under .run/sam-local), the base
#           image SAM expects (pulled, or a Debian stand-in made with debootstrap), the one binary
#           of every function built for this machine, a copy of the template that runs it, DynamoDB Local, the
#           seed data, then each invocation, its answer checked
#   seed    the table and a root key of company acme on DYNAMODB_ENDPOINT (default
#           http://127.0.0.1:8000, `make run`'s); the key goes to .run/sam-local/root-key
# Needs root (dockerd, apt-get when docker.io or debootstrap is missing) and tools/venv (make tools).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=.run/sam-local
IMAGE=public.ecr.aws/lambda/provided:al2023-x86_64
COMPANY=acme
TABLE=apikeys
# The private daemon's bridge; containers reach the host (DynamoDB Local) at its address.
BRIDGE=${SAM_LOCAL_BRIDGE:-apikeys0}
BRIDGE_CIDR=${SAM_LOCAL_BRIDGE_CIDR:-172.29.0.1/24}
DDB=tools/dynamodb-local.sh
# This run's DynamoDB Local: a pid file of its own, as tools/dynamodb-local.sh start requires.
DDB_PIDFILE=$RUN/dynamodb-$$.pid
SAM=(env SAM_CLI_TELEMETRY=0 "$PWD/tools/venv/bin/sam")
PY=$PWD/tools/venv/bin/python

say() { echo "sam-local: $*" >&2; }
die() { say "$*"; exit 1; }

# --- seed -------------------------------------------------------------------------------------

seed() {
  local endpoint=${DYNAMODB_ENDPOINT:-http://127.0.0.1:8000}
  mkdir -p "$RUN"
  cargo build --quiet --bin apikeys
  # The CLI creates the table when it is missing (DYNAMODB_ENDPOINT set), then the root key.
  DYNAMODB_ENDPOINT=$endpoint TABLE_NAME=$TABLE target/debug/apikeys root-key create --company $COMPANY \
    --description "sam-local seed" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' >"$RUN/root-key"
  say "seeded $endpoint: table $TABLE, a root key of company $COMPANY in $RUN/root-key"
}

# --- the private Docker daemon ----------------------------------------------------------------

made_bridge=0
ensure_package() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  say "$1 not found: installing the Debian package $2"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

start_dockerd() {
  ensure_package dockerd docker.io
  ensure_package ip iproute2
  mkdir -p "$RUN/docker"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add name "$BRIDGE" type bridge
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
    made_bridge=1
  fi
  ip link set "$BRIDGE" up
  # No iptables rules: the containers only talk to the host, over the bridge.
  dockerd --host "unix://$PWD/$RUN/docker/docker.sock" --data-root "$PWD/$RUN/docker/data" \
    --exec-root "$PWD/$RUN/docker/exec" --pidfile "$PWD/$RUN/docker/dockerd.pid" --bridge "$BRIDGE" \
    --iptables=false --ip-masq=false >"$RUN/docker/dockerd.log" 2>&1 &
  echo $! >"$RUN/dockerd.pid"
  export DOCKER_HOST="unix://$PWD/$RUN/docker/docker.sock"
  for _ in $(seq 1 100); do
    docker version >/dev/null 2>&1 && { say "private dockerd (pid $(cat "$RUN/dockerd.pid")) on $DOCKER_HOST"; return 0; }
    kill -0 "$(cat "$RUN/dockerd.pid")" 2>/dev/null || break
    sleep 0.3
  done
  tail -n 20 "$RUN/docker/dockerd.log" >&2
  die "dockerd did not start"
}

cleanup() {
  # Containers SAM left (a failed invocation) go with the daemon; it stops them on the way out.
  $DDB stop "$RUN/listener.pid"
  # dockerd stops its containers and its containerd first: give it time before a KILL.
  $DDB stop "$RUN/dockerd.pid" 30
  [ "$made_bridge" = 1 ] && ip link delete "$BRIDGE" 2>/dev/null || true
  $DDB stop "$DDB_PIDFILE"
}

# --- the base image ---------------------------------------------------------------------------

base_image() {
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "base image $IMAGE: $(cat "$RUN/image-source" 2>/dev/null || echo present) (kept from an earlier run)"
    return 0
  fi
  if timeout 120 docker pull "$IMAGE" >"$RUN/pull.log" 2>&1; then
    echo "the real image, pulled from public.ecr.aws" >"$RUN/image-source"
    say "base image $IMAGE: the real image, pulled"
    return 0
  fi
  say "cannot pull $IMAGE ($(tail -n 1 "$RUN/pull.log")): building a stand-in under that name"
  ensure_package debootstrap debootstrap
  rm -rf "$RUN/rootfs"
  # ca-certificates: the functions' TLS client insists on the system's roots, as Lambda has them.
  debootstrap --variant=minbase --include=ca-certificates bookworm "$RUN/rootfs" http://deb.debian.org/debian \
    >"$RUN/debootstrap.log" 2>&1 || { tail -n 20 "$RUN/debootstrap.log" >&2; die "debootstrap failed"; }
  tar -C "$RUN/rootfs" -c . | docker import -c 'WORKDIR /var/task' - "$IMAGE" >/dev/null
  rm -rf "$RUN/rootfs"
  echo "a stand-in: Debian bookworm (debootstrap --variant=minbase) imported as $IMAGE" >"$RUN/image-source"
  say "base image $IMAGE: $(cat "$RUN/image-source")"
}

# --- the functions and the template that runs them --------------------------------------------

# The one binary every function of template.yaml runs (each with its own FUNCTION).
lambda_binary() { sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\).*/\1/p' template.yaml | sort -u; }

build_functions() {
  local binary
  binary=$(lambda_binary)
  [ "$(printf '%s\n' "$binary" | wc -l)" = 1 ] || die "template.yaml's functions must all build one binary, not: $binary"
  rm -rf "$RUN/fn"
  if grep -q "stand-in" "$RUN/image-source"; then
    # The stand-in is Debian, as this machine: the debug binary cargo builds here runs in it.
    say "building $binary, every function's (debug, $(uname -m), this machine's glibc)"
    cargo build --quiet --bin "$binary"
    mkdir -p "$RUN/fn/$binary"
    cp target/debug/"$binary" "$RUN/fn/$binary/bootstrap"
  else
    # The real image's glibc may be older than this machine's: cargo lambda links for Lambda.
    say "building $binary, every function's (debug, x86_64, cargo lambda)"
    env PATH="$PWD/tools/venv/bin:$PATH" cargo lambda build --x86-64 --lambda-dir "$RUN/fn" --bin "$binary"
  fi
}

# A copy of template.yaml for this machine: x86_64, every function's code the one folder built
# above (each keeps its FUNCTION), no build metadata (sam local invoke runs what is there). The
# deployed template stays arm64.
# The custom resources' functions (root key, Custom::ApiKey) also declare
# ROOT_KEY_LOCAL_RESPONSE_HOST here, and only here, so that env_file can let them answer this
# run's plain-http listener; the deployed template has no such variable and answers presigned
# https S3 URLs only.
local_template() {
  "$PY" - "$RUN" <<'PY'
import os, sys, yaml
run = sys.argv[1]
template = yaml.safe_load(open("template.yaml"))
template["Globals"]["Function"]["Architectures"] = ["x86_64"]
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        resource["Properties"]["CodeUri"] = os.path.abspath(f"{run}/fn/{binary}")
        variables = resource["Properties"]["Environment"]["Variables"]
        if variables["FUNCTION"] in ("root_key_resource", "api_key_resource"):
            variables["ROOT_KEY_LOCAL_RESPONSE_HOST"] = ""
        del resource["Metadata"]
yaml.safe_dump(template, open(f"{run}/template.yaml", "w"), sort_keys=False)
PY
}

# --- the invocations --------------------------------------------------------------------------

# events/env.json with DynamoDB Local's port of this run, and the listener's host the custom
# resources' functions may answer on over plain http (local testing only: see local_template).
env_file() { # dynamodb-port listener-port
  python3 - "$RUN" "$1" "$2" <<'PY'
import json, sys
run, port, listener_port = sys.argv[1], sys.argv[2], sys.argv[3]
env = json.load(open("events/env.json"))
env["Parameters"]["DYNAMODB_ENDPOINT"] = f"http://host.docker.internal:{port}"
for function in ("RootKeyFunction", "ApiKeyFunction"):
    env[function] = {"ROOT_KEY_LOCAL_RESPONSE_HOST": f"host.docker.internal:{listener_port}"}
json.dump(env, open(f"{run}/env.json", "w"), indent=2)
PY
}

# A copy of events/<name>.json as this run sends it: route events carry the seeded root key.
# $3 (optional): JSON of top-level fields to set, or of the body's fields under "body".
event() { # name out [overrides]
  local overrides=${3:-}
  [ -n "$overrides" ] || overrides='{}'
  python3 - "$RUN" "$1" "$2" "$overrides" <<'PY'
import json, sys
run, name, out, overrides = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
event = json.load(open(f"events/{name}.json"))
if "headers" in event:
    event["headers"]["authorization"] = "Bearer " + open(f"{run}/root-key").read().strip()
for field, value in overrides.items():
    if field == "body":
        body = json.loads(event["body"]); body.update(value); event["body"] = json.dumps(body)
        event["headers"]["content-length"] = str(len(event["body"]))
    else:
        event[field] = value
json.dump(event, open(f"{run}/events/{out}.json", "w"))
PY
}

invoke() { # logical-id event-copy -> the function's answer in $RUN/answers/<event-copy>.json
  local started=$SECONDS
  if ! "${SAM[@]}" local invoke "$1" --template-file "$RUN/template.yaml" --event "$RUN/events/$2.json" \
    --env-vars "$RUN/env.json" --parameter-overrides "RootKeyCompany=$COMPANY ApiKeyResourceCompanies=$COMPANY" \
    --skip-pull-image --add-host host.docker.internal:host-gateway \
    >"$RUN/answers/$2.json" 2>"$RUN/answers/$2.log"; then
    tail -n 30 "$RUN/answers/$2.log" >&2
    die "sam local invoke $1 -e $2 failed"
  fi
  say "invoked $1 on $2 ($((SECONDS - started)) s)"
}

# Checks an answer with a Python expression over `a` (the function's answer) and `b` (an API
# answer's parsed body); prints the summary line.
check() { # event-copy description expression
  "$PY" - "$RUN/answers/$1.json" "$1" "$2" "$3" <<'PY' || exit 1
import json, sys
path, name, description, expression = sys.argv[1:]
text = open(path).read().strip()
a = json.loads(text[text.index("{"):])
try:
    b = json.loads(a["body"]) if a.get("body") else None
except ValueError:
    b = a["body"]  # not JSON: the console's page and assets
if not eval(expression):
    print(f"sam-local: FAILED {name}: expected {description}; got {text}", file=sys.stderr)
    sys.exit(1)
print(f"  {name:<28} {description}")
PY
}

field() { # event-copy python-expression-over-b
  "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.loads(a["body"]); print(eval(sys.argv[2]))' \
    "$RUN/answers/$1.json" "$2"
}

# Answers CloudFormation's PUT for the custom resource: each body to $RUN/responses/<n>.json.
start_listener() { # port
  mkdir -p "$RUN/responses"
  python3 - "$1" "$RUN/responses" >"$RUN/listener.log" 2>&1 <<'PY' &
import http.server, os, sys
port, out = int(sys.argv[1]), sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(os.path.join(out, f"{len(os.listdir(out)) + 1}.json"), "wb") as f:
            f.write(body)
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
http.server.HTTPServer(("0.0.0.0", port), Handler).serve_forever()
PY
  echo $! >"$RUN/listener.pid"
}

response_check() { # n description expression-over-r
  "$PY" - "$RUN/responses/$1.json" "$2" "$3" <<'PY' || exit 1
import json, sys
path, description, expression = sys.argv[1:]
r = json.load(open(path))
if not eval(expression):
    print(f"sam-local: FAILED: CloudFormation's answer: expected {description}; got {r}", file=sys.stderr)
    sys.exit(1)
print(f"  {'  (CloudFormation got)':<28} {description}")
PY
}

run() {
  local started=$SECONDS
  [ -x tools/venv/bin/sam ] || die "tools/venv is missing: run make tools"
  mkdir -p "$RUN"
  trap cleanup EXIT
  start_dockerd
  base_image
  build_functions
  local_template
  $DDB install
  local port listener_port
  port=$($DDB free-port)
  $DDB start "$port" "$DDB_PIDFILE"
  DYNAMODB_ENDPOINT=http://127.0.0.1:$port seed
  listener_port=$($DDB free-port)
  env_file "$port" "$listener_port"
  start_listener "$listener_port"
  rm -rf "$RUN/events" "$RUN/answers" "$RUN/responses"
  mkdir -p "$RUN/events" "$RUN/answers" "$RUN/responses"
  say "setup took $((SECONDS - started)) s; invoking every function (image: $(cat "$RUN/image-source"))"

  event create_custom_key create_custom_key
  invoke CreateCustomKeyFunction create_custom_key
  event get_key get_key
  invoke GetKeyFunction get_key
  event update_key update_key
  invoke UpdateKeyFunction update_key
  event list_key_events list_key_events
  invoke ListKeyEventsFunction list_key_events
  event create_key create_key
  invoke CreateKeyFunction create_key
  # verify_key checks the key create_key just made (the committed event holds a placeholder).
  event verify_key verify_key "{\"body\": {\"key\": \"$(field create_key 'b["key"]')\"}}"
  invoke VerifyKeyFunction verify_key
  event list_keys list_keys
  invoke ListKeysFunction list_keys
  event roll_key roll_key
  invoke RollKeyFunction roll_key
  event delete_key delete_key
  invoke DeleteKeyFunction delete_key
  event me me
  invoke MeFunction me
  event console console
  invoke ConsoleFunction console
  event retention_stream retention_stream
  invoke RetentionStreamFunction retention_stream
  # Presigned like CloudFormation's (the function refuses an unsigned URL), on the local listener.
  local url="http://host.docker.internal:$listener_port/cloudformation-response?X-Amz-Signature=local"
  event root_key_resource root_key_create "{\"ResponseURL\": \"$url\"}"
  invoke RootKeyFunction root_key_create
  event root_key_resource root_key_delete \
    "{\"ResponseURL\": \"$url\", \"RequestType\": \"Delete\", \"PhysicalResourceId\": \"acme/example\"}"
  invoke RootKeyFunction root_key_delete
  # Another stack's key of acme: made, then its secret refused (no Secrets Manager here); the
  # failed create names the key, so the Delete CloudFormation then sends deletes it.
  event api_key_resource api_key_create "{\"ResponseURL\": \"$url\"}"
  invoke ApiKeyFunction api_key_create
  local api_key
  api_key=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["PhysicalResourceId"])' "$RUN/responses/3.json")
  event api_key_resource api_key_delete \
    "{\"ResponseURL\": \"$url\", \"RequestType\": \"Delete\", \"PhysicalResourceId\": \"$api_key\"}"
  invoke ApiKeyFunction api_key_delete

  echo "sam local invoke, every function on its event (answers in $RUN/answers):"
  check create_custom_key '201, id billing-svc, its key' 'a["statusCode"] == 201 and b["id"] == "billing-svc" and b["key"].startswith("sk_")'
  check get_key '200, id billing-svc, no key' 'a["statusCode"] == 200 and b["id"] == "billing-svc" and "key" not in b'
  check update_key '200, the new description' 'a["statusCode"] == 200 and b["description"] == "Billing service, rotated monthly"'
  check list_key_events '200, total 2 (created, updated)' 'a["statusCode"] == 200 and b["total"] == 2'
  check create_key '201, a new key of user_42' 'a["statusCode"] == 201 and b["userId"] == "user_42" and b["key"].startswith("sk_")'
  check verify_key '200, valid, code VALID' 'a["statusCode"] == 200 and b["valid"] is True and b["code"] == "VALID"'
  check list_keys '200, total 3 (root, billing-svc, the new key)' 'a["statusCode"] == 200 and b["total"] == 3'
  check roll_key '200, billing-svc with a new key' 'a["statusCode"] == 200 and b["id"] == "billing-svc" and b["key"].startswith("sk_")'
  check delete_key '204' 'a["statusCode"] == 204'
  check me '200, company acme, keys:*' 'a["statusCode"] == 200 and b["companyId"] == "acme" and "keys:*" in b["permissions"]'
  check console '200, the console script under a strict CSP' \
    'a["statusCode"] == 200 and "javascript" in a["headers"]["content-type"] and "script-src '"'"'self'"'"'" in a["headers"]["content-security-policy"]'
  check retention_stream 'no batch item failure' 'a == {"batchItemFailures": []}'
  check root_key_create 'FAILED answered (Secrets Manager is not reachable here)' 'a == {"Status": "FAILED"}'
  response_check 1 'FAILED, the key created but not stored, NoEcho' \
    'r["Status"] == "FAILED" and "not stored" in r["Reason"] and r["NoEcho"] is True and "sk_" not in json.dumps(r)'
  check root_key_delete 'SUCCESS answered (Delete keeps the key)' 'a == {"Status": "SUCCESS"}'
  response_check 2 'SUCCESS, the same physical id' 'r["Status"] == "SUCCESS" and r["PhysicalResourceId"] == "acme/example"'
  check api_key_create 'FAILED answered (Secrets Manager is not reachable here)' 'a == {"Status": "FAILED"}'
  response_check 3 'FAILED, the key made but its secret not written, named acme/<keyId>' \
    'r["Status"] == "FAILED" and "could not be written" in r["Reason"] and r["PhysicalResourceId"].startswith("acme/") and "sk_" not in json.dumps(r)'
  check api_key_delete 'FAILED answered (the key deleted, its secret unreachable)' 'a == {"Status": "FAILED"}'
  response_check 4 'FAILED, the key deleted, the same physical id' \
    'r["Status"] == "FAILED" and "was deleted but its secret" in r["Reason"] and r["PhysicalResourceId"] == "'"$api_key"'"'
  say "every answer as documented; $((SECONDS - started)) s in all"
}

case "${1:-}" in
  run) run ;;
  seed) seed ;;
  *) echo "usage: $0 run | seed" >&2; exit 2 ;;
esac
