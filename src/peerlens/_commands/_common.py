"""Shared CLI plumbing: turning :class:`peerlens.PeerlensError` into a clear message and exit 2."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from peerlens import PeerlensError, PeerlensWarning

#: Exit code for bad input (file, row, column or value the user can fix).
EXIT_BAD_INPUT = 2
#: Exit code for a database error nobody foresaw (reported without the database's message).
EXIT_DATABASE = 1

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``message`` to stderr as an error and exit with ``code``."""
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", markup=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report any :class:`PeerlensError` raised inside the block as a clean CLI error (exit 2),
    an unexpected database error by its class and SQLSTATE only (exit 1), and peerlens's
    warnings (a file decoded as Windows-1252, a dropped empty column, ...) as ``warning:`` lines
    on stderr.

    Other packages' warnings raised inside the block are passed on unchanged, once the block's
    recording has ended: re-issued while it records, each would be recorded again, without end.
    """
    failure: tuple[str, int] | None = None
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PeerlensWarning)
            try:
                yield
            except PeerlensError as exc:
                failure = (str(exc), EXIT_BAD_INPUT)
            except Exception as exc:
                from sqlalchemy.exc import SQLAlchemyError

                if not isinstance(exc, SQLAlchemyError):
                    raise
                from peerlens.study import describe_error

                # Never the database's message: it can quote the failing row or the parameters.
                failure = (
                    f"the database refused the operation ({describe_error(exc)}); "
                    "nothing was saved",
                    EXIT_DATABASE,
                )
    finally:
        _show(caught)
    if failure is not None:
        fail(*failure)


def _show(caught: list[warnings.WarningMessage]) -> None:
    """Print peerlens's warnings as ``warning:`` lines and issue the others again as raised
    (call outside the ``catch_warnings`` that recorded them)."""
    for w in caught:
        if issubclass(w.category, PeerlensWarning):
            err_console.print(f"[yellow]warning:[/yellow] {escape(str(w.message))}", markup=True)
        else:  # not ours: pass it on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
