"""The test of DynamoDB Local's start and stop (dev.py dynamodb-local), run as make targets run
them, one after another on one port: start -> stop -> start CYCLES times back to back; a start
while the previous instance is still shutting down (its stop running, as a Ctrl-C'd `make run`'s
is when the next `make run` starts); a stop that must KILL; a start refused a pid file that is
not its own. Every start must be answered by a DynamoDB Local of its own (ListTables lists none
of the tables the earlier ones were given), and at the end no process it started is left."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from .common import ROOT, RUN_DIR, answers, free_port, read_record, record_of, running, starttime
from .dynamodb import PORTS

DEV = [sys.executable, str(ROOT / "tools" / "dev.py"), "dynamodb-local"]


class ToolsTest:
    def __init__(self, cycles):
        self.cycles = cycles
        self.dir = RUN_DIR / f"tools-test-{os.getpid()}"
        self.port = free_port()
        self.passed = self.failed = 0
        self.started = []  # (PID, STARTTIME) of every process started
        # Only the start/stop logic is under test: a JVM that compiles less starts sooner on a busy machine.
        self.env = dict(os.environ, JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
                        + os.environ.get("JAVA_TOOL_OPTIONS", ""))

    def fail(self, message):
        print(f"tools-test: FAILED: {message}", file=sys.stderr, flush=True)
        self.failed += 1

    def expect(self, holds, message):
        """Counts a check: passed when it HOLDS, else failed with MESSAGE."""
        if holds:
            self.passed += 1
        else:
            self.fail(message)

    def pidfile(self, name):
        return self.dir / f"{name}.pid"

    def dynamodb(self, target, body):
        """One DynamoDB API call on the port; its answer's text."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/", data=json.dumps(body).encode(), headers={
            "X-Amz-Target": f"DynamoDB_20120810.{target}",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, "
                             "SignedHeaders=host, Signature=0"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.read().decode()
        except OSError as e:
            return f"error: {e}"

    def launch(self, name):
        """`dev.py dynamodb-local start` with pid file NAME.pid, its messages to NAME.err."""
        with open(self.dir / f"{name}.err", "w") as err:
            return subprocess.Popen(DEV + ["start", str(self.port), str(self.pidfile(name))], stderr=err,
                                    env=self.env)

    def start(self, name, starting=None):
        """Starts an instance with pid file NAME.pid (or waits for STARTING, its launch); checks it
        answers ListTables with no table (a fresh instance, not an earlier one still listening),
        then gives it table NAME."""
        status = (starting or self.launch(name)).wait()
        if status != 0:
            print((self.dir / f"{name}.err").read_text(), file=sys.stderr, end="")
            self.fail(f"start {name}")
            return
        self.started.append(read_record(self.pidfile(name)))
        answer = self.dynamodb("ListTables", {})
        self.expect(answer.startswith("{") and json.loads(answer) == {"TableNames": []},
                    f"start {name}: ListTables answered {answer}")
        answer = self.dynamodb("CreateTable", {
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]})
        if not answer.startswith("{") or "TableDescription" not in answer:
            self.fail(f"start {name}: CreateTable answered {answer}")

    def stop(self, name):
        """Stops it; checks that no thread of it runs once stop returns."""
        record = read_record(self.pidfile(name))
        if subprocess.run(DEV + ["stop", str(self.pidfile(name))]).returncode != 0:
            self.fail(f"stop {name} failed")
        else:
            self.expect(not running(*record), f"stop {name} returned while pid {record[0]} still runs")

    def back_to_back(self):
        print(f"tools-test: start -> stop -> start on port {self.port}, {self.cycles} times back to back",
              file=sys.stderr, flush=True)
        began = time.monotonic()
        for i in range(1, self.cycles + 1):
            self.start(f"cycle{i}")
            self.stop(f"cycle{i}")
        print(f"tools-test: {self.cycles} cycles in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)

    def start_while_stopping(self):
        """The next start while the previous instance's stop is still waiting for it (0 and 0.5 s
        after the stop began): the start waits for it, and neither touches the other's process or
        pid file."""
        for delay in (0, 0.5):
            old, new = f"old{delay}", f"new{delay}"
            self.start(old)
            record = read_record(self.pidfile(old))
            with open(self.dir / f"{old}.stop", "w") as err:
                stopping = subprocess.Popen(DEV + ["stop", str(self.pidfile(old))], stderr=err)
            time.sleep(delay)
            starting = self.launch(new)
            self.until_start_holds_lock(starting)
            # Still running once the start holds its port's lock, the old instance was running
            # when the start looked for it (it looks after taking the lock): it must have waited.
            shutting = running(*record)
            self.start(new, starting)
            stopped = stopping.wait() == 0
            self.expect(stopped, f"the old instance's stop (delay {delay}) failed: {(self.dir / f'{old}.stop').read_text()}")
            self.expect(not running(*record), f"old instance (delay {delay}) still runs")
            said = (self.dir / f"{new}.err").read_text()
            if shutting:
                self.expect("waiting up to" in said, f"start {delay} s after a stop did not wait: {said}")
            lines = " ".join(l for l in said.splitlines() if "waiting" in l or "DynamoDB Local on" in l)
            print(f"tools-test: stop, start {delay} s later (old instance still shutting down: "
                  f"{'yes' if shutting else 'no'}): {lines}", file=sys.stderr, flush=True)
            self.stop(new)

    def until_start_holds_lock(self, starting):
        """Returns once STARTING holds its port's lock (dynamodb.py takes it before it looks for
        the previous instance and keeps it until its own answers), or has exited."""
        with open(PORTS / f"{self.port}.lock", "a") as lock:
            while starting.poll() is None:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return
                fcntl.flock(lock, fcntl.LOCK_UN)
                time.sleep(0.01)

    def stubborn(self):
        """A process that ignores TERM is KILLed after the bound."""
        process = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
        time.sleep(0.2)  # the child has set its handler
        self.pidfile("stubborn").write_text(record_of(process.pid) + "\n")
        record = read_record(self.pidfile("stubborn"))
        t0 = time.monotonic()
        if subprocess.run(DEV + ["stop", str(self.pidfile("stubborn")), "1"], stderr=subprocess.DEVNULL).returncode:
            self.fail("stop of a process ignoring TERM failed")
        self.expect(not (running(*record) or time.monotonic() - t0 > 5), "a process ignoring TERM was not KILLed after 1 s")
        process.wait()

    def taken_pidfile(self):
        """A pid file naming a running process is not a start's own: refused, nothing started."""
        sleeper = subprocess.Popen(["sleep", "60"])
        self.pidfile("taken").write_text(record_of(sleeper.pid) + "\n")
        refused = subprocess.run(DEV + ["start", str(self.port), str(self.pidfile("taken"))],
                                 stderr=subprocess.DEVNULL).returncode != 0
        self.expect(refused, "start took a pid file naming a running process")
        self.expect(not answers(self.port), f"a refused start left something on port {self.port}")
        sleeper.kill()
        sleeper.wait()
        self.pidfile("taken").unlink()

    def nothing_left(self):
        """Every process started has exited and been reaped (by init, within a moment)."""
        left = []
        for pid, start in self.started:
            for _ in range(50):
                if starttime(pid) != start:
                    break
                time.sleep(0.1)
            if starttime(pid) == start:
                left.append(str(pid))
        self.expect(not left, f"processes left: {' '.join(left)}")
        self.expect(not answers(self.port), f"port {self.port} still answers at the end")

    def cleanup(self):
        for pidfile in self.dir.glob("*.pid"):
            subprocess.run(DEV + ["stop", str(pidfile), "1"])
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self):
        began = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self.back_to_back()
            self.start_while_stopping()
            self.stubborn()
            self.taken_pidfile()
            self.nothing_left()
        finally:
            self.cleanup()
        print(f"tools-test: {len(self.started)} DynamoDB Local instances started and stopped on port {self.port} "
              f"in {time.monotonic() - began:.0f} s; {self.passed} passed, {self.failed} failed",
              file=sys.stderr, flush=True)
        return 0 if self.failed == 0 else 1
