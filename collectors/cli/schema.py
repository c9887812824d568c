"""`hitl-tower schema`: print the JSON Schema of the interchange format, for producers in other languages."""

from __future__ import annotations

from typing import Annotated

import typer

from collectors.cli._app import app
from collectors.cli.options import EventTypeChoice

TypeOption = Annotated[
    EventTypeChoice | None,
    typer.Option("--type", help="Print only this event type's schema (default: the union of all four).",
                 show_default=False, case_sensitive=False),
]


@app.command("schema")
def schema(type_: TypeOption = None) -> None:
    """Print the JSON Schema (draft 2020-12) of one line of the JSON Lines interchange format."""
    import orjson

    from collectors.schema import json_schema

    document = json_schema(type_.value if type_ is not None else None)
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
