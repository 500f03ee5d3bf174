"""`sam local` in Docker, against DynamoDB Local. Everything it starts it stops, by PID.

prepared_sam_environment() gives what every `sam local` run needs: a private dockerd (own
socket, data root and bridge under .run/sam-local), the base image SAM expects (pulled, or a
Debian stand-in made with debootstrap), the one binary of every function built for this machine,
a copy of the template that runs it, DynamoDB Local with the table and a root key of acme, and a
listener that takes custom resources' answers to CloudFormation. invoke_and_check() and
custom_resource_roundtrip() invoke one function in it; run_all() is `make sam-local`, run_api()
`make sam-api` (every route behind `sam local start-api`, the black-box suite against it)."""

import contextlib
import http.server
import base64
import gzip
import json
import os
import platform
import queue
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import dynamodb
from .common import (ROOT, RUN_DIR, TEMPLATE, VENV, Failed, apt_install, free_port, lambda_binary, read_record,
                     run, running, say, spawn, stop, template_functions, with_tools_env)
from .keys import create_root_key, write_event

SAM_RUN = RUN_DIR / "sam-local"
IMAGE = "public.ecr.aws/lambda/provided:al2023-x86_64"
COMPANY = "acme"
# make sam-api's second company, for the black-box suite's cross-company checks.
OTHER_COMPANY = "rival"
TABLE = "apikeys"
# The private daemon's bridge; containers reach the host (DynamoDB Local, the listener) at its address.
BRIDGE = os.environ.get("SAM_LOCAL_BRIDGE", "apikeys0")
BRIDGE_CIDR = os.environ.get("SAM_LOCAL_BRIDGE_CIDR", "172.29.0.1/24")
# Custom resources' functions, and the variable that lets each answer the local listener over
# plain http. Only the generated template declares it: the deployed functions answer presigned
# https S3 URLs only.
LOCAL_RESPONSE_HOST = {
    "root_key_resource": "ROOT_KEY_LOCAL_RESPONSE_HOST",
    "api_key_resource": "ROOT_KEY_LOCAL_RESPONSE_HOST",
}
# What the lifecycle events' function is given here, where sam local cannot resolve its
# schedule group's and role's references: placeholders of the right shape (no AWS is reached).
LIFECYCLE_EVENTS_ENV = {
    "EVENT_BUS_ARN": "arn:aws:events:us-east-1:123456789012:event-bus/default",
    "SCHEDULE_GROUP_NAME": "apikeys-local",
    "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/apikeys-local-scheduler",
    "SCHEDULER_DEAD_LETTER_ARN": "arn:aws:sqs:us-east-1:123456789012:apikeys-local-failures",
}
# The stack's parameters: acme's root key minted, and other stacks' keys of acme served.
PARAMETERS = f"RootKeyCompany={COMPANY} ApiKeyResourceCompanies={COMPANY}"


def _say(message):
    say("sam-local", message)


# --- the private Docker daemon --------------------------------------------------------------


