"""`/v1/usage`: request counts that resource services meter, owned and shown by this server.

`POST /v1/usage` (resource services): HTTP Basic client authentication of a confidential client
that has the `client_credentials` grant (the service's own client), else 401 INVALID_CLIENT with a
`Basic` challenge. Body, `application/json`:

    {"batch_id": "<8-64 of A-Z a-z 0-9 _ ->",
     "counts": [{"account": "user_…", "credential": "client_…", "hour": 1795989600, "count": 12}, …]}

At most 1000 entries; `account` and `credential` 1-64 printable characters; `hour` the epoch
second starting an hour (a multiple of 3600), not after the next hour; `count` 1..10^7; no other
fields. The batch id and its counts are stored in one transaction: 200 `{"status": "accepted"}`,
or 200 `{"status": "duplicate"}` (nothing added) for a batch id applied before, so a service
retries a batch until it gets a 200. Bad input: 400 INVALID_REQUEST, nothing stored.

`GET /v1/usage` (the account owner): `Authorization: Bearer <access token>` of a user (a
client_credentials token's subject is a client: refused). Answers

    {"account": "user_…", "plan": "pro",
     "hourly": [{"hour": <epoch>, "count": n, "by_credential": {"client_…": n}}, …],   # 24, oldest first
     "daily": [{"day": "2026-11-29", "start": <epoch>, "count": n, "by_credential": {…}}, …]}  # 30 UTC days

401 INVALID_TOKEN (TOKEN_EXPIRED for an expired token) with a `Bearer` challenge otherwise.
"""

from __future__ import annotations

import re
import time

from authlib.oauth2.rfc6749 import InvalidClientError
from flask import Blueprint, request
from werkzeug.datastructures import MultiDict

from ..extensions import csrf, current_server
from ..oauth.requests import OAuthRequest
from ..storage import usage
from .api_v1 import ApiError, bearer_account, invalid_client, invalid_request, json_object, render_api_error

bp = Blueprint("usage", __name__, url_prefix="/v1")
bp.register_error_handler(ApiError, render_api_error)

MAX_ENTRIES = 1000
MAX_COUNT = 10**7
BATCH_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
IDENTIFIER = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII: what sub, client ids and key ids are
ENTRY_FIELDS = {"account", "credential", "hour", "count"}


@bp.post("/usage")
@csrf.exempt  # no cookies: the client credentials are the authentication
def report_usage():
    _authenticated_service_client()
    batch_id, entries = _batch(json_object())
    accepted = usage.record_batch(batch_id, entries, int(time.time()))
    return {"status": "accepted" if accepted else "duplicate"}


@bp.get("/usage")
def show_usage():
    user, _claims = bearer_account()
    return {"account": user.public_id, "plan": user.plan, **usage.summary(user.public_id, int(time.time()))}


# -- POST ------------------------------------------------------------------------

def _authenticated_service_client():
    if not request.headers.get("Authorization", "").lower().startswith("basic "):
        raise invalid_client()
    try:
        client = current_server().authenticate_client(
            OAuthRequest(request, MultiDict()), ["client_secret_basic"], endpoint="usage")
    except InvalidClientError:
        raise invalid_client() from None
    if client is None or client.is_public or "client_credentials" not in client.grant_types:
        raise invalid_client()
    return client


def _batch(body: dict) -> tuple[str, list[usage.Entry]]:
    if set(body) != {"batch_id", "counts"}:
        raise invalid_request("The body must hold exactly 'batch_id' and 'counts'.")
    batch_id, counts = body["batch_id"], body["counts"]
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise invalid_request("'batch_id' must be 8-64 characters of letters, digits, '_' and '-'.")
    if not isinstance(counts, list) or len(counts) > MAX_ENTRIES:
        raise invalid_request(f"'counts' must be a list of at most {MAX_ENTRIES} entries.")
    latest_hour = int(time.time()) // usage.HOUR * usage.HOUR + usage.HOUR
    return batch_id, [_entry(item, latest_hour) for item in counts]


def _entry(item, latest_hour: int) -> usage.Entry:
    if not isinstance(item, dict) or set(item) != ENTRY_FIELDS:
        raise invalid_request("Every entry of 'counts' must hold exactly account, credential, hour and count.")
    account, credential, hour, count = (item[name] for name in ("account", "credential", "hour", "count"))
    for name, value in (("account", account), ("credential", credential)):
        if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
            raise invalid_request(f"'{name}' must be 1-64 printable ASCII characters.")
    if not _is_int(hour) or hour <= 0 or hour % usage.HOUR or hour > latest_hour:
        raise invalid_request("'hour' must be the epoch second starting an hour, not in the future.")
    if not _is_int(count) or not 1 <= count <= MAX_COUNT:
        raise invalid_request(f"'count' must be an integer from 1 to {MAX_COUNT}.")
    return account, credential, hour, count


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
