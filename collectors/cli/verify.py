"""`hitl-tower verify`: recompute the hash chain and name the first event tampered with."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from collectors.cli._app import app
from collectors.cli.options import ConfigOption, DbOption, fail, load_config_or_exit, open_store_or_exit
from collectors.cli.progress import store_progress

if TYPE_CHECKING:
    from collectors.store.verify import VerifyResult

ExpectHeadOption = Annotated[
    str | None,
    typer.Option(
        "--expect-head",
        help="A chain head recorded earlier (64 hex digits). It must still be in the chain; "
        "if it is not, history before it was rewritten (exit 1).",
        show_default=False,
    ),
]
DeepOption = Annotated[
    bool,
    typer.Option("--deep", help="Also re-derive decision_state and the rollups (which reports read) "
                 "from the events and list decisions and rollup rows whose stored values differ (exit 1)."),
]
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@app.command("verify")
def verify(db: DbOption = None, config: ConfigOption = None, expect_head: ExpectHeadOption = None,
           deep: DeepOption = False) -> None:
    """Verify the audit log's hash chain: print OK and exit 0, or name the first event altered,
    deleted or inserted behind the tool's back and exit 1 (2: the store cannot be opened)."""
    from collectors.store.db import StoreError
    from collectors.store.verify import verify_chain

    if expect_head is not None and not _SHA256.fullmatch(expect_head):
        fail(f"--expect-head must be a SHA-256 hash of 64 hex digits, got {expect_head!r}")
    cfg = load_config_or_exit(config)
    engine = open_store_or_exit(db, cfg, create=False)
    try:
        with store_progress("verifying hash chain") as progress:
            result = verify_chain(engine, expect_head=expect_head and expect_head.lower(),
                                  deep=deep, progress=progress)
    except StoreError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    _print(result, expect_head)
    raise typer.Exit(0 if result.ok else 1)


def _print(result: VerifyResult, expect_head: str | None) -> None:
    if result.problem is None:
        typer.echo(f"OK: {result.events} events verified, chain head {result.head_hash}")
        if expect_head is not None and result.expected_head_seq not in (None, result.head_seq):
            added = result.head_seq - (result.expected_head_seq or 0)
            typer.echo(f"OK: expected head found at seq {result.expected_head_seq}; "
                       f"{added} events were added after it")
    else:
        typer.echo(f"FAILED: {result.problem}")
        if result.detail:
            typer.echo(f"  {result.detail}")
        typer.echo(f"  ({result.events} events chained before it; chain head says seq "
                   f"{result.head_seq}, hash {result.head_hash})")
    if result.decisions_checked is None:
        return
    if result.state_mismatch_count == 0:
        typer.echo(f"OK: decision_state of {result.decisions_checked} decisions matches the events")
    _print_problems(result.state_mismatches, result.state_mismatch_count, "decision_state")
    if result.rollup_rows_checked is None:
        typer.echo("OK: rollups marked invalid, so reports read the events directly "
                   "(hitl-tower rebuild-rollups restores them)")
    elif result.rollup_mismatch_count == 0:
        typer.echo(f"OK: {result.rollup_rows_checked} rollup rows match the events")
    _print_problems(result.rollup_mismatches, result.rollup_mismatch_count, "rollup")


def _print_problems(shown: tuple[str, ...], total: int, what: str) -> None:
    for line in shown:
        typer.echo(f"FAILED: {line}")
    if total > len(shown):
        typer.echo(f"  ... and {total - len(shown)} more {what} problems")
