#!/usr/bin/env bash
# Before `make deploy` builds anything: are there AWS credentials, and do they work? Fails fast,
# with what to do, instead of letting sam prompt or fail after a long build. Never prompts.
# Reads REGION and CONFIG_ENV (from make); needs boto3 (tools/venv, SAM CLI's dependency).
set -euo pipefail
exec python3 - "$@" <<'PY'
import os, sys, tomllib
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

env = os.environ.get("CONFIG_ENV") or "default"
config = {}
if os.path.exists("samconfig.toml"):
    with open("samconfig.toml", "rb") as f:
        config = tomllib.load(f).get(env, {}).get("global", {}).get("parameters", {})
elif env != "default":
    sys.exit(f"make deploy: CONFIG_ENV={env} but there is no samconfig.toml")
region = os.environ.get("REGION") or config.get("region") or os.environ.get("AWS_REGION") \
    or os.environ.get("AWS_DEFAULT_REGION")
session = boto3.Session(region_name=region) if region else boto3.Session()
if not session.region_name:
    sys.exit("make deploy: no AWS region: pass REGION=<region>, set AWS_REGION, or set region in samconfig.toml")
if session.get_credentials() is None:
    sys.exit("make deploy: no AWS credentials found (environment, AWS_PROFILE, ~/.aws, SSO, container or "
             "instance role). Configure credentials for the target account and run it again; nothing was built "
             "or deployed.")
sts = session.client("sts", config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}))
try:
    who = sts.get_caller_identity()
except (BotoCoreError, ClientError) as e:
    sys.exit(f"make deploy: the AWS credentials do not work in {session.region_name}: {e}")
print(f"deploying as {who['Arn']} (account {who['Account']}) to {session.region_name}, "
      f"samconfig.toml environment '{env}'", file=sys.stderr)
PY
