"""The one scoring engine: every instrument spec scored the same vectorised way.

The engine works on a validated ``(responses x items)`` float matrix with NaN for missing
answers (from :func:`peerlens.instruments.validation.item_matrix`) and evaluates the spec's
scores in order. Missing answers are never counted as 0: a score is either computed under its
spec's missing-data rule or left missing (NaN).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from peerlens import PeerlensError, PeerlensWarning, __version__
from peerlens.instruments._spec import (
    BandScore,
    CompositeScore,
    ConversionScore,
    FlagScore,
    InstrumentSpec,
    ItemScore,
)
from peerlens.instruments.registry import load_spec, spec_digest
from peerlens.instruments.validation import detect_instruments, item_matrix, parse_missing_codes

__all__ = [
    "ScoreColumnConflictError",
    "ScoreResult",
    "ScoringCaveatWarning",
    "ScoringProvenance",
    "score",
    "score_matrix",
    "score_with_provenance",
]

#: Version of the scoring engine's rules; recorded with every score.
ENGINE_VERSION = "1"


class ScoringCaveatWarning(PeerlensWarning):
    """A score was computed but its instrument's authors advise caution (e.g. SCS-SF subscales)."""


class ScoreColumnConflictError(PeerlensError):
    """The input already has a column the scores would be written to."""


@dataclass(frozen=True)
class ScoringProvenance:
    """How one instrument's scores were computed."""

    instrument: str
    spec_version: str
    spec_sha256: str
    engine_version: str
    peerlens_version: str
    missing_codes: tuple[str, ...]
    scoring_source: str
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreResult:
    """Scored data plus how it was scored.

    Attributes
    ----------
    data
        The input columns followed by each instrument's score columns.
    provenance
        One :class:`ScoringProvenance` per instrument, in scoring order.
    """

    data: pd.DataFrame
    provenance: tuple[ScoringProvenance, ...] = field(default_factory=tuple)


def _round_half_up(values: np.ndarray) -> np.ndarray:
    # numpy rounds half to even (2.5 -> 2); the PHQ/GAD proration rule rounds half up.
    return np.floor(values + 0.5)


class _Items:
    """Column-major item data prepared once per matrix: sums over any item subset are then a
    few contiguous vector additions (the matrix is tall and narrow)."""

    def __init__(self, raw: np.ndarray, spec: InstrumentSpec) -> None:
        self.raw = np.asfortranarray(raw, dtype=np.float64)
        self.missing = np.isnan(self.raw)
        self.complete = not self.missing.any()
        self.raw0 = self.raw if self.complete else np.where(self.missing, 0.0, self.raw)
        # Reversed columns only (min + max - x, missing as 0): no copy of the whole matrix.
        self.reversed0: dict[int, np.ndarray] = {}
        mirror = spec.response_min + spec.response_max
        for j in np.asarray(spec.reverse_items, dtype=np.int64) - 1:
            col = mirror - self.raw[:, j]
            self.reversed0[int(j)] = col if self.complete else np.where(self.missing[:, j], 0, col)

    def block_sum(self, idx: np.ndarray, keyed: bool) -> tuple[np.ndarray, np.ndarray]:
        """Sum of the answered items in ``idx`` and how many of them are answered, per row."""
        n = self.raw0.shape[0]
        total = np.zeros(n)
        for j in idx:
            j = int(j)
            total += self.reversed0[j] if keyed and j in self.reversed0 else self.raw0[:, j]
        if self.complete:
            return total, np.full(n, len(idx), dtype=np.int64)
        n_answered = np.zeros(n, dtype=np.int64)
        for j in idx:
            n_answered += ~self.missing[:, j]
        return total, n_answered


