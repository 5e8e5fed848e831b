"""Wire errors, rendered in the one way each surface expects.

- OAuth protocol endpoints (`/oauth/*` called by clients): RFC 6749 §5.2 JSON.
- `/v1/*`: the product's envelope `{"error": {"code", "message", "status"}}`.
- Browser pages: an HTML error page.

Public text goes to the wire; details (exception, stack) only to the log.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

BROWSER_OAUTH_PATHS = ("/oauth/authorize", "/oauth/logout")
ENVELOPE_CODES = {400: "INVALID_REQUEST", 401: "INVALID_TOKEN", 404: "NOT_FOUND", 429: "RATE_LIMIT_EXCEEDED"}
JSON_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_json_error(error: str, description: str, status: int):
    return jsonify(error=error, error_description=description), status, JSON_NO_STORE


def envelope_error(code: str, message: str, status: int):
    return jsonify(error={"code": code, "message": message, "status": status}), status


def html_error(title: str, message: str, status: int):
    return render_template("error.html", title=title, message=message), status


def _surface() -> str:
    path = request.path
    if path.startswith("/v1/"):
        return "envelope"
    if (path.startswith("/oauth/") and not path.startswith(BROWSER_OAUTH_PATHS)) or path.startswith("/.well-known/"):
        return "oauth"
    return "html"


def _describe(exc: HTTPException) -> str:
    if (exc.code or 500) >= 500:
        return "The server could not complete the request."
    if exc.code == 413:
        return "The request body is too large."
    if exc.code == 405:
        return "This method is not allowed here."
    if exc.code == 404:
        return "There is nothing at this address."
    return "The request is not valid."


def render_http_error(exc: HTTPException):
    response = make_response(_render_http_error(exc))
    # RFC 9110 §15.5.6: a 405 names the allowed methods, which only the exception knows.
    for name, value in exc.get_headers():
        if name == "Allow":
            response.headers[name] = value
    return response


def _render_http_error(exc: HTTPException):
    status = exc.code or 500
    surface = _surface()
    if surface == "oauth":
        return oauth_json_error("server_error" if status >= 500 else "invalid_request", _describe(exc), status)
    if surface == "envelope":
        code = "INTERNAL_ERROR" if status >= 500 else ENVELOPE_CODES.get(status, "INVALID_REQUEST")
        return envelope_error(code, _describe(exc), status)
    if isinstance(exc, CSRFError):
        return html_error("Form expired", "The form expired or did not come from this site. Go back, reload and try again.", 400)
    return html_error(f"Error {status}", _describe(exc), status)


def render_unexpected(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    surface = _surface()
    if surface == "oauth":
        return oauth_json_error("server_error", "The server could not complete the request.", 500)
    if surface == "envelope":
        return envelope_error("INTERNAL_ERROR", "The server could not complete the request.", 500)
    return html_error("Something went wrong", "The server could not complete the request.", 500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(Exception, render_unexpected)
