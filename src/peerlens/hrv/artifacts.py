"""RR artifact detection and correction after Lipponen & Tarvainen (2019).

Detection (:func:`detect_artifacts`) labels every RR interval ``normal``, ``ectopic``,
``missed``, ``extra``, ``long`` or ``short``; correction (:func:`correct_artifacts`) turns the
labels into a corrected beat series and NN intervals. The two are separate steps with separate
outputs, and correction only touches beats named by a label: every other beat keeps its exact
time. Intervals that span unusable ECG (see :mod:`peerlens.hrv.quality`) can be declared as
``gaps``: they are labelled ``gap``, never corrected, and no NN interval spans them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from peerlens.hrv._blas import single_blas_thread
from peerlens.hrv._errors import HrvInputError, RecordingTooShortError

__all__ = ["ARTIFACT_TYPES", "ArtifactCorrection", "correct_artifacts", "detect_artifacts"]

#: Labels used in the ``type`` column of :func:`detect_artifacts`.
ARTIFACT_TYPES = ("normal", "ectopic", "missed", "extra", "long", "short")
#: Label of an interval declared a gap (it spans unusable signal; not an RR interval).
GAP = "gap"
_LABELS = (*ARTIFACT_TYPES, GAP)
_CODE = {name: code for code, name in enumerate(_LABELS)}
#: Values of :attr:`ArtifactCorrection.beat_source`.
_SOURCES = np.array(["original", "moved", "inserted"])

# Lipponen & Tarvainen (2019), section 2.2: alpha = 5.2 (threshold in quartile deviations, which
# would cover 99.95 % of normal beats), 91-beat window for the quartile deviation, 11-beat median
# filter, ectopic decision boundary constants c1 = 0.13 and c2 = 0.17.
ALPHA = 5.2
QD_WINDOW = 91
MEDIAN_WINDOW = 11
C1 = 0.13
C2 = 0.17


@dataclass(frozen=True)
class _Classified:
    rr: NDArray[np.float64]
    drr: NDArray[np.float64]
    mrr: NDArray[np.float64]
    median: NDArray[np.float64]
    code: NDArray[np.int8]
    gap: NDArray[np.bool_]


def _rolling_pandas(
    values: NDArray[np.float64], window: int, q: float | None
) -> NDArray[np.float64]:
    s = pd.Series(values).rolling(window, center=True, min_periods=1)
    out = s.median() if q is None else s.quantile(q)
    return out.to_numpy(dtype=np.float64)


def _rolling(values: NDArray[np.float64], window: int, q: float | None) -> NDArray[np.float64]:
    """Centred rolling median (``q=None``) or linear-interpolation quantile over an odd window.

    The same numbers as pandas' ``rolling(window, center=True, min_periods=1)``: full windows
    by order-statistic filters (``scipy.ndimage.rank_filter``, several times faster than
    pandas' skip list), the quantile interpolated as vlow + (vhigh - vlow) * fraction like
    pandas; the shrinking windows at both ends by pandas itself.
    """
    n, half = values.size, window // 2
    if n <= 2 * window:
        return _rolling_pandas(values, window, q)
    pos = (window - 1) * (0.5 if q is None else q)
    low = int(np.floor(pos))
    out = ndimage.rank_filter(values, low, size=window, mode="nearest")
    frac = pos - low
    if frac > 0:
        high = ndimage.rank_filter(values, low + 1, size=window, mode="nearest")
        out = out + (high - out) * frac
    out[:half] = _rolling_pandas(values[: window + half], window, q)[:half]
    out[n - half :] = _rolling_pandas(values[n - window - half :], window, q)[-half:]
    return out


def _threshold(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Time-varying threshold alpha * QD(|values|) over a 91-beat window (QD = (Q3 - Q1) / 2)."""
    a = np.abs(values)
    return ALPHA * (_rolling(a, QD_WINDOW, 0.75) - _rolling(a, QD_WINDOW, 0.25)) / 2.0


def _as_rr(rr_ms: ArrayLike) -> NDArray[np.float64]:
    rr = np.asarray(rr_ms, dtype=np.float64).ravel()
    if rr.size < 4:
        raise RecordingTooShortError(f"{rr.size} RR intervals; artifact detection needs at least 4")
    bad = ~np.isfinite(rr) | (rr <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise HrvInputError(f"RR interval {i + 1} is {float(rr[i]):g}; intervals must be positive")
    return rr


def _as_gaps(gaps: ArrayLike | None, n: int) -> NDArray[np.bool_]:
    if gaps is None:
        return np.zeros(n, dtype=bool)
    gap = np.asarray(gaps, dtype=bool).ravel()
    if gap.size != n:
        raise HrvInputError(f"gaps has {gap.size} values for {n} RR intervals (need one each)")
    if n - int(gap.sum()) < 4:
        raise RecordingTooShortError(
            f"{n - int(gap.sum())} RR intervals outside gaps; artifact detection needs at least 4"
        )
    return gap


def _fill_gaps(rr: NDArray[np.float64], gap: NDArray[np.bool_]) -> NDArray[np.float64]:
    """``rr`` with each gap replaced by the 11-interval median of the measured intervals.

    The placeholders keep the rolling windows of the classification aligned without letting a
    gap (a stretch of unusable signal, often many seconds long) look like an outlier to its
    neighbours; they are never used as intervals.
    """
    if not gap.any():
        return rr
    kept = np.flatnonzero(~gap)
    med = _rolling(rr[kept], MEDIAN_WINDOW, None)
    out = rr.copy()
    out[gap] = np.interp(np.flatnonzero(gap), kept, med)
    return out


def detect_artifacts(rr_ms: ArrayLike, *, gaps: ArrayLike | None = None) -> pd.DataFrame:
    """Classify each RR interval following Lipponen & Tarvainen (2019).

    Parameters
    ----------
    rr_ms
        RR intervals in ms, in order.
    gaps
        Optional boolean per interval: True where the "interval" spans unusable signal (from
        :func:`peerlens.hrv.assess_quality`) and is not an RR interval at all. Gaps are labelled
        ``gap``; for the classification of the others each gap is replaced by the local median
        of the measured intervals, so it neither looks like an outlier nor shifts the rolling
        windows.

    Returns
    -------
    pandas.DataFrame
        One row per interval: ``interval`` (0-based), ``rr_ms``, ``drr`` (normalised successive
        difference), ``mrr`` (normalised deviation from the 11-beat median), ``median_rr_ms``,
        ``type`` (one of :data:`ARTIFACT_TYPES`, or ``gap``) and ``artifact`` (bool; False for
        gaps).

    Notes
    -----
    With dRR(j) = RR(j) - RR(j-1) and mRR(j) = RR(j) - median11(RR)(j), negative mRR doubled,
    both normalised by Th = 5.2 * QD over 91 beats (Lipponen & Tarvainen 2019, eqs. 1-4):

    - ectopic: dRR(j) > 1 and S12(j) < -c1 dRR(j) - c2, or dRR(j) < -1 and
      S12(j) > -c1 dRR(j) + c2, with S12(j) the max (dRR(j) > 0) or min (dRR(j) < 0) of
      dRR(j-1) and dRR(j+1);
    - long/short: dRR(j) > 1 and S22(j) < -1, or dRR(j) < -1 and S22(j) > 1, or |mRR(j)| > 3,
      with S22(j) the min (dRR(j) >= 0) or max (dRR(j) < 0) of dRR(j+1) and dRR(j+2);
    - a long interval is ``missed`` when |RR(j)/2 - median(j)| < Th2(j); a short one is
      ``extra`` when |RR(j) + RR(j+1) - median(j)| < Th2(j).

    The first dRR is set to the mean of the others (it has no predecessor). Each interval is
    tested on its own (vectorised), rather than in the sequential flow of the paper's figure 1,
    so the label of one interval never depends on the order of evaluation.

    References
    ----------
    Lipponen JA, Tarvainen MP (2019). A robust algorithm for heart rate variability time series
    artefact correction using novel beat classification. J Med Eng Technol 43(3): 173-181.

    Examples
    --------
    >>> import numpy as np
    >>> rr = 800 + 30 * np.sin(np.arange(60) / 3)     # a sinus rhythm with RSA
    >>> rr = np.concatenate((rr[:30], [400.0, 400.0], rr[31:]))  # a false beat splits one interval
    >>> types = detect_artifacts(rr)["type"]
    >>> types[types != "normal"].to_dict()
    {30: 'extra', 31: 'extra'}
    """
    return _table(_classify(rr_ms, gaps))


def _classify(rr_ms: ArrayLike, gaps: ArrayLike | None = None) -> _Classified:
    """The classification behind :func:`detect_artifacts` (type codes, no DataFrame)."""
    measured = _as_rr(rr_ms)
    gap = _as_gaps(gaps, measured.size)
    rr = _fill_gaps(measured, gap)
    n = rr.size
    drr = np.empty(n)
    drr[1:] = np.diff(rr)
    drr[0] = drr[1:].mean()
    th1 = _threshold(drr)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(th1 > 0, drr / th1, 0.0)
    med = _rolling(rr, MEDIAN_WINDOW, None)
    mrr = rr - med
    mrr = np.where(mrr < 0, 2.0 * mrr, mrr)
    th2 = _threshold(mrr)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(th2 > 0, mrr / th2, 0.0)

    pad = np.pad(d, 2, mode="reflect")
    prev1, next1, next2 = pad[1:-3], pad[3:-1], pad[4:]
    s12 = np.where(d > 0, np.maximum(prev1, next1), np.where(d < 0, np.minimum(prev1, next1), 0))
    s22 = np.where(d >= 0, np.minimum(next1, next2), np.maximum(next1, next2))

    ectopic = ((d > 1) & (s12 < -C1 * d - C2)) | ((d < -1) & (s12 > -C1 * d + C2))
    is_long = (d > 1) & (s22 < -1)
    is_short = (d < -1) & (s22 > 1)
    big = np.abs(m) > 3
    longshort = (is_long | is_short | big) & ~ectopic
    long_side = longshort & (rr > med)
    short_side = longshort & ~long_side
    rr_next = np.append(rr[1:], np.inf)
    missed = long_side & (np.abs(rr / 2 - med) < th2)
    extra = short_side & (np.abs(rr + rr_next - med) < th2)
    # the second half of a split interval is explained by the same extra beat
    extra[1:] |= extra[:-1] & longshort[1:]

    code = np.zeros(n, dtype=np.int8)  # index into ARTIFACT_TYPES
    code[long_side] = _CODE["long"]
    code[short_side] = _CODE["short"]
    code[missed] = _CODE["missed"]
    code[extra] = _CODE["extra"]
    code[ectopic] = _CODE["ectopic"]
    if gap.any():
        code[gap] = _CODE[GAP]
        d = np.where(gap, np.nan, d)
        m = np.where(gap, np.nan, m)
    return _Classified(measured, d, m, med, code, gap)


def _table(c: _Classified) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "interval": np.arange(c.rr.size),
            "rr_ms": c.rr,
            "drr": c.drr,
            "mrr": c.mrr,
            "median_rr_ms": c.median,
            "type": pd.Series(np.asarray(_LABELS, dtype=object)[c.code], dtype="string"),
        }
    )
    out["artifact"] = (c.code != 0) & ~c.gap
    return out


