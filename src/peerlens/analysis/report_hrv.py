"""The report's HRV sections: HRV outcomes by arm over time, and the GRAPH reporting items.

Both are built from the study's HRV analysis table (:func:`peerlens.study.hrv_table`, handed to
:func:`peerlens.analysis.build_report` as ``hrv``) and are absent when the study has no
recordings.

:func:`hrv_section` fits :func:`~peerlens.analysis.fit_hrv_models` (REML, random intercept per
participant, Satterthwaite df) to the windows :func:`report_hrv_models` keeps::

    ln(RMSSD) ~ arm * timepoint + (1 | participant)      per window (baseline, session, recovery)
    ln(HF)    ~ arm * timepoint + (1 | participant)      per window
    ln(X_session) - ln(X_baseline) ~ arm * timepoint + (1 | participant)    reactivity

and reports the model-based means, the arm x timepoint effects and the windows left out (by
window, arm and reason). :func:`graph_section` lists the GRAPH items (Quintana, Alvares &
Heathers 2016), each filled from the recordings' metadata and the HRV results where the study
stores it and marked "not recorded" where it does not.

References
----------
Quintana, D.S., Alvares, G.A., Heathers, J.A.J. (2016). Guidelines for Reporting Articles on
Psychiatry and Heart rate variability (GRAPH): recommendations to advance research
communication. Translational Psychiatry 6, e803.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from peerlens import PeerlensError
from peerlens.analysis import report as _report
from peerlens.analysis.hrv_models import HRV_OUTCOMES, HrvModels, fit_hrv_models, graph_items
from peerlens.analysis.plots import means_plot

if TYPE_CHECKING:
    from peerlens.analysis.report import ReportContext, Section

__all__ = ["HRV_WINDOWS", "graph_section", "hrv_section", "hrv_timepoints", "report_hrv_models"]

#: The recording windows modelled, in order; reactivity is the second minus the first.
HRV_WINDOWS = ("baseline", "session", "recovery")
#: How each modelled outcome is named on the page.
_LABELS = {"ln_rmssd": "ln RMSSD (ms)", "ln_hf": "ln HF power (ms²)"}
#: Quintana, Alvares & Heathers (2016), for the GRAPH section's citation.
GRAPH_REFERENCE = (
    "Quintana, D.S., Alvares, G.A., Heathers, J.A.J. (2016) Guidelines for Reporting Articles "
    "on Psychiatry and Heart rate variability (GRAPH): recommendations to advance research "
    "communication. Transl Psychiatry 6:e803."
)


def hrv_timepoints(windows: pd.DataFrame, timepoints: Sequence[str]) -> tuple[str, ...]:
    """The study's ``timepoints`` (in schedule order) at which any window was analysed."""
    present = set(windows.loc[windows["status"] == "ok", "timepoint"].dropna())
    return tuple(t for t in timepoints if t in present)


def report_hrv_models(
    windows: pd.DataFrame, *, arms: Sequence[str], timepoints: Sequence[str]
) -> HrvModels:
    """The HRV models of the report (and of the R export's HRV part) from the HRV analysis
    table's ``windows``: every modelled window at a timepoint of :func:`hrv_timepoints`
    (windows of recordings stored without a timepoint are counted as left out), ``arms`` with
    the reference first.

    Raises
    ------
    HrvModelError
        As :func:`~peerlens.analysis.fit_hrv_models` (e.g. two recordings of one participant at
        one timepoint).
    """
    tps = hrv_timepoints(windows, timepoints)
    models = fit_hrv_models(
        windows[windows["timepoint"].isin(tps)],
        window="window",
        windows=HRV_WINDOWS,
        reactivity=(HRV_WINDOWS[1], HRV_WINDOWS[0]),
        arms=arms,
        timepoints=tps,
    )
    untimed = windows[windows["timepoint"].isna() & windows["window"].isin(HRV_WINDOWS)]
    if len(untimed):
        arm = untimed["arm"].astype(object).where(untimed["arm"].notna(), "")
        counts = untimed.groupby([untimed["window"], arm]).size()
        extra = pd.DataFrame(
            [
                (str(w), "", str(a), "recording has no timepoint", int(n))
                for (w, a), n in zip(counts.index.tolist(), counts.tolist(), strict=True)
            ],
            columns=models.exclusions.columns,
        )
        models = replace(
            models, exclusions=pd.concat([models.exclusions, extra], ignore_index=True)
        )
    return models


