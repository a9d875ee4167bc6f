"""The study report's sections on the PS worker: the partially nested model (worker ICC and what
ignoring the worker level changes), moderation of the PS effect by the worker's connection index,
and mediation of the arm effect through the Self-Compassion Scale's common humanity and isolation
subscales.

Each builder takes the :class:`~peerlens.analysis.report.ReportContext` and returns a
:class:`~peerlens.analysis.report.Section` (or ``None`` when the study lacks what it needs: PS
worker assignments, the workers' analysed session transcripts, the mediator scores). Each
section lists the models it fitted (:class:`~peerlens.analysis.report.ReportModel`), which the R
export refits (:mod:`peerlens.analysis.stat_exports`). The models are those of
:mod:`~peerlens.analysis.nested`, :mod:`~peerlens.analysis.moderation` and
:mod:`~peerlens.analysis.mediation`; what decides whether a model applies
(:func:`worker_scores`, :func:`worker_connection`, :func:`mediation_outcomes`) is shared with the
R export so that both fit the same models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from peerlens import PeerlensError
from peerlens.analysis.mediation import fit_mediation
from peerlens.analysis.moderation import fit_moderation, worker_connection_index
from peerlens.analysis.nested import fit_nested_model
from peerlens.analysis.report import ReportContext, ReportModel, Section, _records, mixed_record

if TYPE_CHECKING:
    from peerlens.study import AnalysisDataset

__all__ = [
    "MEDIATORS",
    "mediation_outcomes",
    "mediation_section",
    "moderation_section",
    "nested_section",
    "worker_connection",
    "worker_scores",
]

#: The mediators of the mediation section: the SCS subscales of common humanity and isolation.
MEDIATORS = ("scs_common_humanity", "scs_isolation")
#: The step of the connection index the moderation is read out per (the index runs 0-1).
INDEX_STEP = 0.1


def worker_scores(dataset: AnalysisDataset) -> pd.DataFrame | None:
    """The scores with each participant's PS worker (``worker``); ``None`` when the study
    records no worker for anyone."""
    people = dataset.participants
    if "worker" not in people or not people["worker"].notna().any():
        return None
    return dataset.scores.merge(people[["participant", "worker"]], on="participant")


def worker_connection(dataset: AnalysisDataset, *, n_boot: int, seed: int) -> pd.DataFrame | None:
    """Each PS worker's connection index pooled over their analysed session transcripts
    (:func:`~peerlens.analysis.moderation.worker_connection_index` of the dataset's
    ``worker_stories``); ``None`` without any, or when every worker has the same index (there
    is then nothing to moderate)."""
    stories = dataset.worker_stories
    if not len(stories):
        return None
    index = worker_connection_index(stories, worker="worker", n_boot=n_boot, seed=seed)
    values = index["connection_index"].dropna()
    if values.nunique() < 2:
        return None
    return index


def mediation_outcomes(outcomes: Sequence[str], available: Sequence[str]) -> tuple[str, ...]:
    """The outcomes whose arm effect is decomposed through :data:`MEDIATORS` (every outcome but
    the mediators; none when a mediator score is not in the study).

    Examples
    --------
    >>> scores = ["scs_total", "scs_common_humanity", "scs_isolation", "ders16_total"]
    >>> mediation_outcomes(["scs_total", "scs_isolation", "ders16_total"], scores)
    ('scs_total', 'ders16_total')
    >>> mediation_outcomes(["ders16_total"], ["ders16_total", "scs_isolation"])
    ()
    """
    if not all(m in available for m in MEDIATORS):
        return ()
    return tuple(o for o in outcomes if o not in MEDIATORS)


def nested_section(ctx: ReportContext) -> Section | None:
    """Per outcome: the same model with the PS worker as a random effect in the PS arm only
    (the partially nested design), the worker ICC, and what ignoring the worker level would
    have changed. Absent when the study records no PS worker for anyone."""
    data = worker_scores(ctx.dataset)
    if data is None:
        return None
    outcomes, not_fitted, models = [], [], []
    for o in ctx.outcomes:
        try:
            fit = fit_nested_model(data, o, arms=list(ctx.arms), timepoints=list(ctx.timepoints))
        except PeerlensError as exc:
            not_fitted.append(f"{o}: {exc}")
            continue
        models.append(mixed_record(f"nested:{o}", fit))
        outcomes.append(
            {
                "name": o,
                "label": ctx.label(o),
                "formula": fit.formula_r,
                "n_workers": fit.n_workers,
                "icc": fit.worker_icc,
                "variance": list(fit.variance.items()),
                "ignoring": [
                    {**vars(i), "se_ratio": i.se_ratio}
                    for i in fit.ignoring
                    if i.term in ctx.effect_terms
                ],
                "notes": list(fit.notes),
            }
        )
    return Section(
        "nested",
        "The PS worker level (partially nested design)",
        "_nested.html",
        {"outcomes": outcomes, "not_fitted": not_fitted},
        (
            "In the PS arm participants are clustered within PS workers and the control arm has "
            "no worker: a partially nested design (Bauer, Sterba & Hallfors 2008). Each outcome "
            "was refitted with a worker random effect acting on the PS arm's follow-up "
            "observations only, beside the participant random intercept (REML, statsmodels "
            "MixedLM); in R: lmer(y ~ arm * timepoint + (0 + d | worker) + (1 | participant)) "
            "with d the PS arm's follow-up indicator. The worker ICC is the worker variance "
            "over the total variance of a PS follow-up observation; the table compares each "
            "arm x timepoint effect's SE, Satterthwaite df and p with and without the worker "
            "term.",
        ),
        tuple(models),
    )


def moderation_section(ctx: ReportContext) -> Section | None:
    """Per outcome: how the PS effect changes with the worker's connection index (the
    arm x timepoint x centred index interaction of the partially nested model), with a
    plain-language reading and the caveats. Absent without PS workers, their analysed
    session transcripts, or an index that varies between workers."""
    data = worker_scores(ctx.dataset)
    n_boot, seed = ctx.options.n_boot, ctx.options.seed
    index = None if data is None else worker_connection(ctx.dataset, n_boot=n_boot, seed=seed)
    if data is None or index is None:
        return None
    connection = index.set_index("worker")["connection_index"]
    outcomes, not_fitted, models = [], [], []
    for o in ctx.outcomes:
        try:
            fit = fit_moderation(
                data, o, connection, arms=list(ctx.arms), timepoints=list(ctx.timepoints)
            )
        except PeerlensError as exc:
            not_fitted.append(f"{o}: {exc}")
            continue
        models.append(mixed_record(f"moderation:{o}", fit.model))
        rows = [vars(fe) for fe in fit.interactions]
        outcomes.append(
            {
                "name": o,
                "label": ctx.label(o),
                "formula": fit.model.formula_r,
                "n_workers": fit.n_workers,
                "centre": fit.centre,
                "interactions": rows,
                "baseline_term": None if fit.baseline_term is None else vars(fit.baseline_term),
                "reading": _moderation_reading(ctx, o, fit.interactions[-1], fit.n_workers),
                "notes": list(fit.notes),
            }
        )
    workers = index.assign(
        n_participants=index["worker"].map(
            ctx.dataset.participants.dropna(subset=["worker"]).groupby("worker").size()
        )
    )
    return Section(
        "moderation",
        "Moderation of the PS effect by the worker's connection index",
        "_moderation.html",
        {
            "outcomes": outcomes,
            "not_fitted": not_fitted,
            "workers": _records(workers),
            "step": INDEX_STEP,
        },
        (
            "Each PS worker's connection index is the share of connecting sentences among the "
            "connecting and comparing sentences of all their analysed session transcripts "
            "(the study's stored story labels, pooled per worker), with a percentile bootstrap "
            f"interval over sentences ({n_boot} resamples, seed {seed}) or Wilson's interval.",
            "Moderation: the partially nested model gained the index, centred on its mean over "
            "workers, in interaction with the PS arm and with each timepoint; the control arm "
            "has no worker, hence no index. In R: lmer(y ~ arm * timepoint + ps:connection_c + "
            "ps:timepoint:connection_c + (0 + d | worker) + (1 | participant), REML = TRUE), "
            "tested with Satterthwaite's df. The index is observed, not randomised, and the "
            "interaction rests on as many independent values as there are workers.",
        ),
        tuple(models),
    )


def _moderation_reading(ctx: ReportContext, outcome: str, fe: Any, n_workers: int) -> str:
    """The last follow-up's interaction in words, per :data:`INDEX_STEP` of the index."""
    ps, control = ctx.arms[1], ctx.arms[0]
    step = INDEX_STEP
    text = (
        f"Per {step:g} higher connection index of the worker, the difference between {ps} and "
        f"{control} in change from {ctx.baseline} to {ctx.timepoints[-1]} on {ctx.label(outcome)} "
        f"was {step * fe.estimate:+.2f} points (95 % CI {step * fe.ci_low:.2f} to "
        f"{step * fe.ci_high:.2f}; p {_p_words(fe.p)})."
    )
    if fe.ci_low <= 0 <= fe.ci_high:
        return (
            f"{text} The interval includes 0: these data do not tell moderation from none, "
            f"and with {n_workers} workers the test has little power to find it."
        )
    return (
        f"{text} The interval excludes 0. The index was not randomised: this is an association "
        "between how workers talk and how their participants change, not proof that connecting "
        "language causes the difference."
    )


