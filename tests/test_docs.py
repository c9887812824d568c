"""Docs match behaviour: every field, command and KPI is documented where a user looks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.cli import app
from collectors.contract import FIELDS

ROOT = Path(__file__).resolve().parent.parent


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n### ", start + len(heading))
    return text[start: nxt if nxt != -1 else None]


@pytest.mark.parametrize("etype", list(FIELDS))
def test_every_contract_field_is_in_events_doc(etype: str) -> None:
    section = _section((ROOT / "docs/events.md").read_text(), f"### {etype}\n")
    for spec in FIELDS[etype]:
        row = re.search(rf"^\| `{spec.name}` \| [^|]+ \| (yes|no) \|", section, re.MULTILINE)
        assert row, f"{etype}.{spec.name} missing from docs/events.md"
        assert row.group(1) == ("yes" if spec.required else "no"), f"{etype}.{spec.name} required flag"


def _commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_in_the_readme_and_has_help() -> None:
    readme = (ROOT / "README.md").read_text()
    runner = CliRunner()
    for name in _commands():
        assert f"hitl-tower {name}" in readme, f"README lacks `hitl-tower {name}`"
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_the_command_list_reads_in_panels_two_lines_at_most_per_command() -> None:
    """`hitl-tower --help` is a new user's map: commands grouped by job, in the order they are met, each
    summed up in a line or two at 110 columns (thresholds and triage took 7 and 9 lines)."""
    from collectors.cli import LISTING

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "110"})
    assert result.exit_code == 0, result.output
    panels: list[str] = []
    listed: list[str] = []
    lines_of: dict[str, int] = {}
    for line in result.output.splitlines():
        if line.startswith("╭─ ") and "Options" not in line:
            panels.append(line.strip("╭─╮ ").strip())
        cell = line.strip("│ ")
        first = cell.split(" ", 1)[0]
        if line.startswith("│ ") and first in {entry.command for entry in LISTING} and line[2] != " ":
            listed.append(first)
            lines_of[first] = 1
        elif line.startswith("│ ") and line[2] == " " and listed and cell:
            lines_of[listed[-1]] += 1
    assert panels == list(dict.fromkeys(entry.panel for entry in LISTING))
    assert listed == [entry.command for entry in LISTING] and sorted(listed) == _commands()
    assert max(lines_of.values()) <= 2, lines_of


def test_help_shows_our_metavars_not_python_types() -> None:
    """Options read as their value (URL, PATH, N), flags as bare flags, and `FILE...` as written."""
    result = CliRunner().invoke(app, ["ingest", "--help"], terminal_width=160)
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert usage.split() == ["Usage:", "hitl-tower", "ingest", "[OPTIONS]", "FILE..."], usage
    for python_type in ("<bool>", "<str>", "<int", "<list["):
        assert python_type not in result.output, python_type
    for option, metavar in (("--db", "URL"), ("--rejects", "PATH")):
        line = next(line for line in result.output.splitlines() if f"{option} " in line)
        assert metavar in line.split(), line


def test_help_paragraphs_wrap_once_at_the_terminal_width() -> None:
    """A docstring's hard line breaks are not kept, so a narrow terminal shows no ragged short lines."""
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        paragraphs = (command.help or "").split("\n\n")
        assert all("\n" not in paragraph for paragraph in paragraphs), name
    result = CliRunner().invoke(app, ["serve-metrics", "--help"], terminal_width=80, env={"COLUMNS": "80"})
    prose = result.output.split("╭")[0]
    lines = [line.strip() for line in prose.splitlines() if line.strip()]
    # every line of a paragraph but its last fills most of the width
    assert "each scrape gets the last result" in " ".join(lines)
    assert min(len(line) for line in lines[1:-1]) > 40, lines
