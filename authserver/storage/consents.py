"""Remembered consent per user and client: the account's "authorized apps"."""

from __future__ import annotations

import time

from sqlalchemy import bindparam, delete, select

from . import refresh_tokens
from .db import session
from .models import Client, Consent, utcnow


# Built once: every authorization request asks it, and building a statement costs more CPU than
# running it.
_consents = Consent.__table__
_GRANTED = select(_consents.c.scope).where(
    _consents.c.user_id == bindparam("user_id"), _consents.c.client_id == bindparam("client_id")
)


def granted_scopes(user_id: int, client_row_id: int) -> set[str]:
    scope = session().scalar(_GRANTED, {"user_id": user_id, "client_id": client_row_id})
    return set(scope.split()) if scope else set()


def remember(user_id: int, client_row_id: int, scopes: set[str]) -> None:
    """Add `scopes` to what the user has granted this client."""
    db = session()
    row = db.scalar(select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_row_id))
    if row is None:
        db.add(Consent(user_id=user_id, client_id=client_row_id, scope=" ".join(sorted(scopes))))
    else:
        row.scope = " ".join(sorted(set(row.scope.split()) | scopes))
        row.updated_at = utcnow()
    db.commit()


def authorized_apps(user_id: int) -> list[tuple[Consent, Client]]:
    """The clients the user has granted scopes to, most recently granted first."""
    rows = session().execute(
        select(Consent, Client).join(Client, Client.id == Consent.client_id)
        .where(Consent.user_id == user_id).order_by(Consent.updated_at.desc(), Consent.id.desc())
    )
    return [(consent, client) for consent, client in rows]


def withdraw(user_id: int, client_id: str) -> bool:
    """Forget the user's consent to the client (by public client_id) and revoke the refresh tokens
    the client holds for the user, with their access tokens; commit. False if there was none."""
    db = session()
    client = db.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        return False
    deleted = db.execute(delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client.id))
    if deleted.rowcount != 1:
        db.rollback()
        return False
    refresh_tokens.revoke_grants(user_id, client.id, int(time.time()))
    db.commit()
    return True
