"""The access-token deny list: JWTs are stateless, so revoking one means remembering its jti."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .db import session
from .models import RevokedAccessToken

_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


def deny(jti: str, expires_at: int) -> None:
    """Add to the current transaction; the caller commits. Idempotent, also against a concurrent
    revocation of the same token (the second insert does nothing rather than fail)."""
    db = session()
    insert = _INSERTS[db.get_bind().dialect.name]
    db.execute(insert(RevokedAccessToken).values(jti=jti, expires_at=expires_at).on_conflict_do_nothing())


def is_denied(jti: str) -> bool:
    return isinstance(jti, str) and session().get(RevokedAccessToken, jti) is not None


def deny_and_commit(jti: str, expires_at: int) -> None:
    deny(jti, expires_at)
    session().commit()
