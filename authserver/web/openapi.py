"""`GET /v1/openapi.json`: an OpenAPI 3.1 description of the `/v1` JSON API, public and cacheable,
for people reading the API and for generating clients.

`DOCUMENT` is written by hand, beside the modules it describes (api_v1, usage, api_keys,
apps_api); tests/flows/test_openapi.py checks that its paths and methods are exactly the app's
`/v1` routes and that it is a valid OpenAPI 3.1 document. The served copy adds `servers`: this
server's issuer URL.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..extensions import current_settings
from ..oauth.scopes import API_KEY_SCOPES, SCOPES
from ..registration import GRANT_TYPES, MAX_URIS
from ..storage.api_keys import MAX_GRACE_SECONDS, MAX_KEYS_PER_ACCOUNT, MAX_NAME_LENGTH
from ..storage.clients import MAX_APPS_PER_ACCOUNT
from .api_keys import DEFAULT_GRACE_SECONDS

bp = Blueprint("openapi", __name__, url_prefix="/v1")

MAX_AGE_SECONDS = 3600
ERROR_CODES = ["INVALID_REQUEST", "INVALID_TOKEN", "TOKEN_EXPIRED", "INVALID_API_KEY", "INVALID_CLIENT",
               "INSUFFICIENT_SCOPE", "NOT_FOUND", "RATE_LIMIT_EXCEEDED", "INTERNAL_ERROR"]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(name: str) -> dict:
    return {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": _ref(name)}}}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _body(schema_name: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _errors(*statuses: int) -> dict:
    return {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in statuses}


NO_STORE = {"Cache-Control": {"description": "`no-store`: the body holds a secret shown once.",
                              "schema": {"type": "string", "const": "no-store"}}}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "string"}}}
CHALLENGE = {"WWW-Authenticate": {"description": "`Bearer` (or `Basic` for INVALID_CLIENT) challenge, RFC 6750.",
                                  "schema": {"type": "string"}}}

# The account-owner APIs: a Bearer token with keys:manage, or the browser session (with its CSRF
# token for unsafe methods).
OWNER_READ = [{"bearerToken": ["keys:manage"]}, {"sessionCookie": []}]
OWNER_WRITE = [{"bearerToken": ["keys:manage"]}, {"sessionCookie": [], "csrfToken": []}]
OWNER_ERRORS = (401, 403)

STRING_LIST = {"type": "array", "items": {"type": "string"}}
EPOCH = {"type": "integer", "description": "Epoch seconds."}

SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "The envelope of every /v1 error.",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "string", "enum": ERROR_CODES},
                "message": {"type": "string"},
                "status": {"type": "integer"},
            },
        }},
    },
    "RefreshRequest": {
        "type": "object",
        "required": ["refresh_token"],
        "additionalProperties": False,
        "properties": {
            "refresh_token": {"type": "string"},
            "client_id": {"type": "string", "description": "A confidential client authenticating in the body."},
            "client_secret": {"type": "string"},
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string", "description": "An RS256 JWT (typ at+jwt)."},
            "token_type": {"type": "string", "const": "Bearer"},
            "expires_in": {"type": "integer"},
            "scope": {"type": "string", "description": "Space-separated."},
            "refresh_token": {"type": "string", "description": "The rotated refresh token: use it next time."},
            "id_token": {"type": "string", "description": "When the grant includes openid."},
        },
    },
    "UsageBatch": {
        "type": "object",
        "required": ["batch_id", "counts"],
        "additionalProperties": False,
        "properties": {
            "batch_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$",
                         "description": "Retry a batch with the same id until it is acknowledged."},
            "counts": {"type": "array", "maxItems": 1000, "items": {
                "type": "object",
                "required": ["account", "credential", "hour", "count"],
                "additionalProperties": False,
                "properties": {
                    "account": {"type": "string", "description": "The account's public id (user_…)."},
                    "credential": {"type": "string", "description": "An API key id or a client_id."},
                    "hour": {"type": "integer", "description": "Epoch second starting the hour."},
                    "count": {"type": "integer", "minimum": 1, "maximum": 10**7},
                },
            }},
        },
    },
    "UsageAccepted": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["accepted", "duplicate"]}},
    },
    "UsageSummary": {
        "type": "object",
        "required": ["account", "plan", "hourly", "daily"],
        "properties": {
            "account": {"type": "string"},
            "plan": {"type": "string", "enum": ["free", "pro", "enterprise"]},
            "hourly": {"type": "array", "description": "The last 24 hours, oldest first.", "items": {
                "type": "object",
                "required": ["hour", "count", "by_credential"],
                "properties": {"hour": EPOCH, "count": {"type": "integer"},
                               "by_credential": {"type": "object", "additionalProperties": {"type": "integer"}}},
            }},
            "daily": {"type": "array", "description": "The last 30 UTC days, oldest first.", "items": {
                "type": "object",
                "required": ["day", "start", "count", "by_credential"],
                "properties": {"day": {"type": "string", "format": "date"}, "start": EPOCH,
                               "count": {"type": "integer"},
                               "by_credential": {"type": "object", "additionalProperties": {"type": "integer"}}},
            }},
        },
    },
    "ApiKey": {
        "type": "object",
        "required": ["id", "name", "prefix", "last_four", "scopes", "created_at", "expires_at", "last_used_at",
                     "rotated_from"],
        "properties": {
            "id": {"type": "string", "examples": ["key_0123456789abcdef01234567"]},
            "name": {"type": "string"},
            "prefix": {"type": "string", "description": "tdk_ and 6 characters of the key."},
            "last_four": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string", "enum": list(API_KEY_SCOPES)}},
            "created_at": EPOCH,
            "expires_at": {"type": ["integer", "null"]},
            "last_used_at": {"type": ["integer", "null"], "description": "Lags by up to 30 s."},
            "rotated_from": {"type": ["string", "null"]},
        },
    },
    "ApiKeyList": _list_of("ApiKey"),
    "NewApiKey": {"allOf": [_ref("ApiKey"), {
        "type": "object",
        "required": ["key"],
        "properties": {"key": {"type": "string", "description": "The key itself, shown this once."}},
    }]},
    "RotatedApiKey": {"allOf": [_ref("NewApiKey"), {
        "type": "object",
        "required": ["replaces"],
        "properties": {"replaces": _ref("ApiKey")},
    }]},
    "ApiKeyCreate": {
        "type": "object",
        "required": ["name", "scopes"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
            "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(API_KEY_SCOPES)}},
            "expires_at": {"type": ["integer", "null"], "description": "In the future, at most 365 days ahead."},
        },
    },
    "ApiKeyRotate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "grace_period_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_GRACE_SECONDS,
                                     "default": DEFAULT_GRACE_SECONDS},
            "expires_at": {"type": ["integer", "null"]},
        },
    },
    "App": {
        "type": "object",
        "required": ["client_id", "name", "public", "redirect_uris", "post_logout_redirect_uris", "scopes",
                     "grant_types", "token_endpoint_auth_method", "created_at"],
        "properties": {
            "client_id": {"type": "string"},
            "name": {"type": "string"},
            "public": {"type": "boolean"},
            "redirect_uris": STRING_LIST,
            "post_logout_redirect_uris": STRING_LIST,
            "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}},
            "grant_types": {"type": "array", "items": {"type": "string", "enum": list(GRANT_TYPES)}},
            "token_endpoint_auth_method": {"type": "string", "enum": ["client_secret_basic", "none"]},
            "created_at": EPOCH,
        },
    },
    "AppList": _list_of("App"),
    "NewApp": {"allOf": [_ref("App"), {
        "type": "object",
        "properties": {"client_secret": {"type": "string", "description": "Confidential apps only; shown this once."}},
    }]},
    "AppCreate": {
        "type": "object",
        "required": ["name", "redirect_uris", "public", "scopes", "grant_types"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Printable, without < or >."},
            "redirect_uris": {**STRING_LIST, "maxItems": MAX_URIS, "description":
                              "Exact match. https, or http on a loopback host; a public app may also use a "
                              "private-use scheme (com.example.app:/cb). No fragment."},
            "public": {"type": "boolean", "description": "Public apps get no secret and always use PKCE."},
            "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(SCOPES)}},
            "grant_types": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(GRANT_TYPES)},
                            "description": "client_credentials for confidential apps only."},
            "post_logout_redirect_uris": {**STRING_LIST, "maxItems": MAX_URIS},
        },
    },
    "ClientSecret": {"type": "object", "required": ["client_secret"],
                     "properties": {"client_secret": {"type": "string"}}},
}

ERROR_RESPONSES = {
    f"Error{status}": _json(_ref("Error"), description, {401: CHALLENGE, 429: RETRY_AFTER}.get(status))
    for status, description in (
        (400, "INVALID_REQUEST: the body or a value is not valid; nothing was stored."),
        (401, "INVALID_TOKEN, TOKEN_EXPIRED or INVALID_CLIENT."),
        (403, "INSUFFICIENT_SCOPE: the access token lacks keys:manage."),
        (404, "NOT_FOUND: not one of the caller's (unknown and another account's alike)."),
        (429, "RATE_LIMIT_EXCEEDED: too many failed client authentications from this address."),
    )
}

KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}
NO_CONTENT = {"204": {"description": "Done."}}

PATHS = {
    "/v1/auth/refresh": {"post": {
        "summary": "Refresh an access token",
        "description": "Runs the token endpoint's refresh_token grant: the refresh token is rotated. A public "
                       "client sends only the token; a confidential one authenticates as registered.",
        "security": [{}, {"clientBasic": []}],
        "requestBody": _body("RefreshRequest"),
        "responses": {"200": _json(_ref("TokenResponse"), "New tokens.", NO_STORE), **_errors(400, 401, 429)},
    }},
    "/v1/usage": {
        "get": {
            "summary": "The account's usage",
            "security": [{"bearerToken": []}],
            "responses": {"200": _json(_ref("UsageSummary"), "Requests per hour and per day."), **_errors(401)},
        },
        "post": {
            "summary": "Report usage counts (resource services)",
            "description": "HTTP Basic of a confidential client with the client_credentials grant.",
            "security": [{"clientBasic": []}],
            "requestBody": _body("UsageBatch"),
            "responses": {"200": _json(_ref("UsageAccepted"), "Stored, or a batch seen before."), **_errors(400, 401)},
        },
    },
    "/v1/api-keys": {
        "get": {
            "summary": "List API keys",
            "security": OWNER_READ,
            "responses": {"200": _json(_ref("ApiKeyList"), "Neither revoked nor expired, newest first."),
                          **_errors(*OWNER_ERRORS)},
        },
        "post": {
            "summary": "Create an API key",
            "description": f"At most {MAX_KEYS_PER_ACCOUNT} usable keys per account.",
            "security": OWNER_WRITE,
            "requestBody": _body("ApiKeyCreate"),
            "responses": {"201": _json(_ref("NewApiKey"), "The key, shown once.", NO_STORE),
                          **_errors(400, *OWNER_ERRORS)},
        },
    },
    "/v1/api-keys/{key_id}/rotate": {"post": {
        "summary": "Rotate an API key",
        "security": OWNER_WRITE,
        "parameters": [KEY_ID],
        "requestBody": _body("ApiKeyRotate", required=False),
        "responses": {"201": _json(_ref("RotatedApiKey"), "The successor, shown once.", NO_STORE),
                      **_errors(400, *OWNER_ERRORS, 404)},
    }},
    "/v1/api-keys/{key_id}": {"delete": {
        "summary": "Revoke an API key",
        "security": OWNER_WRITE,
        "parameters": [KEY_ID],
        "responses": {**NO_CONTENT, **_errors(400, *OWNER_ERRORS, 404)},
    }},
    "/v1/apps": {
        "get": {
            "summary": "List the account's OAuth apps",
            "security": OWNER_READ,
            "responses": {"200": _json(_ref("AppList"), "Newest first."), **_errors(*OWNER_ERRORS)},
        },
        "post": {
            "summary": "Register an OAuth app",
            "description": f"At most {MAX_APPS_PER_ACCOUNT} apps per account.",
            "security": OWNER_WRITE,
            "requestBody": _body("AppCreate"),
            "responses": {"201": _json(_ref("NewApp"), "The app; a confidential app's secret, shown once.", NO_STORE),
                          **_errors(400, *OWNER_ERRORS)},
        },
    },
    "/v1/apps/{client_id}/rotate-secret": {"post": {
        "summary": "Rotate a confidential app's client secret",
        "description": "The old secret stops working at once. A public app has none: 400.",
        "security": OWNER_WRITE,
        "parameters": [CLIENT_ID],
        "responses": {"201": _json(_ref("ClientSecret"), "The new secret, shown once.", NO_STORE),
                      **_errors(400, *OWNER_ERRORS, 404)},
    }},
    "/v1/apps/{client_id}": {"delete": {
        "summary": "Delete an OAuth app",
        "description": "Its consents, codes and refresh tokens are deleted and its access tokens revoked.",
        "security": OWNER_WRITE,
        "parameters": [CLIENT_ID],
        "responses": {**NO_CONTENT, **_errors(400, *OWNER_ERRORS, 404)},
    }},
    "/v1/openapi.json": {"get": {
        "summary": "This document",
        "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }},
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "authserver /v1 API",
        "version": "1",
        "description": "Errors use the envelope `{\"error\": {\"code\", \"message\", \"status\"}}` (schema Error).",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": ERROR_RESPONSES,
        "securitySchemes": {
            "bearerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                            "description": "A user's access token from /oauth/token; the account APIs need "
                                           "the keys:manage scope."},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                              "description": "The browser session of /login (`__Host-session` under an https "
                                             "issuer)."},
            "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                          "description": "The session's CSRF token: with the session cookie, POST and DELETE "
                                         "need it."},
            "clientBasic": {"type": "http", "scheme": "basic",
                            "description": "Client authentication: client_id and client_secret."},
        },
    },
}


@bp.get("/openapi.json")
def document():
    response = jsonify({**DOCUMENT, "servers": [{"url": current_settings().issuer}]})
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_SECONDS}"
    response.add_etag()
    return response.make_conditional(request)
