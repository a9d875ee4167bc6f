"""Moderation of the PS effect by the PS worker's connection index.

The connection index (:mod:`peerlens.narrative`: connection sentences over connection plus
comparison sentences in the worker's own words) is a property of the worker, so it exists in the
PS arm only. The partially nested model of :mod:`peerlens.analysis.nested` gains the index,
centred on the mean over workers (each worker counted once), in interaction with the PS arm::

    y_ij = x_ij' beta + ps_i c_w (gamma_0 + sum_t gamma_t [j = t]) + d_ij u_w + b_i + e_ij

``gamma_t`` (term ``arm[PS]:timepoint[t]:connection_c``) is how much the PS-versus-control
difference in change from baseline to *t* grows per unit of the index (0 to 1: from no
connecting sentence to only connecting ones); ``gamma_0`` (``arm[PS]:connection_c``) is the
baseline difference by index, which allocation to workers at random makes 0 in expectation.
This is the arm x time x centred-index interaction with the index's main effect and its
interaction with time left out: the control arm has no worker, hence no index. In R:
``lmer(y ~ arm * timepoint + ps:connection_c + ps:timepoint:connection_c + (0 + d | worker)
+ (1 | participant), REML = TRUE)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from peerlens.analysis.mixed import FixedEffect, _design
from peerlens.analysis.nested import (
    NestedModelError,
    NestedModelFit,
    _fit_nested,
    _notes,
    _prepare_nested,
    formula_r,
    worker_icc,
)
from peerlens.narrative import summarize

__all__ = ["ModerationFit", "fit_moderation", "worker_connection_index"]

#: What the moderation estimate does and does not mean, printed with every result.
MODERATION_NOTES = (
    "The connection index is observed, not randomised: a slope on it is an association "
    "between how workers talk and how their participants change, open to confounding by "
    "other worker qualities.",
    "With few workers the interaction rests on few independent values of the index; its df "
    "is driven by the number of workers, not participants.",
    "The index is measured from the worker's session transcripts, with the classifier's error; "
    "measurement error attenuates the slope towards 0.",
)


@dataclass(frozen=True)
class ModerationFit:
    """The PS effect's moderation by the worker's connection index, for one outcome.

    ``interactions`` are the ``arm[PS]:timepoint[t]:connection_c`` terms (per unit of the
    index) with Satterthwaite df and CI; ``baseline_term`` is ``arm[PS]:connection_c`` (in the
    ANCOVA variant there is no baseline row: ``arm[PS]:connection_c`` is then the moderation
    at the first follow-up and heads ``interactions``, and ``baseline_term`` is None);
    ``centre`` the mean index over workers that was subtracted; ``workers`` one row per worker
    (``worker``, ``connection_index``, ``n_participants``); ``model`` the whole nested fit.
    """

    outcome: str
    moderator: str
    centre: float
    n_workers: int
    interactions: tuple[FixedEffect, ...]
    baseline_term: FixedEffect | None
    workers: pd.DataFrame
    model: NestedModelFit
    notes: tuple[str, ...]


def worker_connection_index(
    stories: pd.DataFrame, *, worker: str = "participant", n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Each worker's connection index pooled over their analysed transcripts.

    Parameters
    ----------
    stories
        One row per analysed transcript, with the worker column and the label counts
        ``n_connection``, ``n_upward``, ``n_downward``, ``n_neutral`` (as the study's derived
        ``story`` results have them); rows whose ``status`` is not ``ok`` are left out.
    worker
        The column naming the worker whose words were analysed.
    n_boot, seed
        Passed to :func:`peerlens.narrative.summarize` for the interval.

    Returns
    -------
    pandas.DataFrame
        ``worker``, ``n_transcripts``, ``n_sentences``, ``connection_index``, ``ci_low``,
        ``ci_high``, ``ci_method``: the sentences of all the worker's transcripts labelled as
        one session by :func:`peerlens.narrative.summarize`.

    Examples
    --------
    >>> s = pd.DataFrame({"participant": ["W1", "W1", "W2"], "n_connection": [3, 1, 0],
    ...                   "n_upward": [1, 0, 2], "n_downward": [0, 1, 0], "n_neutral": [5, 5, 5]})
    >>> worker_connection_index(s)[["worker", "connection_index"]].round(3).values.tolist()
    [['W1', 0.667], ['W2', 0.0]]
    """
    counts = ["n_connection", "n_upward", "n_downward", "n_neutral"]
    missing = [c for c in (worker, *counts) if c not in stories.columns]
    if missing:
        raise NestedModelError(f"the story results have no column {', '.join(map(repr, missing))}")
    ok = stories if "status" not in stories.columns else stories[stories["status"] == "ok"]
    rows = []
    for name, group in ok.groupby(worker, sort=True):
        totals = {c: int(group[c].fillna(0).sum()) for c in counts}
        labels = [lab for c, n in totals.items() for lab in [c.removeprefix("n_")] * n]
        s = summarize(labels, n_boot=n_boot, seed=seed)
        rows.append(
            (
                str(name),
                len(group),
                s.n_sentences,
                s.connection_index,
                s.ci_low,
                s.ci_high,
                s.ci_method,
            )
        )
    columns = [
        "worker",
        "n_transcripts",
        "n_sentences",
        "connection_index",
        "ci_low",
        "ci_high",
        "ci_method",
    ]
    return pd.DataFrame(rows, columns=columns)


