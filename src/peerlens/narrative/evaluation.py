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

**Per-class thresholds.**  The rule can also take one threshold per comparison class
(``{"upward": t_u, "downward": t_d}``): an upward argmax is kept when its probability is at least
``t_u``, a downward one at ``t_d``.  A class whose threshold is ``None`` is never reported (the
model *abstains* on it): such a sentence takes the more probable of ``connection`` and
``neutral`` and keeps its probabilities, so the comparison probability can still be read.
:func:`calibrate_class_thresholds` picks the pair on out-of-fold probabilities: the pair with the
highest mean F1 of the two comparison classes whose false alarms together stay within the
target; optionally a class must also reach a precision floor (with at least a few calls), and a
class that reaches it at no threshold is abstained on.

**False-alarm rate** = (gold connection or neutral, predicted upward or downward) / (gold
connection or neutral).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COMPARISONS",
    "SourceFold",
    "Thresholds",
    "apply_threshold",
    "calibrate_class_thresholds",
    "calibrate_threshold",
    "class_thresholds",
    "false_alarm_rate",
    "loso_group",
    "source_folds",
]

COMPARISONS = ("upward", "downward")
_CALM = ("connection", "neutral")
#: One threshold for both comparison classes, or one per class (``None``: never reported).
Thresholds = float | Mapping[str, float | None]


def class_thresholds(threshold: Thresholds) -> dict[str, float | None]:
    """The threshold of each comparison class (``None``: the class is never reported).

    Examples
    --------
    >>> class_thresholds(0.6)
    {'upward': 0.6, 'downward': 0.6}
    >>> class_thresholds({"upward": None, "downward": 0.7})
    {'upward': None, 'downward': 0.7}
    """
    if isinstance(threshold, Mapping):
        missing = [c for c in COMPARISONS if c not in threshold]
        if missing:
            raise ValueError(f"per-class thresholds lack {', '.join(missing)}")
        out: dict[str, float | None] = {}
        for c in COMPARISONS:
            value = threshold[c]
            out[c] = None if value is None else float(value)
        return out
    return {c: float(threshold) for c in COMPARISONS}


def apply_threshold(proba: np.ndarray, classes: Sequence[str], threshold: Thresholds) -> np.ndarray:
    """Return the index of the label of each row under the decision rule (module notes).

    Examples
    --------
    >>> classes = ("connection", "downward", "neutral", "upward")
    >>> p = np.array([[0.1, 0.6, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1], [0.3, 0.1, 0.2, 0.4]])
    >>> [classes[i] for i in apply_threshold(p, classes, 0.5)]
    ['downward', 'downward', 'connection']
    >>> [classes[i] for i in apply_threshold(p, classes, 0.7)]
    ['neutral', 'neutral', 'connection']
    >>> [classes[i] for i in apply_threshold(p, classes, {"upward": 0.5, "downward": None})]
    ['neutral', 'neutral', 'connection']
    """
    proba = np.asarray(proba)
    per_class = class_thresholds(threshold)
    calm = [list(classes).index(c) for c in _CALM]
    best = proba.argmax(axis=1)
    # the threshold each row's argmax must reach (above 1: never reached)
    needed = np.zeros(len(classes))
    for c, t in per_class.items():
        needed[list(classes).index(c)] = np.inf if t is None else t
    low = proba[np.arange(len(proba)), best] < needed[best]
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


