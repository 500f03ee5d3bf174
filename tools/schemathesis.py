#!/usr/bin/env python3
"""make schemathesis: Schemathesis against the local server, every check, for a time budget.

Starts DynamoDB Local and target/debug/local_server on free ports (the server makes the table
and a root key of DEMO_COMPANY and prints it), runs `st run openapi.yaml` with that key
(tools/schemathesis.toml: every check, any failure or warning fails; tools/schemathesis_hooks.py:
the rules openapi.yaml states in words), then stops both by PID, whatever happened. Exits with Schemathesis's status.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def root_key(log_path, server, deadline):
    """The `export ROOT_KEY=…` line the server prints, once it listens."""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"schemathesis: the local server exited ({server.returncode}); its log: {log_path}")
        with open(log_path, encoding="utf-8", errors="replace") as log:
            found = re.search(r"export ROOT_KEY=(\S+)", log.read())
        if found:
            return found.group(1)
        time.sleep(0.2)
    sys.exit(f"schemathesis: no root key from the local server in time; its log: {log_path}")


def call(port, key, method, path, body=None):
    """One request to the local server, its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def stop(process, seconds=10):
    """Ctrl-C first (the server shuts down on it), then kill, by PID."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main():
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--dynamodb-local", required=True, help="the start/stop script of DynamoDB Local")
    args.add_argument("--st", required=True, help="Schemathesis's st command")
    args.add_argument("--server", default="target/debug/local_server")
    args.add_argument("--seconds", type=int, default=180, help="Schemathesis's time budget")
    args.add_argument("--company", default="demo")
    args.add_argument("--run-dir", default=".run")
    opts = args.parse_args()

    os.makedirs(opts.run_dir, exist_ok=True)
    db_port = free_port()
    pidfile = os.path.join(opts.run_dir, f"schemathesis-dynamodb-{db_port}-{os.getpid()}.pid")
    server = None
    try:
        subprocess.run([opts.dynamodb_local, "start", str(db_port), pidfile], check=True)
        port = free_port()
        log_path = os.path.join(opts.run_dir, f"schemathesis-server-{port}.log")
        env = dict(
            os.environ,
            DYNAMODB_ENDPOINT=f"http://127.0.0.1:{db_port}",
            TABLE_NAME="apikeys",
            PORT=str(port),
            DEMO_COMPANY=opts.company,
            RUST_LOG=os.environ.get("RUST_LOG", "warn"),
        )
        with open(log_path, "w", encoding="utf-8") as log:
            server = subprocess.Popen([opts.server], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        key = root_key(log_path, server, deadline)
        while not answers(port):
            if time.monotonic() > deadline:
                sys.exit(f"schemathesis: the local server does not answer on {port}; its log: {log_path}")
            time.sleep(0.2)
        # The hooks keep writes off the run's own root key, and name it as a cursor.
        root_id = call(port, key, "GET", "/me")["keyId"]
        spare_id = call(port, key, "POST", "/keys", {"userId": "schemathesis", "description": "a key to write"})["id"]
        here = os.path.dirname(os.path.abspath(__file__))
        command = [
            opts.st,
            "--config-file",
            os.path.join(here, "schemathesis.toml"),
            "run",
            os.path.join(here, "..", "openapi.yaml"),
            "--url",
            f"http://127.0.0.1:{port}",
            "--max-time",
            str(opts.seconds),
        ]
        print(f"schemathesis: the local server on {port} (log {log_path}), DynamoDB Local on {db_port}", file=sys.stderr)
        env = dict(
            os.environ,
            ROOT_KEY=key,
            ROOT_KEY_ID=root_id,
            SCHEMATHESIS_BASE_URL=f"http://127.0.0.1:{port}",
            SPARE_KEY_ID=spare_id,
            SCHEMATHESIS_HOOKS=os.path.join(here, "schemathesis_hooks.py"),
        )
        return subprocess.run(command, env=env).returncode
    finally:
        if server is not None:
            stop(server)
        subprocess.run([opts.dynamodb_local, "stop", pidfile], check=False)


if __name__ == "__main__":
    sys.exit(main())
