"""`/v1/apps`: the account owner registers and manages their OAuth apps (clients), as JSON.

Authentication (account_api.owner): a Bearer access token with the `keys:manage` scope, or the
browser session, whose `POST` and `DELETE` also send its CSRF token in `X-CSRFToken`.

An app object (`created_at` in epoch seconds; the secret is never shown again):

    {"client_id": "client_…", "name": "My App", "public": false,
     "redirect_uris": ["https://app.example.com/callback"], "post_logout_redirect_uris": [],
     "scopes": ["openid", "profile"], "grant_types": ["authorization_code", "refresh_token"],
     "token_endpoint_auth_method": "client_secret_basic" | "none", "created_at": 1795989600}

`GET /v1/apps` → 200 `{"data": [app object, …]}`, newest first.

`POST /v1/apps`, `application/json` `{"name", "redirect_uris": [...], "public": bool,
"scopes": [...], "grant_types": [...], "post_logout_redirect_uris"?: [...]}` → 201: the app
object and, for a confidential app, `"client_secret"`, shown this once (`Cache-Control:
no-store`). The rules are registration.account_app_registration's; an account has at most
clients.MAX_APPS_PER_ACCOUNT apps.

`POST /v1/apps/<client_id>/rotate-secret` (no body) → 201 `{"client_secret"}`: the old secret
stops working at once. A public app has no secret: 400.

`DELETE /v1/apps/<client_id>` → 204: the app, its consents, codes and refresh tokens are gone,
and the access tokens it was issued are revoked (clients.delete_owned).

Errors, in the envelope: 400 INVALID_REQUEST for a body that is not a JSON object, a missing,
unknown or mistyped field, a registration the rules refuse, or too many apps (nothing is stored);
404 NOT_FOUND for a client_id that is not one of the caller's apps (unknown and another
account's alike).
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint

from ..extensions import csrf
from ..registration import RegistrationError, account_app_registration
from ..storage import clients
from ..storage.models import Client
from .account_api import SHOWN_ONCE, fields, owner
from .api_v1 import ApiError, invalid_request, json_object, render_api_error

bp = Blueprint("apps_api", __name__, url_prefix="/v1")
bp.register_error_handler(ApiError, render_api_error)
csrf.exempt(bp)  # the CSRF token is checked in `owner`, for session-authenticated requests only

LIST_FIELDS = ("redirect_uris", "scopes", "grant_types", "post_logout_redirect_uris")
CREATE_FIELDS = {"name", "public", *LIST_FIELDS}
REQUIRED_FIELDS = CREATE_FIELDS - {"post_logout_redirect_uris"}


@bp.get("/apps")
def list_apps():
    account = owner()
    return {"data": [app_object(client) for client in clients.list_owned(account.id)]}


@bp.post("/apps")
def register_app():
    account = owner()
    body = fields(json_object(), CREATE_FIELDS, required=REQUIRED_FIELDS)
    try:
        registration = account_app_registration(**_typed(body))
        client, secret = clients.create_owned(account.id, registration)
    except (RegistrationError, clients.TooManyApps) as refused:
        raise invalid_request(str(refused)) from None
    created = app_object(client)
    if secret:
        created["client_secret"] = secret
    return created, 201, SHOWN_ONCE


@bp.post("/apps/<client_id>/rotate-secret")
def rotate_secret(client_id: str):
    client = _owned(client_id)
    if client.is_public:
        raise invalid_request("A public app has no secret to rotate.")
    return {"client_secret": clients.rotate_secret(client)}, 201, SHOWN_ONCE


@bp.delete("/apps/<client_id>")
def delete_app(client_id: str):
    clients.delete_owned(_owned(client_id))
    return "", 204


def app_object(client: Client) -> dict:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "scopes": client.allowed_scopes,
        "grant_types": client.grant_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "created_at": _epoch(client.created_at),
    }


def _owned(client_id: str) -> Client:
    account = owner()
    client = clients.find_owned(account.id, client_id)
    if client is None:
        raise ApiError("NOT_FOUND", "There is no such app.", 404)
    return client


def _typed(body: dict) -> dict:
    """The body's values, if each has its JSON type: a string name, a boolean, lists of strings."""
    if not isinstance(body["name"], str):
        raise invalid_request("'name' must be a string.")
    if not isinstance(body["public"], bool):
        raise invalid_request("'public' must be true or false.")
    for name in LIST_FIELDS:
        value = body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid_request(f"'{name}' must be a list of strings.")
    return body


def _epoch(moment: datetime) -> int:
    """SQLite gives back naive datetimes: they are UTC, as stored."""
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())
