"""Study data commands: ``study``, ``participant``, ``responses``, ``recordings``, ``export``,
``audit``."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Attach the study-data command groups to the root CLI."""
