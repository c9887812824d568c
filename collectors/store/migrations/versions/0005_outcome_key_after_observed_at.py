"""Outcomes are unique by (observed_at, key) instead of by key alone

An outcome's key is the SHA-256 digest of its content, so a unique index on the
key alone took every insert at a random place: at 1M events, inserting an
outcome cost twice as much as inserting a decision, and dirtied an index page
of its own. With observed_at first, the index grows at its end, as outcomes
arrive roughly in observed_at order. Uniqueness is the same: the key digests
the whole content, observed_at included, so two outcomes with one key have
one observed_at.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

NEW = "uq_outcomes_observed_at_key"
# Names the unnamed UNIQUE (key) of 0001 in SQLite's batch rebuild, so it can be dropped.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_on(columns: list[str]) -> str | None:
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("outcomes"):
        if constraint["column_names"] == columns:
            return constraint["name"]
    return None


def _swap(drop: list[str], drop_name: str, create: list[str], create_name: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("outcomes", recreate="always", naming_convention=_NAMING) as batch:
            batch.drop_constraint(drop_name, type_="unique")
            batch.create_unique_constraint(create_name, create)
        return
    op.drop_constraint(_unique_on(drop) or drop_name, "outcomes", type_="unique")
    op.create_unique_constraint(create_name, "outcomes", create)


def upgrade() -> None:
    _swap(["key"], "uq_outcomes_key", ["observed_at", "key"], NEW)


def downgrade() -> None:
    # 0001's constraint had no name; PostgreSQL called it outcomes_key_key.
    name = "outcomes_key_key" if op.get_bind().dialect.name == "postgresql" else "uq_outcomes_key"
    _swap(["observed_at", "key"], NEW, ["key"], name)
