"""Stream JSON Lines files into the audit store in bounded memory (contract sections 1, 2b and 5).

Each file is read in binary blocks and split into physical lines; a line
longer than `max_line_bytes` is skipped as it streams by (never buffered
whole) and rejected with its length. Valid lines go to the writer in batches,
one transaction each, so a crash keeps every committed batch and a rerun of
the same input completes the load with duplicates counted, not stored twice.

Lines are validated and prepared chunk by chunk (`collectors.parse_pool`),
in worker processes when asked (`workers`, the CLI's default), while the
writer stores earlier batches; results come back in file order.

Reviews and outcomes whose decision is not known yet are held back and
written together with the batch that brings their decision, so forward
references anywhere in the input work; those still unknown at the end are
rejected as `unknown decision_id X`. (Memory is bounded by the batch size plus
those waiting events, which are few unless the input is mostly orphans.)
"""

from __future__ import annotations

import gc
import gzip
import os
import stat
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors.parse_pool import CHUNK_LINES, ChunkParser, Parsed, window_for
from collectors.store.db import StoreError, error_line
from collectors.store.prepared import Prepared
from collectors.store.rollup import rebuild_rollups, rollups_valid
from collectors.store.writer import BatchResult, write_prepared

DEFAULT_BATCH_SIZE = 10_000
DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB
STDIN = "-"
KEEP, REBUILD, AUTO = "keep", "rebuild", "auto"
ROLLUP_MODES = (AUTO, KEEP, REBUILD)
# Measured on the 1M-event bench file (docs/performance.md): on PostgreSQL, skipping the upkeep saved
# ~14 s of a 44 s load and the rebuild took 3.9 s, so it pays once the input holds ~40% of the
# store's events (AUTO asks for half). On SQLite it saved ~4 s and the rebuild took 3.6-4.1 s: no
# gain, so AUTO keeps them there. Only big inputs are worth the raw-table reads of reports meanwhile.
REBUILD_MIN_BYTES = 32 << 20
BYTES_PER_EVENT = 320  # the bench file's mean line
_BLOCK = 1 << 20  # bytes read at a time


@dataclass(frozen=True)
class Reject:
    """One rejected line: where it is, why, and its bytes (None when too long to keep)."""

    source: str
    line: int
    reason: str
    raw: bytes | None

    def location(self) -> str:
        """`FILE:LINE: reason`, the form printed for operators."""
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class IngestSummary:
    """Counts of one ingest run, and the files that could not be read or loaded."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    blank: int = 0
    lines: int = 0
    files: int = 0
    errors: list[str] = field(default_factory=list)
    rollups_rebuilt: float | None = None  # seconds, when the load ended by rebuilding the rollups
    head: tuple[int, str] | None = None  # the chain's head at the end: (seq, hash), for verify --expect-head

    @property
    def exit_code(self) -> int:
        """2 when a file could not be read or the store failed, 1 when lines were rejected, else 0."""
        if self.errors:
            return 2
        return 1 if self.rejected else 0


class Progress(Protocol):
    """What the loader reports as it goes (the CLI draws it as a progress bar)."""

    def start_file(self, name: str, total_bytes: int | None) -> None:
        """A file starts; its size when known."""

    def advance(self, bytes_read: int, summary: IngestSummary) -> None:
        """After each batch: bytes read of the current file so far, and the running counts."""

    def note(self, message: str) -> None:
        """A step after the files (e.g. the rollups' rebuild), which may take a while."""


# (source, line number, raw bytes) of a line on its way to the writer.
Ref = tuple[str, int, bytes]
# What the writer is handed with each event: its number in the load (the loader finds the line's
# source, line number and bytes when it needs them: a reject), or the Ref itself.
Handle = int | Ref


@dataclass(frozen=True)
class _Chunk:
    """Lines of a chunk whose events are in the batch: how to name an event by its number."""

    first: int  # number of its first line in the load (0-based, over every stream so far)
    name: str
    first_line: int  # its first line's number in its stream (from 1)
    lines: Sequence[bytes | int]

    def ref(self, number: int) -> Ref:
        index = number - self.first
        return self.name, self.first_line + index, self.lines[index]  # type: ignore[return-value]


class Readable(Protocol):
    """What LineReader reads from: a file opened in binary mode, stdin's buffer, a GzipFile."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to n bytes; b"" at the end."""


class LineReader:
    """The physical lines of a binary stream, without their `\\n`, read in bounded memory.

    A line longer than `max_line_bytes` is yielded as an int (its length) instead of its
    bytes, after skipping it block by block.
    """

    def __init__(self, stream: Readable, max_line_bytes: int, block_size: int = _BLOCK) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self._block = block_size
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes | int]:
        limit, read = self._max, self._stream.read
        carry = b""
        skipped = -1  # length so far of an overlong line being skipped, or -1
        skipped_cr = False  # whether the last byte skipped is a CR (of a CRLF end, if LF follows)
        while block := read(self._block):
            self.bytes_read += len(block)
            if skipped >= 0:
                nl = block.find(b"\n")
                if nl < 0:
                    skipped += len(block)
                    skipped_cr = block.endswith(b"\r")
                    continue
                ends_with_cr = block[nl - 1:nl] == b"\r" if nl else skipped_cr
                yield skipped + nl - ends_with_cr
                skipped = -1
                block = block[nl + 1:]
            lines = block.split(b"\n")
            tail = lines.pop()
            if lines:
                if carry:
                    lines[0] = carry + lines[0]
                for line in lines:
                    # The CR of a CRLF line end is not part of the line's length.
                    length = len(line) - line.endswith(b"\r")
                    yield line if length <= limit else length
                carry = tail
            else:
                carry += tail
            # A carried CR may be a CRLF end (LF in the next block): the line is overlong only past it.
            if len(carry) - carry.endswith(b"\r") > limit:
                skipped, skipped_cr, carry = len(carry), carry.endswith(b"\r"), b""
        if skipped >= 0:
            yield skipped
        elif carry:
            yield carry


