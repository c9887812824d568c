"""kpi rollups: per-hour, per-slice additive statistics and agreement coincidences

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

A store that already holds decisions gets empty rollups marked invalid: reports
fall back to the cold path until `hitl-tower rebuild-rollups` fills them.
"""
import sqlalchemy as sa
from alembic import op

from collectors.store.models import ROLLUP_FLOAT_COLUMNS, ROLLUP_INT_COLUMNS

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rollup_slices',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('risk_class', sa.String(), nullable=False),
    sa.Column('queue', sa.String(), nullable=True),
    sa.Column('model_version', sa.String(), nullable=False),
    sa.Column('agent_id', sa.String(), nullable=False),
    sa.Column('action_type', sa.String(), nullable=False),
    sa.Column('route', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('kpi_rollup',
    sa.Column('hour', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('slice_id', sa.Integer(), autoincrement=False, nullable=False),
    *[sa.Column(name, sa.BigInteger(), nullable=False) for name in ROLLUP_INT_COLUMNS],
    *[sa.Column(name, sa.Float(), nullable=False) for name in ROLLUP_FLOAT_COLUMNS],
    sa.PrimaryKeyConstraint('hour', 'slice_id')
    )
    op.create_table('agreement_rollup',
    sa.Column('hour', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('slice_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('unit_size', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('matches', sa.BigInteger(), nullable=False),
    sa.Column('approve', sa.BigInteger(), nullable=False),
    sa.Column('edit', sa.BigInteger(), nullable=False),
    sa.Column('reject', sa.BigInteger(), nullable=False),
    sa.Column('escalate', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'slice_id', 'unit_size')
    )
    meta = op.create_table('rollup_meta',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('valid', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    empty = op.get_bind().execute(sa.text("SELECT NOT EXISTS (SELECT 1 FROM decisions)")).scalar()
    op.bulk_insert(meta, [{"id": 1, "valid": bool(empty)}])
    with op.batch_alter_table('decision_state', schema=None) as batch_op:
        batch_op.create_index('ix_decision_state_pending', ['decision_seq'], unique=False,
                              sqlite_where=sa.text("final_verdict = 'pending'"),
                              postgresql_where=sa.text("final_verdict = 'pending'"))


def downgrade() -> None:
    with op.batch_alter_table('decision_state', schema=None) as batch_op:
        batch_op.drop_index('ix_decision_state_pending')
    op.drop_table('rollup_meta')
    op.drop_table('agreement_rollup')
    op.drop_table('kpi_rollup')
    op.drop_table('rollup_slices')
