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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from peerlens.study.models import Derivation, Participant, Study
from peerlens.study.models import Session as PSSession

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
    #: True when a run also records the additive digest of its rows (:func:`digest_sum`), so
    #: that rows replaced in place (a response re-scored) update it without reading the run.
    summed: bool

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


def shown_error(text: Any, *, full: bool) -> Any:
    """An error text of a stored result as a reader sees it: whole at the ``full`` export tier,
    else only ``"error"`` (HRV errors may quote what a file holds, story errors a speaker's
    name). A missing text (a result without error) stays missing.

    Examples
    --------
    >>> shown_error("speaker 'Ana' not found", full=False), shown_error(None, full=False)
    ('error', None)
    """
    if full or text is None or pd.isna(text):
        return text
    return "error"


def error_row(
    message: str, ids: Mapping[str, Any], empty: Iterable[str], **fixed: Any
) -> dict[str, Any]:
    """The stored row of an input that could not be analysed (the same shape for every kind).

    Its keys are, in this order: ``ids`` (which input, which part of it), ``status``
    (``"error"``) and ``error`` (``message``), each of ``empty`` (the measures, ``None``) and
    ``fixed`` (values an error row still records: empty JSON, versions). The order is kept
    because a run's digest is taken over these rows.

    Examples
    --------
    >>> error_row("no beats", {"label": "whole"}, ["n_beats"], metrics={})
    {'label': 'whole', 'status': 'error', 'error': 'no beats', 'n_beats': None, 'metrics': {}}
    """
    return {**ids, "status": "error", "error": message, **dict.fromkeys(empty), **fixed}


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


#: Bits of an additive digest: sums of 2048-bit row hashes modulo 2^2048. A sum of hashes is
#: open to Wagner's generalized-birthday attack (a set of made-up rows whose hashes add up to a
#: chosen value), which a modulus of about 1600 bits or more puts out of reach (Wagner 2002,
#: "A generalized birthday problem", CRYPTO 2002, LNCS 2442, pp. 288-304, section 5 on AdHash;
#: Bellare and Micciancio 1997, "A new paradigm for collision-free hashing: incrementality at
#: reduced cost", EUROCRYPT '97, LNCS 1233).
SUM_BITS = 2048
_SUM_MODULUS = 1 << SUM_BITS


def row_term(row: Sequence[Any]) -> int:
    """One row's term of an additive digest: SHAKE256 of the row's ``repr`` (as :func:`digest`
    writes it), :data:`SUM_BITS` bits read as an integer."""
    data = repr(tuple(row)).encode("utf-8")
    return int.from_bytes(hashlib.shake_256(data).digest(SUM_BITS // 8), "big")


def digest_sum(rows: Iterable[Sequence[Any]], start: int = 0) -> int:
    """``start`` plus the terms of ``rows`` (:func:`row_term`), modulo 2^:data:`SUM_BITS`: a
    digest of the rows as a set, to which rows are added and from which they are taken away
    (subtract a row's term) without reading the others.

    Examples
    --------
    >>> a, b = (1, "total", 3.0), (2, "total", None)
    >>> digest_sum([a, b]) == digest_sum([b], digest_sum([a]))
    True
    >>> (digest_sum([a, b]) - row_term(b)) % 2**SUM_BITS == digest_sum([a])
    True
    """
    return (start + sum(map(row_term, rows))) % _SUM_MODULUS


def sum_text(value: int) -> str:
    """An additive digest as recorded in the audit log (hex, :data:`SUM_BITS` / 4 digits)."""
    return f"{value % _SUM_MODULUS:0{SUM_BITS // 4}x}"


def stored_results(result: Any, source: Any, source_id: Any, *columns: Any) -> Select[Any]:
    """Stored ``result`` rows (a derived-results model) with their context: a select of the
    participant's study code, the PS session label, ``columns``, the ``result`` row and its
    run's ``derived_at``, joined through the ``source`` row (recording, transcript) whose id is
    ``source_id``. Participant and session are outer joins (a story may belong to neither);
    the caller limits the rows to one study and orders them."""
    return (
        select(Participant.study_code, PSSession.label, *columns, result, Derivation.derived_at)
        .join(source, source.id == source_id)
        .join(Derivation, Derivation.id == result.derivation_id)
        .outerjoin(Participant, Participant.id == source.participant_id)
        .outerjoin(PSSession, PSSession.id == source.session_id)
    )


def worst_state(frame: pd.DataFrame, by: str | list[str]) -> pd.Series:
    """Per group of ``frame``: ``stale`` when any of its rows is, else ``current``."""
    return frame.groupby(by)["derivation"].agg(
        lambda x: "stale" if (x == "stale").any() else "current"
    )
