"""`hitl-tower export`: write the stored events back out as JSON Lines, a copy `ingest` turns into the same store."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from collectors.cli._app import app
from collectors.cli.options import (
    ConfigOption,
    DbOption,
    EventTypeChoice,
    fail,
    load_config_or_exit,
    open_store_or_exit,
)
from collectors.cli.output_file import output_file
from collectors.cli.progress import store_progress

if TYPE_CHECKING:
    from collectors.store.export import ExportResult

OutputOption = Annotated[
    str,
    typer.Option("--output", "-o", metavar="PATH",
                 help="File to write (it appears only once complete); - is stdout."),
]
TypesOption = Annotated[
    list[EventTypeChoice] | None,
    typer.Option("--type", metavar="TYPE", case_sensitive=False, show_default=False,
                 help="Export only events of this type (decision, review, outcome, change); repeatable. "
                 "A partial export: ingested alone it builds another chain."),
]
SinceSeqOption = Annotated[
    int,
    typer.Option("--since-seq", metavar="N", min=0,
                 help="Export only events after seq N (e.g. the last seq of an earlier export); past the "
                 "store's chain head it is an error (exit 2)."),
]
_EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a writer killed by SIGPIPE


@app.command("export")
def export_command(db: DbOption = None, config: ConfigOption = None, output: OutputOption = "-",
                   types: TypesOption = None, since_seq: SinceSeqOption = 0) -> None:
    """Write the stored events as JSON Lines in chain order, each line the canonical JSON the hash chain covers.

    Ingesting a full export into a fresh store rebuilds the same chain head and the same reports, so
    an export is a verifiable copy, and `export --db A | ingest - --db B` moves a store between
    databases. A summary with the count and the chain hash of the last event exported (for
    `verify --expect-head`) goes to stderr. Exit 0; 1 when the stored events do not reproduce the
    stored chain or a row no longer reads back (hitl-tower verify names the problem); 2 when the
    store or the output cannot be opened, or --since-seq is past the store's chain head.
    """
    from collectors.store.db import StoreError
    from collectors.store.export import UnreadableEvent, export_events

    cfg = load_config_or_exit(config)
    selected = sorted({t.value for t in types}) if types else None
    try:
        with output_file(output) as stream:
            engine = open_store_or_exit(db, cfg, create=False)
            try:
                with store_progress("exporting events") as progress:
                    result = export_events(engine, stream.write, types=selected, after_seq=since_seq,
                                           progress=progress)
            finally:
                engine.dispose()
            if since_seq > result.head_seq:  # inside the block: no empty file appears under PATH
                fail(f"--since-seq {since_seq} is past the store's chain head (seq {result.head_seq}): "
                     "this store never held the events up to it, or has lost some; check --db, and "
                     "hitl-tower verify --expect-head with the hash the earlier export printed")
    except BrokenPipeError:
        _quiet_broken_pipe()
    except StoreError as exc:
        fail(str(exc))
    except UnreadableEvent as exc:
        fail(f"{exc}: the store was altered; hitl-tower verify names the problem", 1)
    except KeyboardInterrupt:
        fail("interrupted" + ("" if output == "-" else f"; {output} was not written"), 130)
    _summarise(result, output, selected, since_seq)
    if result.old_key_outcomes:
        typer.echo(f"warning: {result.old_key_outcomes} outcomes stored before migration 0007 repeat the "
                   "content of another (a number written 1 in one, 1.0 in the other): ingest takes them "
                   "for duplicates, so a store loaded from this export lacks them and has another chain head",
                   err=True)
    raise typer.Exit(1 if result.chain_break else 0)


def _summarise(result: ExportResult, output: str, types: list[str] | None, since_seq: int) -> None:
    """The summary on stderr: stdout may be the export itself."""
    where = "stdout" if output == "-" else output
    count = f"{result.events:,} event" + ("" if result.events == 1 else "s")
    if not result.partial:
        if result.events == 0:
            typer.echo(f"exported 0 events to {where}: the store is empty", err=True)
        elif result.chain_break is None:
            reproduced = "" if result.old_key_outcomes else " (ingested into a fresh store, they reproduce it)"
            typer.echo(f"exported {count} to {where}; chain head {result.last_hash} at seq {result.last_seq}"
                       + reproduced, err=True)
        else:
            typer.echo(f"exported {count} to {where}, last at seq {result.last_seq}", err=True)
            typer.echo(f"warning: the exported events do not reproduce the stored hash chain "
                       f"({result.chain_break}); hitl-tower verify names the problem", err=True)
        return
    scope = ", ".join(filter(None, [
        f"--type {' --type '.join(types)}" if types else "",
        f"--since-seq {since_seq}" if since_seq else ""]))
    if result.events == 0:
        typer.echo(f"exported 0 events to {where}: none matched ({scope})", err=True)
    else:
        typer.echo(f"exported {count} to {where} ({scope}); the last, seq {result.last_seq}, "
                   f"has chain hash {result.last_hash}", err=True)
    typer.echo("note: a partial export; ingested into a fresh store it will NOT reproduce this chain "
               f"head (the store's head is {result.head_hash} at seq {result.head_seq})", err=True)


def _quiet_broken_pipe() -> NoReturn:
    """The reader went away (`| head`): stop without a traceback, as other Unix tools do.

    stdout is pointed at /dev/null first, or the interpreter's own flush at exit would fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. a test's captured stdout)
        pass
    raise typer.Exit(_EXIT_BROKEN_PIPE)
