"""What every dev task shares: the repository's paths, messages, processes stopped by PID,
Debian packages, the pinned virtualenvs and the function list of template.yaml."""

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run"
TEMPLATE = ROOT / "template.yaml"
VENV = ROOT / "tools" / "venv"
CHECKOV_VENV = ROOT / "tools" / "venv-checkov"
REQUIREMENTS = ROOT / "tools" / "requirements-deploy.txt"
LAMBDA_TARGET = "aarch64-unknown-linux-gnu"


class Failed(Exception):
    """A task failed; its message is printed and dev.py exits 1."""


def say(who, message):
    print(f"{who}: {message}", file=sys.stderr, flush=True)


def run(args, check=True, **kwargs):
    """Runs a command (cwd: the repository); a non-zero exit raises Failed unless check=False."""
    kwargs.setdefault("cwd", ROOT)
    status = subprocess.run([str(a) for a in args], **kwargs).returncode
    if check and status != 0:
        raise Failed(f"{' '.join(str(a) for a in args)} exited with {status}")
    return status


def output(args, **kwargs):
    """Runs a command and returns its stdout; a non-zero exit raises Failed."""
    kwargs.setdefault("cwd", ROOT)
    done = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, text=True, **kwargs)
    if done.returncode != 0:
        raise Failed(f"{' '.join(str(a) for a in args)} exited with {done.returncode}")
    return done.stdout


def with_tools_env(extra=None):
    """The environment with tools/venv/bin first on PATH (sam, cfn-lint, cargo lambda's zig)."""
    env = dict(os.environ, PATH=f"{VENV / 'bin'}:{os.environ.get('PATH', '')}", SAM_CLI_TELEMETRY="0")
    env.update(extra or {})
    return env


@contextlib.contextmanager
def signals_as_exceptions():
    """SIGTERM (and SIGHUP) raise KeyboardInterrupt, as SIGINT does, so that every `finally`
    that stops what a task started runs whichever signal ends the task."""

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def uninterrupted():
    """SIGINT and SIGTERM ignored inside: a second Ctrl-C (or make passing on a TERM) does not
    cut a stop short."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --- processes, by PID ----------------------------------------------------------------------


def starttime(pid):
    """Field 22 of /proc/PID/stat (after the command name, which may hold spaces), or None: with
    the PID it names one process, so a PID reused by another is not taken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(") ", 1)[1].split()[19]


def running(pid, start=None):
    """Some thread of PID (started at START) has not exited. A zombie is not running: a JVM
    shutting down is a zombie leader whose other threads run on for seconds."""
    if pid is None:
        return False
    if start is not None and starttime(pid) != start:
        return False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except OSError:
            continue  # gone between the listing and the read
        if stat.rsplit(") ", 1)[1].split()[0] not in ("Z", "X", "x"):
            return True
    return False


def reaped(pid, start=None):
    """No process PID (started at START) is left, not even a zombie."""
    if not Path(f"/proc/{pid}").is_dir():
        return True
    return start is not None and starttime(pid) != start


def record_of(pid):
    """"PID STARTTIME", what a pid file holds."""
    return f"{pid} {starttime(pid) or ''}".strip()


def read_record(pidfile):
    """(PID, STARTTIME or None) from a pid file, or (None, None) when it is missing or empty."""
    try:
        fields = Path(pidfile).read_text().split()
    except OSError:
        return None, None
    if not fields or not fields[0].isdigit():
        return None, None
    return int(fields[0]), (fields[1] if len(fields) > 1 else None)


def gone_within(seconds, pid, start):
    deadline = time.monotonic() + seconds
    while running(pid, start):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


_children = {}