def _item_score(
    s: ItemScore,
    data: _Items,
    done: dict[str, np.ndarray],
    used_fewer: np.ndarray,
) -> np.ndarray:
    n_items = data.raw.shape[1]
    idx = np.arange(n_items) if s.items == "all" else np.asarray(s.items) - 1
    total, n_answered = data.block_sum(idx, s.keyed)
    n_missing = len(idx) - n_answered
    ok = n_answered > 0
    if s.missing.max_missing is not None:
        ok &= n_missing <= s.missing.max_missing
    for name in s.requires:
        ok &= ~np.isnan(done[name])
    with np.errstate(invalid="ignore", divide="ignore"):
        if s.aggregate == "mean":
            value = total / n_answered
        elif data.complete:
            value = total
        else:
            # Prorated sum = mean of answered items x number of items, computed as
            # total * k / n so that exact halves stay exact for half-up rounding.
            value = np.where(n_missing == 0, total, total * len(idx) / n_answered)
            if s.missing.rounding == "half_up":
                value = np.where(n_missing == 0, value, _round_half_up(value))
    if not data.complete:
        value = np.where(ok, value, np.nan)
        used_fewer |= ok & (n_missing > 0)
    elif s.requires:
        value = np.where(ok, value, np.nan)
    return value


def _bands(s: BandScore, source: np.ndarray) -> pd.Categorical[str]:
    labels = [b.label for b in s.bands]
    lows = np.array([b.low for b in s.bands])
    highs = np.array([b.high for b in s.bands])
    pos = np.searchsorted(lows, source, side="right") - 1
    valid = ~np.isnan(source) & (pos >= 0)
    pos_c = np.clip(pos, 0, len(labels) - 1)
    valid &= source <= highs[pos_c]
    codes = np.where(valid, pos_c, -1).astype(np.int64)
    return pd.Categorical.from_codes(codes, categories=pd.Index(labels), ordered=True)