def calibrate_class_thresholds(
    proba: np.ndarray,
    gold: Sequence[str],
    classes: Sequence[str],
    max_false_alarm: float = 0.03,
    floor: float = 0.5,
    min_precision: float | None = None,
    min_calls: int = 5,
) -> dict[str, float | None]:
    """One threshold per comparison class, chosen on out-of-fold probabilities.

    Among the pairs ``(t_upward, t_downward)`` (each ``floor``, or just above one of the class's
    argmax probabilities) whose false alarms together are at most ``max_false_alarm``, the pair
    with the highest mean F1 of the two classes is returned (ties: fewer alarms, then higher
    thresholds).  With ``min_precision``, a class's threshold must also give at least
    ``min_calls`` calls of it with that precision; a class for which no threshold does is
    abstained on (``None``).  Without a precision floor the highest candidate is ``1.0``.

    Parameters
    ----------
    proba : numpy.ndarray
        Out-of-fold probabilities, shape ``(n, len(classes))``.
    gold : sequence of str
        Gold labels of the same rows.
    classes : sequence of str
        Column order of ``proba``.
    max_false_alarm : float
        Target false-alarm rate over both classes (module notes).
    floor : float
        Lowest threshold allowed.
    min_precision : float, optional
        Precision a class must reach to be reported at all.
    min_calls : int
        Fewest calls a precision is judged on.

    Returns
    -------
    dict
        ``{"upward": t or None, "downward": t or None}``.

    Examples
    --------
    >>> classes = ("connection", "downward", "neutral", "upward")
    >>> p = np.array([[0, .9, .1, 0], [0, .6, .4, 0], [0, 0, .3, .7], [.1, 0, .3, .6]])
    >>> gold = ["downward", "neutral", "upward", "neutral"]
    >>> calibrate_class_thresholds(p, gold, classes, max_false_alarm=0.0)
    {'upward': 0.6000000001, 'downward': 0.6000000001}
    >>> calibrate_class_thresholds(p, gold, classes, 0.0, min_precision=0.8, min_calls=2)
    {'upward': None, 'downward': None}
    """
    proba = np.asarray(proba)
    gold_arr = np.asarray(gold)
    best = proba.argmax(axis=1)
    calm_rows = np.isin(gold_arr, _CALM)
    budget = max_false_alarm * int(calm_rows.sum())
    options: dict[str, list[tuple[float | None, float, int]]] = {}
    for c in COMPARISONS:
        k = list(classes).index(c)
        score = np.where(best == k, proba[:, k], -1.0)
        is_c = gold_arr == c
        values = sorted({float(v) + 1e-10 for v in score if v >= floor})
        cands: list[float | None] = [floor, *(v for v in values if v <= 1.0)]
        if min_precision is None:
            cands.append(1.0)
        rows: list[tuple[float | None, float, int]] = []
        for t in cands:
            called = score >= (np.inf if t is None else t)
            tp = int((called & is_c).sum())
            n_called, n_gold = int(called.sum()), int(is_c.sum())
            if min_precision is not None and (
                n_called < min_calls or tp < min_precision * n_called
            ):
                continue
            f1 = 2 * tp / (n_called + n_gold) if n_called + n_gold else 0.0
            rows.append((t, f1, int((called & calm_rows).sum())))
        if min_precision is not None:
            rows.append((None, 0.0, 0))
        options[c] = rows
    chosen: tuple[float, int, float, float] | None = None
    pair: dict[str, float | None] = {}
    for t_up, f_up, a_up in options["upward"]:
        for t_down, f_down, a_down in options["downward"]:
            if a_up + a_down > budget:
                continue
            key = (
                (f_up + f_down) / 2,
                -(a_up + a_down),
                2.0 if t_up is None else t_up,
                2.0 if t_down is None else t_down,
            )
            if chosen is None or key > chosen:
                chosen, pair = key, {"upward": t_up, "downward": t_down}
    if not pair:  # nothing within the budget: report neither class
        return {c: None if min_precision is not None else 1.0 for c in COMPARISONS}
    out: dict[str, float | None] = {}
    for c in COMPARISONS:
        value = pair[c]
        out[c] = None if value is None else min(float(value), 1.0)
    return out


#: Real sources held out together in leave-one-source-out: sources one collector scraped in one
#: run share more than a subreddit's style (the collector's filters, the month, often the same
#: threads' vocabulary), so holding one out while its siblings train would flatter the model.
#: Batch 8's four comment sources (one May 2024 PRAW scrape, ``docs/story.md``, "Batch 1-5 + 7 +
#: 8 retrain") form one fold, and batch 9's ``cm_bpd_search`` joins it (the same project's
#: keyword-search scrape of r/BPD in the same spring, sharing threads and comments with
#: ``cm_bpd``; decided before batch 9 was drawn); every other source is its own fold.
LOSO_GROUPS: Mapping[str, str] = {
    "cm_bpd": "cm_may2024",
    "cm_bpd_search": "cm_may2024",
    "cm_bpdrecovery": "cm_may2024",
    "cm_mentalhealth": "cm_may2024",
    "cm_suicidewatch": "cm_may2024",
}


def loso_group(source: str) -> str:
    """The leave-one-source-out fold a source is held out in (itself unless in :data:`LOSO_GROUPS`).

    Examples
    --------
    >>> loso_group("cm_bpd"), loso_group("reddit_mh7"), loso_group("")
    ('cm_may2024', 'reddit_mh7', '')
    """
    return LOSO_GROUPS.get(source, source)


@dataclass(frozen=True)
class SourceFold:
    """One leave-one-source-out fold: row positions to train on and to test on."""

    held_out: str
    train: np.ndarray
    test: np.ndarray


def source_folds(
    sources: Sequence[str], always_train: np.ndarray | None = None
) -> Iterator[SourceFold]:
    """Yield leave-one-source-out folds, sources of one :data:`LOSO_GROUPS` group held out together.

    Parameters
    ----------
    sources : sequence of str
        The source of each row; rows whose source is ``""`` (e.g. the project's own corpus) are
        never held out.  A fold is named by the group (:func:`loso_group`).
    always_train : numpy.ndarray of bool, optional
        Rows that are in every training set regardless of source.

    Yields
    ------
    SourceFold
        One per distinct non-empty group, in sorted order; no source appears in both ``train``
        and ``test``.

    Examples
    --------
    >>> [(f.held_out, f.train.tolist(), f.test.tolist()) for f in source_folds(["a", "b", "", "a"])]
    [('a', [1, 2], [0, 3]), ('b', [0, 2, 3], [1])]
    >>> [(f.held_out, f.test.tolist()) for f in source_folds(["cm_bpd", "a", "cm_suicidewatch"])]
    [('a', [1]), ('cm_may2024', [0, 2])]
    """
    src = np.asarray([loso_group(str(s)) for s in sources], dtype=object)
    keep = np.zeros(len(src), dtype=bool) if always_train is None else np.asarray(always_train)
    for name in sorted({s for s in src.tolist() if s}):
        test = (src == name) & ~keep
        yield SourceFold(str(name), np.flatnonzero(~test), np.flatnonzero(test))
