"""The access-token deny list: JWTs are stateless, so revoking one means remembering its jti."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from .db import session
from .models import RevokedAccessToken


def deny(jti: str, expires_at: int) -> None:
    """Add to the current transaction; the caller commits."""
    db = session()
    if db.get(RevokedAccessToken, jti) is None:
        db.add(RevokedAccessToken(jti=jti, expires_at=expires_at))


def is_denied(jti: str) -> bool:
    return isinstance(jti, str) and session().get(RevokedAccessToken, jti) is not None


def deny_and_commit(jti: str, expires_at: int) -> None:
    """Deny a token now. Two concurrent revocations of one token both succeed: the second one's
    insert meets the first one's row, which is the outcome it wanted."""
    db = session()
    deny(jti, expires_at)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
