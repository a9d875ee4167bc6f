"""Errors raised by :mod:`peerlens.study` on bad input or refused operations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peerlens import PeerlensError


class StudyError(PeerlensError):
    """A study-data operation was refused; the message says what and where."""


class TamperedError(StudyError):
    """Data about to be changed were already changed outside peerlens (their row seal no longer
    matches): the write is refused so that a lawful change never seals a tampered row."""


class ConcurrentChange(StudyError):
    """Another transaction changed the same data at the same moment and the database undid
    this one to let the other finish (PostgreSQL found a deadlock or a serialisation failure):
    nothing was stored; doing it again works."""


class PermissionDenied(StudyError):
    """The acting user lacks the role or export right the operation needs."""


class NotFound(PermissionDenied):
    """What was named (a study, participant, recording, story) does not exist, or the caller may
    not see it: one error with the same words for both, so that a refusal never tells a caller
    what exists (the web app answers 404 for either)."""


class ConsentNeeded(StudyError):
    """A participant has not agreed to the study's current consent text (none yet, or the
    researcher set a new version since they agreed): nothing was stored; ask them to read and
    agree to the current version first."""


@dataclass(frozen=True)
class Problem:
    """One problem found in an import file.

    ``row`` is the 1-based data row (the header is row 0; ``None`` for file-level problems) and
    ``column`` the column name (``None`` when the whole row is at fault).
    """

    row: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = ", ".join(where) if where else "file"
        return f"{prefix}: {self.reason}"


class ImportRejected(StudyError):
    """An import file had problems; nothing from it was stored.

    ``problems`` lists every problem found (row, column, reason), not only the first.
    """

    def __init__(self, source: str, problems: Sequence[Problem], limit: int = 50) -> None:
        self.source = source
        self.problems = tuple(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{source}: {len(self.problems)} problem(s), nothing was imported:\n{shown}{tail}"
        )
