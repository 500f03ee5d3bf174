"""A company's root key on a table (the operator CLI), and events carrying it as their credential."""

import json
import os
from pathlib import Path

from .common import ROOT, output, run


def create_root_key(endpoint, company, table, description):
    """Creates the table when it is missing, then a root key of COMPANY (target/debug/apikeys
    root-key create); returns the key."""
    run(["cargo", "build", "--quiet", "--bin", "apikeys"])
    env = dict(os.environ, DYNAMODB_ENDPOINT=endpoint, TABLE_NAME=table)
    answer = output([ROOT / "target" / "debug" / "apikeys", "root-key", "create", "--company", company,
                     "--description", description], env=env)
    return json.loads(answer)["key"]


def event_with_key(source, root_key, overrides=None):
    """The event of SOURCE (a path, or a name in events/) as a harness sends it: a route event
    carries ROOT_KEY as its Authorization header. OVERRIDES sets top-level fields; its "body"
    sets fields of the JSON body instead (and the content-length follows)."""
    path = Path(source) if str(source).endswith(".json") else ROOT / "events" / f"{source}.json"
    event = json.loads(path.read_text())
    if "headers" in event:
        event["headers"]["authorization"] = f"Bearer {root_key}"
    for field, value in (overrides or {}).items():
        if field == "body":
            body = json.loads(event["body"])
            body.update(value)
            event["body"] = json.dumps(body)
            event["headers"]["content-length"] = str(len(event["body"]))
        else:
            event[field] = value
    return event


def write_event(source, root_key, out, overrides=None):
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(event_with_key(source, root_key, overrides)))
    return Path(out)
