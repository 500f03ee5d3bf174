"""Schemathesis hooks of make schemathesis: the rules openapi.yaml states in words only.

JSON Schema cannot say that `expiresAt` lies in the future, that an ACL holds at most 64
permissions and 64 scope values across its entries, what `metadata` DynamoDB can store, that the
two cursors exclude each other and must name a key (or an event) of the company, or that an
`Idempotency-Key` is meant once per request, that a usage range's `to` follows its `from`
within 31 (or 366) days in the years 2000 to 9999; and an `If-Match` version is the resource's state, not
the request's data. A request Schemathesis made as valid is brought within those rules before
it is sent (an `If-Match` version becomes the key's or identity's current ETag), so that it is valid in fact
(Schemathesis checks it again after this hook); parts it made invalid on purpose are left alone.
The run's own root key is never the target of a write: rolling or deleting it would end the
run's credential.
"""

import datetime
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation

BASE_URL = os.environ.get("SCHEMATHESIS_BASE_URL", "")
ROOT_KEY = os.environ.get("ROOT_KEY", "")
ROOT_KEY_ID = os.environ.get("ROOT_KEY_ID", "")
SPARE_KEY_ID = os.environ.get("SPARE_KEY_ID", "")
MAX_ACL_PERMISSIONS = 64
MAX_ACL_SCOPE_VALUES = 64
MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 30


def generated_valid(case, location):
    meta = case.meta
    return meta is None or not meta.is_negative_at(location)


def storable(value, depth=0):
    """What DynamoDB stores: no empty object keys, numbers 0 or of magnitude 1e-130 to 1e125."""
    if depth > MAX_METADATA_DEPTH:
        return False
    if isinstance(value, dict):
        return all(k != "" and storable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v, depth + 1) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0 or 1e-130 <= abs(value) <= 1e125
    return True


def current_etag(collection, resource_id):
    """The ETag of /COLLECTION/RESOURCE_ID (or of /COLLECTION itself) now, or None (no such
    resource, or no answer)."""
    url = f"{BASE_URL}/{collection}"
    if resource_id is not None:
        url += f"/{urllib.parse.quote(resource_id, safe='')}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ROOT_KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.headers.get("ETag")
    except (urllib.error.URLError, OSError):
        return None


