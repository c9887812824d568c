"""Where a command writes a file it produces: stdout for `-`, else a file that appears whole or not at all."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from collectors.cli.options import fail

_BUFFER = 1 << 20


@contextmanager
def output_file(path: str) -> Iterator[BinaryIO]:
    """A binary stream to write `path` through; `-` is stdout.

    A file is written under a temporary name in the same folder and renamed over `path` only when
    the block ends without an error, so a failed or interrupted run never leaves a truncated file
    under the final name (nor destroys one already there). A path that cannot be written exits 2
    before anything else happens.
    """
    if path == "-":
        stdout = sys.stdout.buffer
        yield stdout
        stdout.flush()
        return
    target = Path(path)
    if target.is_dir():
        fail(f"cannot write {path}: it is a directory")
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    done = False
    try:
        with os.fdopen(fd, "wb", buffering=_BUFFER) as stream:
            yield stream
        os.chmod(temp, 0o666 & ~_umask())  # as a plain open() would make it; mkstemp makes it 0600
        os.replace(temp, target)
        done = True
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    finally:
        if not done:
            Path(temp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
