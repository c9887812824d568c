"""Chunks parsed by worker processes come back in order and equal to in-process parsing, even when a worker dies."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import orjson

from collectors.parse_pool import (
    CHUNK_LINES,
    MAX_WORKERS,
    ChunkParser,
    Parsed,
    default_workers,
    parse_chunk,
    window_for,
)


def _chunks(count: int, size: int) -> list[list[bytes | int]]:
    def line(i: int) -> bytes:
        if i % 97 == 0:
            return b"{broken"
        return orjson.dumps({"type": "decision", "id": f"d{i}", "proposed_at": "2026-11-24T09:00:00Z",
                             "agent_id": "a", "model_version": "m", "risk_class": "low", "action_type": "x",
                             "confidence": (i % 100) / 100, "route": "review"})
    return [[line(c * size + i) for i in range(size)] + [5000] for c in range(count)]


def _expected(chunks: list[list[bytes | int]]) -> list[tuple[object, object, object, int]]:
    return [(n, p.events, p.rejects, p.blank) for n, p in enumerate(parse_chunk(c, 1000) for c in chunks)]


def _flat(results: list[tuple[object, object, object]]) -> list[tuple[object, object, object, int]]:
    return [(tag, parsed.events, parsed.rejects, parsed.blank) for tag, _lines, parsed in results]  # type: ignore[attr-defined]


def _parse_all(parser: ChunkParser, chunks: list[list[bytes | int]],
               after_submit: Callable[[int], None] = lambda _n: None) -> list[tuple[Any, Any, Parsed]]:
    """Every chunk through the parser, as a loader does; `after_submit(n)` runs after chunk n."""
    got = []
    try:
        for n, chunk in enumerate(chunks):
            got.extend(parser.submit(n, chunk))
            after_submit(n)
        got.extend(parser.drain())
    finally:
        parser.close()
    return got


def test_workers_return_chunks_in_order_equal_to_in_process_parsing() -> None:
    chunks = _chunks(8, 300)
    got = _parse_all(ChunkParser(max_line_bytes=1000, workers=2, window=3), chunks)
    assert [tag for tag, _l, _p in got] == list(range(8))
    assert _flat(got) == _expected(chunks)
    assert any(p.rejects for _t, _l, p in got)  # the broken lines and the overlong one are there


def test_a_worker_killed_mid_run_loses_nothing() -> None:
    chunks = _chunks(10, 300)
    parser = ChunkParser(max_line_bytes=1000, workers=1, window=4)

    def kill_the_worker(n: int) -> None:
        if n == 3:  # the pool is running: kill its worker as the OOM killer would
            pool = parser._pool
            assert pool is not None
            if parser._warm is not None:
                assert parser._warm.result(timeout=60)  # started: the next chunks go to the worker
            for pid in list(pool._processes):  # type: ignore[attr-defined]
                os.kill(pid, signal.SIGKILL)

    got = _parse_all(parser, chunks, kill_the_worker)
    assert parser.workers == 0  # the rest was parsed in-process
    assert _flat(got) == _expected(chunks)


def test_chunks_are_parsed_here_while_the_workers_start() -> None:
    """A spawned worker takes a while to import the parser; chunks do not queue behind it."""
    chunks = _chunks(6, 50)
    parser = ChunkParser(max_line_bytes=1000, workers=1, window=4)
    try:
        got = [r for n, chunk in enumerate(chunks) for r in parser.submit(n, chunk)]
        assert parser._warm is not None and not parser._warm.done()  # still starting (spawn imports)
        assert [tag for tag, _l, _p in got] == list(range(6))  # so every chunk came back at once
        assert _flat(got) == _expected(chunks)
        assert parser._warm.result(timeout=60)
        assert _flat(_parse_all(parser, chunks)) == _expected(chunks)  # and then through the worker
        assert parser.workers == 1
    finally:
        parser.close()


def test_the_window_lets_workers_parse_a_whole_batch_ahead() -> None:
    """While the writer stores a batch, the workers must be free to parse the next one."""
    for batch, workers in ((10_000, 1), (10_000, 3), (1, 1), (25_001, 2)):
        window = window_for(batch, workers)
        assert (window - workers) * CHUNK_LINES >= batch
        assert window * CHUNK_LINES <= batch + 4 * workers * CHUNK_LINES  # still bounded by the batch


def test_default_workers_leave_the_writer_a_cpu() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert default_workers() == max(0, min(MAX_WORKERS, cpus - 1))
