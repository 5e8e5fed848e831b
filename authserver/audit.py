"""The audit log: one JSON line per security event, on the `authserver.audit` logger.

Each line has `time` (UTC, ISO 8601), `event`, `account` and `client` (public ids, or null),
`source` (the client address) and `request_id` (the `X-Request-ID` of the request it happened in),
plus the event's own non-secret details. Secrets never go in: callers pass ids, never tokens,
keys, passwords or digests of them.

The logger writes to stderr unless the operator routes it elsewhere (`logging` configuration);
it does not propagate to the root logger, so the lines stay clean JSON. Its handler is set up when
this module is imported, so that commands outside a server (`authserver keys rotate`, `authserver
clients create`) write their lines too. In an app, each event is also counted in the
`authserver_security_events_total` metric (metrics.py).

The events: login_succeeded, login_failed (`reason`: unknown_account, wrong_password or
account_disabled; `account` is the account's id when the email belongs to one), consent_granted
(`scopes`), consent_revoked, api_key_created / api_key_rotated (`replaces`) / api_key_revoked
(`key`: the key's public id), client_created (`secret_issued`), client_secret_rotated,
client_deleted, signing_key_rotated (`kid`: the key now signing, `trigger`: command or schedule),
client_auth_failed / client_auth_throttled (web/client_auth_limits.py), login_throttled /
sign_up_throttled (web/sign_in_limits.py), authorization_code_reuse_detected /
refresh_token_reuse_detected (`family`; oauth/grants.py). An email address is never written: it is personal data, and a user who
types their password into the email field would put it in the log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime, timezone

from flask import Flask, current_app, has_app_context, has_request_context, request

from .metrics import EXTENSION as METRICS

log = logging.getLogger("authserver.audit")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's own request id is kept when it is short and plain (it goes into log lines).
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ENVIRON_KEY = "authserver.request_id"


def record(event: str, *, account: str | None = None, client: str | None = None, **details) -> None:
    """Write one audit line for `event` (snake_case, e.g. "login_failed")."""
    line = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "event": event,
        "account": account,
        "client": client,
        "source": request.remote_addr if has_request_context() else None,
        "request_id": request_id() if has_request_context() else None,
        **details,
    }
    log.info(json.dumps(line, separators=(",", ":"), default=str))
    metrics = current_app.extensions.get(METRICS) if has_app_context() else None
    if metrics is not None:
        metrics.count_event(event)


def request_id() -> str:
    """This request's id: the caller's `X-Request-ID` when acceptable, else a new random one.
    Kept in the WSGI environ (cheaper than `g` on a path every response takes)."""
    environ = request.environ
    found = environ.get(_ENVIRON_KEY)
    if found is None:
        offered = environ.get("HTTP_X_REQUEST_ID")
        found = offered if offered and _ACCEPTABLE_REQUEST_ID.fullmatch(offered) else os.urandom(8).hex()
        environ[_ENVIRON_KEY] = found
    return found


def init_app(app: Flask) -> None:
    """Echo the request id on every response."""

    @app.after_request
    def _echo_request_id(response):
        response.headers.add(REQUEST_ID_HEADER, request_id())  # no other hook sets it: add, not replace
        return response


def _write_to_stderr() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


_write_to_stderr()
