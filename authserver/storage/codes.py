"""Authorization codes: single-use, short-lived, stored by digest."""

from __future__ import annotations

from sqlalchemy import select, update

from .. import credentials
from .db import session
from .models import AuthorizationCode


def save_code(code: str, **fields) -> AuthorizationCode:
    row = AuthorizationCode(digest=credentials.digest(code), **fields)
    db = session()
    db.add(row)
    db.commit()
    return row


def find_code(code: str, client_row_id: int) -> AuthorizationCode | None:
    """The code issued to this client, whatever its state; the caller checks expiry and use."""
    return session().scalar(
        select(AuthorizationCode).where(
            AuthorizationCode.digest == credentials.digest(code),
            AuthorizationCode.client_id == client_row_id,
        )
    )


def claim_code(row: AuthorizationCode, now: int) -> bool:
    """Mark the code used, atomically; False if another request already did.

    The UPDATE is left uncommitted so that the winner's tokens are recorded in the same
    transaction: a concurrent redemption blocks on the row until then and sees them.
    """
    result = session().execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def record_issued(row: AuthorizationCode, jti: str, jti_expires_at: int, refresh_family: str | None) -> None:
    session().execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == row.id)
        .values(access_token_jti=jti, access_token_expires_at=jti_expires_at, refresh_family=refresh_family)
    )


def find_code_by_id(code_id: int) -> AuthorizationCode | None:
    return session().get(AuthorizationCode, code_id)
