"""The one ``peerlens`` command line, over every sub-package.

Each area's commands live in :mod:`peerlens._commands` (one module per area); this module only
assembles them. Heavy imports happen inside the commands so ``peerlens --help`` stays fast.
"""

from __future__ import annotations

import typer

from peerlens._commands import demo as _demo
from peerlens._commands import hrv as _hrv
from peerlens._commands import instruments as _instruments
from peerlens._commands import report as _report
from peerlens._commands import story as _story
from peerlens._commands import study as _study
from peerlens._commands import tokens as _tokens
from peerlens._commands import web as _web

app = typer.Typer(
    name="peerlens",
    help="Peer support research and practice: scoring, HRV, story analysis, study data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_instruments.register(app)
_story.register(app)
_hrv.register(app)
_study.register(app)
_report.register(app)
_tokens.register(app)
_demo.register(app)
_web.register(app)


def main() -> None:  # pragma: no cover - console entry point
    """Run the CLI."""
    app()
