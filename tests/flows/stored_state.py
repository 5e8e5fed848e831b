"""Everything the server stores, read through an engine of its own, so a test can assert that a
request changed nothing (or exactly what it changed).

The snapshot reads committed rows only, on a fresh connection: it sees what another process
would see, not what the app's session happens to hold.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import create_engine, select

from authserver.storage.models import Base

Snapshot = dict[str, list[tuple]]


def snapshot(database_url: str) -> Snapshot:
    """Every row of every table in the schema, ordered by primary key."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def differences(before: Snapshot, after: Snapshot) -> dict[str, dict[str, list[tuple]]]:
    """Per changed table, the rows that disappeared ("removed") and appeared ("added")."""
    changed = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, []), after.get(name, [])
        removed = [row for row in old if row not in new]
        added = [row for row in new if row not in old]
        if removed or added:
            changed[name] = {"removed": removed, "added": added}
    return changed


@contextmanager
def unchanged(database_url: str):
    """Assert that the block stores nothing: no row added, removed or altered in any table."""
    before = snapshot(database_url)
    yield before
    after = snapshot(database_url)
    assert after == before, f"stored state changed: {differences(before, after)}"
