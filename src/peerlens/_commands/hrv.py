"""``peerlens hrv`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="hrv commands.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Attach the ``hrv`` command group to the root CLI."""
    root.add_typer(app, name="hrv")
