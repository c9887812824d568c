"""Outcome keys digest numbers in one form: 1 and 1.0 in an extra field give one key

An outcome's key (its idempotency key) was the SHA-256 of its canonical JSON,
so two outcomes that differ only by `1` against `1.0` (or `-0.0` against `0`)
in an extra field, the same content by the contract, got two keys and were
both stored. The key now digests the canonical JSON with every number that a
double holds exactly written as that double (`collectors.validate.outcome_key`).
Only outcomes with extra fields can change: the contract's own numbers were
floats already.

Stored outcomes with extras get their key recomputed. Two stored outcomes that
now share a key (the same content, stored twice before this fix) cannot both
hold it under the unique index: the one whose old key it is already keeps it
(it was written 1.0), else the first (lowest seq) takes it; the other keeps
its old key, which `verify` still accepts (both stay in the chain; nothing is
deleted from the log). Downgrade recomputes the old keys.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""
import hashlib
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _digest_form(value: Any) -> Any:
    # collectors.validate._digest_form when this was written.
    cls = value.__class__
    if cls is int:
        try:
            number = float(value)
        except OverflowError:
            return value
        return number + 0.0 if number == value else value
    if cls is float:
        return value + 0.0
    if cls is dict:
        return {k: _digest_form(v) for k, v in value.items()}
    if cls is list:
        return [_digest_form(v) for v in value]
    return value


def _payload(row: Any) -> dict[str, Any]:
    """The canonical payload of an outcome row (collectors.store.rows.row_to_payload)."""
    from collectors.validate import format_timestamp

    payload: dict[str, Any] = {"type": "outcome", "decision_id": row.decision_id,
                               "observed_at": format_timestamp(int(row.observed_at)),
                               "agent_correct": bool(row.agent_correct), "final_correct": bool(row.final_correct)}
    for name in ("error_cost", "agent_error_cost"):
        if getattr(row, name) is not None:
            payload[name] = float(getattr(row, name))
    extra = row.extra
    payload.update(orjson.loads(extra) if isinstance(extra, (str, bytes)) else extra)
    return payload


def _rekey(new_form: bool) -> None:
    conn = op.get_bind()
    extra = "CAST(extra AS TEXT)" if conn.dialect.name == "postgresql" else "extra"
    rows = conn.execute(sa.text(
        f"SELECT seq, key, decision_id, observed_at, agent_correct, final_correct, error_cost, "
        f"agent_error_cost, {extra} AS extra FROM outcomes WHERE extra IS NOT NULL ORDER BY seq")).all()
    taken = {(row.observed_at, row.key) for row in rows}
    updates = []
    for row in rows:
        payload = _payload(row)
        key = hashlib.sha256(orjson.dumps(_digest_form(payload) if new_form else payload,
                                          option=orjson.OPT_SORT_KEYS)).hexdigest()
        if key == row.key or (row.observed_at, key) in taken:
            continue  # unchanged, or an earlier outcome of the same content holds the key: keep the old one
        taken.add((row.observed_at, key))
        updates.append({"seq": row.seq, "key": key})
    if updates:
        conn.execute(sa.text("UPDATE outcomes SET key = :key WHERE seq = :seq"), updates)


def upgrade() -> None:
    _rekey(new_form=True)


def downgrade() -> None:
    _rekey(new_form=False)