def fresh_identity():
    """A new identity of the run's company, made for one request: its id, or None."""
    body = json.dumps({"externalId": f"schemathesis-{uuid.uuid4()}"}).encode()
    request = urllib.request.Request(f"{BASE_URL}/identities", data=body, method="POST", headers={
        "Authorization": f"Bearer {ROOT_KEY}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer).get("id")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def usage_instant(raw):
    """A usage query's `from`/`to` as the service reads it, or None outside the years 2000 to 9999."""
    try:
        at = datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    at = at.astimezone(datetime.timezone.utc)
    return at if 2000 <= at.year <= 9999 else None


def within_usage_range(query):
    """A usage range as its parameters' descriptions state it: `from` and `to` in the years 2000
    to 9999, `to` after `from`, at most 31 days apart by hour or 366 by day; a generated range
    outside that is dropped, leaving the default (the last 24 hours)."""
    days = 366 if query.get("granularity") == "day" else 31
    start, end = (usage_instant(query[p]) if p in query else None for p in ("from", "to"))
    if ("from" in query and start is None) or ("to" in query and end is None):
        query.pop("from", None)
        query.pop("to", None)
        return
    now = datetime.datetime.now(datetime.timezone.utc)
    end = end or now
    start = start or end - datetime.timedelta(hours=24)
    if not (start < end <= start + datetime.timedelta(days=days)):
        query.pop("from", None)
        query.pop("to", None)


def within_words(body):
    now = datetime.datetime.now(datetime.timezone.utc)
    expires = body.get("expiresAt")
    if isinstance(expires, str):
        try:
            at = datetime.datetime.fromisoformat(expires.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None and at <= now + datetime.timedelta(minutes=5):
            body["expiresAt"] = (now + datetime.timedelta(days=365)).replace(microsecond=0).isoformat()
    acl = body.get("acl")
    if isinstance(acl, list):
        permissions, values = MAX_ACL_PERMISSIONS, MAX_ACL_SCOPE_VALUES
        for entry in acl:
            if isinstance(entry, dict) and isinstance(entry.get("permissions"), list):
                entry["permissions"] = entry["permissions"][:permissions]
                permissions -= len(entry["permissions"])
            scope = entry.get("scope") if isinstance(entry, dict) else None
            for dimension, listed in (scope or {}).items():
                if isinstance(listed, list):
                    scope[dimension] = listed[:values]
                    values -= len(scope[dimension])
    for name in ("metadata", "meta"):
        metadata = body.get(name)
        if isinstance(metadata, dict):
            size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
            if size > MAX_METADATA_BYTES or not storable(metadata):
                body[name] = {}
    # A key's identityId must name an identity of the company, which a generator cannot know.
    if isinstance(body.get("identityId"), str):
        del body["identityId"]
    # Named limits' names are unique within their list.
    limits = body.get("ratelimits")
    if isinstance(limits, list):
        seen, unique = set(), []
        for limit in limits:
            name = limit.get("name") if isinstance(limit, dict) else None
            if name not in seen:
                unique.append(limit)
            seen.add(name)
        body["ratelimits"] = unique


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.path_parameters
    if path and path.get("keyId") == ROOT_KEY_ID and case.method.upper() != "GET" and SPARE_KEY_ID:
        path["keyId"] = SPARE_KEY_ID
    # An identity id the generator makes names no identity: a well-formed one is pointed at an
    # identity made for this request, so the operation is exercised rather than 404.
    identity = str(path.get("identityId", "")) if path else ""
    if identity.startswith("id_") and len(identity) == 35 and generated_valid(case, ParameterLocation.PATH):
        made = fresh_identity()
        if made:
            path["identityId"] = made
    headers = case.headers
    if headers and generated_valid(case, ParameterLocation.HEADER):
        if "Idempotency-Key" in headers:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        if headers.get("If-Match", "*") != "*" and case.operation.path == "/company":
            etag = current_etag("company", None)
            if etag:
                headers["If-Match"] = etag
        if headers.get("If-Match", "*") != "*" and path:
            etag = None
            if "keyId" in path:
                etag = current_etag("keys", str(path["keyId"]))
            elif "identityId" in path:
                etag = current_etag("identities", str(path["identityId"]))
            if etag:
                headers["If-Match"] = etag
    query = case.query
    if query and generated_valid(case, ParameterLocation.QUERY):
        if "startingAfter" in query and "endingBefore" in query:
            del query["endingBefore"]
        # identityId= must name an identity of the company (and pages by cursor, one status);
        # externalId= finds one identity, with nothing to page through.
        query.pop("identityId", None)
        if "externalId" in query:
            for paging in ("startingAfter", "endingBefore", "offset"):
                query.pop(paging, None)
        if case.operation.path.endswith("/usage"):
            within_usage_range(query)
        for cursor in ("startingAfter", "endingBefore"):
            if cursor in query:
                # The root key is active for the whole run: a cursor of the active and all lists.
                root_listed = query.get("status", "active") in ("active", "all")
                if case.operation.path == "/keys" and ROOT_KEY_ID and root_listed:
                    query[cursor] = ROOT_KEY_ID
                else:
                    del query[cursor]
    if isinstance(case.body, dict) and generated_valid(case, ParameterLocation.BODY):
        within_words(case.body)
        # The limits a verify asks for by name must be the key's or its identity's, which a
        # generator cannot know (an unknown one is a 400 naming it).
        if case.operation.path == "/keys/verify":
            case.body.pop("ratelimits", None)
        # An import's entries are create bodies each.
        if case.operation.path == "/keys/import" and isinstance(case.body.get("keys"), list):
            for entry in case.body["keys"]:
                if isinstance(entry, dict):
                    within_words(entry)
