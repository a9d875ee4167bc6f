"""``peerlens score`` and ``peerlens instruments`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Questionnaire instruments: list, show, load item wording.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    """Attach ``score`` and ``instruments`` to the root CLI."""
    root.add_typer(app, name="instruments")
