"""All decision-support figures of a window in one JSON-ready object, for `report --advice`.

Each part is computed by its own module from the same per-decision frame
definition; this module only names the parts and calls them, so the report, the
dashboard and the part's own command (`hitl-tower thresholds`, `triage`, ...)
always show the same numbers.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

PARTS: dict[str, tuple[str, str]] = {
    "thresholds": ("thresholds", "threshold_advice"),
    "autonomy": ("autonomy", "autonomy_ladder"),
    "changes": ("changes", "compare_changes"),
    "quality": ("quality", "quality_report"),
    "fairness": ("fairness", "fairness_report"),
    "triage": ("triage", "triage"),
}
"""Report key -> (module in collectors.advice, function(engine, config, start_us, end_us, filters))."""


def compute_advice(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                   parts: Sequence[str] | None = None,
                   filters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{part: figures} for the chosen parts (all by default), in PARTS order.

    Raises ValueError for an unknown part name.
    """
    chosen = list(PARTS) if parts is None else list(parts)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parts_word = "part" if len(unknown) == 1 else "parts"
        raise ValueError(f"unknown advice {parts_word} {', '.join(unknown)} (choose from {', '.join(PARTS)})")
    from collectors.advice.frame import shared_frames

    result: dict[str, Any] = {}
    with shared_frames():  # the parts read the same window: one read of the store, a copy each
        for name, (module, function) in PARTS.items():
            if name in chosen:
                fn = getattr(importlib.import_module(f"collectors.advice.{module}"), function)
                result[name] = fn(engine, config, start_us, end_us, dict(filters or {}))
    return result
