"""Alembic migrations on SQLite and PostgreSQL: an empty database reaches head, the models match
the migrated schema exactly, and every revision downgrades and upgrades again.

The PostgreSQL case runs whatever AUTHSERVER_TEST_DATABASE says: it fails under CI=true when the
server is unreachable and skips elsewhere (tests/databases.py)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from authserver.storage.migrate import alembic_config, downgrade, upgrade
from authserver.storage.models import Base

from ..databases import create_postgres_database, drop_postgres_database

MODEL_TABLES = {table.name for table in Base.metadata.sorted_tables}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """The URL of a new, empty database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        url = create_postgres_database()
        yield url
        drop_postgres_database(url)


def revisions_base_to_head(url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_differences(url: str) -> list:
    """What autogenerate would put in a new migration: nothing, if models and migrations agree."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_there_is_one_linear_history():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_an_empty_database_upgrades_to_head_and_matches_the_models(empty_database):
    assert tables(empty_database) == set()
    upgrade(empty_database)
    assert current_revision(empty_database) == revisions_base_to_head(empty_database)[-1]
    assert tables(empty_database) == MODEL_TABLES | {"alembic_version"}
    assert schema_differences(empty_database) == []


def test_upgrade_at_head_changes_nothing(empty_database):
    upgrade(empty_database)
    upgrade(empty_database)
    assert current_revision(empty_database) == revisions_base_to_head(empty_database)[-1]
    assert schema_differences(empty_database) == []


def schema(url: str) -> dict:
    """Tables with their columns (name, type, nullability), indexes and foreign keys: enough to
    tell whether a downgrade undid exactly what its upgrade did."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: {
                "columns": sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)),
                "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
                "foreign_keys": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                                       for f in inspector.get_foreign_keys(table)),
            }
            for table in inspector.get_table_names() if table != "alembic_version"
        }
    finally:
        engine.dispose()


def test_every_revision_downgrades_and_upgrades_again(empty_database):
    revisions = revisions_base_to_head(empty_database)

    # Up one revision at a time, remembering the schema each one leaves.
    schemas = {None: schema(empty_database)}
    for revision in revisions:
        upgrade(empty_database, revision)
        schemas[revision] = schema(empty_database)

    # Down one revision at a time, to base: every downgrade() must work and restore exactly the
    # schema of the revision before it.
    for expected in [*reversed(revisions[:-1]), None]:
        downgrade(empty_database, "-1")
        assert current_revision(empty_database) == expected
        assert schema(empty_database) == schemas[expected], f"downgrade to {expected}"
    assert tables(empty_database) <= {"alembic_version"}

    # And up one revision at a time, back to head, matching the models again.
    for revision in revisions:
        upgrade(empty_database, revision)
        assert current_revision(empty_database) == revision
    assert schema_differences(empty_database) == []
