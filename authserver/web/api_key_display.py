"""How API keys read on the dashboard: prefix…last four (the key itself is never shown again),
times in UTC for people, and how a rotation's two keys relate while they overlap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..oauth.scopes import SCOPES
from ..storage.models import ApiKey

NEVER = "never"


@dataclass(frozen=True)
class KeyRow:
    id: str
    name: str
    shown_as: str
    scopes: list[tuple[str, str]]  # (scope, what it allows)
    created: str
    last_used: str
    expires: str
    rotated_until: str | None  # the replaced key of a rotation still in its grace period: until when
    replaces: str | None  # the key that one replaced: how it is shown


def shown_as(row: ApiKey) -> str:
    return f"{row.display_prefix}…{row.last_four}"


def utc(epoch: int | None) -> str:
    """"14 Mar 2026, 09:05 UTC", or "never" for no time."""
    if epoch is None:
        return NEVER
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%-d %b %Y, %H:%M UTC")


def key_rows(rows: list[ApiKey]) -> list[KeyRow]:
    """The listed keys, in their order; a key whose successor is listed too is the rotated one."""
    replaced = {row.rotated_from.id for row in rows if row.rotated_from is not None}
    return [
        KeyRow(
            id=row.public_id,
            name=row.name,
            shown_as=shown_as(row),
            scopes=[(scope, SCOPES.get(scope, scope)) for scope in row.scopes],
            created=utc(row.created_at),
            last_used=utc(row.last_used_at),
            expires=utc(row.expires_at),
            rotated_until=utc(row.expires_at) if row.id in replaced else None,
            replaces=shown_as(row.rotated_from) if row.rotated_from is not None else None,
        )
        for row in rows
    ]
