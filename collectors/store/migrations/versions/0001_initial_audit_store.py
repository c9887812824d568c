"""initial audit store

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

from collectors.store.types import JsonValue

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    chain_head = op.create_table('chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # The chain starts empty: seq 0 and the genesis hash. Writers lock this row.
    op.bulk_insert(chain_head, [{"id": 1, "seq": 0, "hash": "0" * 64}])
    op.create_table('changes',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('changed_at', sa.BigInteger(), nullable=False),
    sa.Column('actor', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('scope', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('before', JsonValue(), nullable=True),
    sa.Column('after', JsonValue(), nullable=True),
    sa.Column('reason', sa.String(), nullable=True),
    sa.Column('extra', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_changes_changed_at'), ['changed_at'], unique=False)

    op.create_table('decision_state',
    sa.Column('decision_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('final_verdict', sa.String(), nullable=False),
    sa.Column('final_decided_at', sa.BigInteger(), nullable=True),
    sa.Column('final_review_id', sa.String(), nullable=True),
    sa.Column('outcome_seq', sa.BigInteger(), nullable=True),
    sa.Column('outcome_observed_at', sa.BigInteger(), nullable=True),
    sa.Column('agent_correct', sa.Boolean(), nullable=True),
    sa.Column('final_correct', sa.Boolean(), nullable=True),
    sa.Column('error_cost', sa.Float(), nullable=True),
    sa.Column('agent_error_cost', sa.Float(), nullable=True),
    sa.Column('review_cost_sum', sa.Float(), nullable=False),
    sa.Column('review_seconds_sum', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('decision_seq')
    )
    op.create_table('decisions',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('proposed_at', sa.BigInteger(), nullable=False),
    sa.Column('agent_id', sa.String(), nullable=False),
    sa.Column('model_version', sa.String(), nullable=False),
    sa.Column('policy_version', sa.String(), nullable=True),
    sa.Column('risk_class', sa.String(), nullable=False),
    sa.Column('queue', sa.String(), nullable=True),
    sa.Column('action_type', sa.String(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('conf_bin', sa.SmallInteger(), nullable=False),
    sa.Column('route', sa.String(), nullable=False),
    sa.Column('model_cost', sa.Float(), nullable=True),
    sa.Column('segment', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('policy_checks', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('extra', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_proposed_at'), ['proposed_at'], unique=False)

    op.create_table('outcomes',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('decision_id', sa.String(), nullable=False),
    sa.Column('observed_at', sa.BigInteger(), nullable=False),
    sa.Column('agent_correct', sa.Boolean(), nullable=False),
    sa.Column('final_correct', sa.Boolean(), nullable=False),
    sa.Column('error_cost', sa.Float(), nullable=True),
    sa.Column('agent_error_cost', sa.Float(), nullable=True),
    sa.Column('extra', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outcomes_decision_id'), ['decision_id'], unique=False)

    op.create_table('reviews',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('decision_id', sa.String(), nullable=False),
    sa.Column('reviewer_id', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('enqueued_at', sa.BigInteger(), nullable=False),
    sa.Column('claimed_at', sa.BigInteger(), nullable=True),
    sa.Column('decided_at', sa.BigInteger(), nullable=False),
    sa.Column('verdict', sa.String(), nullable=False),
    sa.Column('reason_code', sa.String(), nullable=True),
    sa.Column('handle_seconds', sa.Float(), nullable=True),
    sa.Column('cost', sa.Float(), nullable=True),
    sa.Column('audit_probability', sa.Float(), nullable=True),
    sa.Column('extra', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('ix_reviews_decided_at', ['decided_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviews_decision_id'), ['decision_id'], unique=False)




def downgrade() -> None:
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviews_decision_id'))
        batch_op.drop_index('ix_reviews_decided_at')

    op.drop_table('reviews')
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outcomes_decision_id'))

    op.drop_table('outcomes')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_proposed_at'))

    op.drop_table('decisions')
    op.drop_table('decision_state')
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_changes_changed_at'))

    op.drop_table('changes')
    op.drop_table('chain_head')

