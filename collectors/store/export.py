"""Write the stored events out as JSON Lines, in chain order, each line the canonical JSON the chain hashed.

Ingest hashes each line's canonical JSON in line order, so ingesting a full
export into a fresh store rebuilds the same chain (same head hash, same count)
and the same reports: an export is a copy anyone can verify, and the way to
move a store from one database to another. The lines come from the reader
`verify` uses (`collectors.store.stored_events`), so the two never disagree on
an event's bytes; a full export also re-links the chain as it goes, so a store
altered behind the tool's back cannot pass for an intact copy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from collectors.store.chain import GENESIS, link_hash
from collectors.store.db import StoreError, error_line
from collectors.store.models import EVENT_TABLES
from collectors.store.stored_events import StoredEvent, snapshot, stored_events

_WRITE_EVERY = 2000  # lines joined per write: few calls, bounded memory
_PROGRESS_EVERY = 1000

Progress = Callable[[int, int], None]  # (seqs covered, seqs to cover)


class UnreadableEvent(Exception):
    """A stored row no longer reads back as an event (hand-edited): it cannot be exported faithfully."""


@dataclass(frozen=True)
class ExportResult:
    """What `export_events` wrote, and the chain hash a user can hold the copy (or the store) to."""

    events: int
    last_seq: int  # seq of the last event written; 0 when none was
    last_hash: str  # its stored chain hash (GENESIS when none): `verify --expect-head` accepts it
    head_seq: int  # the store's chain head when the export read it
    head_hash: str
    partial: bool  # some types or seqs were left out: re-ingested, it builds another chain
    chain_break: str | None = None  # full export: where its lines stop reproducing the stored chain
    # Outcomes from before migration 0007 whose content another outcome repeats (1 vs 1.0): ingest
    # takes them for duplicates, so a store loaded from the export lacks them (another head).
    old_key_outcomes: int = 0


def export_events(engine: Engine, write: Callable[[bytes], Any], *, types: Collection[str] | None = None,
                  after_seq: int = 0, progress: Progress | None = None) -> ExportResult:
    """Pass every stored event of `types` (default all) with seq > `after_seq` to `write`, as JSON Lines.

    Reads one snapshot, so a concurrent ingest is not half seen. Raises StoreError when the store
    cannot be read and UnreadableEvent when a row no longer reads back as an event.
    """
    if types is not None and set(types) - set(EVENT_TABLES):
        raise ValueError(f"unknown event types: {sorted(set(types) - set(EVENT_TABLES))}")
    partial = after_seq > 0 or (types is not None and set(types) != set(EVENT_TABLES))
    try:
        with snapshot(engine) as conn:
            head = conn.execute(text("SELECT seq, hash FROM chain_head WHERE id = 1")).one_or_none()
            head_seq, head_hash = (int(head.seq), str(head.hash)) if head is not None else (0, GENESIS)
            writer = _Writer(write, partial, head_seq, after_seq, progress)
            writer.run(stored_events(conn, types, after_seq))
    except SQLAlchemyError as exc:
        raise StoreError(f"reading the store failed: {error_line(exc)}") from None
    chain_break = writer.chain_break
    if not partial and chain_break is None:
        if head is None:
            chain_break = "the chain head row is missing"
        elif (writer.last_seq, writer.chain) != (head_seq, head_hash):
            chain_break = (f"the chain head says seq {head_seq}, hash {head_hash}, but the exported "
                           f"events end at seq {writer.last_seq} with hash {writer.chain}")
    return ExportResult(writer.count, writer.last_seq, writer.last_hash, head_seq, head_hash, partial,
                        chain_break, writer.old_keys)


class _Writer:
    """Writes the lines in chunks and, for a full export, re-links the chain over them."""

    def __init__(self, write: Callable[[bytes], Any], partial: bool, head_seq: int, after_seq: int,
                 progress: Progress | None) -> None:
        self.write = write
        self.link = not partial
        self.span = max(head_seq - after_seq, 0)
        self.after_seq = after_seq
        self.progress = progress
        self.count = 0
        self.last_seq = 0
        self.last_hash = GENESIS
        self.chain = GENESIS  # the hash the exported lines chain to, as ingest will recompute it
        self.chain_break: str | None = None
        self.old_keys = 0

    def run(self, events: Iterable[StoredEvent]) -> None:
        lines: list[bytes] = []
        for event in events:
            if event.canonical is None:
                raise UnreadableEvent(f"{event.label} no longer reads back as an event ({event.flaw})")
            lines.append(event.canonical)
            lines.append(b"\n")
            if self.link and self.chain_break is None:
                self.chain = link_hash(self.chain, event.canonical)
                if self.chain != event.hash:
                    self.chain_break = (f"at {event.label}: its stored hash does not follow "
                                        "from the events before it")
            self.count += 1
            self.old_keys += event.old_key
            self.last_seq, self.last_hash = event.seq, event.hash
            if self.count % _WRITE_EVERY == 0:
                self.write(b"".join(lines))
                lines.clear()
            if self.progress is not None and self.count % _PROGRESS_EVERY == 0:
                self._report()
        if lines:
            self.write(b"".join(lines))
        if self.progress is not None:
            self._report()

    def _report(self) -> None:
        assert self.progress is not None
        done = max(self.last_seq - self.after_seq, 0)
        self.progress(done, max(done, self.span))
