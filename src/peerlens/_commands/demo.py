"""``peerlens demo``: a simulated peer-support trial, built, analysed and served."""

from __future__ import annotations

from typing import Annotated

import typer


def register(root: typer.Typer) -> None:
    """Attach ``demo`` to the root CLI."""
    root.command("demo")(demo)


def demo(
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Serve the demo study on 127.0.0.1 afterwards (--no-serve: print and exit, "
            "for CI and scripts).",
        ),
    ] = True,
) -> None:
    """Simulate a small peer-support trial, import and analyse it against the truth it was
    simulated with, and serve it with links for a participant, a PS worker and a researcher."""
    from peerlens._commands._common import user_errors
    from peerlens._commands._demo_job import run_demo
    from peerlens.narrative import load_model

    with user_errors():
        # the story model (and its encoder weights) before anything is written: without the
        # weights the demo stops here with exit status 2 and the command that installs them
        load_model()
    run_demo(serve=serve)
