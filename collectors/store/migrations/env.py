"""Alembic environment: runs against the engine handed over by collectors.store.db.

Migrations run under the database's write lock, taken before Alembic reads the schema's revision:
when several processes open a new store at once (producers starting together, parallel loads), one
migrates and the others wait, then find the schema at head and do nothing, instead of creating the
same tables twice and failing.
"""

from alembic import context

from collectors.store.models import Base

# Any constant: the key of the PostgreSQL advisory lock that serialises migrations of a database.
_MIGRATION_LOCK = 7_261_735_008

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "sqlite":
        # The driver starts no transaction before DDL or SELECT; this one takes the write lock now
        # (waiting up to the connection's busy_timeout) and holds it until the migrations commit.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