@dataclass(frozen=True)
class ArtifactCorrection:
    """Result of :func:`correct_artifacts`.

    Attributes
    ----------
    detection
        The per-interval labels from :func:`detect_artifacts` (on the input series).
    beat_times_ms
        Corrected beat times in ms from the first beat (which is at 0).
    beat_source
        Per corrected beat: ``"original"`` (time untouched), ``"moved"`` (an ectopic or
        misplaced beat put back on the interpolated sinus position) or ``"inserted"``
        (a missed beat).
    original_index
        Per corrected beat, the index of the input beat it comes from (-1 when inserted).
    removed_beats
        Indices of input beats removed as extra.
    nn_ms
        Corrected NN intervals in ms: the differences of consecutive corrected beats, except
        those across a gap (without gaps, ``numpy.diff(beat_times_ms)``).
    artifact_rate
        Share of the input intervals outside gaps labelled as artifacts (0-1).
    counts
        Number of intervals of each artifact type (gaps not included).
    nn_end_ms
        Time of the beat that closes each NN interval (ms from the first input beat).
    nn_segment
        Per NN interval, the number of gaps before it: intervals with equal values form one
        continuous run of beats, so successive differences are only taken within a value.
    excluded_beats
        Indices of input beats left out because every interval touching them is a gap.
    n_gaps
        Number of input intervals declared gaps.
    """

    detection: pd.DataFrame = field(repr=False)
    beat_times_ms: NDArray[np.float64] = field(repr=False)
    beat_source: NDArray[np.str_] = field(repr=False)
    original_index: NDArray[np.intp] = field(repr=False)
    removed_beats: NDArray[np.intp] = field(repr=False)
    nn_ms: NDArray[np.float64] = field(repr=False)
    artifact_rate: float
    counts: dict[str, int]
    nn_end_ms: NDArray[np.float64] = field(repr=False)
    nn_segment: NDArray[np.intp] = field(repr=False)
    excluded_beats: NDArray[np.intp] = field(repr=False)
    n_gaps: int = 0


