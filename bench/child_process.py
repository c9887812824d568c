"""Run one measurement in a child process of its own and read its JSON result and peak memory.

Used by bench/kpis.py and bench/dashboard.py: each calls its own script with `--child NAME ARGS...`,
and the child prints one JSON object as its last line. A child of its own gives every measurement
its own peak RSS (ru_maxrss from wait4) and a cold start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def run_child(script: str, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    """`python SCRIPT --child ARGS...`: its JSON result plus peak_mb (its own peak RSS); exits with its
    stderr's tail when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, script, "--child", *args], stdout=out, stderr=err, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if code != 0:
        raise SystemExit(f"{args[0]} failed ({code}):\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result
