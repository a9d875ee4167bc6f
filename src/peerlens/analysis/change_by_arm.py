"""Within-arm change from baseline: standardised effect sizes (Lakens 2013) and reliable /
clinically significant change (Jacobson & Truax 1991) per arm, by reusing
:func:`peerlens.instruments.prepost_effect_sizes` and :func:`peerlens.instruments.reliable_change`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from peerlens import PeerlensError
from peerlens.instruments import prepost_effect_sizes, reliable_change

__all__ = ["change_by_arm", "sample_cutoff"]


def sample_cutoff(baseline: pd.Series, *, higher_is_better: bool) -> float:
    """Jacobson & Truax's cut-off *a* with the pooled baseline sample as the clinical
    population: two baseline SDs beyond the baseline mean, in the better direction.

    Notes
    -----
    Jacobson & Truax (1991, p. 13): ``a = M_clinical + s * 2 * SD_clinical`` (``s = +1`` when
    higher is better). Used when no functional norms are given (then *b* and *c* are
    undefined); a participant is *recovered* when reliably improved and past *a*.

    Examples
    --------
    >>> sample_cutoff(pd.Series([2.0, 4.0, 6.0]), higher_is_better=True)
    8.0
    """
    values = baseline.dropna().astype(float)
    sign = 1.0 if higher_is_better else -1.0
    return float(values.mean() + sign * 2.0 * values.std(ddof=1))


def change_by_arm(
    scores: pd.DataFrame,
    outcome: str,
    *,
    arms: Sequence[str],
    baseline: str,
    followups: Sequence[str],
    reliability: float | None,
    higher_is_better: bool | None,
    cutoff: float | None = None,
    seed: int = 0,
    n_boot: int = 2000,
) -> pd.DataFrame:
    """Per arm and follow-up: pre-post effect sizes with CIs and reliable-change counts.

    Parameters
    ----------
    scores
        Long: ``participant``, ``arm``, ``timepoint`` and ``outcome``.
    outcome
        The score column.
    arms, baseline, followups
        Arm order, the baseline timepoint and the follow-up timepoints.
    reliability
        r_xx for the Reliable Change Index (``None``: no reliable change columns).
    higher_is_better
        Direction of improvement (``None``: unknown; no reliable change columns).
    cutoff
        Jacobson-Truax cut-off for clinically significant change (``None``: none).
    seed, n_boot
        Bootstrap of the d_av and g_av intervals.

    Returns
    -------
    pandas.DataFrame
        ``arm``, ``timepoint``, ``n``, ``mean_change``, ``d_z`` with ``d_z_low``/``d_z_high``
        (exact CI), ``g_av`` with ``g_av_low``/``g_av_high`` (bootstrap CI), and with a
        reliability and direction ``improved``, ``unchanged``, ``deteriorated``, with a cut-off
        also ``recovered``. Cells of an arm with fewer than 3 complete pairs are NaN.
    """
    rows: list[dict[str, object]] = []
    for a in arms:
        data = scores[scores["arm"] == a]
        for t in followups:
            row: dict[str, object] = {"arm": a, "timepoint": t}
            try:
                es = prepost_effect_sizes(
                    data,
                    baseline,
                    t,
                    participant="participant",
                    timepoint="timepoint",
                    score=outcome,
                    n_boot=n_boot,
                    random_state=seed,
                )
            except PeerlensError:
                rows.append(row)
                continue
            row.update(
                n=es.n,
                mean_change=es.mean_change,
                d_z=es.d_z.value,
                d_z_low=es.d_z.ci_low,
                d_z_high=es.d_z.ci_high,
                g_av=es.g_av.value,
                g_av_low=es.g_av.ci_low,
                g_av_high=es.g_av.ci_high,
            )
            if reliability is not None and higher_is_better is not None:
                rc = reliable_change(
                    data,
                    baseline,
                    t,
                    participant="participant",
                    timepoint="timepoint",
                    score=outcome,
                    reliability=reliability,
                    higher_is_better=higher_is_better,
                    cutoff=cutoff,
                )
                counts = rc.table["reliable_change"].value_counts()
                row.update(
                    improved=int(counts.get("improved", 0)),
                    unchanged=int(counts.get("no_reliable_change", 0)),
                    deteriorated=int(counts.get("deteriorated", 0)),
                    min_reliable_change=rc.min_reliable_change,
                )
                if cutoff is not None:
                    jt = rc.table["jt_category"].value_counts()
                    row["recovered"] = int(jt.get("recovered", 0))
            rows.append(row)
    columns = ["arm", "timepoint", "n", "mean_change", "d_z", "d_z_low", "d_z_high"]
    columns += ["g_av", "g_av_low", "g_av_high", "improved", "unchanged", "deteriorated"]
    columns += ["recovered", "min_reliable_change"]
    return pd.DataFrame(rows).reindex(columns=columns)
