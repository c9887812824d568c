"""SQLite: chain positions become the event tables' rowid (INTEGER PRIMARY KEY)

On SQLite only an `INTEGER PRIMARY KEY` column is the rowid itself; the
`BIGINT` keys of 0001 made SQLite keep a separate unique index on `seq`
beside each table, an extra b-tree insert for every event and decision
state. The tables are rebuilt with the same columns, rows and indexes.
PostgreSQL is unchanged (its BIGINT keys are already the index).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_KEYS = (("decisions", "seq"), ("reviews", "seq"), ("outcomes", "seq"), ("changes", "seq"),
         ("decision_state", "decision_seq"))


def _retype(to: sa.types.TypeEngine, from_: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # The partial index is dropped and made again: batch mode does not carry its WHERE clause.
    op.drop_index('ix_decision_state_pending', table_name='decision_state')
    for table, column in _KEYS:
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.alter_column(column, type_=to, existing_type=from_, existing_nullable=False)
    op.create_index('ix_decision_state_pending', 'decision_state', ['decision_seq'], unique=False,
                    sqlite_where=sa.text("final_verdict = 'pending'"))


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())
