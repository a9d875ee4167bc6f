"""``peerlens demo``: the main job on bundled example data."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Attach ``demo`` to the root CLI."""
    root.command("demo")(demo)


def demo() -> None:
    """Run the main job on the bundled example data and print a summary."""
    from peerlens._commands._demo_job import run_demo

    run_demo()
