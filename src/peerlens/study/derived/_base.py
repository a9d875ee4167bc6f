"""The interface every kind of derived result implements, and the helpers they share.

A kind (scores, HRV, story; one module each, like httpx's one transport per module behind
``BaseTransport``) says where its results come from, how they are computed, how they are stored
and how stored results are read back; :mod:`peerlens.study.derived._runs` does the bookkeeping
every kind shares (one :class:`~peerlens.study.models.Derivation` row per run, its digest, the
audit entry, the lock) and :mod:`peerlens.study.derived._api` walks the kinds by name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd
from sqlalchemy import Select
from sqlalchemy.orm import Session

from peerlens.study.models import Study

InputsT = TypeVar("InputsT")
ResultsT = TypeVar("ResultsT")


@dataclass(frozen=True)
class DeriveOptions:
    """How :func:`~peerlens.study.derived.derive` was asked to run (used by the HRV kind)."""

    blob_dir: Path
    executor: str = "dask"
    n_workers: int = 2
    processes: bool = True
    max_artifact_rate: float = 0.05
    progress: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class Batch:
    """The rows one run stores, in digest order, and what the run records about them."""

    #: The kind's own rows (plain values), in the order their digest is taken.
    rows: Sequence[Any]
    #: Inputs derived from (responses, recordings, transcripts).
    inputs: int
    #: Rows written to the database.
    n_rows: int
    #: Inputs that could not be analysed (stored as error rows, or named in ``versions``).
    errors: int
    #: Versions of the computation (and anything else the run records in its audit entry).
    versions: dict[str, Any]


class DerivedKind(Protocol[InputsT, ResultsT]):
    """One kind of derived result.

    A run is ``collect`` -> ``compute`` -> ``batch`` -> (``delete_rows``, ``insert_rows``), its
    digest taken over ``digest_rows(batch.rows)``; ``stored_digest_rows`` must give the same
    tuples back from the database, so that a row inserted, deleted or edited behind peerlens's
    back changes the digest.
    """

    #: Name in ``derive(what=...)``, in :class:`~peerlens.study.models.Derivation` rows and in
    #: the audit log (``derive.<what>``).
    what: str
    #: Names of the frames :meth:`frame` gives (``derived_frame(what=...)``).
    views: tuple[str, ...]
    #: True when :meth:`compute` may take minutes: it then runs outside any transaction, and
    #: the batch is made and written in a second one (the caller's rights checked again).
    slow: bool

    def collect(self, session: Session, study: Study, options: DeriveOptions) -> InputsT:
        """What to derive from, read in a transaction."""
        ...

    def compute(self, inputs: InputsT, options: DeriveOptions) -> ResultsT:
        """The results of ``inputs`` (no database access)."""
        ...

    def batch(
        self, session: Session, inputs: InputsT, results: ResultsT, options: DeriveOptions
    ) -> Batch:
        """The rows to store, in the writing transaction."""
        ...

    def digest_rows(self, rows: Sequence[Any]) -> Iterable[tuple[Any, ...]]:
        """The tuples the digest of ``rows`` (a batch's) is taken over."""
        ...

    def delete_rows(self, session: Session, run_ids: Select[Any]) -> None:
        """Delete the stored rows of the runs ``run_ids`` selects."""
        ...

    def insert_rows(self, session: Session, run_id: int, rows: Sequence[Any]) -> None:
        """Store a batch's rows as run ``run_id``'s."""
        ...

    def stored_digest_rows(self, session: Session, run_id: int) -> Iterable[tuple[Any, ...]]:
        """:meth:`digest_rows` of run ``run_id``'s rows as stored now."""
        ...

    def frame(self, session: Session, study: Study, view: str) -> pd.DataFrame:
        """Stored results as a tidy frame (one of :attr:`views`), each row marked ``current``
        or ``stale`` in ``derivation``."""
        ...

    def status(
        self, session: Session, study: Study, within: frozenset[str] | None
    ) -> tuple[int, pd.Series]:
        """Inputs stored now, and the state (``current``/``stale``) of each that has results,
        counting only participants whose study codes are in ``within`` (``None``: all)."""
        ...


def num(value: Any) -> float | None:
    """A finite float, or ``None`` (NaN, inf and missing are stored as NULL)."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def digest(rows: Iterable[Sequence[Any]]) -> str:
    """sha256 of ``rows`` (plain ints, floats, strings, bools and None, in a fixed order), one
    ``repr`` of each row's tuple per line (``repr`` of a float round-trips exactly)."""
    text = "\n".join(repr(tuple(row)) for row in rows)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def worst_state(frame: pd.DataFrame, by: str | list[str]) -> pd.Series:
    """Per group of ``frame``: ``stale`` when any of its rows is, else ``current``."""
    return frame.groupby(by)["derivation"].agg(
        lambda x: "stale" if (x == "stale").any() else "current"
    )
