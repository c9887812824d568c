"""Lint and type checks run with the tests, so CI enforces them on every submission."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the test extra")
def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--output-format", "concise", "collectors", "app", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    result = _run(sys.executable, "-m", "mypy")  # files and plugins come from pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cli_loads_no_heavy_library_before_a_command_runs() -> None:
    """`hitl-tower --help` took 0.3 s; a module-level import of SQLAlchemy (or the alerts package, which pulls it
    in, e.g. for the rules' value kinds) on the CLI's import path doubles it. Commands import them when they run."""
    heavy = ("sqlalchemy", "pandas", "numpy", "collectors.alerts", "streamlit")
    result = _run(sys.executable, "-c", "import sys; from collectors.cli import app; "
                  f"print([m for m in {heavy!r} if m in sys.modules])")
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
