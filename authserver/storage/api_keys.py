"""API keys of accounts: issue, list, rotate, revoke, and find by the key itself.

- A key is returned in clear once, by `create` or `rotate`; only its SHA-256 digest and its
  display parts (`tdk_` and 6 characters, the last 4) are stored. `find_usable` refuses a
  malformed key (shape, checksum) before any lookup, then looks the key up by digest, as refresh
  tokens are: the database compares digests of 256-bit secrets, which tells a timing attacker
  nothing about any key.
- Usable: neither revoked nor expired, of an enabled account. The owner sees (lists, rotates,
  revokes) the keys that are neither revoked nor expired.
- Rotation issues a successor with the same name and scopes and keeps the old key for a grace
  period (never past its own expiry), so that deployments can switch without an outage.
- What a user asks for is checked here and nowhere else, for the JSON API and the dashboard: a
  refused request raises InvalidApiKeyRequest, whose message may be shown as it is.
- The owner's row is locked while a key is created or rotated, so that concurrent requests cannot
  pass MAX_KEYS_PER_ACCOUNT together (PostgreSQL; SQLite runs one writer at a time anyway).

`last_used_at` is updated without a write per request: `record_use` notes the time in a buffer of
the process (one per app, thread-safe), and the request that finds the buffer older than
FLUSH_INTERVAL_SECONDS writes it, one UPDATE per key, which only ever moves the time forward (each
process has its own buffer). So the column lags by up to the interval, or until the process's
next use of any key. A crash or restart loses the buffered times (up to the interval's worth),
as does a failed write (logged); the keys' next uses set them again.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import contains_eager, selectinload

from .. import audit, credentials
from ..oauth.scopes import API_KEY_SCOPES
from ..resource.api_key_format import display_parts, is_well_formed, new_api_key
from .db import session
from .models import ApiKey, User

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100
MAX_KEYS_PER_ACCOUNT = 50
MAX_LIFETIME_SECONDS = 365 * 24 * 3600
MAX_GRACE_SECONDS = 7 * 24 * 3600
FLUSH_INTERVAL_SECONDS = 30  # read at every use: tests may change it
PUBLIC_ID = re.compile(r"key_[0-9a-f]{24}")  # credentials.new_identifier("key")
USES_KEY = "authserver.api_key_uses"


class InvalidApiKeyRequest(ValueError):
    """A refused request; the message says why, in words fit for the user."""


def create(user_id: int, name: str, scopes: list[str], expires_at: int | None = None) -> tuple[ApiKey, str]:
    """A new key for the account, committed; returns the row and the key in clear (shown once)."""
    now = int(time.time())
    name, scope, expires_at = _checked_name(name), _checked_scope(scopes), _checked_expiry(expires_at, now)
    db = session()
    try:
        owner = _lock_owner(user_id)
        _check_room(user_id, now)
        row, key = _issue(user_id, name, scope, expires_at, now)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    audit.record("api_key_created", account=owner, key=row.public_id)
    return row, key


def list_for_user(user_id: int) -> list[ApiKey]:
    """The account's keys that are neither revoked nor expired (a rotated key in its grace period
    too), newest first."""
    return list(session().scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, _usable_at(int(time.time())))
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        .options(selectinload(ApiKey.rotated_from))
    ))


def find_owned(user_id: int, public_id: str) -> ApiKey | None:
    """One of the account's listed keys; None for another account's, a revoked or expired one."""
    if not _is_public_id(public_id):
        return None
    return session().scalar(select(ApiKey).where(
        ApiKey.user_id == user_id, ApiKey.public_id == public_id, _usable_at(int(time.time()))))


def rotate(user_id: int, public_id: str, grace_seconds: int,
           expires_at: int | None = None) -> tuple[ApiKey, str] | None:
    """Replace a listed key with a new one (same name and scopes, `expires_at` its own) and keep
    the old one usable for `grace_seconds` more, at most until it expires anyway; committed.
    Returns the new row and key in clear, or None when the account has no such listed key."""
    now = int(time.time())
    grace, expires_at = _checked_grace(grace_seconds), _checked_expiry(expires_at, now)
    if not _is_public_id(public_id):
        return None
    db = session()
    try:
        owner = _lock_owner(user_id)
        old = db.scalar(select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.public_id == public_id,
                                             _usable_at(now)).execution_options(populate_existing=True))
        if old is None:
            db.rollback()
            return None
        old.expires_at = now + grace if old.expires_at is None else min(old.expires_at, now + grace)
        db.flush()  # counted below only if still usable: without a grace period, it is not
        _check_room(user_id, now)
        row, key = _issue(user_id, old.name, old.scope, expires_at, now, rotated_from=old)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    audit.record("api_key_rotated", account=owner, key=row.public_id, replaces=old.public_id,
                 old_key_expires_at=old.expires_at)
    return row, key


def revoke(user_id: int, public_id: str) -> bool:
    """Revoke one of the account's listed keys, at once and for good; False if there is none."""
    if not _is_public_id(public_id):
        return False
    now = int(time.time())
    db = session()
    revoked = db.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.public_id == public_id, _usable_at(now))
        .values(revoked_at=now)
    ).rowcount == 1
    db.commit()
    if revoked:
        audit.record("api_key_revoked", account=db.get(User, user_id).public_id, key=public_id)
    return revoked


