"""Alembic environment: the URL comes from `authserver db upgrade` (or AUTHSERVER_* settings)."""

from alembic import context
from sqlalchemy import create_engine

from authserver.settings import load_settings
from authserver.storage.models import Base

config = context.config


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = config.attributes.get("url") or load_settings().database_url
    engine = create_engine(url)
    with engine.connect() as conn:
        run_migrations(conn)
    engine.dispose()
