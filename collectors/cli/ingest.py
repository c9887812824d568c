"""`hitl-tower ingest`: load JSON Lines audit events into the store (contract section 5)."""

from __future__ import annotations

import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from collectors.cli._app import app
from collectors.cli.options import ConfigOption, DbOption, fail, load_config_or_exit, open_store_or_exit

if TYPE_CHECKING:
    from collectors.ingest import IngestSummary, Reject


class RollupMode(str, Enum):
    """`--rollups` choices (collectors.ingest.ROLLUP_MODES)."""

    auto = "auto"
    keep = "keep"
    rebuild = "rebuild"


@app.command("ingest")
def ingest_command(
    files: Annotated[list[str], typer.Argument(
        metavar="FILE...", help="JSON Lines files of audit events, plain or gzip-compressed (known by their first bytes, whatever the name); - reads stdin.", show_default=False)],
    db: DbOption = None,
    config: ConfigOption = None,
    rejects: Annotated[Path | None, typer.Option(
        "--rejects", metavar="PATH",
        help="Also write rejected lines here as JSON Lines (file, line, reason, raw) to fix and "
        "re-send, e.g. jq -r 'select(.raw != null) | .raw' PATH (raw is null for a line over "
        "--max-line-bytes, which is never held in memory).", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Lines per transaction.")] = 10_000,
    max_line_bytes: Annotated[int, typer.Option(
        "--max-line-bytes", min=1,
        help="Longer lines (not counting their LF or CRLF end) are rejected without being read into memory.")]
    = 1 << 20,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=0, show_default="one per CPU but the writer's, at most 4",
        help="Processes validating lines while this one writes; 0 validates in this process.")] = None,
    rollups: Annotated[RollupMode, typer.Option(
        "--rollups", case_sensitive=False,
        help="The per-hour KPI rollups: keep them current batch by batch, or rebuild them once at "
        "the end (reports read the raw tables meanwhile). auto rebuilds on PostgreSQL when the "
        "files hold at least 32 MiB and half the store's events (a 1M-event load: 44 s -> 34 s), "
        "and keeps them on SQLite, where both ways cost the same.")] = RollupMode.auto,
) -> None:
    """Load audit events (decision, review, outcome, change) from JSON Lines files.

    Bad lines are printed as FILE:LINE: reason and the valid ones stored. Exit 0 when
    nothing was rejected, 1 when some lines were, 2 on a usage, file or connection error.
    """
    from collectors.ingest import ingest
    from collectors.parse_pool import default_workers
    from collectors.store.db import StoreError

    cfg = load_config_or_exit(config)
    _check_rejects_is_no_input(rejects, files)
    # The store first: a run that cannot reach it leaves the last run's rejects file as it was.
    engine = open_store_or_exit(db, cfg)
    try:
        sink = _open_rejects(rejects)
    except typer.Exit:
        engine.dispose()
        raise
    progress = _TerminalProgress() if sys.stderr.isatty() else None
    report = _Reporter(sink, progress)
    started = time.perf_counter()
    try:
        summary = ingest(engine, files, batch_size=batch_size, max_line_bytes=max_line_bytes,
                         on_reject=report, progress=progress,
                         workers=default_workers() if workers is None else workers, rollups=rollups.value)
    except StoreError as exc:
        report.close()
        fail(str(exc))
    except KeyboardInterrupt:
        report.close()
        fail("interrupted; every batch committed so far is kept, run the same command again to finish",
             130)
    finally:
        engine.dispose()
    report.close()
    for error in summary.errors:
        typer.echo(f"error: {error}", err=True)
    typer.echo(_summary_line(summary, time.perf_counter() - started))
    if summary.head is not None:
        seq, head = summary.head
        typer.echo(f"chain head: {head} at seq {seq} (record it to check later: hitl-tower verify --expect-head)")
    raise typer.Exit(summary.exit_code)


def _summary_line(summary: IngestSummary, seconds: float) -> str:
    files = f"{summary.files} file" + ("" if summary.files == 1 else "s")
    rebuilt = "" if summary.rollups_rebuilt is None else f", rollups rebuilt in {summary.rollups_rebuilt:.1f} s"
    lines = f"{summary.lines} line" + ("" if summary.lines == 1 else "s")
    return (f"{summary.stored} stored, {summary.duplicates} duplicate, {summary.rejected} rejected "
            f"({lines} from {files}, {summary.blank} blank, {seconds:.1f} s{rebuilt})")