def find_usable(key: str) -> ApiKey | None:
    """The key's row (with its `owner` loaded) if the key is usable right now, else None."""
    if not is_well_formed(key):
        return None
    return session().scalar(
        select(ApiKey)
        .join(ApiKey.owner)
        .options(contains_eager(ApiKey.owner))
        .where(ApiKey.key_digest == credentials.digest(key), _usable_at(int(time.time())),
               User.is_active.is_(True))
    )


def record_use(api_key_id: int) -> None:
    """Note that the key was used now; written with the buffer (see the module docstring)."""
    due = current_app.extensions.setdefault(USES_KEY, _UseBuffer()).add(api_key_id, int(time.time()))
    if due:
        _write_uses(due)


# -- validation --------------------------------------------------------------------------------

def _checked_name(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidApiKeyRequest(f"The name must be 1 to {MAX_NAME_LENGTH} printable characters.")
    return name


def _checked_scope(scopes) -> str:
    if (not isinstance(scopes, list) or not scopes
            or not all(isinstance(scope, str) and scope in API_KEY_SCOPES for scope in scopes)):
        raise InvalidApiKeyRequest(f"The scopes must be a non-empty list of: {', '.join(API_KEY_SCOPES)}.")
    return " ".join(dict.fromkeys(scopes))


def _checked_expiry(expires_at, now: int) -> int | None:
    if expires_at is None:
        return None
    if not _is_int(expires_at) or not now < expires_at <= now + MAX_LIFETIME_SECONDS:
        raise InvalidApiKeyRequest(
            f"The expiry must be an epoch second in the future, at most {MAX_LIFETIME_SECONDS // 86400} days ahead.")
    return expires_at


def _checked_grace(grace_seconds) -> int:
    if not _is_int(grace_seconds) or not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidApiKeyRequest(f"The grace period must be 0 to {MAX_GRACE_SECONDS} seconds.")
    return grace_seconds


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_public_id(public_id) -> bool:
    return isinstance(public_id, str) and PUBLIC_ID.fullmatch(public_id) is not None


def _check_room(user_id: int, now: int) -> None:
    """Refuse one more usable key for an account that has the most it may have."""
    usable = session().scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id, _usable_at(now)))
    if usable >= MAX_KEYS_PER_ACCOUNT:
        raise InvalidApiKeyRequest(
            f"An account may have at most {MAX_KEYS_PER_ACCOUNT} active keys: revoke one first"
            " (or rotate without a grace period).")


# -- storage -----------------------------------------------------------------------------------

def _usable_at(now: int):
    return ApiKey.revoked_at.is_(None) & or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)


def _lock_owner(user_id: int) -> str | None:
    """Lock the owner's row; returns the owner's public id (for the audit log)."""
    return session().scalar(select(User.public_id).where(User.id == user_id).with_for_update())


def _issue(user_id: int, name: str, scope: str, expires_at: int | None, now: int,
           rotated_from: ApiKey | None = None) -> tuple[ApiKey, str]:
    key = new_api_key()
    prefix, last_four = display_parts(key)
    row = ApiKey(public_id=credentials.new_identifier("key"), user_id=user_id, name=name,
                 key_digest=credentials.digest(key), display_prefix=prefix, last_four=last_four, scope=scope,
                 created_at=now, expires_at=expires_at, rotated_from=rotated_from)
    session().add(row)
    return row, key


class _UseBuffer:
    """Last-use times not yet written, by key id, and when they were last written."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}
        self._flushed_at = time.monotonic()

    def add(self, api_key_id: int, used_at: int) -> dict[int, int]:
        """Note the use; returns the times to write now (and forgets them), or {} before the interval."""
        with self._lock:
            self._pending[api_key_id] = max(used_at, self._pending.get(api_key_id, used_at))
            if time.monotonic() - self._flushed_at < FLUSH_INTERVAL_SECONDS:
                return {}
            self._flushed_at = time.monotonic()
            due, self._pending = self._pending, {}
            return due


def _write_uses(uses: dict[int, int]) -> None:
    """One UPDATE per key, in a transaction of its own (the request's session is not committed)."""
    table = ApiKey.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("key_id"),
               or_(table.c.last_used_at.is_(None), table.c.last_used_at < bindparam("used_at")))
        .values(last_used_at=bindparam("used_at"))
    )
    try:
        with session().get_bind().begin() as connection:
            connection.execute(statement, [{"key_id": key_id, "used_at": used_at} for key_id, used_at in uses.items()])
    except SQLAlchemyError:
        log.exception("could not write the last-use times of %d API keys; they are lost", len(uses))