def hrv_section(ctx: ReportContext) -> Section | None:
    """ln RMSSD and ln HF per window by arm and timepoint, their session - baseline reactivity,
    and the windows left out and why (absent when the study has no recordings)."""
    table = ctx.hrv
    if table is None or not len(table.windows):
        return None
    windows = table.windows
    present = set(windows["arm"].dropna())
    arms = tuple(a for a in ctx.arms if a in present)
    try:
        models = report_hrv_models(windows, arms=arms, timepoints=ctx.dataset.timepoints)
    except PeerlensError as exc:
        return _report.Section(
            "hrv",
            "HRV outcomes",
            "_hrv.html",
            {"error": str(exc), "sha256": table.sha256},
        )
    tps = hrv_timepoints(windows, ctx.dataset.timepoints)
    terms = [f"arm[{a}]:timepoint[{t}]" for a in arms[1:] for t in tps[1:]]
    blocks = []
    for out in HRV_OUTCOMES:
        keys = [(f"{out}@{w}", w) for w in HRV_WINDOWS] + [(f"reactivity_{out}", "reactivity")]
        for key, what in keys:
            fit = models.fits.get(key)
            block: dict[str, object] = {
                "key": key,
                "outcome": _LABELS[out],
                "window": what,
                "n_used": models.used.get(key, 0),
                "not_fitted": models.not_fitted.get(key),
            }
            if fit is not None:
                block |= {
                    "formula": fit.formula_r,
                    "n_participants": fit.n_participants,
                    "means": _report._records(fit.means),
                    "effects": [vars(fit.effect(t)) for t in terms if t in fit.terms],
                    "variance": list(fit.variance.items()),
                    "loglik": fit.loglik,
                    "svg": (
                        means_plot(
                            fit.means,
                            outcome=f"{_LABELS[out]}: session - baseline",
                            arms=arms,
                            timepoints=tps,
                        )
                        if what == "reactivity"
                        else None
                    ),
                }
            blocks.append(block)
    ex = models.exclusions
    whole = ex[ex["outcome"] == ""]
    excluded = (
        whole.pivot_table(
            index=["window", "reason"], columns="arm", values="n", aggfunc="sum", fill_value=0
        )
        .reindex(columns=list(arms), fill_value=0)
        .reset_index()
    )
    n_windows = windows[windows["window"].isin(HRV_WINDOWS)].groupby("arm").size()
    return _report.Section(
        "hrv",
        "HRV outcomes (ln RMSSD, ln HF power) by arm",
        "_hrv.html",
        {
            "error": None,
            "sha256": table.sha256,
            "arms": arms,
            "timepoints": tps,
            "blocks": blocks,
            "excluded": [
                {"window": r["window"], "reason": r["reason"], "n": [int(r[a]) for a in arms]}
                for r in excluded.to_dict(orient="records")
            ],
            "n_windows": [int(n_windows.get(a, 0)) for a in arms],
            "other": _report._records(ex[ex["outcome"] != ""]),
        },
        (
            "HRV outcomes: RMSSD and HF power (0.15-0.40 Hz) of each recording window "
            f"({', '.join(HRV_WINDOWS)}) from peerlens.hrv, natural-log transformed (both are "
            "right-skewed and their spread grows with their level). Windows were left out when "
            "their analysis failed, when the HRV quality rules marked them invalid (beat "
            "corrections above the artefact-rate limit, unusable signal), when their result was "
            "derived by another pipeline version or before their window changed (stale), or "
            "when the recording named no timepoint; the counts are given by window, reason and "
            "arm.",
            "Each window's ln RMSSD and ln HF, and the reactivity ln(session) - ln(baseline) "
            "(a log ratio, from timepoints where both windows were kept), was modelled as "
            "y ~ arm x timepoint with a random intercept per participant (REML, Satterthwaite "
            "df), as the questionnaire outcomes were; in R: lmer(y ~ arm * timepoint + "
            "(1 | participant), REML = TRUE). Differences of logs are ratios of geometric "
            "means: exp(estimate). HF power depends on the breathing rate, which the study "
            "does not record (see the GRAPH items).",
        ),
        tuple(_report.mixed_record(f"hrv:{key}", fit) for key, fit in models.fits.items()),
    )


def graph_section(ctx: ReportContext) -> Section | None:
    """The GRAPH reporting items, filled from the recordings' metadata and HRV results where
    stored, "not recorded" otherwise (absent when the study has no recordings)."""
    table = ctx.hrv
    if table is None or not len(table.windows):
        return None
    items = graph_items(table.windows, table.recordings, window="window")
    return _report.Section(
        "graph",
        "HRV reporting items (GRAPH)",
        "_graph.html",
        {"rows": _report._records(items), "reference": GRAPH_REFERENCE},
        (
            "HRV methods are reported against the GRAPH guidelines (Quintana, Alvares & "
            "Heathers 2016): each item is filled from what the study stores about its "
            "recordings; items the study does not record are marked so, not assumed.",
        ),
    )