def score_matrix(values: np.ndarray, spec: InstrumentSpec) -> dict[str, object]:
    """Score a validated item matrix.

    Parameters
    ----------
    values
        ``(n, spec.n_items)`` float array of answers in the response range, NaN when missing
        (as returned by :func:`~peerlens.instruments.validation.item_matrix`).
    spec
        The instrument.

    Returns
    -------
    dict
        Column name to array-like, in :attr:`InstrumentSpec.score_columns` order: float arrays
        for scores (NaN when the missing-data rule is not met), an ordered categorical for bands,
        a nullable boolean array for flags, ``<id>_n_answered`` (int) and ``<id>_prorated``
        (bool: some reported score rests on fewer items than it has, by mean of the answered
        items or a prorated sum).

    Examples
    --------
    >>> import numpy as np
    >>> from peerlens.instruments import load_spec
    >>> out = score_matrix(np.array([[2.0, 3, 3], [1, np.nan, 2]]), load_spec("ucla3"))
    >>> out["ucla3_total"]
    array([ 8., nan])
    """
    raw = np.asarray(values, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != spec.n_items:
        raise ValueError(f"{spec.id}: expected an (n, {spec.n_items}) matrix, got {raw.shape}")
    data = _Items(raw, spec)
    done: dict[str, np.ndarray] = {}
    out: dict[str, object] = {}
    used_fewer = np.zeros(raw.shape[0], dtype=bool)
    for s in spec.scores:
        if isinstance(s, ItemScore):
            done[s.name] = _item_score(s, data, done, used_fewer)
            out[s.name] = done[s.name]
        elif isinstance(s, CompositeScore):
            parts = np.column_stack(
                [
                    spec.response_min + spec.response_max - done[n] if n in s.reverse else done[n]
                    for n in s.of
                ]
            )
            # A NaN part makes the mean NaN: composites need every part.
            done[s.name] = parts.mean(axis=1)
            out[s.name] = done[s.name]
        elif isinstance(s, BandScore):
            out[s.name] = _bands(s, done[s.source])
        elif isinstance(s, FlagScore):
            item = raw[:, s.item - 1]
            out[s.name] = pd.arrays.BooleanArray(item >= s.threshold, np.isnan(item))
        elif isinstance(s, ConversionScore):
            src = done[s.source]
            lookup = np.full(max(s.table) + 1, np.nan)
            for raw_score, metric in s.table.items():
                lookup[raw_score] = metric
            finite = ~np.isnan(src)
            converted = np.full(src.shape, np.nan)
            converted[finite] = lookup[src[finite].astype(np.int64)]
            done[s.name] = converted
            out[s.name] = converted
    out[f"{spec.id}_n_answered"] = (
        np.full(raw.shape[0], spec.n_items, dtype=np.int64)
        if data.complete
        else spec.n_items - data.missing.sum(axis=1)
    )
    out[f"{spec.id}_prorated"] = used_fewer
    return out


def _resolve(frame: pd.DataFrame, instruments: str | Sequence[str] | None) -> list[InstrumentSpec]:
    if instruments is None:
        ids = detect_instruments(frame.columns)
        if not ids:
            raise PeerlensError(
                "no instrument item columns found (expected columns like scs_1, phq9_1, ...)"
            )
    elif isinstance(instruments, str):
        ids = [instruments]
    else:
        ids = list(dict.fromkeys(instruments))
    return [load_spec(i) for i in ids]


def score_with_provenance(
    frame: pd.DataFrame,
    instruments: str | Sequence[str] | None = None,
    *,
    missing_codes: Iterable[str | int | float] = (),
    source: str | None = None,
    replace_existing: bool = False,
) -> ScoreResult:
    """Score one or more instruments in a wide table and say how.

    Parameters
    ----------
    frame
        One row per response. Item columns ``<id>_<n>``; every other column (participant,
        timepoint, ...) is kept as it is.
    instruments
        Instrument ids to score; ``None`` detects them from the column names.
    missing_codes
        Codes meaning "not answered", e.g. ``(-9, -99)``.
    source
        The input's file name, used in error messages.
    replace_existing
        Overwrite score columns the input already has (otherwise that is an error).

    Returns
    -------
    ScoreResult

    Raises
    ------
    UnknownInstrumentError, ItemColumnError, ItemValueError, MissingCodeError,
    ScoreColumnConflictError
        Nothing is scored when any instrument's items are invalid.

    Warns
    -----
    ScoringCaveatWarning
        For instruments whose authors advise caution about some scores.
    """
    specs = _resolve(frame, instruments)
    codes = parse_missing_codes(missing_codes)
    # Validate everything before scoring anything: all or nothing.
    matrices = [(spec, item_matrix(frame, spec, codes, source)) for spec in specs]
    new_columns: dict[str, object] = {}
    provenance: list[ScoringProvenance] = []
    for spec, values in matrices:
        new_columns.update(score_matrix(values, spec))
        for caveat in spec.warnings:
            warnings.warn(f"{spec.short_name}: {caveat}", ScoringCaveatWarning, stacklevel=2)
        provenance.append(
            ScoringProvenance(
                instrument=spec.id,
                spec_version=spec.version,
                spec_sha256=spec_digest(spec.id),
                engine_version=ENGINE_VERSION,
                peerlens_version=__version__,
                missing_codes=codes,
                scoring_source=spec.scoring_source,
                caveats=tuple(spec.warnings),
            )
        )
    clash = [c for c in new_columns if c in frame.columns]
    if clash and not replace_existing:
        where = f"{source}: " if source else ""
        raise ScoreColumnConflictError(
            f"{where}the input already has score column(s) {', '.join(clash)}; "
            "remove them or ask to replace them"
        )
    base = frame.drop(columns=clash) if clash else frame
    scores = pd.DataFrame(new_columns, index=frame.index)
    return ScoreResult(pd.concat([base, scores], axis=1), tuple(provenance))


def score(
    frame: pd.DataFrame,
    instruments: str | Sequence[str] | None = None,
    *,
    missing_codes: Iterable[str | int | float] = (),
    source: str | None = None,
    replace_existing: bool = False,
) -> pd.DataFrame:
    """Score instruments in a wide table; the input columns followed by the score columns.

    Same parameters as :func:`score_with_provenance`, which also returns how scores were made.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": ["p1", "p2"], "gad7_1": [3, 1], "gad7_2": [3, 0],
    ...     "gad7_3": [2, 0], "gad7_4": [2, ""], "gad7_5": [1, 0], "gad7_6": [1, 1],
    ...     "gad7_7": [0, 0]})
    >>> score(frame, "gad7")[["id", "gad7_total", "gad7_severity", "gad7_prorated"]]
       id  gad7_total gad7_severity  gad7_prorated
    0  p1        12.0      moderate          False
    1  p2         2.0       minimal           True
    """
    return score_with_provenance(
        frame,
        instruments,
        missing_codes=missing_codes,
        source=source,
        replace_existing=replace_existing,
    ).data
