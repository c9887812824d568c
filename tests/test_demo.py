"""`hitl-tower demo`: builds the demo store from the shipped sample and prints the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.cli import app


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_demo_builds_a_fresh_store_and_reports(in_tmp: Path) -> None:
    sample_lines = sum(1 for line in (Path(__file__).parent.parent / "collectors/data/sample.jsonl").open())
    for _ in range(2):  # the second run rebuilds, so nothing is a duplicate
        result = CliRunner().invoke(app, ["demo"])
        assert result.exit_code == 0, result.output
        assert f"{sample_lines} events stored (0 duplicate)" in result.output
    assert (in_tmp / "hitl-demo.db").is_file()
    assert "intervention_rate" in result.output and "critical" in result.output


def test_demo_on_an_existing_store_does_not_regenerate(in_tmp: Path) -> None:
    assert CliRunner().invoke(app, ["demo"]).exit_code == 0
    (in_tmp / "hitl-demo.db").rename(in_tmp / "mine.db")
    result = CliRunner().invoke(app, ["demo", "--db", f"sqlite:///{in_tmp / 'mine.db'}"])
    assert result.exit_code == 0, result.output
    assert "stored" not in result.output and "intervention_rate" in result.output
    assert not (in_tmp / "hitl-demo.db").exists()


def test_demo_on_an_empty_store_says_so(in_tmp: Path) -> None:
    assert CliRunner().invoke(app, ["init-db", "--db", f"sqlite:///{in_tmp / 'empty.db'}"]).exit_code == 0
    result = CliRunner().invoke(app, ["demo", "--db", f"sqlite:///{in_tmp / 'empty.db'}"])
    assert result.exit_code == 2
    assert "holds no decisions" in result.output
