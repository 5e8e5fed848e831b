"""Refresh tokens: opaque, stored by digest, rotated on every use, revoked by family."""

from __future__ import annotations

from sqlalchemy import select, update

from .. import credentials
from .db import session
from .models import RefreshToken


def save_refresh_token(token: str, **fields) -> RefreshToken:
    """Add the row to the current transaction; the caller commits."""
    row = RefreshToken(digest=credentials.digest(token), **fields)
    session().add(row)
    return row


def find_refresh_token(token: str) -> RefreshToken | None:
    if not isinstance(token, str) or len(token) > 200:
        return None
    return session().scalar(select(RefreshToken).where(RefreshToken.digest == credentials.digest(token)))


def claim_refresh_token(row: RefreshToken, now: int) -> bool:
    """Mark the token rotated, atomically (uncommitted, like `codes.claim_code`)."""
    result = session().execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def revoke_family(family: str, now: int) -> None:
    session().execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