def spawn(args, log, pidfile=None, **kwargs):
    """Starts a process in a session of its own (Ctrl-C in the terminal does not reach it; the
    task that started it stops it), output to LOG; its "PID STARTTIME" goes to PIDFILE."""
    kwargs.setdefault("cwd", ROOT)
    with open(log, "wb") as out:
        process = subprocess.Popen([str(a) for a in args], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
    _children[process.pid] = process
    if pidfile is not None:
        Path(pidfile).write_text(record_of(process.pid) + "\n")
    return process


def stop(pidfile, seconds=5, who="stop", group=False):
    """Stops the process a pid file names (never by name): TERM, then KILL after SECONDS;
    returns once no thread of it runs, a second Ctrl-C notwithstanding, and removes the pid
    file. False when it still runs after KILL (the pid file is kept then). GROUP: the signals
    go to its process group (what spawn started and its children), and the group is KILLed
    once the leader is gone."""
    pid, start = read_record(pidfile)
    if pid is None:
        Path(pidfile).unlink(missing_ok=True)
        return True
    send = os.killpg if group else os.kill
    with uninterrupted():
        if running(pid, start):
            with contextlib.suppress(ProcessLookupError):
                send(pid, signal.SIGTERM)
            if not gone_within(seconds, pid, start):
                say(who, f"pid {pid} still runs {seconds} s after TERM: KILL")
                with contextlib.suppress(ProcessLookupError):
                    send(pid, signal.SIGKILL)
                if not gone_within(10, pid, start):
                    say(who, f"pid {pid} still runs after KILL; keeping {pidfile}")
                    return False
            if group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        child = _children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
    Path(pidfile).unlink(missing_ok=True)
    return True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port, host="127.0.0.1"):
    """Something accepts a TCP connection on HOST:PORT."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


# --- Debian packages ------------------------------------------------------------------------


def apt_install(packages, why, optional=False):
    """Installs the Debian packages of PACKAGES ({command: package}) whose command is missing,
    as root or through passwordless sudo. OPTIONAL: without either, says what will be skipped
    and returns False instead of failing."""
    missing = sorted({package for command, package in packages.items() if shutil.which(command) is None})
    if not missing:
        return True
    if os.geteuid() == 0:
        as_root = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        as_root = ["sudo", "-n"]
    elif optional:
        say("install", f"cannot install {' '.join(missing)} (not root, no sudo): {why} will be skipped")
        return False
    else:
        raise Failed(f"{' '.join(missing)} must be installed for {why} (needs root or sudo)")
    say("install", f"installing {' '.join(missing)} (Debian packages) for {why}")
    run(as_root + ["apt-get", "update", "-qq"])
    run(as_root + ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
                   "--no-install-recommends", *missing], stdout=subprocess.DEVNULL)
    return True


# --- the pinned virtualenvs -----------------------------------------------------------------


def pins(requirements):
    """The pinned lines of a requirements file."""
    return [l.strip() for l in requirements.read_text().splitlines() if l.strip() and not l.startswith("#")]


def venv_with(venv, lines, requirements=REQUIREMENTS):
    """VENV holds LINES of the pinned REQUIREMENTS, installed once per version of that file."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    stamp = venv / f".installed-{digest}"
    if stamp.exists():
        return
    say("tools", f"installing {', '.join(l.split('=')[0] for l in lines)} into {venv.relative_to(ROOT)}")
    if not (venv / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", venv])
    (venv / "requirements.txt").write_text("".join(line + "\n" for line in lines))
    run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", venv / "requirements.txt"])
    for old in venv.glob(".installed-*"):
        old.unlink()
    stamp.touch()


def install_tools():
    """tools/venv (everything pinned but checkov), tools/venv-checkov (checkov pins libraries,
    boto3 among them, that SAM CLI pins otherwise), and Rust's arm64 Linux target."""
    pinned = pins(REQUIREMENTS)
    venv_with(VENV, [p for p in pinned if not p.startswith("checkov")])
    venv_with(CHECKOV_VENV, [p for p in pinned if p.startswith("checkov")])
    if LAMBDA_TARGET not in output(["rustup", "target", "list", "--installed"]).split():
        run(["rustup", "target", "add", LAMBDA_TARGET])


def in_tools_venv():
    """Runs this script again under tools/venv's python (yaml, boto3) unless it already is."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        raise Failed("tools/venv is missing: run make tools")
    os.execv(python, [str(python), *sys.argv])


# --- the function list ----------------------------------------------------------------------


def template_functions():
    """{FUNCTION: logical id} of every function of template.yaml, the one place they are listed
    (tests/api/operations/deploy.rs keeps them equal to LambdaFunction::all in src/entry/http/routes.rs)."""
    functions, logical_id = {}, None
    for line in TEMPLATE.read_text().splitlines():
        resource = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if resource:
            logical_id = resource.group(1)
        value = re.match(r"^ +FUNCTION: *([A-Za-z0-9_-]+)", line)
        if value:
            functions[value.group(1)] = logical_id
    return functions


def lambda_binary():
    """The one binary every function of template.yaml runs (its Metadata's Binary)."""
    binaries = set(re.findall(r"(?m)^ +Binary: *([A-Za-z0-9_-]+)", TEMPLATE.read_text()))
    if len(binaries) != 1:
        raise Failed(f"template.yaml's functions must all build one binary, not: {' '.join(sorted(binaries))}")
    return binaries.pop()
