"""Recompute the hash chain from the stored rows and name the first event tampered with.

The events are read back in seq order by `collectors.store.stored_events` (the
reader `export` shares), each as the canonical JSON it was hashed from, and
re-hashed; memory stays flat however large the store. The first break is
classified from the evidence around it: a row whose successor (or the chain
head) still chains on its stored hash had its content altered; a gap in seq,
or a head beyond the last row, means events were deleted; a second row
claiming a seq, or a row past the head, was inserted. Everything is read in one
snapshot so a concurrent ingest never looks like tampering.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from collectors.store.chain import GENESIS, link_hash
from collectors.store.db import StoreError, error_line
from collectors.store.derive import check_states
from collectors.store.rollup import check_rollups
from collectors.store.stored_events import StoredEvent, snapshot, stored_events

_PROGRESS_EVERY = 1000

Progress = Callable[[int, int], None]  # (events done, events expected)


@dataclass(frozen=True)
class VerifyResult:
    """What `verify_chain` found: the count verified and the first problem, if any."""

    events: int  # events that chained, up to the first problem
    head_seq: int
    head_hash: str
    problem: str | None = None
    detail: str | None = None  # a second line qualifying the problem
    expected_head_seq: int | None = None  # where --expect-head was found in the chain
    decisions_checked: int | None = None  # set by the deep check
    state_mismatches: tuple[str, ...] = ()
    state_mismatch_count: int = 0
    rollups_checked: bool = False  # set by the deep check
    rollup_rows_checked: int | None = None  # None: the rollups are marked invalid (reports read the events)
    rollup_mismatches: tuple[str, ...] = ()
    rollup_mismatch_count: int = 0

    @property
    def ok(self) -> bool:
        """True when the chain, the head and (if checked) the derived state and rollups are intact."""
        return self.problem is None and self.state_mismatch_count == 0 and self.rollup_mismatch_count == 0


def verify_chain(engine: Engine, *, expect_head: str | None = None, deep: bool = False,
                 progress: Progress | None = None) -> VerifyResult:
    """Recompute the chain over every stored event and report the first event tampered with.

    `expect_head` is a head recorded earlier (e.g. in a ticket): it must still be
    in the chain, else history before it was rewritten. `deep` also re-derives
    decision_state from the events and lists decisions whose stored state differs,
    and recomputes the rollups (which reports read) and lists rows that differ.
    Raises StoreError when the store cannot be read.
    """
    try:
        return _verify(engine, expect_head, deep, progress)
    except SQLAlchemyError as exc:
        raise StoreError(f"reading the store failed: {error_line(exc)}") from None


def _verify(engine: Engine, expect_head: str | None, deep: bool, progress: Progress | None) -> VerifyResult:
    with snapshot(engine) as conn:
        head = conn.execute(text("SELECT seq, hash FROM chain_head WHERE id = 1")).one_or_none()
        if head is None:
            return VerifyResult(0, 0, "", "the chain head is missing (its row was deleted)")
        walk = _Walk(int(head.seq), str(head.hash), expect_head, progress)
        problem = walk.run(stored_events(conn))
        result = VerifyResult(walk.count, walk.head_seq, walk.head_hash, problem, walk.detail,
                              walk.expect_found)
        if problem is None and expect_head is not None and walk.expect_found is None:
            result = _replace(result, problem=(
                f"the expected head {expect_head} is not in the chain (head is {walk.head_hash} "
                f"at seq {walk.head_seq}): the log was rewritten or truncated since it was recorded"))
        if deep:
            checked, shown, total = check_states(conn)
            rows, rollup_shown, rollup_total = check_rollups(conn)
            result = _replace(result, decisions_checked=checked, state_mismatches=tuple(shown),
                              state_mismatch_count=total, rollups_checked=True, rollup_rows_checked=rows,
                              rollup_mismatches=tuple(rollup_shown), rollup_mismatch_count=rollup_total)
        return result


def _replace(result: VerifyResult, **changes: Any) -> VerifyResult:
    return VerifyResult(**{**result.__dict__, **changes})


class _Walk:
    """Walk the merged rows once, keeping only the previous event and one group of lookahead."""

    def __init__(self, head_seq: int, head_hash: str, expect: str | None, progress: Progress | None):
        self.head_seq, self.head_hash = head_seq, head_hash
        self.expect, self.progress = expect, progress
        self.prev: StoredEvent | None = None
        self.prev_hash = GENESIS
        self.count = 0
        self.detail: str | None = None
        self.head_row_hash: str | None = GENESIS if head_seq == 0 else None
        self.first_past_head: StoredEvent | None = None
        self.expect_found: int | None = 0 if expect == GENESIS else None

    def run(self, events: Iterable[StoredEvent]) -> str | None:
        """The first problem, or None when every row chains and the head names the last one."""
        groups = (list(g) for _seq, g in itertools.groupby(events, key=lambda e: e.seq))
        group = next(groups, None)
        while group is not None:
            following = next(groups, None)
            problem = self._step(group, following)
            if problem is not None:
                return problem
            group = following
        if self.progress is not None:
            self.progress(self.count, max(self.count, self.head_seq))
        return self._finish()

    def _step(self, group: list[StoredEvent], following: list[StoredEvent] | None) -> str | None:
        seq, first = group[0].seq, group[0]
        expected = self.count + 1
        if seq < 1:
            return f"{first.label} was inserted behind the tool's back: seqs start at 1"
        if seq > expected:
            if expected > self.head_seq:  # past the head: an insertion, unless the head is wrong
                return self._past_head(first) if self.head_row_hash == self.head_hash else self._finish()
            where = self.prev.label if self.prev else "its start"
            last = min(seq - 1, self.head_seq)
            return f"{_seqs(expected, last)} deleted: the chain jumps from {where} to {first.label}"
        if len(group) > 1:
            return self._duplicate(group)
        problem = self._check(first, following)
        if problem is not None:
            return problem
        self._advance(first)
        return None

    def _advance(self, event: StoredEvent) -> None:
        self.prev, self.prev_hash = event, event.hash
        self.count += 1
        if event.seq == self.head_seq:
            self.head_row_hash = event.hash
        if event.seq > self.head_seq and self.first_past_head is None:
            self.first_past_head = event
        if self.expect is not None and event.hash == self.expect:
            self.expect_found = event.seq
        if self.progress is not None and self.count % _PROGRESS_EVERY == 0:
            self.progress(self.count, max(self.count, self.head_seq))

    def _check(self, event: StoredEvent, following: list[StoredEvent] | None) -> str | None:
        if event.canonical is None:
            return f"{event.label} was altered: its content can no longer be read ({event.flaw})"
        computed = link_hash(self.prev_hash, event.canonical)
        if event.hash == computed:
            return f"{event.label} was altered: {event.flaw}" if event.flaw else None
        if event.seq > self.head_seq and self.head_row_hash == self.head_hash:
            return self._past_head(event)
        chained_on = self._chained_on(event, following)
        if chained_on == event.hash:
            if self.prev is not None:
                self.detail = (f"(or the event before it, {self.prev.label}, was rewritten "
                               "together with its hash)")
            return f"{event.label} was altered: stored hash {event.hash} does not match its content"
        if chained_on == computed:
            return f"{event.label} was altered: its stored hash was changed to {event.hash}"
        return (f"{event.label} was altered or inserted behind the tool's back: its stored hash "
                f"{event.hash} neither matches its content nor is chained on by the next event")

    def _chained_on(self, event: StoredEvent, following: list[StoredEvent] | None) -> str | None:
        """The hash of `event` that its successor (or the chain head) builds on, if either does."""
        candidates = (event.hash, link_hash(self.prev_hash, event.canonical or b""))
        if following is None:
            return self.head_hash if event.seq == self.head_seq and self.head_hash in candidates else None
        succ = following[0]
        if len(following) > 1 or succ.seq != event.seq + 1 or succ.canonical is None:
            return None
        return next((h for h in candidates if succ.hash == link_hash(h, succ.canonical)), None)

    def _duplicate(self, group: list[StoredEvent]) -> str:
        chained = [e for e in group
                   if e.canonical is not None and e.hash == link_hash(self.prev_hash, e.canonical)]
        if len(chained) == 1:
            forged = next(e for e in group if e is not chained[0])
            return (f"{forged.label} was inserted behind the tool's back: "
                    f"{chained[0].name} already holds seq {forged.seq} in the chain")
        names = " and ".join(e.name for e in group)
        return f"seq {group[0].seq} is claimed by both {names}: one was inserted behind the tool's back"

    def _past_head(self, event: StoredEvent) -> str:
        return (f"{event.label} was inserted behind the tool's back: "
                f"it lies past the chain head (seq {self.head_seq})")

    def _finish(self) -> str | None:
        last_seq = self.prev.seq if self.prev else 0
        last = self.prev.label if self.prev else "the start of the chain"
        if last_seq == self.head_seq:
            if self.prev_hash == self.head_hash:
                return None
            return (f"the chain head was tampered: it names hash {self.head_hash}, "
                    f"but the chain ends at {last} with hash {self.prev_hash}")
        if self.prev_hash == self.head_hash:
            return (f"the chain head was tampered: it says seq {self.head_seq}, "
                    f"but its hash is that of {last}, where the chain ends")
        if last_seq < self.head_seq:
            return (f"{_seqs(last_seq + 1, self.head_seq)} deleted: the chain ends at {last}, "
                    f"but the chain head says seq {self.head_seq}")
        if self.head_row_hash == self.head_hash and self.first_past_head is not None:
            return self._past_head(self.first_past_head)
        return (f"the chain head was tampered: its hash {self.head_hash} is not that of "
                f"the event at its seq {self.head_seq}")


def _seqs(first: int, last: int) -> str:
    return f"the event at seq {first} was" if first == last else f"the events at seq {first}..{last} were"
