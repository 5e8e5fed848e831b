"""Authorization codes: single-use, short-lived, stored by digest.

The statements of the code flow are built once, with bind parameters: building a statement costs
more CPU than running it (SQLAlchemy caches the compiled form, not the construction)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from .. import credentials
from .db import session
from .models import AuthorizationCode, User

_codes = AuthorizationCode.__table__

_INSERT = insert(_codes).inline()  # no RETURNING of the new id: nothing needs it
_WITH_USER = (
    select(AuthorizationCode, User)
    .join(User, User.id == AuthorizationCode.user_id)
    .where(AuthorizationCode.digest == bindparam("digest"), AuthorizationCode.client_id == bindparam("client_id"))
)
# The row as committed now, over what this session loaded before (a concurrent redemption's record).
_BY_ID = (
    select(AuthorizationCode)
    .where(AuthorizationCode.id == bindparam("id"))
    .execution_options(populate_existing=True)
)
_CLAIM = (
    update(_codes)
    .where(_codes.c.id == bindparam("code_id"), _codes.c.used_at.is_(None))
    .values(
        used_at=bindparam("now"),
        access_token_jti=bindparam("jti"),
        access_token_expires_at=bindparam("jti_expires_at"),
        refresh_family=bindparam("refresh_family"),
    )
)


def save_code(code: str, **fields) -> None:
    """Store the code (one INSERT) and commit."""
    db = session()
    db.execute(_INSERT, {"digest": credentials.digest(code), **fields})
    db.commit()


def find_with_user(code: str, client_row_id: int) -> tuple[AuthorizationCode, User] | None:
    """The code issued to this client, whatever its state, with its user, in one query; the caller
    checks expiry, use and the user."""
    found = session().execute(_WITH_USER, {"digest": credentials.digest(code), "client_id": client_row_id}).first()
    return tuple(found) if found else None


def find_by_id(code_id: int) -> AuthorizationCode | None:
    return session().scalar(_BY_ID, {"id": code_id})


def claim(code_id: int, now: int, jti: str, jti_expires_at: int, refresh_family: str | None) -> bool:
    """Mark the code used and record what its redemption issued, in one conditional UPDATE;
    False if another request already did.

    Left uncommitted, so that the claim and the tokens commit together: a concurrent redemption
    blocks on the row until then, matches nothing, and finds what this one issued.
    """
    result = session().execute(
        _CLAIM,
        {"code_id": code_id, "now": now, "jti": jti, "jti_expires_at": jti_expires_at,
         "refresh_family": refresh_family},
    )
    return result.rowcount == 1
