"""make schemathesis: Schemathesis against the local server, every check, for a time budget.

DynamoDB Local and target/debug/local_server on free ports, with a root key of COMPANY made
by the operator CLI (keys.create_root_key); `st run openapi.yaml` with that key
(tools/schemathesis.toml: every check, any failure or warning fails; tools/schemathesis_hooks.py: the rules openapi.yaml
states in words); both stopped by PID, whatever happened. Returns Schemathesis's status."""

import json
import os
import time
import urllib.request

from . import dynamodb
from .common import (RUN_DIR, ROOT, Failed, answers, free_port, pins, run, say, spawn, stop,
                     venv_with)
from .keys import create_root_key

VENV = ROOT / "tools" / "venv-schemathesis"
REQUIREMENTS = ROOT / "tools" / "requirements-schemathesis.txt"


def _call(port, key, method, path, body=None):
    """One request to the local server, its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def schemathesis(args):
    venv_with(VENV, pins(REQUIREMENTS), REQUIREMENTS)
    run(["cargo", "build", "--bin", "local_server"])
    with dynamodb.local_dynamodb("schemathesis") as endpoint:
        port = free_port()
        log, pidfile = RUN_DIR / f"schemathesis-server-{port}.log", RUN_DIR / f"schemathesis-server-{port}.pid"
        key = create_root_key(endpoint, args.company, "apikeys", "make schemathesis")
        env = dict(os.environ, DYNAMODB_ENDPOINT=endpoint, TABLE_NAME="apikeys", PORT=str(port),
                   RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        env.pop("DEMO_COMPANY", None)
        spawn([ROOT / "target" / "debug" / "local_server"], log, pidfile, env=env)
        try:
            deadline = time.monotonic() + 120
            while not answers(port):
                if time.monotonic() > deadline:
                    raise Failed(f"the local server does not answer on {port}; its log: {log}")
                time.sleep(0.2)
            # The hooks keep writes off the run's own root key, and name it as a cursor.
            root_id = _call(port, key, "GET", "/me")["keyId"]
            spare_id = _call(port, key, "POST", "/keys", {"userId": "schemathesis", "description": "a key to write"})["id"]
            say("schemathesis", f"the local server on {port} (log {log}), DynamoDB Local at {endpoint}")
            hooks = dict(os.environ, ROOT_KEY=key, ROOT_KEY_ID=root_id, SPARE_KEY_ID=spare_id,
                         SCHEMATHESIS_BASE_URL=f"http://127.0.0.1:{port}",
                         SCHEMATHESIS_HOOKS=str(ROOT / "tools" / "schemathesis_hooks.py"))
            return run([VENV / "bin" / "st", "--config-file", ROOT / "tools" / "schemathesis.toml", "run",
                        ROOT / "openapi.yaml", "--url", f"http://127.0.0.1:{port}", "--max-time", args.seconds],
                       check=False, env=hooks)
        finally:
            stop(pidfile, 10, who="schemathesis")
