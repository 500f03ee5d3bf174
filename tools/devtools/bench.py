"""The benchmarks (make bench, bench-verify, bench-offset): each against a DynamoDB Local of its
own; what they print is kept whole in target/bench-out/ and shown filtered."""

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from . import dynamodb
from .common import ROOT, Failed, apt_install, lambda_binary, run, say

OUT = ROOT / "target" / "bench-out"
# Criterion's lines that say nothing about the figures: blank ones and outlier counts.
CRITERION_NOISE = re.compile(r"^\s*$|Found [0-9]+ outliers|^\s+[0-9]+ \(")
# What the offset bench prints that matters.
OFFSET_LINES = re.compile(r"calls|test result")
# Processes that make a run noisy, for the report.
BUSY = {"rustc", "cc", "ld", "ld.lld", "zig", "clang", "java"}


def _say(message):
    say("bench", message)


def tee(command, out, keep=None, env=None):
    """Runs COMMAND, its stdout and stderr whole into OUT and shown on stderr: every line, or
    the lines KEEP finds (a regex) or does not find (keep=(regex, False)). Fails as it fails."""
    wanted, keep_matching = (keep, True) if not isinstance(keep, tuple) else keep
    with open(out, "w") as whole:
        process = subprocess.Popen([str(a) for a in command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            whole.write(line)
            if wanted is None or bool(wanted.search(line)) == keep_matching:
                sys.stderr.write(line)
        if process.wait() != 0:
            raise Failed(f"{' '.join(str(a) for a in command)} exited with {process.returncode}; its output: {out}")


def criterion(bench, env, *args):
    """One criterion bench of apikeys-bench, quiet, outliers left out of what is shown."""
    return tee(["cargo", "bench", "-q", "-p", "apikeys-bench", "--bench", bench, *args], OUT / f"{bench}.txt",
               (CRITERION_NOISE, False), env)


def offset(env):
    return tee(["cargo", "test", "-q", "--test", "api", "offset_cost::bench", "--", "--ignored", "--nocapture"],
               OUT / "offset.txt", OFFSET_LINES, env)


def busy():
    """The compilers and JVMs running now, e.g. "rustc ×2, java ×1"."""
    names = Counter()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in BUSY:
            names[name] += 1
    return ", ".join(f"{n} ×{c}" for n, c in sorted(names.items()))


def deps():
    dynamodb.install()
    apt_install({"wrk": "wrk", "zip": "zip"}, "make bench")


def bench(arm64=True):
    """make bench: every benchmark, then bench/results.md (bench/report.py)."""
    started = time.monotonic()
    binary = lambda_binary()
    for old in ("keys", "lambda", "local", "sdk", "bounds"):
        shutil.rmtree(ROOT / "target" / "criterion" / old, ignore_errors=True)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    shutil.copy("/proc/loadavg", OUT / "load-before.txt")
    _say(f"building: release {binary} (every function's binary) and local_server, the bench harnesses")
    run(["cargo", "build", "--release", "--bin", binary, "--bin", "local_server"])
    run(["cargo", "bench", "-p", "apikeys-bench", "--no-run"])
    if not (ROOT / "target" / "lambda" / binary / "bootstrap").exists() and arm64:
        _say("building the arm64 binary for its size (make build)")
        if run(["make", "--no-print-directory", "build"], check=False):
            _say("make build failed: results.md lists the sizes as not built")
    at_start = busy()
    with dynamodb.local_dynamodb("bench") as endpoint:
        env = dict(os.environ, DYNAMODB_ENDPOINT=endpoint, BENCH_OUT=str(OUT),
                   BENCH_COLD_BIN=str(ROOT / "target" / "release" / binary),
                   BENCH_LOCAL_SERVER=str(ROOT / "target" / "release" / "local_server"))
        _say("== in process (criterion)")
        criterion("inprocess", env)
        _say("== the largest verify the caps allow (criterion)")
        criterion("bounds", env)
        during = busy()
        _say("== against DynamoDB Local: calls per operation, verify vs GetItem and BatchGetItem, cold start")
        tee(["cargo", "bench", "-q", "-p", "apikeys-bench", "--bench", "store", "--", "calls", "floor", "cold"],
            OUT / "store.txt", env=env)
        _say("== offset=1000 against offset=0 (tests/api/cost/offset_cost.rs, ignored)")
        offset(env)
        _say("== throughput (wrk)")
        run(["bench/throughput.sh", dynamodb.port_of(endpoint)], env=env)
    (OUT / "busy.txt").write_text(f"at the start: {at_start}; during: {during}; at the end: {busy()}\n")
    run([sys.executable, "bench/report.py", "--out", "bench/results.md"])
    _say(f"done in {time.monotonic() - started:.0f} s; see bench/results.md")


def bench_verify():
    """make bench-verify: the largest verify the caps allow, alone."""
    run(["cargo", "bench", "-p", "apikeys-bench", "--bench", "bounds", "--no-run"])
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(ROOT / "target" / "criterion" / "bounds", ignore_errors=True)
    with dynamodb.local_dynamodb("bench-verify") as endpoint:
        criterion("bounds", dict(os.environ, DYNAMODB_ENDPOINT=endpoint, BENCH_OUT=str(OUT)))


def bench_offset():
    """make bench-offset: offset=1000 against offset=0 alone; rewrites its section of bench/results.md."""
    run(["cargo", "test", "--test", "api", "--no-run"])
    OUT.mkdir(parents=True, exist_ok=True)
    with dynamodb.local_dynamodb("bench-offset") as endpoint:
        offset(dict(os.environ, DYNAMODB_ENDPOINT=endpoint, BENCH_OUT=str(OUT)))
    run([sys.executable, "bench/report.py", "--offset-only"])
