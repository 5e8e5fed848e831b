"""Pruning: delete the rows that no check can need any more, in short batches, so that the tables
stay bounded by the live data (`authserver db prune`, and on a schedule inside the server:
web/prune_schedule.py).

Each batch is a transaction of its own that deletes at most `batch_size` rows, picked through the
index on their expiry (`DELETE ... WHERE key IN (SELECT key ... WHERE <prunable> LIMIT n)`, the
same on SQLite and PostgreSQL), so no batch holds its locks for long and requests go on between
batches.

What goes, and why nothing needs it any more:
- authorization_codes, MARGIN_SECONDS after they expire, once the access token their redemption
  issued has expired too. A used code keeps what it issued so that a replay revokes it
  (oauth/grants.py), but an expired code is refused before that check; deleting its app puts
  that access token on the deny list (clients.delete_owned), which needs the row while the
  token lives.
- refresh_tokens, REFRESH_RETENTION_SECONDS after they expire, once the access token issued with
  them has expired too. A rotated token is needed until it expires, to detect its reuse; an
  expired one is refused before that check. It is kept a week longer so that /v1/auth/refresh
  still answers TOKEN_EXPIRED (not INVALID_TOKEN) and revoking a recently expired token still
  revokes its family; and while its access token lives, because revoking the family puts that
  token on the deny list (an access-token TTL may exceed the refresh-token TTL). Revoked tokens
  go at the same time: finding them sooner would need an index on revoked_at, and the
  refresh-token TTL bounds them anyway.
- revoked_access_tokens, MARGIN_SECONDS after the token's `exp`: verifiers accept a token for
  LEEWAY_SECONDS (30) past it, and the clocks of instances differ.
- usage_batches, usage.BATCH_ID_RETENTION after they arrived: no resource service retries a
  batch that long.

Not pruned:
- consents: none is ever left behind. Withdrawing one deletes its row, and deleting an account or
  a client deletes its consents (the foreign keys cascade); a consent without live tokens is still
  the user's standing permission (no consent screen next time).
- API keys, expired or revoked: the usage dashboard names them for their past requests, and a
  rotated key links to the one it replaced.
- usage_counts: the usage history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, Connection, Table, delete, func, or_, select, text

from .models import AuthorizationCode, RefreshToken, RevokedAccessToken, UsageBatch
from .usage import BATCH_ID_RETENTION

DEFAULT_BATCH_SIZE = 1000
MARGIN_SECONDS = 300
REFRESH_RETENTION_SECONDS = 7 * 24 * 3600
# PostgreSQL session advisory lock held while a scheduled round runs: one instance at a time.
LOCK_KEY = 0x61757468_70727531  # "authpru1"

_codes = AuthorizationCode.__table__
_refresh = RefreshToken.__table__
_denied = RevokedAccessToken.__table__
_batches = UsageBatch.__table__


@dataclass(frozen=True)
class _Prunable:
    table: Table
    key: Column
    condition: Callable[[int], ColumnElement[bool]]  # given the time now: what may go


def _access_token_expired(table: Table, now: int) -> ColumnElement[bool]:
    """The access token the row records (if any) is past its expiry and the verifiers' leeway."""
    expires_at = table.c.access_token_expires_at
    return or_(expires_at.is_(None), expires_at < now - MARGIN_SECONDS)


PRUNABLE = (
    _Prunable(_codes, _codes.c.id,
              lambda now: (_codes.c.expires_at < now - MARGIN_SECONDS) & _access_token_expired(_codes, now)),
    _Prunable(_refresh, _refresh.c.id,
              lambda now: (_refresh.c.expires_at < now - REFRESH_RETENTION_SECONDS)
              & _access_token_expired(_refresh, now)),
    _Prunable(_denied, _denied.c.jti, lambda now: _denied.c.expires_at < now - MARGIN_SECONDS),
    _Prunable(_batches, _batches.c.batch_id, lambda now: _batches.c.received_at < now - BATCH_ID_RETENTION),
)
TABLES = tuple(prunable.table.name for prunable in PRUNABLE)


def prune(connection: Connection, now: int, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, int]:
    """Delete what is prunable at `now`, table by table, committing each batch of at most
    `batch_size` rows on its own; returns the rows deleted, by table."""
    deleted = {}
    for prunable in PRUNABLE:
        statement = delete(prunable.table).where(
            prunable.key.in_(select(prunable.key).where(prunable.condition(now)).limit(batch_size))
        )
        total, count = 0, batch_size
        while count == batch_size:  # a short batch: nothing more was prunable
            with connection.begin():
                count = connection.execute(statement).rowcount
            total += count
        deleted[prunable.table.name] = total
    return deleted


def count_prunable(connection: Connection, now: int) -> dict[str, int]:
    """What `prune` would delete at `now`, by table (deleting nothing)."""
    with connection.begin():
        return {
            prunable.table.name: connection.scalar(
                select(func.count()).select_from(prunable.table).where(prunable.condition(now))
            )
            for prunable in PRUNABLE
        }


@contextmanager
def exclusive(connection: Connection) -> Iterator[bool]:
    """Whether this connection holds the prune lock while the block runs: on PostgreSQL a session
    advisory lock, which another instance's round finds taken (and skips); SQLite serves one host
    and writes one transaction at a time, so there it is always True."""
    if connection.dialect.name != "postgresql":
        yield True
        return
    locked = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY})
    connection.commit()
    if not locked:
        yield False
        return
    try:
        yield True
    finally:
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            connection.commit()
        except Exception:  # noqa: BLE001 - closing the connection releases the lock as well
            connection.invalidate()