def fit_moderation(
    data: pd.DataFrame,
    outcome: str,
    connection: Mapping[str, float] | pd.Series,
    *,
    participant: str = "participant",
    arm: str = "arm",
    timepoint: str = "timepoint",
    worker: str = "worker",
    arms: Sequence[str] | None = None,
    timepoints: Sequence[str] | None = None,
    ancova: bool = False,
    worker_at_baseline: bool = False,
    level: float = 0.95,
) -> ModerationFit:
    """Fit the partially nested model with the PS effect moderated by the worker's centred
    connection index.

    Parameters
    ----------
    data
        As for :func:`peerlens.analysis.fit_nested_model`.
    outcome
        The outcome column.
    connection
        Each worker's connection index (0-1), keyed by worker (e.g. the ``connection_index``
        column of :func:`worker_connection_index` indexed by ``worker``).
    participant, arm, timepoint, worker, arms, timepoints, ancova, worker_at_baseline, level
        As for :func:`peerlens.analysis.fit_nested_model`.

    Returns
    -------
    ModerationFit

    Raises
    ------
    NestedModelError
        A worker of the data has no (or a non-finite) index, or the indexes do not vary.
    """
    nf = _prepare_nested(
        data, outcome, participant, arm, timepoint, worker, arms, timepoints, ancova
    )
    index = pd.Series(connection, dtype=float)
    index.index = index.index.astype(str)
    frame = nf.frame
    in_arm = (frame[arm].astype(str) == nf.worker_arm).to_numpy()
    present = sorted(frame.loc[in_arm, worker].unique())
    lacking = [w for w in present if w not in index.index or not np.isfinite(index[w])]
    if lacking:
        raise NestedModelError(f"worker(s) {lacking} have no connection index")
    values = index[present]
    if float(values.std(ddof=0)) == 0.0:
        raise NestedModelError("every worker has the same connection index: nothing to moderate")
    centre = float(values.mean())
    centred = frame[worker].map(values - centre).fillna(0.0).to_numpy() * in_arm
    frame["connection_c"] = centred
    terms, x = _design(frame, arm, timepoint, nf.arm_levels, nf.time_levels, ancova)
    extra = {f"arm[{nf.worker_arm}]:connection_c": centred}
    for t in nf.time_levels[1:]:
        extra[f"arm[{nf.worker_arm}]:timepoint[{t}]:connection_c"] = centred * (
            frame[timepoint] == t
        ).to_numpy(dtype=float)
    terms = [*terms, *extra]
    x = np.column_stack([x, *extra.values()])
    fixed, variance, loglik, converged, means = _fit_nested(
        nf, outcome, terms, x, participant, arm, timepoint, worker, worker_at_baseline, level
    )
    notes = (*_notes(nf.n_workers), *MODERATION_NOTES)
    model = NestedModelFit(
        outcome=outcome,
        model="ancova" if ancova else "change",
        formula_r=formula_r(outcome, ancova, " + ps:connection_c + ps:timepoint:connection_c"),
        n_obs=len(frame),
        n_participants=int(frame[participant].nunique()),
        n_workers=nf.n_workers,
        terms=tuple(terms),
        fixed=fixed,
        variance=variance,
        worker_icc=worker_icc(variance),
        loglik=loglik,
        converged=converged,
        means=means,
        ignoring=(),
        notes=notes,
        data=frame,
        design=x,
    )
    per_worker = frame[in_arm].groupby(worker)[participant].nunique()
    workers = pd.DataFrame(
        {
            "worker": present,
            "connection_index": values.to_numpy(),
            "n_participants": per_worker.reindex(present).to_numpy(),
        }
    )
    # Change model: the first extra term is the baseline difference by index. ANCOVA (follow-up
    # rows only): it is the moderation at the first follow-up, and the others its change after.
    names = list(extra)
    moderating = names if ancova else names[1:]
    return ModerationFit(
        outcome=outcome,
        moderator="connection_index",
        centre=centre,
        n_workers=nf.n_workers,
        interactions=tuple(model.effect(n) for n in moderating),
        baseline_term=None if ancova else model.effect(names[0]),
        workers=workers,
        model=model,
        notes=notes,
    )
