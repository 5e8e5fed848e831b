"""Remembered consent per user and client."""

from __future__ import annotations

from sqlalchemy import select

from .db import session
from .models import Consent, utcnow


def granted_scopes(user_id: int, client_row_id: int) -> set[str]:
    row = session().scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_row_id)
    )
    return set(row.scope.split()) if row else set()


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
