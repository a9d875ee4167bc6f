"""``peerlens story`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="story commands.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Attach the ``story`` command group to the root CLI."""
    root.add_typer(app, name="story")
