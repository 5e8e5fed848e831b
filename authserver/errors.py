"""Wire errors, rendered in the one way each surface expects.

- OAuth protocol endpoints (`/oauth/*` called by clients): RFC 6749 §5.2 JSON.
- `/v1/*`: the product's envelope `{"error": {"code", "message", "status"}}`.
- Browser pages: an HTML error page.

Public text goes to the wire; details (exception, stack) only to the log.

A database that does not answer (stopped, restarting, unreachable, its pool exhausted) is not a
bug but an outage: 503 with Retry-After on each surface (`temporarily_unavailable`, RFC 6749
§4.1.2.1's name for it, on `/oauth/*`; SERVICE_UNAVAILABLE in the envelope), one log line
without SQL or parameters. SQLAlchemy invalidates the broken connection (and, on a disconnect,
the rest of the pool), so the next requests reconnect and the server recovers by itself.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from .storage import db

log = logging.getLogger(__name__)

BROWSER_OAUTH_PATHS = ("/oauth/authorize", "/oauth/logout")
ENVELOPE_CODES = {400: "INVALID_REQUEST", 401: "INVALID_TOKEN", 404: "NOT_FOUND", 429: "RATE_LIMIT_EXCEEDED"}
JSON_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Seconds a client is asked to wait when the database does not answer: about a restart's length.
DATABASE_RETRY_AFTER = 5
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable. Try again shortly."


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


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (not that a query was wrong)."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, DisconnectionError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def render_database_unavailable(exc: Exception):
    # The driver's first line only: SQLAlchemy's own text repeats the SQL and its parameters.
    cause = getattr(exc, "orig", None) or exc
    reason = (str(cause).splitlines() or [""])[0]
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.path, type(cause).__name__, reason)
    db.discard_session()
    surface = _surface()
    if surface == "oauth":
        response = oauth_json_error("temporarily_unavailable", UNAVAILABLE_MESSAGE, 503)
    elif surface == "envelope":
        response = envelope_error("SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE, 503)
    else:
        # Rendered without the context processors: Flask-Login's would load the signed-in user
        # from the database that just failed, and fail the error page too.
        page = current_app.jinja_env.get_template("error.html")
        response = page.render(title="Temporarily unavailable", message=UNAVAILABLE_MESSAGE), 503
    response = make_response(response)
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def render_exception(exc: Exception):
    if database_unavailable(exc):
        return render_database_unavailable(exc)
    return render_unexpected(exc)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(Exception, render_exception)