@contextlib.contextmanager
def private_dockerd(run_dir):
    """A dockerd of this run's own on its own bridge, no iptables rules (the containers only
    talk to the host); yields DOCKER_HOST. On the way out it stops its containers, then itself."""
    apt_install({"dockerd": "docker.io", "ip": "iproute2"}, "make sam-local")
    docker = run_dir / "docker"
    docker.mkdir(parents=True, exist_ok=True)
    made_bridge = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0
    pidfile = run_dir / "dockerd.pid"
    try:
        if made_bridge:
            run(["ip", "link", "add", "name", BRIDGE, "type", "bridge"])
            run(["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])
        host = f"unix://{docker / 'docker.sock'}"
        process = spawn(["dockerd", "--host", host, "--data-root", docker / "data", "--exec-root", docker / "exec",
                         "--pidfile", docker / "dockerd.pid", "--bridge", BRIDGE, "--iptables=false",
                         "--ip-masq=false"], docker / "dockerd.log", pidfile)
        env = dict(os.environ, DOCKER_HOST=host)
        ready = False
        for _ in range(100):
            ready = subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0
            if ready or process.poll() is not None:
                break
            time.sleep(0.3)
        if not ready:
            log = (docker / "dockerd.log").read_text(errors="replace").splitlines()[-20:]
            raise Failed("dockerd did not start:\n" + "\n".join(log))
        _say(f"private dockerd (pid {process.pid}) on {host}")
        yield host
    finally:
        # dockerd stops its containers and its containerd first: time before a KILL.
        stop(pidfile, 30, who="sam-local")
        if made_bridge:
            subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)


def base_image(run_dir, env):
    """The image SAM runs provided.al2023 functions on: kept, pulled, or a Debian stand-in
    imported under its name. Returns where it came from."""
    source = run_dir / "image-source"
    if subprocess.run(["docker", "image", "inspect", IMAGE], env=env, capture_output=True).returncode == 0:
        said = source.read_text().strip() if source.exists() else "present"
        _say(f"base image {IMAGE}: {said} (kept from an earlier run)")
        return said
    with open(run_dir / "pull.log", "w") as log:
        try:
            pulled = subprocess.run(["docker", "pull", IMAGE], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=120).returncode == 0
        except subprocess.TimeoutExpired:
            pulled = False
    if pulled:
        source.write_text("the real image, pulled from public.ecr.aws\n")
    else:
        last = ((run_dir / "pull.log").read_text(errors="replace").strip().splitlines() or ["timed out"])[-1]
        _say(f"cannot pull {IMAGE} ({last}): building a stand-in under that name")
        apt_install({"debootstrap": "debootstrap"}, "make sam-local's stand-in image")
        rootfs = run_dir / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        # ca-certificates: the functions' TLS client insists on the system's roots, as Lambda has them.
        with open(run_dir / "debootstrap.log", "w") as log:
            if subprocess.run(["debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm", rootfs,
                               "http://deb.debian.org/debian"], stdout=log, stderr=subprocess.STDOUT).returncode:
                raise Failed("debootstrap failed: see " + str(run_dir / "debootstrap.log"))
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        run(["docker", "import", "-c", "WORKDIR /var/task", "-", IMAGE], stdin=tar.stdout, env=env,
            stdout=subprocess.DEVNULL)
        tar.wait()
        shutil.rmtree(rootfs, ignore_errors=True)
        source.write_text(f"a stand-in: Debian bookworm (debootstrap --variant=minbase) imported as {IMAGE}\n")
    said = source.read_text().strip()
    _say(f"base image {IMAGE}: {said}")
    return said


# --- the functions and the template that runs them ------------------------------------------


def build_functions(run_dir, image_source):
    """The one binary of every function, for this machine, in run_dir/fn/<binary>/bootstrap."""
    binary = lambda_binary()
    shutil.rmtree(run_dir / "fn", ignore_errors=True)
    if "stand-in" in image_source:
        # The stand-in is Debian, as this machine: the debug binary cargo builds here runs in it.
        _say(f"building {binary}, every function's (debug, {platform.machine()}, this machine's glibc)")
        run(["cargo", "build", "--quiet", "--bin", binary])
        (run_dir / "fn" / binary).mkdir(parents=True)
        shutil.copy(ROOT / "target" / "debug" / binary, run_dir / "fn" / binary / "bootstrap")
    else:
        # The real image's glibc may be older than this machine's: cargo lambda links for Lambda.
        _say(f"building {binary}, every function's (debug, x86_64, cargo lambda)")
        run(["cargo", "lambda", "build", "--x86-64", "--lambda-dir", run_dir / "fn", "--bin", binary],
            env=with_tools_env())


def local_template(run_dir):
    """A copy of template.yaml for this machine: x86_64, every function's code the one folder
    built, no build metadata (sam local runs what is there), and the custom resources' functions
    declaring their local response host. The deployed template stays arm64."""
    import yaml  # tools/venv's (SAM CLI's); dev.py runs sam-local under it

    template = yaml.safe_load(TEMPLATE.read_text())
    template["Globals"]["Function"]["Architectures"] = ["x86_64"]
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            binary = resource["Metadata"]["BuildProperties"]["Binary"]
            resource["Properties"]["CodeUri"] = str(run_dir / "fn" / binary)
            variables = resource["Properties"]["Environment"]["Variables"]
            if variables["FUNCTION"] in LOCAL_RESPONSE_HOST:
                variables[LOCAL_RESPONSE_HOST[variables["FUNCTION"]]] = ""
            del resource["Metadata"]
    out = run_dir / "template.yaml"
    out.write_text(yaml.safe_dump(template, sort_keys=False))
    return out


def env_file(run_dir, dynamodb_port, listener_port, functions):
    """events/env.json with this run's DynamoDB Local, and each custom resource's function
    allowed to answer the listener."""
    env = json.loads((ROOT / "events" / "env.json").read_text())
    env["Parameters"]["DYNAMODB_ENDPOINT"] = f"http://host.docker.internal:{dynamodb_port}"
    for function, variable in LOCAL_RESPONSE_HOST.items():
        env[functions[function]] = {variable: f"host.docker.internal:{listener_port}"}
    env[functions["lifecycle_events"]] = dict(LIFECYCLE_EVENTS_ENV)
    out = run_dir / "env.json"
    out.write_text(json.dumps(env, indent=2))
    return out


# --- the listener for custom resources' answers ---------------------------------------------


@contextlib.contextmanager
def response_listener():
    """An HTTP server on every interface (containers reach it through the bridge) that takes
    CloudFormation's PUT; yields (port, queue of the parsed bodies)."""
    answers = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            answers.put(json.loads(body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], answers
    finally:
        server.shutdown()
        server.server_close()


# --- the environment ------------------------------------------------------------------------


@dataclass
class SamEnvironment:
    """A prepared run: where its files are, the environment `sam` runs in, DynamoDB Local's
    endpoint (seen from this machine) and the seeded root key."""
    run_dir: Path
    template: Path
    env_file: Path
    environ: dict
    functions: dict  # FUNCTION -> logical id
    endpoint: str
    root_key: str
    listener_url: str
    responses: queue.Queue
    invoked: set = field(default_factory=set)

    def sam(self, *args):
        """The command line of `sam local <args>` with this run's template, variables and host."""
        return [VENV / "bin" / "sam", "local", *args, "--template-file", self.template, "--env-vars",
                self.env_file, "--parameter-overrides", PARAMETERS, "--skip-pull-image",
                "--add-host", "host.docker.internal:host-gateway"]

    def event(self, source, name, overrides=None):
        """A copy of events/<source>.json carrying the root key: run_dir/events/<name>.json."""
        return write_event(source, self.root_key, self.run_dir / "events" / f"{name}.json", overrides)

    def invoke(self, function, event):
        """`sam local invoke` of FUNCTION on the EVENT file; the function's answer, parsed."""
        answers = self.run_dir / "answers"
        answers.mkdir(exist_ok=True)
        name = Path(event).stem
        started = time.monotonic()
        with open(answers / f"{name}.json", "w") as out, open(answers / f"{name}.log", "w") as log:
            status = subprocess.run([str(a) for a in self.sam("invoke", self.functions[function], "--event", event)],
                                    stdout=out, stderr=log, env=self.environ, stdin=subprocess.DEVNULL).returncode
        if status != 0:
            tail = (answers / f"{name}.log").read_text(errors="replace").splitlines()[-30:]
            raise Failed(f"sam local invoke {self.functions[function]} -e {name} failed:\n" + "\n".join(tail))
        self.invoked.add(function)
        _say(f"invoked {self.functions[function]} on {name} ({time.monotonic() - started:.0f} s)")
        text = (answers / f"{name}.json").read_text().strip()
        return json.loads(text[text.index("{"):])


@contextlib.contextmanager
def prepared_sam_environment(run_dir=SAM_RUN):
    """Everything a `sam local` run needs (see the module's doc), stopped on the way out."""
    if not (VENV / "bin" / "sam").exists():
        raise Failed("tools/venv is missing: run make tools")
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in ("events", "answers"):
        shutil.rmtree(run_dir / old, ignore_errors=True)
    functions = template_functions()
    with private_dockerd(run_dir) as docker_host:
        environ = with_tools_env({"DOCKER_HOST": docker_host})
        image_source = base_image(run_dir, environ)
        build_functions(run_dir, image_source)
        template = local_template(run_dir)
        with dynamodb.local_dynamodb("sam-local") as endpoint, response_listener() as (listener_port, responses):
            root_key = create_root_key(endpoint, COMPANY, TABLE, "sam-local seed")
            env = env_file(run_dir, dynamodb.port_of(endpoint), listener_port, functions)
            _say(f"image: {image_source}")
            # Presigned like CloudFormation's (the functions refuse an unsigned URL).
            url = f"http://host.docker.internal:{listener_port}/cloudformation-response?X-Amz-Signature=local"
            yield SamEnvironment(run_dir, template, env, environ, functions, endpoint, root_key, url, responses)


def _check(name, description, holds, got):
    if not holds:
        raise Failed(f"FAILED {name}: expected {description}; got {got}")
    print(f"  {name:<28} {description}", flush=True)


def _body(answer):
    try:
        return json.loads(answer["body"]) if answer.get("body") else None
    except ValueError:
        return answer["body"]  # not JSON: the console's page and assets


def invoke_and_check(env, function, source, description, expect, name=None, overrides=None):
    """Invokes FUNCTION on events/<source>.json (with the root key, and OVERRIDES) and checks
    EXPECT(answer, parsed body); returns the answer."""
    name = name or source
    answer = env.invoke(function, env.event(source, name, overrides))
    _check(name, description, expect(answer, _body(answer)), answer)
    return answer


def custom_resource_roundtrip(env, function, source, description, expect, response_description, respond,
                              name=None, overrides=None):
    """A custom resource's request: the event's ResponseURL is the local listener; checks the
    function's own answer (EXPECT) and what CloudFormation got (RESPOND, over the parsed PUT body)."""
    answer = invoke_and_check(env, function, source, description, expect, name,
                              dict(overrides or {}, ResponseURL=env.listener_url))
    try:
        response = env.responses.get(timeout=10)
    except queue.Empty:
        raise Failed(f"FAILED {name or source}: CloudFormation got no answer") from None
    _check("  (CloudFormation got)", response_description, respond(response), response)
    return answer, response


def _at_identity(identity_id):
    """Overrides that point an identity event (whose committed path names a made-up id) at
    IDENTITY_ID, which the run's create_identity made."""
    def overrides(source):
        event = json.loads((ROOT / "events" / f"{source}.json").read_text())
        path = event["rawPath"].rsplit("/", 1)[0] + "/" + identity_id
        context = dict(event["requestContext"], http=dict(event["requestContext"]["http"], path=path))
        return {"rawPath": path, "pathParameters": {"identityId": identity_id}, "requestContext": context}
    return overrides


def _logged_now(source):
    """events/usage_aggregator.json's delivery with its log events' times set to now."""
    event = json.loads((ROOT / "events" / f"{source}.json").read_text())
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    now = int(time.time() * 1000)
    for entry in data["logEvents"]:
        entry["timestamp"] = now
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}


def _last_day():
    """events/key_usage.json asking for the last 24 hours by day (its committed range is fixed)."""
    return {"rawQueryString": "granularity=day", "queryStringParameters": {"granularity": "day"}}


def run_all():
    """make sam-local: every function of template.yaml invoked on its event, each answer checked."""
    started = time.monotonic()
    with prepared_sam_environment() as env:
        _say(f"setup took {time.monotonic() - started:.0f} s; invoking every function")
        print("sam local invoke, every function on its event (answers in .run/sam-local/answers):", flush=True)
        check = lambda *args, **kwargs: invoke_and_check(env, *args, **kwargs)  # noqa: E731
        check("create_custom_key", "create_custom_key", "201, id billing-svc, its key",
              lambda a, b: a["statusCode"] == 201 and b["id"] == "billing-svc" and b["key"].startswith("sk_"))
        check("get_key", "get_key", "200, id billing-svc, no key",
              lambda a, b: a["statusCode"] == 200 and b["id"] == "billing-svc" and "key" not in b)
        check("update_key", "update_key", "200, the new description",
              lambda a, b: a["statusCode"] == 200 and b["description"] == "Billing service, rotated monthly")
        check("list_key_events", "list_key_events", "200, total 2 (created, updated)",
              lambda a, b: a["statusCode"] == 200 and b["total"] == 2)
        # The sample batch (2 VALID and 1 RATE_LIMITED of billing-svc), logged now: a key shows
        # only what was counted after it was made.
        check("usage_aggregator", "usage_aggregator", "the batch counted: the key's hour and day",
              lambda a, b: a == {"written": 2, "alreadyAdded": 0}, overrides=_logged_now("usage_aggregator"))
        check("key_usage", "key_usage", "200, the batch's totals by day",
              lambda a, b: a["statusCode"] == 200 and b["totals"] == {"VALID": 2, "RATE_LIMITED": 1},
              overrides=_last_day())
        created = check("create_key", "create_key", "201, a new key of user_42",
                        lambda a, b: a["statusCode"] == 201 and b["userId"] == "user_42" and b["key"].startswith("sk_"))
        # verify_key checks the key create_key just made (the committed event holds a placeholder).
        check("verify_key", "verify_key", "200, valid, code VALID",
              lambda a, b: a["statusCode"] == 200 and b["valid"] is True and b["code"] == "VALID",
              overrides={"body": {"key": _body(created)["key"]}})
        check("import_keys", "import_keys", "200, one key imported by its hash, its id",
              lambda a, b: a["statusCode"] == 200 and len(b["keys"]) == 1 and "id" in b["keys"][0])
        check("list_keys", "list_keys", "200, total 4 (root, billing-svc, the new key, the imported one)",
              lambda a, b: a["statusCode"] == 200 and b["total"] == 4)
        check("roll_key", "roll_key", "200, billing-svc with a new key",
              lambda a, b: a["statusCode"] == 200 and b["id"] == "billing-svc" and b["key"].startswith("sk_"))
        check("delete_key", "delete_key", "204", lambda a, b: a["statusCode"] == 204)
        identity = check("create_identity", "create_identity", "201, an identity of cust_42",
                         lambda a, b: a["statusCode"] == 201 and b["externalId"] == "cust_42"
                         and b["id"].startswith("id_"))
        at_identity = _at_identity(_body(identity)["id"])
        check("get_identity", "get_identity", "200, cust_42",
              lambda a, b: a["statusCode"] == 200 and b["externalId"] == "cust_42",
              overrides=at_identity("get_identity"))
        check("update_identity", "update_identity", "200, the new meta",
              lambda a, b: a["statusCode"] == 200 and b["meta"] == {"plan": "platinum"},
              overrides=at_identity("update_identity"))
        check("identity_usage", "identity_usage", "200, nothing counted yet",
              lambda a, b: a["statusCode"] == 200 and b["totals"] == {} and b["granularity"] == "day",
              overrides=at_identity("identity_usage"))
        check("list_identities", "list_identities", "200, total 1",
              lambda a, b: a["statusCode"] == 200 and b["total"] == 1)
        check("delete_identity", "delete_identity", "204", lambda a, b: a["statusCode"] == 204,
              overrides=at_identity("delete_identity"))
        check("get_company", "get_company", "200, no prefix, policy revoke",
              lambda a, b: a["statusCode"] == 200 and b["keyPrefix"] is None and b["leakPolicy"] == "revoke")
        check("update_company", "update_company", "200, prefix acmeco",
              lambda a, b: a["statusCode"] == 200 and b["keyPrefix"] == "acmeco"
              and b["keyPatterns"]["secret"].startswith("\\bacmeco_sk_"))
        # The one change just made: its prefix (the event's leakPolicy is the default, unchanged).
        check("list_company_events", "list_company_events", "200, total 1, changes {keyPrefix: acmeco}",
              lambda a, b: a["statusCode"] == 200 and b["total"] == 1 and b["data"][0]["action"] == "settings_changed"
              and b["data"][0]["changes"] == {"keyPrefix": "acmeco"})
        # GitHub's documented sample report: no SecretScanningPublicKeys here, so refused unread.
        check("secret_scanning_github", "secret_scanning_github", "401, no scanner trusted",
              lambda a, b: a["statusCode"] == 401 and b["error"]["code"] == "unauthenticated")
        check("me", "me", "200, company acme, keys:*",
              lambda a, b: a["statusCode"] == 200 and b["companyId"] == "acme" and "keys:*" in b["permissions"])
        check("console", "console", "200, the console script under a strict CSP",
              lambda a, b: a["statusCode"] == 200 and "javascript" in a["headers"]["content-type"]
              and "script-src 'self'" in a["headers"]["content-security-policy"])
        check("retention_stream", "retention_stream", "no batch item failure",
              lambda a, b: a == {"batchItemFailures": []})
        # The audit record of a key made with an expiry: its schedules cannot be made here (no
        # EventBridge Scheduler), so the record is reported for Lambda to retry.
        check("lifecycle_events", "lifecycle_events", "its record reported failed (EventBridge is not reachable here)",
              lambda a, b: a == {"batchItemFailures": [{"itemIdentifier": "222200000000000000000001"}]})
        custom_resource_roundtrip(
            env, "root_key_resource", "root_key_resource",
            "FAILED answered (Secrets Manager is not reachable here)", lambda a, b: a == {"Status": "FAILED"},
            "FAILED, the key created but not stored, NoEcho",
            lambda r: r["Status"] == "FAILED" and "not stored" in r["Reason"] and r["NoEcho"] is True
            and "sk_" not in json.dumps(r), name="root_key_create")
        custom_resource_roundtrip(
            env, "root_key_resource", "root_key_resource",
            "SUCCESS answered (Delete keeps the key)", lambda a, b: a == {"Status": "SUCCESS"},
            "SUCCESS, the same physical id",
            lambda r: r["Status"] == "SUCCESS" and r["PhysicalResourceId"] == "acme/example",
            name="root_key_delete", overrides={"RequestType": "Delete", "PhysicalResourceId": "acme/example"})
        # Another stack's key of acme: made, then its secret refused (no Secrets Manager here); the
        # failed create names the key, so the Delete CloudFormation then sends deletes it.
        _, made = custom_resource_roundtrip(
            env, "api_key_resource", "api_key_resource",
            "FAILED answered (Secrets Manager is not reachable here)", lambda a, b: a == {"Status": "FAILED"},
            "FAILED, the key made but its secret not written, named acme/<keyId>",
            lambda r: r["Status"] == "FAILED" and "could not be written" in r["Reason"]
            and r["PhysicalResourceId"].startswith("acme/") and "sk_" not in json.dumps(r), name="api_key_create")
        custom_resource_roundtrip(
            env, "api_key_resource", "api_key_resource",
            "FAILED answered (the key deleted, its secret unreachable)", lambda a, b: a == {"Status": "FAILED"},
            "FAILED, the key deleted, the same physical id",
            lambda r: r["Status"] == "FAILED" and "was deleted but its secret" in r["Reason"]
            and r["PhysicalResourceId"] == made["PhysicalResourceId"],
            name="api_key_delete", overrides={"RequestType": "Delete", "PhysicalResourceId": made["PhysicalResourceId"]})
        missed = sorted(set(env.functions) - env.invoked)
        if missed:
            raise Failed(f"template.yaml's functions not invoked here: {' '.join(missed)}")
    _say(f"every answer as documented; {time.monotonic() - started:.0f} s in all")


def _answers_401(url):
    """URL, asked without a credential, is its function's 401: the emulator and that function are up."""
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError as e:
        return e.code == 401
    except OSError:
        return False
    return False


def run_api():
    """make sam-api: every route behind `sam local start-api` (warm containers, all started at
    once) on a free port, root keys of two companies; the black-box suite against it
    (APIKEYS_SERVED_BY=sam: the emulator's known differences, tests/blackbox/differences.rs),
    then `apikeys smoke`. The emulator is stopped by PID, with what it started."""
    started = time.monotonic()
    with prepared_sam_environment() as env:
        other_root_key = create_root_key(env.endpoint, OTHER_COMPANY, TABLE, "sam-api seed")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        pidfile = env.run_dir / "start-api.pid"
        log = env.run_dir / "start-api.log"
        spawn(env.sam("start-api", "--warm-containers", "EAGER", "--host", "127.0.0.1", "--port", port), log, pidfile,
              env=env.environ)
        try:
            deadline = time.monotonic() + 300
            while not _answers_401(f"{base}/me"):
                if time.monotonic() > deadline or not running(*read_record(pidfile)):
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    raise Failed(f"sam local start-api does not answer on {base}:\n{tail}")
                time.sleep(1)
            _say(f"setup took {time.monotonic() - started:.0f} s; sam local start-api on {base}")
            run(["cargo", "test", "--quiet", "--test", "blackbox"],
                env=dict(os.environ, APIKEYS_BASE_URL=base, APIKEYS_SERVED_BY="sam", APIKEYS_ROOT_KEY=env.root_key,
                         APIKEYS_OTHER_ROOT_KEY=other_root_key))
            apikeys = ROOT / "target" / "debug" / "apikeys"
            usage = subprocess.run([apikeys], capture_output=True, text=True)
            if "apikeys smoke" in usage.stdout + usage.stderr:
                run([apikeys, "smoke", "--url", base], env=dict(os.environ, APIKEYS_ROOT_KEY=env.root_key))
            else:
                _say("the operator CLI has no smoke command: not run")
        finally:
            stop(pidfile, 20, "sam-api", group=True)
    _say(f"every check passed through sam local start-api; {time.monotonic() - started:.0f} s in all")


def seed(endpoint):
    """make seed: the table and a root key of acme on ENDPOINT; the key to .run/sam-local/root-key."""
    SAM_RUN.mkdir(parents=True, exist_ok=True)
    (SAM_RUN / "root-key").write_text(create_root_key(endpoint, COMPANY, TABLE, "sam-local seed") + "\n")
    _say(f"seeded {endpoint}: table {TABLE}, a root key of company {COMPANY} in {SAM_RUN / 'root-key'}")
