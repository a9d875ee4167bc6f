"""Decision rule, threshold calibration and grouped (leave-one-source-out) evaluation.

Notes
-----
**Decision rule.**  With class probabilities ``p`` the label is the argmax, except that an
``upward``/``downward`` argmax is kept only when its probability is at least the *comparison
threshold* ``t``; below it the sentence takes the more probable of ``connection`` and
``neutral`` (its probabilities are reported unchanged).

**Threshold.**  ``t`` is chosen on development data for a target false-alarm rate: the share of
gold ``connection``/``neutral`` sentences given ``upward``/``downward``.  From out-of-fold
probabilities (each sentence scored by a model that did not see its source), ``t`` is the
smallest value in ``[floor, 1]`` whose false-alarm rate is at most the target, scanning the
candidate values where the rate changes (the comparison probabilities of the calm sentences).
A floor (0.5) keeps ``t`` from falling below a coin flip when there are few calm sentences.  In
the leave-one-source-out evaluation the threshold of each outer fold is set by an inner
leave-one-source-out run on that fold's training sources only, so the held-out source never
influences it (nested cross-validation; Varma & Simon 2006, BMC Bioinformatics 7:91).

**False-alarm rate** = (gold connection or neutral, predicted upward or downward) / (gold
connection or neutral).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COMPARISONS",
    "SourceFold",
    "apply_threshold",
    "calibrate_threshold",
    "false_alarm_rate",
    "source_folds",
]

COMPARISONS = ("upward", "downward")
_CALM = ("connection", "neutral")


def apply_threshold(proba: np.ndarray, classes: Sequence[str], threshold: float) -> np.ndarray:
    """Return the index of the label of each row under the decision rule (module notes).

    Examples
    --------
    >>> classes = ("connection", "downward", "neutral", "upward")
    >>> p = np.array([[0.1, 0.6, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1], [0.3, 0.1, 0.2, 0.4]])
    >>> [classes[i] for i in apply_threshold(p, classes, 0.5)]
    ['downward', 'downward', 'connection']
    >>> [classes[i] for i in apply_threshold(p, classes, 0.7)]
    ['neutral', 'neutral', 'connection']
    """
    proba = np.asarray(proba)
    comp = [list(classes).index(c) for c in COMPARISONS]
    calm = [list(classes).index(c) for c in _CALM]
    best = proba.argmax(axis=1)
    low = np.isin(best, comp) & (proba[np.arange(len(proba)), best] < threshold)
    fallback = np.asarray(calm)[proba[:, calm].argmax(axis=1)]
    return np.where(low, fallback, best)


def false_alarm_rate(gold: Sequence[str], pred: Sequence[str]) -> tuple[float, int, int]:
    """Return ``(rate, alarms, calm)``: gold connection/neutral predicted as a comparison.

    Examples
    --------
    >>> false_alarm_rate(["neutral", "connection", "upward"], ["upward", "connection", "neutral"])
    (0.5, 1, 2)
    """
    calm = [p for g, p in zip(gold, pred, strict=True) if g in _CALM]
    alarms = sum(p in COMPARISONS for p in calm)
    return (alarms / len(calm) if calm else float("nan")), alarms, len(calm)


def calibrate_threshold(
    proba: np.ndarray,
    gold: Sequence[str],
    classes: Sequence[str],
    max_false_alarm: float = 0.03,
    floor: float = 0.5,
) -> float:
    """Smallest comparison threshold in ``[floor, 1]`` with false alarms <= the target.

    Parameters
    ----------
    proba : numpy.ndarray
        Out-of-fold probabilities, shape ``(n, len(classes))``.
    gold : sequence of str
        Gold labels of the same rows.
    classes : sequence of str
        Column order of ``proba``.
    max_false_alarm : float
        Target false-alarm rate (module notes).
    floor : float
        Lowest threshold allowed.

    Returns
    -------
    float
        The threshold; ``1.0`` (no comparison label reachable below certainty) when no lower
        value meets the target.

    Examples
    --------
    >>> classes = ("connection", "downward", "neutral", "upward")
    >>> p = np.array([[0.0, 0.9, 0.1, 0.0], [0.0, 0.6, 0.4, 0.0], [0.1, 0.0, 0.9, 0.0]])
    >>> calibrate_threshold(p, ["downward", "neutral", "neutral"], classes, 0.0)
    0.6000000001
    >>> calibrate_threshold(p, ["downward", "neutral", "neutral"], classes, 0.5)
    0.5
    """
    proba = np.asarray(proba)
    gold_arr = np.asarray(gold)
    comp = [list(classes).index(c) for c in COMPARISONS]
    calm_rows = np.isin(gold_arr, _CALM)
    if not calm_rows.any():
        return floor
    calm_p = proba[calm_rows]
    is_comp = np.isin(calm_p.argmax(axis=1), comp)
    score = np.where(is_comp, calm_p[:, comp].max(axis=1), 0.0)
    # an alarm at threshold t is a calm row with score >= t; try the floor, then just above
    # each alarm score, in increasing order
    candidates = [floor, *sorted({float(s) + 1e-10 for s in score if s >= floor})]
    for t in candidates:
        if (score >= t).mean() <= max_false_alarm:
            return float(min(t, 1.0))
    return 1.0


@dataclass(frozen=True)
class SourceFold:
    """One leave-one-source-out fold: row positions to train on and to test on."""

    held_out: str
    train: np.ndarray
    test: np.ndarray


def source_folds(
    sources: Sequence[str], always_train: np.ndarray | None = None
) -> Iterator[SourceFold]:
    """Yield leave-one-source-out folds.

    Parameters
    ----------
    sources : sequence of str
        The source of each row; rows whose source is ``""`` (e.g. the project's own corpus) are
        never held out.
    always_train : numpy.ndarray of bool, optional
        Rows that are in every training set regardless of source.

    Yields
    ------
    SourceFold
        One per distinct non-empty source, in sorted order; no source appears in both ``train``
        and ``test``.

    Examples
    --------
    >>> [(f.held_out, f.train.tolist(), f.test.tolist()) for f in source_folds(["a", "b", "", "a"])]
    [('a', [1, 2], [0, 3]), ('b', [0, 2, 3], [1])]
    """
    src = np.asarray(sources, dtype=object)
    keep = np.zeros(len(src), dtype=bool) if always_train is None else np.asarray(always_train)
    for name in sorted({s for s in src.tolist() if s}):
        test = (src == name) & ~keep
        yield SourceFold(str(name), np.flatnonzero(~test), np.flatnonzero(test))