def _p_words(p: float) -> str:
    if not math.isfinite(p):
        return "not defined"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def mediation_section(ctx: ReportContext) -> Section | None:
    """Per outcome: the arm effect on change from baseline to the last timepoint split into
    the indirect effects through change in common humanity and isolation and the direct effect,
    with seeded percentile bootstrap intervals and the caveats. Absent without the mediator
    scores, with other than two arms, or with no outcome besides the mediators."""
    chosen = mediation_outcomes(ctx.outcomes, ctx.dataset.score_names)
    if len(ctx.arms) != 2 or not chosen:
        return None
    with_workers = worker_scores(ctx.dataset)
    data = ctx.dataset.scores if with_workers is None else with_workers
    worker = None if with_workers is None else "worker"
    n_boot, seed = ctx.options.n_boot, ctx.options.seed
    follow = ctx.timepoints[-1]
    outcomes, not_fitted, models = [], [], []
    resampling = ""
    for o in chosen:
        try:
            fit = fit_mediation(
                data,
                o,
                MEDIATORS,
                arms=(ctx.arms[0], ctx.arms[1]),
                timepoints=(ctx.baseline, follow),
                worker=worker,
                n_boot=n_boot,
                seed=seed,
            )
        except PeerlensError as exc:
            not_fitted.append(f"{o}: {exc}")
            continue
        resampling = fit.resampling
        models.extend(_mediation_records(o, fit))
        caveats = list(fit.caveats)
        if o.startswith("scs_"):
            caveats.append(
                f"{o} shares items with the mediators (they are subscales of the same scale): "
                "part of each b path is the overlap of the items, not mediation."
            )
        indirect = fit.path("indirect[total]")
        outcomes.append(
            {
                "name": o,
                "label": ctx.label(o),
                "n_participants": fit.n_participants,
                "n_excluded": fit.n_excluded,
                "paths": [vars(p) for p in fit.paths],
                "reading": (
                    f"Of the difference between {ctx.arms[1]} and {ctx.arms[0]} in change on "
                    f"{ctx.label(o)} ({fit.path('total').estimate:+.2f} points), "
                    f"{indirect.estimate:+.2f} [{indirect.ci_low:.2f}, {indirect.ci_high:.2f}] "
                    "ran with the change in common humanity and isolation together; the "
                    "interval "
                    + (
                        "includes 0."
                        if indirect.ci_low <= 0 <= indirect.ci_high
                        else "excludes 0 (an association under the assumptions below, not a "
                        "demonstrated mechanism)."
                    )
                ),
                "caveats": caveats,
            }
        )
    return Section(
        "mediation",
        "Mediation through common humanity and isolation",
        "_mediation.html",
        {"outcomes": outcomes, "not_fitted": not_fitted, "mediators": MEDIATORS},
        (
            "Mediation: the parallel two-mediator model (Preacher & Hayes 2008) of each "
            f"outcome's change from {ctx.baseline} to {follow}, with the change in "
            f"{' and '.join(MEDIATORS)} as mediators, three least-squares regressions adjusted "
            "for the baseline values of the outcome and both mediators; in R: "
            "lm(dM ~ ps + y0 + m1_0 + m2_0) per mediator (a paths), lm(dY ~ ps + dM1 + dM2 + "
            "y0 + m1_0 + m2_0) (b paths and direct effect), lm(dY ~ ps + y0 + m1_0 + m2_0) "
            "(total effect). Indirect effects a x b with percentile bootstrap intervals "
            f"({n_boot} resamples, seed {seed}; {resampling or 'within arm'}).",
            "Mediators and outcomes are measured at the same visits, so the data do not order "
            "them in time; the indirect effects are causal only under sequential ignorability "
            "(Imai, Keele & Tingley 2010): no unmeasured confounding of mediator and outcome "
            "given arm and baselines, and no such confounder affected by the arm.",
        ),
        tuple(models),
    )


def _mediation_records(outcome: str, fit: Any) -> list[ReportModel]:
    """The mediation's least-squares equations as models for the R refit (point estimates)."""
    base = " + ".join(f"{c}_0" for c in (outcome, *fit.mediators))
    changes = " + ".join(f"d_{m}" for m in fit.mediators)
    records = [
        ReportModel(
            f"mediation:{outcome}:a[{m}]",
            f"lm(d_{m} ~ ps + {base})",
            {"ps": fit.path(f"a[{m}]").estimate},
        )
        for m in fit.mediators
    ]
    records.append(
        ReportModel(
            f"mediation:{outcome}:b",
            f"lm(d_{outcome} ~ ps + {changes} + {base})",
            {
                "ps": fit.path("direct").estimate,
                **{f"d_{m}": fit.path(f"b[{m}]").estimate for m in fit.mediators},
            },
        )
    )
    records.append(
        ReportModel(
            f"mediation:{outcome}:total",
            f"lm(d_{outcome} ~ ps + {base})",
            {"ps": fit.path("total").estimate},
        )
    )
    return records