def _absorb(gap: NDArray[np.bool_], flagged: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``gap`` widened over the artifact intervals that touch it (repeatedly).

    An artifact next to a gap cannot be told apart (a premature beat whose compensatory pause
    lies in the gap looks like an isolated short interval) nor corrected (that needs the
    neighbour across the gap), so it is removed with the gap.
    """
    if not gap.any():
        return gap
    out = gap.copy()
    left = flagged.copy()
    while True:
        touching = left & (np.concatenate(([False], out[:-1])) | np.concatenate((out[1:], [False])))
        if not touching.any():
            return out
        out |= touching
        left &= ~touching


@single_blas_thread
def correct_artifacts(rr_ms: ArrayLike, *, gaps: ArrayLike | None = None) -> ArtifactCorrection:
    """Detect artifacts (:func:`detect_artifacts`) and correct the beat series.

    Parameters
    ----------
    rr_ms
        RR intervals in ms, in order.
    gaps
        Optional boolean per interval: True where the interval spans unusable signal. A gap is
        neither an RR interval nor corrected (no beat is inserted across it), no correction
        moves or removes a beat using a gap as its neighbour, and no NN interval spans it;
        beats whose every interval is a gap are left out (``excluded_beats``). An artifact
        interval next to a gap is removed with it (a premature beat whose compensatory pause
        lies in the gap would otherwise stay as an isolated short interval); it still counts
        in the artifact rate.

    Returns
    -------
    ArtifactCorrection

    Notes
    -----
    Beats are numbered 0..n for n intervals; interval j runs from beat j to beat j+1.
    Corrections, applied to beat times so that NN intervals stay consistent with them
    (Lipponen & Tarvainen 2019, section 2.3):

    - ``extra`` interval j: beat j+1 is removed (intervals j and j+1 merge; interval j+1, the
      second half of the split interval, is labelled ``extra`` too);
    - ``missed`` interval j: round(RR(j) / median(j)) - 1 beats are inserted at equal spacing;
    - ``ectopic`` interval j: the beat shared by intervals j-1 and j (beat j) is moved to the
      midpoint of its neighbours, the sinus position it displaced;
    - ``long`` interval j followed by a ``short`` one (or short then long): the shared beat j+1
      is moved to the midpoint of its neighbours (a mislocated R peak).

    An isolated long or short interval is a real interval (a pause, a sudden acceleration) and
    keeps its beats; it is still counted in the artifact rate. No other beat is touched.

    Examples
    --------
    >>> import numpy as np
    >>> rr = 800 + 30 * np.sin(np.arange(60) / 3)
    >>> with_gap = np.concatenate((rr[:30], [rr[30] + rr[31]], rr[32:]))  # one missed beat
    >>> fixed = correct_artifacts(with_gap)
    >>> fixed.counts["missed"], len(fixed.nn_ms)
    (1, 60)
    """
    c = _classify(rr_ms, gaps)
    rr, med, kind = c.rr, c.median, c.code
    gap = _absorb(c.gap, (kind != 0) & ~c.gap)
    ectopic, missed, extra = _CODE["ectopic"], _CODE["missed"], _CODE["extra"]
    long_short = (_CODE["long"], _CODE["short"])
    n = rr.size
    times = np.concatenate(([0.0], np.cumsum(rr)))
    source = np.zeros(n + 1, dtype=np.int8)  # index into _SOURCES
    # gap_left[b] / gap_right[b]: the interval before / after beat b is a gap (or missing)
    gap_left = np.concatenate(([True], gap))
    gap_right = np.concatenate((gap, [True]))

    moved = np.zeros(n + 1, dtype=bool)
    for j in np.flatnonzero(kind == ectopic):
        b = j  # beat shared by intervals j-1 and j
        if 0 < b < n and not moved[b] and not gap_left[b]:
            moved[b] = True
    for j in np.flatnonzero(np.isin(kind, long_short)):
        if j + 1 < n and kind[j + 1] in long_short and kind[j + 1] != kind[j]:
            b = j + 1
            if not moved[b] and not moved[b - 1] and not moved[b + 1]:
                moved[b] = True
    new_times = times.copy()
    idx = np.flatnonzero(moved)
    new_times[idx] = (times[idx - 1] + times[idx + 1]) / 2.0
    source[idx] = 1

    remove = np.zeros(n + 1, dtype=bool)
    for j in np.flatnonzero(kind == extra):
        # interval j+1 of a pair is the second half of the same split: one beat to remove
        if j + 1 < n + 1 and not moved[j + 1] and not remove[j] and not gap_right[j + 1]:
            remove[j + 1] = True
    # beats that only touch gaps belong to no NN interval
    excluded = gap_left & gap_right if gap.any() else np.zeros(n + 1, dtype=bool)
    # number of gaps before each beat: beats with equal values are one continuous run
    segment = np.concatenate(([0], np.cumsum(gap))).astype(np.intp)

    inserted_times: list[float] = []
    inserted_segment: list[int] = []
    for j in np.flatnonzero(kind == missed):
        k = round(rr[j] / med[j]) - 1 if med[j] > 0 else 1
        k = max(1, int(k))
        start, stop = new_times[j], new_times[j + 1]
        for q in range(1, k + 1):
            inserted_times.append(start + (stop - start) * q / (k + 1))
            inserted_segment.append(int(segment[j]))

    keep = ~remove & ~excluded
    base_idx = np.flatnonzero(keep)
    n_ins = len(inserted_times)
    all_times = np.concatenate((new_times[keep], np.asarray(inserted_times, dtype=np.float64)))
    all_source = np.concatenate((source[keep], np.full(n_ins, 2, dtype=np.int8)))
    all_orig = np.concatenate((base_idx, np.full(n_ins, -1, dtype=np.intp)))
    all_segment = np.concatenate((segment[keep], np.asarray(inserted_segment, dtype=np.intp)))
    order = np.argsort(all_times, kind="stable")
    beat_times = all_times[order]
    beat_segment = all_segment[order]
    within = beat_segment[1:] == beat_segment[:-1]
    n_gaps = int(c.gap.sum())
    tally = np.bincount(kind, minlength=len(_LABELS))
    counts = {t: int(tally[_CODE[t]]) for t in ARTIFACT_TYPES if t != "normal"}
    flagged = (kind != 0) & ~c.gap
    return ArtifactCorrection(
        detection=_table(c),
        beat_times_ms=beat_times,
        beat_source=_SOURCES[all_source[order]],
        original_index=all_orig[order].astype(np.intp),
        removed_beats=np.flatnonzero(remove).astype(np.intp),
        nn_ms=np.diff(beat_times)[within],
        artifact_rate=float(flagged.sum() / (n - n_gaps)),
        counts=counts,
        nn_end_ms=beat_times[1:][within],
        nn_segment=beat_segment[1:][within],
        excluded_beats=np.flatnonzero(excluded).astype(np.intp),
        n_gaps=n_gaps,
    )