def _check_rejects_is_no_input(rejects: Path | None, files: list[str]) -> None:
    """Exit 2 when --rejects names one of the input files: opening it for writing would empty it
    before it is read (the fix-and-resend loop, `ingest rejects.jsonl --rejects rejects.jsonl`)."""
    if rejects is None:
        return
    for name in files:
        if name == "-":
            continue
        try:
            same = os.path.samefile(name, rejects)
        except OSError:  # one of them does not exist (yet): compare the paths
            same = os.path.abspath(name) == os.path.abspath(rejects)
        if same:
            fail(f"--rejects {rejects} is also an input file, which writing the rejects would empty before "
                 "it is read: write them to another file")


def _open_rejects(path: Path | None) -> IO[bytes] | None:
    if path is None:
        return None
    try:
        return open(path, "wb")
    except OSError as exc:
        fail(f"cannot write rejects file {path}: {exc.strerror or exc}")


class _Reporter:
    """Prints each reject as FILE:LINE: reason and appends it to the rejects file."""

    def __init__(self, sink: IO[bytes] | None, progress: _TerminalProgress | None) -> None:
        self._sink = sink
        self._progress = progress

    def __call__(self, reject: Reject) -> None:
        self._print(reject.location())
        if reject.line == 1:
            hint = _format_hint(reject)
            if hint is not None:
                self._print(f"{reject.source}: note: {hint}")
        if self._sink is not None:
            self._sink.write(_reject_record(reject))

    def _print(self, line: str) -> None:
        if self._progress is not None:
            self._progress.print(line)
        else:
            sys.stderr.write(line + "\n")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._sink is not None:
            self._sink.close()
        sys.stderr.flush()


def _format_hint(reject: Reject) -> str | None:
    """What the file seems to be when its first line is no JSON object: the usual wrong formats."""
    raw, name = (reject.raw or b"").strip(), reject.source
    if raw.startswith(b"["):
        return f"this is a JSON array, not JSON Lines (one object per line): jq -c '.[]' {name} | hitl-tower ingest -"
    if raw == b"{":
        return f"this is pretty-printed JSON, not JSON Lines (one object per line): jq -c . {name} | hitl-tower ingest -"
    if reject.reason.startswith("invalid JSON") and b"," in raw and not raw.startswith(b"{"):
        return "this looks like CSV; ingest reads JSON Lines, one JSON object per line (docs/events.md)"
    return None


def _reject_record(reject: Reject) -> bytes:
    import base64

    import orjson

    record: dict[str, object] = {"file": reject.source, "line": reject.line, "reason": reject.reason}
    raw = reject.raw.rstrip(b"\r") if reject.raw is not None else None
    if raw is None:
        record["raw"] = None
    else:
        try:
            record["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["raw"] = raw.decode("utf-8", errors="replace")
            record["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(record) + b"\n"


_LABEL_WIDTH = 20  # a longer file name is cut (the summary and rejects name the whole path)


class _TerminalProgress:
    """A rich progress bar on stderr, one task per file (only used when stderr is a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        # The bar takes what the other columns leave, so one line fits an 80-column terminal.
        self._bar = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=None, table_column=Column(ratio=1)),
            DownloadColumn(table_column=Column(no_wrap=True)), TimeRemainingColumn(),
            TextColumn("{task.fields[counts]}", table_column=Column(no_wrap=True)),
            console=Console(stderr=True), transient=False, expand=True,
        )
        self._task: object = None
        self._started = False
        # Each file's bar counts what was stored and rejected since it started (the summary line has
        # the totals): (stored, rejected) as last drawn, and as the current file started.
        self._last = (0, 0)
        self._base = (0, 0)

    def start_file(self, name: str, total_bytes: int | None) -> None:
        if not self._started:
            self._bar.start()
            self._started = True
        label = Path(name).name if name != "-" else "stdin"
        label = label if len(label) <= _LABEL_WIDTH else label[:_LABEL_WIDTH - 1] + "\u2026"
        self._task = self._bar.add_task(label, total=total_bytes or None, counts="")
        self._base = self._last

    def advance(self, bytes_read: int, summary: IngestSummary) -> None:
        self._last = (summary.stored, summary.rejected)
        stored, rejected = (now - base for now, base in zip(self._last, self._base, strict=True))
        counts = f"{stored:,} stored, {rejected:,} rejected"
        self._bar.update(self._task, completed=bytes_read, counts=counts)  # type: ignore[arg-type]

    def print(self, line: str) -> None:
        self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        self.print(message)

    def stop(self) -> None:
        if self._started:
            self._bar.stop()
