"""alert history: episodes of the built-in alert engine (pending, firing, resolved)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_history',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('alertname', sa.String(), nullable=False),
    sa.Column('severity', sa.String(), nullable=False),
    sa.Column('labels', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('annotations', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('active_at', sa.BigInteger(), nullable=False),
    sa.Column('starts_at', sa.BigInteger(), nullable=True),
    sa.Column('ends_at', sa.BigInteger(), nullable=True),
    sa.Column('fired_value', sa.Float(), nullable=True),
    sa.Column('resolved_value', sa.Float(), nullable=True),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('worst_value', sa.Float(), nullable=True),
    sa.Column('evaluated_at', sa.BigInteger(), nullable=False),
    sa.Column('notified_state', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_history_state', 'alert_history', ['state'], unique=False)
    op.create_index('ix_alert_history_fingerprint', 'alert_history', ['fingerprint'], unique=False)
    op.create_index('ix_alert_history_starts_at', 'alert_history', ['starts_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alert_history_starts_at', table_name='alert_history')
    op.drop_index('ix_alert_history_fingerprint', table_name='alert_history')
    op.drop_index('ix_alert_history_state', table_name='alert_history')
    op.drop_table('alert_history')
