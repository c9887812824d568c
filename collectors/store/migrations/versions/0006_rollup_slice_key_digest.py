"""rollup_slices.key becomes the SHA-256 digest of the slice's JSON array

The key was the JSON array of the six slice values itself. PostgreSQL cannot
put a value of more than ~2700 bytes in a b-tree index, so a decision with a
long model_version, agent_id or queue failed the whole batch on the unique
index of this column. The key is now the SHA-256 (hex) of that array
(`collectors.store.rollup.slice_key`): 64 characters whatever the values.
Slice ids, and so the rollup rows naming them, are unchanged.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
import hashlib

import orjson
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The slice fields, in the key's order (collectors.store.rollup.SLICE_FIELDS when this was written).
_FIELDS = ("risk_class", "queue", "model_version", "agent_id", "action_type", "route")


def _array(values: tuple[object, ...]) -> str:
    return orjson.dumps(list(values)).decode()  # as `slice_ids` wrote it before


def _rewrite(key_of) -> None:  # type: ignore[no-untyped-def]
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, {', '.join(_FIELDS)} FROM rollup_slices")).all()
    if not rows:
        return
    # Two passes through a key no row holds, so no rewrite collides with an old key on the unique index.
    update = sa.text("UPDATE rollup_slices SET key = :key WHERE id = :id")
    conn.execute(update, [{"id": row[0], "key": f"migrating:{row[0]}"} for row in rows])
    conn.execute(update, [{"id": row[0], "key": key_of(tuple(row[1:]))} for row in rows])


def upgrade() -> None:
    _rewrite(lambda values: hashlib.sha256(_array(values).encode()).hexdigest())


def downgrade() -> None:
    _rewrite(_array)
