"""`/v1/api-keys`: the account owner manages their API keys (DESIGN.md, API keys), as JSON.

Authentication (account_api.owner): a Bearer access token with the `keys:manage` scope, or the
browser session, whose `POST` and `DELETE` also send its CSRF token in `X-CSRFToken`.

A key object (times are epoch seconds; `last_used_at` lags by up to 30 s, it is written in
batches; `prefix` and `last_four` tell keys apart, the key itself is never shown again):

    {"id": "key_…", "name": "CI deploy", "prefix": "tdk_AbC123", "last_four": "x9Yz",
     "scopes": ["read_profile"], "created_at": 1795989600, "expires_at": 1827525600 | null,
     "last_used_at": 1795993200 | null, "rotated_from": "key_…" | null}

`GET /v1/api-keys` → 200 `{"data": [key object, …]}`: the keys that are neither revoked nor
expired (a rotated key in its grace period too), newest first.

`POST /v1/api-keys`, `application/json` `{"name": "…", "scopes": ["…"], "expires_at": <epoch>}`
→ 201: the key object and `"key": "tdk_…"`, the key itself, shown this once only
(`Cache-Control: no-store`). `name`: 1-100 printable characters, trimmed. `scopes`: a non-empty
list of `read_profile`, `write_data`, `read:users`, `write:data`. `expires_at`: optional (absent
or null: never expires), in the future and at most 365 days ahead. An account has at most 50
active keys.

`POST /v1/api-keys/<id>/rotate`, `application/json` `{"grace_period_seconds": 0-604800,
"expires_at": <epoch>}`, both optional (default grace 86400 s, no expiry; an empty body is `{}`)
→ 201: the new key's object (same name and scopes) with `"key"` (shown once) and `"replaces"`:
the old key's object, whose `expires_at` is now at most the end of the grace period (with 0, the
old key stops working at once).

`DELETE /v1/api-keys/<id>` → 204: the key stops working at once.

Errors, in the envelope: 400 INVALID_REQUEST for a body that is not a JSON object, a missing or
unknown field, a value out of range, or too many keys (nothing is stored); 404 NOT_FOUND for an
id that is not one of the caller's listed keys (unknown, another account's, revoked or expired
alike: nothing is revealed).
"""

from __future__ import annotations

from contextlib import contextmanager

from flask import Blueprint, request

from ..extensions import csrf
from ..storage import api_keys
from ..storage.models import ApiKey
from .account_api import SHOWN_ONCE, fields, owner
from .api_v1 import ApiError, invalid_request, json_object, render_api_error

bp = Blueprint("api_keys", __name__, url_prefix="/v1")
bp.register_error_handler(ApiError, render_api_error)
csrf.exempt(bp)  # the CSRF token is checked in `owner`, for session-authenticated requests only

DEFAULT_GRACE_SECONDS = 86400
CREATE_FIELDS = {"name", "scopes", "expires_at"}
ROTATE_FIELDS = {"grace_period_seconds", "expires_at"}


@bp.get("/api-keys")
def list_keys():
    account = owner()
    return {"data": [_key_object(row) for row in api_keys.list_for_user(account.id)]}


@bp.post("/api-keys")
def create_key():
    account = owner()
    body = fields(json_object(), CREATE_FIELDS, required={"name", "scopes"})
    with _refusal_as_invalid_request():
        row, key = api_keys.create(account.id, body["name"], body["scopes"], body.get("expires_at"))
    return {**_key_object(row), "key": key}, 201, SHOWN_ONCE


@bp.post("/api-keys/<key_id>/rotate")
def rotate_key(key_id: str):
    account = owner()
    body = fields(json_object() if request.get_data() else {}, ROTATE_FIELDS)
    with _refusal_as_invalid_request():
        rotated = api_keys.rotate(account.id, key_id, body.get("grace_period_seconds", DEFAULT_GRACE_SECONDS),
                                  body.get("expires_at"))
    if rotated is None:
        raise _not_found()
    row, key = rotated
    return {**_key_object(row), "key": key, "replaces": _key_object(row.rotated_from)}, 201, SHOWN_ONCE


@bp.delete("/api-keys/<key_id>")
def revoke_key(key_id: str):
    account = owner()
    if not api_keys.revoke(account.id, key_id):
        raise _not_found()
    return "", 204


@contextmanager
def _refusal_as_invalid_request():
    """What storage refuses (its message is fit for the user) is a 400."""
    try:
        yield
    except api_keys.InvalidApiKeyRequest as refused:
        raise invalid_request(str(refused)) from None


def _not_found() -> ApiError:
    return ApiError("NOT_FOUND", "There is no such API key.", 404)


def _key_object(row: ApiKey) -> dict:
    return {
        "id": row.public_id,
        "name": row.name,
        "prefix": row.display_prefix,
        "last_four": row.last_four,
        "scopes": row.scopes,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "rotated_from": row.rotated_from.public_id if row.rotated_from else None,
    }
