"""Validate and prepare chunks of lines, in worker processes while the writer stores earlier ones.

Bulk ingest spends about a quarter of its CPU time in per-line work (JSON parsing,
validation, row building, canonical JSON); that part runs here, on other
cores, in order, with a bounded number of chunks in flight so memory stays
flat in the file's size. Small inputs never start a process: the pool starts
on the second chunk of a run, chunks are parsed in-process until a worker is
up, and `workers=0` keeps everything in-process.
If a worker dies (killed, out of memory), the chunks it held and all later
ones are parsed in-process: nothing is lost and the order is kept.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from collectors.store.line_preparers import prepare_line
from collectors.store.prepared import Prepared
from collectors.validate import EventError

CHUNK_LINES = 2_000  # lines sent to a worker at a time
MAX_WORKERS = 4


def default_workers() -> int:
    """One worker per CPU but the writer's, at most MAX_WORKERS; none on a single CPU.

    The writer is the slower half and needs a core to itself: on 2 CPUs, one worker loads 1M
    events in ~22.5 s and two (three busy processes on two cores) in ~25-26 s (docs/performance.md).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cpus - 1))


def window_for(batch_lines: int, workers: int) -> int:
    """Chunks in flight so that workers parse the next batch while the writer stores this one.

    A window smaller than a batch starves the workers: they stop after `window` chunks and wait
    for the writer, which takes no result until its batch is stored (1 worker, window 3: 26.3 s
    for 1M events; window 8: 23.1 s; 12: 22.4-22.8 s; 24: 23.4 s).
    """
    return max(2, -(-batch_lines // CHUNK_LINES) + 3 * workers)


class Parsed:
    """What became of a chunk's lines: events by number (the chunk's base plus the line's index in
    the chunk, so a loader can batch them as they come), rejects by index in the chunk."""

    __slots__ = ("blank", "events", "rejects")

    def __init__(self, events: list[tuple[int, Prepared]], rejects: list[tuple[int, str, bool]],
                 blank: int) -> None:
        self.events = events
        self.rejects = rejects  # (index, reason, keep the raw line in the rejects file)
        self.blank = blank

    def __reduce__(self) -> tuple[Any, ...]:
        return Parsed, (self.events, self.rejects, self.blank)


def parse_chunk(lines: Sequence[bytes | int], max_line_bytes: int, base: int = 0) -> Parsed:
    """Validate and prepare each line; an int stands for a line too long to keep (its length).

    Events are numbered `base` + their index in the chunk.
    """
    events: list[tuple[int, Prepared]] = []
    rejects: list[tuple[int, str, bool]] = []
    blank = 0
    for index, raw in enumerate(lines):
        if raw.__class__ is int:
            rejects.append((index, too_long(raw, max_line_bytes), False))  # type: ignore[arg-type]
            continue
        try:
            prepared = prepare_line(raw)  # type: ignore[arg-type]
        except EventError as exc:
            rejects.append((index, str(exc), True))
            continue
        if prepared is None:
            blank += 1
        else:
            events.append((base + index, prepared))
    return Parsed(events, rejects, blank)


def too_long(length: int, limit: int) -> str:
    return f"line is {length} bytes, longer than the limit of {limit} bytes (--max-line-bytes)"


def _worker_init() -> None:
    # Ctrl-C is the parent's to handle (it stops the pool). The worker's short-lived containers
    # are freed by reference counting, so the cyclic GC runs once per chunk, and only over what
    # the chunk made: the modules imported by now are frozen out of its scans.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()
    gc.collect()
    gc.freeze()


def _worker_parse(lines: Sequence[bytes | int], max_line_bytes: int, base: int) -> Parsed:
    try:
        return parse_chunk(lines, max_line_bytes, base)
    finally:
        gc.collect()


def _worker_ready() -> bool:
    """A task that returns once a worker has started and imported the parser."""
    return True


class ChunkParser:
    """Parses chunks in submission order, through worker processes when `workers` > 0.

    `submit` hands a chunk over and returns the chunks finished since, oldest first,
    waiting when `window` chunks are in flight; `drain` waits for all of them.

    Spawned workers take a while to start (they import the parser afresh): until one has
    answered a first no-op task, chunks are parsed here rather than queued behind it.
    """

    def __init__(self, max_line_bytes: int, workers: int = 0, window: int | None = None) -> None:
        self.max_line_bytes = max_line_bytes
        self.workers = workers
        self.window = window or max(2, 3 * workers)
        self._pool: ProcessPoolExecutor | None = None
        self._warm: Future[bool] | None = None  # the start-up task, until it has answered
        self._pending: deque[tuple[Any, Sequence[bytes | int], int, Future[Parsed]]] = deque()
        self._submitted = 0

    def submit(self, tag: Any, lines: Sequence[bytes | int], base: int = 0
               ) -> list[tuple[Any, Sequence[bytes | int], Parsed]]:
        """Queue a chunk (tag: the caller's handle for it; base: its first event number);
        returns finished (tag, lines, parsed)."""
        self._submitted += 1
        # The first chunk is parsed here: an input of one chunk never pays for a process.
        if self.workers > 0 and (self._pool is not None or self._submitted > 1) and self._pool_ready():
            try:
                future = self._pool.submit(_worker_parse, lines, self.max_line_bytes, base)  # type: ignore[union-attr]
            except BrokenProcessPool:
                self._give_up_workers()
            else:
                self._pending.append((tag, lines, base, future))
                done = []
                while self._pending and (len(self._pending) > self.window or self._pending[0][3].done()):
                    done.append(self._result(*self._pending.popleft()))
                return done
        done = self.drain()
        done.append((tag, lines, parse_chunk(lines, self.max_line_bytes, base)))
        return done

    def _pool_ready(self) -> bool:
        """Start the pool if need be; whether its workers are up (False while they start, or if one died)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init)
            self._warm = self._pool.submit(_worker_ready)
        warm = self._warm
        if warm is None:
            return True
        if not warm.done():
            return False
        self._warm = None
        if warm.exception() is not None:  # a worker died while starting
            self._give_up_workers()
            return False
        return True

    def drain(self) -> list[tuple[Any, Sequence[bytes | int], Parsed]]:
        """Wait for every chunk in flight; returns them oldest first."""
        done = []
        while self._pending:
            done.append(self._result(*self._pending.popleft()))
        return done

    def _result(self, tag: Any, lines: Sequence[bytes | int], base: int, future: Future[Parsed]
                ) -> tuple[Any, Sequence[bytes | int], Parsed]:
        try:
            return tag, lines, future.result()
        except BrokenProcessPool:
            self._give_up_workers()
            return tag, lines, parse_chunk(lines, self.max_line_bytes, base)

    def _give_up_workers(self) -> None:
        """A worker died (killed, out of memory): nothing is lost, the rest is parsed here."""
        self.workers = 0
        self._warm = None
        self._stop_pool()

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the workers (pending chunks are dropped)."""
        self._pending.clear()
        self._warm = None
        self._stop_pool()
