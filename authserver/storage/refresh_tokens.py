"""Refresh tokens: opaque, stored by digest, rotated on every use, revoked by family.

The statements of a refresh are built once, with bind parameters: building a statement costs more
CPU than running it (SQLAlchemy caches the compiled form, not the construction)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from .. import credentials
from . import access_tokens
from .db import session
from .models import Client, RefreshToken, User

_tokens = RefreshToken.__table__

_INSERT = insert(_tokens).inline()  # no RETURNING of the new id: nothing needs it
_BY_DIGEST = select(RefreshToken).where(RefreshToken.digest == bindparam("digest"))
_WITH_USER = (
    select(RefreshToken, User)
    .join(User, User.id == RefreshToken.user_id)
    .where(RefreshToken.digest == bindparam("digest"))
)
_WITH_CLIENT_ID = (
    select(RefreshToken, Client.client_id)
    .join(Client, Client.id == RefreshToken.client_id)
    .where(RefreshToken.digest == bindparam("digest"))
)
# The row as committed now, over what this session loaded before (a concurrent rotation's record).
_BY_ID = (
    select(RefreshToken)
    .where(RefreshToken.id == bindparam("id"))
    .execution_options(populate_existing=True)
)
_CLAIM = (
    update(_tokens)
    .where(_tokens.c.id == bindparam("token_id"), _tokens.c.used_at.is_(None), _tokens.c.revoked_at.is_(None))
    .values(used_at=bindparam("now"), successor=bindparam("successor"))
)


def save_refresh_token(token: str, **fields) -> None:
    """Add the row to the current transaction (one INSERT); the caller commits."""
    session().execute(_INSERT, {"digest": credentials.digest(token), **fields})


def _digest(token) -> str | None:
    if not isinstance(token, str) or len(token) > 200:
        return None
    return credentials.digest(token)


def find_refresh_token(token: str) -> RefreshToken | None:
    digest = _digest(token)
    return None if digest is None else session().scalar(_BY_DIGEST, {"digest": digest})


def find_with_user(token: str) -> tuple[RefreshToken, User] | None:
    """The token's row with its user, in one query."""
    digest = _digest(token)
    found = None if digest is None else session().execute(_WITH_USER, {"digest": digest}).first()
    return tuple(found) if found else None


def find_with_client_id(token: str) -> tuple[RefreshToken, str] | None:
    """The token's row with the client_id of the client it was issued to, in one query."""
    digest = _digest(token)
    found = None if digest is None else session().execute(_WITH_CLIENT_ID, {"digest": digest}).first()
    return tuple(found) if found else None


def find_by_id(token_id: int) -> RefreshToken | None:
    return session().scalar(_BY_ID, {"id": token_id})


def claim(token_id: int, now: int, successor: str | None) -> bool:
    """Mark the token rotated and keep the (sealed) response that replaced it, in one conditional
    UPDATE; False if another request already did or it was revoked.

    Left uncommitted (like `codes.claim`): it commits together with its successor, so a concurrent
    rotation blocks on the row until then, matches nothing, and finds this one's response."""
    return session().execute(_CLAIM, {"token_id": token_id, "now": now, "successor": successor}).rowcount == 1


def revoke_family(family: str, now: int) -> None:
    """Revoke every refresh token of the family, and the unexpired access tokens issued with them
    (RFC 7009 §2.1 SHOULD). The caller commits."""
    _revoke_until_none_left(RefreshToken.family == family, now)
    _deny_access_tokens(RefreshToken.family == family, now)


def revoke_grants(user_id: int, client_row_id: int, now: int) -> None:
    """Revoke every refresh token the client holds for the user, and the unexpired access tokens
    issued with them: the user withdrew the client's access. The caller commits."""
    condition = (RefreshToken.user_id == user_id) & (RefreshToken.client_id == client_row_id)
    _revoke_until_none_left(condition, now)
    _deny_access_tokens(condition, now)


def _revoke_until_none_left(condition, now: int) -> None:
    """Revoke the unrevoked tokens that match, again until none is left.

    Once is not enough on PostgreSQL (read committed): a rotation that claimed one of these tokens
    first makes this UPDATE wait for it, and then its successor, inserted by a transaction that
    committed after this statement began, is not seen. The next statement sees it. A rotation that
    comes later waits for this transaction instead, and then finds its token revoked."""
    db = session()
    statement = update(RefreshToken).where(condition, RefreshToken.revoked_at.is_(None))
    while db.execute(statement.values(revoked_at=now)).rowcount:
        pass


def revoke_session(sid: str, now: int) -> None:
    """Revoke the refresh tokens bound to a browser session that has ended (and their access
    tokens), and commit: those authenticated in it, except grants with offline_access, which
    outlive it (OIDC Core §11)."""
    _revoke_session_bound(RefreshToken.sid == sid, now)
    session().commit()


def revoke_other_sessions(user_id: int, keep_sid: str | None, now: int) -> None:
    """As `revoke_session`, for every browser session of the user but `keep_sid` (ended by a
    password change). The caller commits."""
    others = RefreshToken.sid.is_not(None) if keep_sid is None else RefreshToken.sid != keep_sid
    _revoke_session_bound((RefreshToken.user_id == user_id) & others, now)


def _revoke_session_bound(condition, now: int) -> None:
    """Again until none is left, for the reason `_revoke_until_none_left` gives."""
    db = session()
    revoked = []
    while True:
        rows = db.scalars(select(RefreshToken).where(condition, RefreshToken.revoked_at.is_(None)))
        bound = [row.id for row in rows if "offline_access" not in row.scope.split()]
        if not bound:
            break
        db.execute(
            update(RefreshToken)
            .where(RefreshToken.id.in_(bound), RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        revoked += bound
    if revoked:
        _deny_access_tokens(RefreshToken.id.in_(revoked), now)


def _deny_access_tokens(condition, now: int) -> None:
    issued = session().execute(
        select(RefreshToken.access_token_jti, RefreshToken.access_token_expires_at)
        .where(condition, RefreshToken.access_token_expires_at > now)
    )
    for jti, expires_at in issued:
        access_tokens.deny(jti, expires_at)
