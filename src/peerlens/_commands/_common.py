"""Shared CLI plumbing: turning :class:`peerlens.PeerlensError` into a clear message and exit 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

from peerlens import PeerlensError

#: Exit code for bad input (file, row, column or value the user can fix).
EXIT_BAD_INPUT = 2

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``message`` to stderr as an error and exit with ``code``."""
    err_console.print(f"[bold red]error:[/bold red] {message}", markup=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report any :class:`PeerlensError` raised inside the block as a clean CLI error (exit 2)."""
    try:
        yield
    except PeerlensError as exc:
        fail(str(exc))
