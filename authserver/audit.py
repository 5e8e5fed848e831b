"""The audit log: one JSON line per security event, on the `authserver.audit` logger.

Each line has `time` (UTC, ISO 8601), `event`, `account` and `client` (public ids, or null),
`source` (the client address) and `request_id` (the `X-Request-ID` of the request it happened in),
plus the event's own non-secret details. Secrets never go in: callers pass ids, never tokens,
keys, passwords or digests of them.

The logger writes to stderr unless the operator routes it elsewhere (`logging` configuration);
it does not propagate to the root logger, so the lines stay clean JSON.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

log = logging.getLogger("authserver.audit")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's own request id is kept when it is short and plain (it goes into log lines).
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


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


def request_id() -> str:
    """This request's id: the caller's `X-Request-ID` when acceptable, else a new random one."""
    found = g.get("request_id")
    if found is None:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        found = offered if _ACCEPTABLE_REQUEST_ID.fullmatch(offered) else secrets.token_hex(8)
        g.request_id = found
    return found


def init_app(app: Flask) -> None:
    """Echo the request id on every response, and give the audit logger its stderr handler."""

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = request_id()
        return response

    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
