"""The progress bar of the commands that walk the whole store (verify, export)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[int, int], None]  # (done, total)


@contextmanager
def store_progress(description: str) -> Iterator[Progress | None]:
    """A progress bar on stderr for people at a terminal; nothing for scripts and logs.

    On stderr, so a command's stdout can still be piped; transient, so only the result stays.
    """
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress as Bar

    with Bar(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