class Loader:
    """Loads one or more streams into the store; call `finish()` once after the last one.

    With `workers` > 0, lines are validated and prepared in that many worker processes
    (`collectors.parse_pool`) while this process writes earlier batches; `close()` stops them.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        on_reject: Callable[[Reject], None] | None = None,
        progress: Progress | None = None,
        workers: int = 0,
        keep_rollups: bool = True,
    ) -> None:
        if batch_size < 1 or max_line_bytes < 1:
            raise ValueError("batch_size and max_line_bytes must be at least 1")
        self.engine = engine
        self.batch_size = batch_size
        self.max_line_bytes = max_line_bytes
        self.summary = IngestSummary()
        # False: batches leave the rollups (marking them invalid) and finish() rebuilds them once.
        self.keep_rollups = keep_rollups
        self._on_reject = on_reject
        self._progress = progress
        self._bytes_shown: int | None = None  # the last file's bytes, as last drawn
        self._parser = ChunkParser(max_line_bytes, workers, window_for(batch_size, workers))
        # Events numbered by their line in the load, straight from the parser, and the chunks
        # their lines are in (dropped once written): no per-event tuple is built until a reject.
        self._batch: list[tuple[int, Prepared]] = []
        self._chunks: list[_Chunk] = []
        self._lines_before = 0  # lines of the streams loaded before this one
        # decision id -> [(arrival order, ref, event)] of events waiting for that decision
        self._waiting: dict[str, list[tuple[int, Ref, Prepared]]] = {}
        self._arrivals = 0
        # Set by `ingest`, which turns the automatic cyclic GC off for the run (see _bulk_gc).
        self.collect_between_batches = False
        # What a failing store raises: SQLAlchemy's errors, and the driver's own from the writes that
        # bypass SQLAlchemy (COPY on PostgreSQL, executemany on SQLite), which it does not wrap.
        self._store_errors: tuple[type[Exception], ...] = (SQLAlchemyError, *_driver_errors(engine))

    def load_path(self, path: str) -> None:
        """Load a file by name (`-` is stdin); a file that cannot be read is recorded as an error."""
        if path == STDIN:
            self.load_stream(STDIN, sys.stdin.buffer)
            return
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            self.summary.errors.append(f"cannot read {path}: {_os_reason(exc)}")
            return
        with stream:
            try:
                total = os.fstat(stream.fileno()).st_size
            except OSError:
                total = None
            self.load_stream(path, stream, total)

    def load_stream(self, name: str, stream: BinaryIO, total_bytes: int | None = None) -> None:
        """Load every line of an open binary stream, naming it `name` in rejects.

        A gzip stream (by its magic bytes, whatever its name) is read decompressed: its lines are
        numbered, checked and kept in the rejects file as decompressed, and progress counts the
        compressed bytes, against `total_bytes`, the compressed size.
        """
        self.summary.files += 1
        if self._progress is not None:
            self._progress.start_file(name, total_bytes)
        if _starts_with(stream, _GZIP_MAGIC):
            counted = _CountingReader(stream)
            reader = LineReader(_EachRead(gzip.GzipFile(fileobj=counted, mode="rb")), self.max_line_bytes)
            self.load_lines(name, reader, lambda: counted.bytes_read)
            return
        reader = LineReader(stream, self.max_line_bytes)
        self.load_lines(name, reader, lambda: reader.bytes_read)

    def load_lines(self, name: str, lines: Iterable[bytes | int],
                   bytes_read: Callable[[], int] | None = None) -> None:
        """Load physical lines (an int stands for a line too long to keep), numbered from 1."""
        summary, parser = self.summary, self._parser
        progress = None if bytes_read is None else self._progress
        lineno = 0
        chunk: list[bytes | int] = []

        def submit() -> None:
            first = self._lines_before + lineno  # the chunk's first line, numbered over the whole load
            self._take(parser.submit((name, lineno + 1, first), chunk, first), progress, bytes_read)

        try:
            for raw in lines:
                chunk.append(raw)
                if len(chunk) >= CHUNK_LINES:
                    submit()
                    lineno += len(chunk)
                    chunk = []
        except (OSError, EOFError, zlib.error) as exc:  # EOFError, zlib.error: a truncated or damaged gzip
            summary.errors.append(f"cannot read {name} after line {lineno + len(chunk)}: {_os_reason(exc)}")
        if chunk:
            submit()
            lineno += len(chunk)
        self._take(parser.drain(), progress, bytes_read)
        if self._batch:  # a stream's last events are written before the next stream's: each bar counts its own
            batch, self._batch = self._batch, []
            self._flush(batch)
        self._lines_before += lineno
        summary.lines += lineno
        if progress is not None and bytes_read is not None:
            self._bytes_shown = bytes_read()
            progress.advance(self._bytes_shown, summary)

    def _take(self, done: list[tuple[tuple[str, int, int], Sequence[bytes | int], Parsed]],
              progress: Progress | None, bytes_read: Callable[[], int] | None) -> None:
        """Queue the events of parsed chunks for the writer, a batch at a time, and report their rejects."""
        size = self.batch_size
        for (name, first_line, first_number), lines, parsed in done:
            self.summary.blank += parsed.blank
            for index, reason, keep_raw in parsed.rejects:
                raw = lines[index]
                self._reject((name, first_line + index, raw if keep_raw else b""), reason,  # type: ignore[arg-type]
                             keep_raw=keep_raw)
            if not parsed.events:
                continue
            self._chunks.append(_Chunk(first_number, name, first_line, lines))
            batch = self._batch
            batch.extend(parsed.events)
            while len(batch) >= size:
                self._batch = batch[size:]
                del batch[size:]
                self._flush(batch)
                batch = self._batch
                if self.collect_between_batches:
                    gc.collect()  # the written batch is garbage now: little is left to scan
                if progress is not None and bytes_read is not None:
                    progress.advance(bytes_read(), self.summary)

    def finish(self) -> IngestSummary:
        """Write what is left, retry the events still waiting for a decision, reject the rest."""
        self.close()
        if self._batch:
            batch, self._batch = self._batch, []
            self._flush(batch)
        waiting = self._take_waiting(None)
        self._waiting = {}
        for i in range(0, len(waiting), self.batch_size):
            chunk = waiting[i:i + self.batch_size]
            result = self._write(chunk)
            for ref, event in result.unknown_decision:
                self._reject(ref, f"unknown decision_id {event[4]}")
        if self._progress is not None and self._bytes_shown is not None:
            self._progress.advance(self._bytes_shown, self.summary)  # the counts of the last batches
        self._leave_rollups_valid()
        with self.engine.connect() as conn:
            seq, head = conn.exec_driver_sql("SELECT seq, hash FROM chain_head WHERE id = 1").one()
        self.summary.head = (int(seq), str(head))
        return self.summary

    def _leave_rollups_valid(self) -> None:
        """Rebuild the rollups if this load skipped them, or an earlier one left them invalid (killed)."""
        with self.engine.connect() as conn:
            valid = rollups_valid(conn)
        if valid:
            return
        if self._progress is not None:
            self._progress.note("rebuilding the KPI rollups ...")
        started = time.perf_counter()
        try:
            rebuild_rollups(self.engine)
        except self._store_errors as exc:
            raise StoreError(f"the events are stored, but rebuilding the rollups failed (reports read the raw "
                             f"tables until `hitl-tower rebuild-rollups`): {error_line(exc)}") from None
        self.summary.rollups_rebuilt = time.perf_counter() - started

    def close(self) -> None:
        """Stop the worker processes, if any (finish() does it too)."""
        self._parser.close()

    def _flush(self, batch: Sequence[tuple[Handle, Prepared]]) -> None:
        """Write a batch (taken off `_batch`), with the waiting events whose decision it brings."""
        if self._waiting:
            # Events waiting for a decision that this batch brings go in with it, first
            # (they came earlier), so the first of two conflicting versions is the one kept.
            ids = {ev[1] for _ref, ev in batch if ev[0] == "decision"}
            batch = [*self._take_waiting(ids), *batch]
        result = self._write(batch)
        for ref, event in result.unknown_decision:
            self._arrivals += 1
            self._waiting.setdefault(event[4], []).append((self._arrivals, self._ref(ref), event))  # type: ignore[arg-type]
        self._forget_written_chunks()

    def _ref(self, handle: Handle) -> Ref:
        """The source, line number and bytes of an event handed to the writer."""
        if not isinstance(handle, int):  # a waiting event's, kept whole
            return handle
        for chunk in reversed(self._chunks):
            if chunk.first <= handle:
                return chunk.ref(handle)
        raise LookupError(f"no chunk holds event number {handle}")

    def _forget_written_chunks(self) -> None:
        """Drop the chunks none of whose events is still in `_batch` (waiting ones hold their Ref)."""
        chunks = self._chunks
        if not self._batch:
            chunks.clear()
            return
        needed = self._batch[0][0]
        keep = 0
        while keep < len(chunks) and chunks[keep].first + len(chunks[keep].lines) <= needed:
            keep += 1
        del chunks[:keep]

    def _take_waiting(self, decision_ids: Iterable[str] | None) -> list[tuple[Handle, Prepared]]:
        """Remove and return the waiting events of these decisions (all if None), in arrival order."""
        if decision_ids is None:
            entries = [e for group in self._waiting.values() for e in group]
        else:
            entries = [e for d in decision_ids if d in self._waiting for e in self._waiting.pop(d)]
        entries.sort(key=lambda e: e[0])
        return [(ref, ev) for _order, ref, ev in entries]

    def _write(self, batch: Sequence[tuple[Handle, Prepared]]) -> BatchResult[Handle]:
        try:
            result = write_prepared(self.engine, batch, rollups=self.keep_rollups)
        except self._store_errors as exc:
            first = self._ref(batch[0][0]) if batch else ("?", 0, b"")
            raise StoreError(f"the store failed while writing a batch from {first[0]} line {first[1]} "
                             f"(earlier batches are committed): {error_line(exc)}") from None
        self.summary.stored += result.stored
        self.summary.duplicates += result.duplicates
        for ref, reason in result.rejected:
            self._reject(ref, reason)
        return result

    def _reject(self, ref: Handle, reason: str, keep_raw: bool = True) -> None:
        self.summary.rejected += 1
        if self._on_reject is not None:
            source, line, raw = self._ref(ref)
            self._on_reject(Reject(source, line, reason, raw if keep_raw else None))


def ingest(
    engine: Engine,
    paths: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    on_reject: Callable[[Reject], None] | None = None,
    progress: Progress | None = None,
    workers: int = 0,
    rollups: str = AUTO,
) -> IngestSummary:
    """Load JSON Lines files (`-` for stdin) into the store and return the counts.

    Unreadable files are listed in `summary.errors` and the others still loaded.
    Raises StoreError when the store fails; batches committed before stay.
    `workers`: processes validating lines beside the writer (0, the default, validates here; the
    CLI uses `parse_pool.default_workers()`). Worker processes are spawned, so a script that passes
    workers > 0 must guard its entry point with `if __name__ == "__main__":`.
    `rollups`: KEEP them current batch by batch, REBUILD them once at the end, or AUTO (rebuild
    when the input is big next to the store, `rebuild_pays`). Either way they are valid at the end.
    """
    if rollups not in ROLLUP_MODES:
        raise ValueError(f"rollups must be one of {', '.join(ROLLUP_MODES)}")
    keep = rollups == KEEP or (rollups == AUTO and not rebuild_pays(engine, paths))
    loader = Loader(engine, batch_size=batch_size, max_line_bytes=max_line_bytes,
                    on_reject=on_reject, progress=progress, workers=workers, keep_rollups=keep)
    try:
        with _bulk_gc():
            loader.collect_between_batches = True
            for path in paths:
                loader.load_path(path)
            return loader.finish()
    finally:
        loader.close()


def rebuild_pays(engine: Engine, paths: Sequence[str], min_bytes: int = REBUILD_MIN_BYTES) -> bool:
    """Whether skipping the rollups' upkeep and rebuilding them at the end is the faster load.

    Only on PostgreSQL. Counts the sizes of the regular files among `paths` (stdin and pipes count
    as nothing: their size is unknown) against the events stored already (the chain's head, no scan).
    """
    if engine.dialect.name != "postgresql":
        return False
    size = 0
    for path in paths:
        if path == STDIN:
            continue
        try:
            info = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            size += info.st_size
    if size < min_bytes:
        return False
    with engine.connect() as conn:
        stored = int(conn.exec_driver_sql("SELECT seq FROM chain_head WHERE id = 1").scalar() or 0)
    return 2 * size >= BYTES_PER_EVENT * stored


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """Keep the cyclic GC from rescanning the batch in flight over and over.

    Bulk ingest allocates millions of acyclic containers that live until their batch is written;
    with the default thresholds the collector costs about a fifth of the run, and still ~15% with
    thresholds of 100k. So the automatic collector is off during the run and the loader collects
    once between batches (`Loader.collect_between_batches`), when the written batch is already
    freed: memory stays bounded (cycles made by a batch, e.g. by exceptions, are collected after
    it) and each collection scans little.
    """
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def _driver_errors(engine: Engine) -> tuple[type[Exception], ...]:
    """The DB-API driver's base error class, if the engine has loaded a driver that names one."""
    dbapi = getattr(engine.dialect, "loaded_dbapi", None)
    error = getattr(dbapi, "Error", None)
    return (error,) if isinstance(error, type) and issubclass(error, Exception) else ()


def _os_reason(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return str(strerror).lower()
    if isinstance(exc, EOFError):
        return "the gzip data ends early (a truncated file?)"
    if isinstance(exc, zlib.error | gzip.BadGzipFile):
        return f"damaged gzip data ({exc})"
    return str(exc)


_GZIP_MAGIC = b"\x1f\x8b"


def _starts_with(stream: BinaryIO, magic: bytes) -> bool:
    """Whether the stream's next bytes are `magic`, without consuming them (False if it cannot tell)."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return False
    try:
        return bytes(peek(len(magic))[:len(magic)]) == magic
    except (OSError, ValueError):
        return False


class _EachRead:
    """A GzipFile read as its data comes (`read1`): `read(n)` would gather n bytes first, and lose all
    of them to the EOFError of a truncated file, where this keeps every line before the damage."""

    def __init__(self, stream: gzip.GzipFile) -> None:
        self._stream = stream

    def read(self, n: int = -1, /) -> bytes:
        return self._stream.read1(n)


class _CountingReader:
    """A binary stream's `read`, counting the bytes it hands out (the compressed bytes of a gzip input)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.bytes_read = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._stream.read(n)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, /) -> object:
        return self._stream.seek(offset)  # only a rewind calls it, which a forward read never does

