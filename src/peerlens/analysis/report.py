"""The study report: one self-contained HTML page built from a de-identified analysis dataset.

:func:`build_report` fits the models once (:class:`ReportContext`) and runs the section
builders in :data:`SECTIONS` in order; each returns a :class:`Section` (a title, the template
that renders it, its data and the sentences it adds to the methods) or ``None`` when it has
nothing to show. :func:`render_html` renders the page with the Jinja2 templates in
``analysis/templates/`` (inline SVG figures, inline CSS with a print stylesheet, no script, no
network).

The page is reproducible byte for byte from the same data, code version and seed: it holds no
clock time, only the data snapshot's hash, and every random step (bootstrap intervals, multiple
imputation) is seeded from :attr:`ReportOptions.seed`.

New analyses add a builder (a function of :class:`ReportContext` returning a :class:`Section`)
and its template; :data:`SECTIONS` lists where each goes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pandas as pd

from peerlens import PeerlensError, __version__
from peerlens.analysis.change_by_arm import change_by_arm, sample_cutoff
from peerlens.analysis.flow import participant_flow
from peerlens.analysis.missing import delta_adjustment
from peerlens.analysis.mixed import MixedModelFit, fit_mixed_model
from peerlens.analysis.nested import NestedModelFit
from peerlens.analysis.plots import means_plot
from peerlens.analysis.report_hrv import graph_section, hrv_section
from peerlens.analysis.tables import baseline_table, missing_table

if TYPE_CHECKING:
    from peerlens.study import AnalysisDataset, HrvTable

__all__ = [
    "DEFAULT_OUTCOMES",
    "SECTIONS",
    "Report",
    "ReportContext",
    "ReportError",
    "ReportModel",
    "ReportOptions",
    "Section",
    "arm_order",
    "build_report",
    "render_html",
]

#: Outcomes reported when none are asked for (those present in the study).
DEFAULT_OUTCOMES = (
    "scs_total",
    "scs_common_humanity",
    "scs_isolation",
    "fscrs_inadequate_self",
    "fscrs_hated_self",
    "fscrs_reassured_self",
    "ders16_total",
)
#: Arm names taken as the reference (control) arm when none is named.
_CONTROL_WORDS = ("control", "usual", "waitlist", "wait_list", "tau")


class ReportError(PeerlensError):
    """The report cannot be built from these data or options (what is wrong is named)."""


@dataclass(frozen=True)
class ReportOptions:
    """What to report and how.

    Attributes
    ----------
    outcomes
        Score columns to model (``None``: those of :data:`DEFAULT_OUTCOMES` in the study).
    seed
        Seed of every random step (bootstrap CIs, multiple imputation).
    reference_arm
        The control arm (``None``: the arm whose name says control / usual care / waitlist,
        else the study's last arm).
    n_imputations
        Imputations per delta of the sensitivity analysis.
    deltas_sd
        Sensitivity shifts, in baseline SDs of the outcome, toward a worse outcome (0, the
        MAR imputation, is always included).
    n_boot
        Bootstrap resamples of the g_av intervals.
    """

    outcomes: tuple[str, ...] | None = None
    seed: int = 0
    reference_arm: str | None = None
    n_imputations: int = 20
    deltas_sd: tuple[float, ...] = (0.2, 0.5)
    n_boot: int = 2000


@dataclass(frozen=True)
class ReportContext:
    """What every section builder sees: the data, the options and the fitted models
    (``hrv``: the study's HRV analysis table, ``None`` when not given)."""

    dataset: AnalysisDataset
    options: ReportOptions
    outcomes: tuple[str, ...]
    arms: tuple[str, ...]
    timepoints: tuple[str, ...]
    fits: Mapping[str, MixedModelFit]
    hrv: HrvTable | None = None

    @property
    def baseline(self) -> str:
        """The first timepoint."""
        return self.timepoints[0]

    @property
    def effect_terms(self) -> tuple[str, ...]:
        """The arm x last-timepoint interactions: each arm's difference from the reference in
        change from baseline to the last timepoint."""
        last = self.timepoints[-1]
        return tuple(f"arm[{a}]:timepoint[{last}]" for a in self.arms[1:])

    def label(self, column: str) -> str:
        """The variable label of ``column`` (the name when it has none)."""
        return str(self.dataset.variable_labels.get(column, column))


@dataclass(frozen=True)
class ReportModel:
    """One model the report fitted, as the R export refits it (:mod:`~.stat_exports`).

    ``key`` names it in the R script's output (``mixed:<outcome>``, ``nested:<outcome>``, ...),
    ``formula_r`` is the matching R call; ``fixed`` maps each term to its estimate,
    ``variance`` each variance component to its value and ``loglik`` is the REML
    log-likelihood (empty and ``None`` for a least-squares path, compared on its estimates).
    """

    key: str
    formula_r: str
    fixed: Mapping[str, float]
    variance: Mapping[str, float] = field(default_factory=dict)
    loglik: float | None = None


@dataclass(frozen=True)
class Section:
    """One section of the page: ``template`` (a file in ``analysis/templates``) rendered with
    ``data``; ``methods`` are the sentences it adds to the methods section, ``models`` the
    models it fitted (listed in the methods and refitted by the R export)."""

    key: str
    title: str
    template: str
    data: Mapping[str, Any]
    methods: tuple[str, ...] = ()
    models: tuple[ReportModel, ...] = ()


@dataclass(frozen=True)
class Report:
    """A built report: its sections and the facts of the methods section."""

    study: str
    sections: tuple[Section, ...]
    methods: tuple[str, ...]
    software: tuple[tuple[str, str], ...]
    snapshot_sha256: str
    seed: int
    models: tuple[ReportModel, ...] = field(default=())


SectionBuilder = Callable[[ReportContext], Section | None]


def build_report(
    dataset: AnalysisDataset,
    options: ReportOptions | None = None,
    *,
    sections: Sequence[SectionBuilder] | None = None,
    hrv: HrvTable | None = None,
) -> Report:
    """Fit the models and build every section.

    Parameters
    ----------
    dataset
        From :func:`peerlens.study.analysis_dataset`.
    options
        What to report (defaults: :class:`ReportOptions`).
    sections
        Section builders in page order (default :data:`SECTIONS`).
    hrv
        The study's HRV analysis table (:func:`peerlens.study.hrv_table`) for the HRV and GRAPH
        sections (none without it).

    Returns
    -------
    Report

    Raises
    ------
    ReportError
        No allocated participants or no scores, an unknown outcome or reference arm, or an
        outcome the model cannot be fitted to (the reason is named).
    """
    options = options or ReportOptions()
    context = replace(_context(dataset, options), hrv=hrv)
    built = [s for s in (b(context) for b in (sections or SECTIONS)) if s is not None]
    methods = [m for s in built for m in s.methods]
    return Report(
        study=dataset.study,
        sections=tuple(built),
        methods=tuple(methods),
        software=_software(),
        snapshot_sha256=dataset.sha256,
        seed=options.seed,
        models=(
            *(mixed_record(f"mixed:{o}", f) for o, f in context.fits.items()),
            *(m for s in built for m in s.models),
        ),
    )


def render_html(report: Report) -> str:
    """The report as one HTML document (see the module docstring)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("peerlens.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["pval"] = _pval
    env.filters["ci"] = _ci
    return env.get_template("report.html").render(report=report)


# ------------------------------------------------------------------------------ the context


def _context(dataset: AnalysisDataset, options: ReportOptions) -> ReportContext:
    allocated = dataset.participants[dataset.participants["arm"].notna()]
    if not len(allocated):
        raise ReportError(f"study {dataset.study!r} has no participants allocated to an arm")
    if not len(dataset.scores):
        raise ReportError(f"study {dataset.study!r} has no scored questionnaires yet")
    available = dataset.score_names
    if options.outcomes:
        unknown = [o for o in options.outcomes if o not in available]
        if unknown:
            raise ReportError(
                f"unknown outcome(s) {', '.join(unknown)} in study {dataset.study!r}; its "
                f"scores are: {', '.join(available)}"
            )
        outcomes = tuple(dict.fromkeys(options.outcomes))
    else:
        outcomes = tuple(o for o in DEFAULT_OUTCOMES if o in available)
        if not outcomes:
            raise ReportError(
                f"study {dataset.study!r} has none of the default outcomes "
                f"({', '.join(DEFAULT_OUTCOMES)}); name some with --outcomes (its scores: "
                f"{', '.join(available)})"
            )
    arms = arm_order(dataset.arms, options.reference_arm)
    timepoints = tuple(t for t in dataset.timepoints if (dataset.scores["timepoint"] == t).any())
    if len(timepoints) < 2:
        raise ReportError(f"study {dataset.study!r} has scores at fewer than two timepoints")
    fits: dict[str, MixedModelFit] = {}
    for outcome in outcomes:
        try:
            fits[outcome] = fit_mixed_model(
                dataset.scores, outcome, arms=list(arms), timepoints=list(timepoints)
            )
        except PeerlensError as exc:
            raise ReportError(f"{outcome}: {exc}") from None
    return ReportContext(dataset, options, outcomes, arms, timepoints, MappingProxyType(fits))


def arm_order(arms: Sequence[str], reference: str | None = None) -> tuple[str, ...]:
    """The arms with the reference (control) arm first: ``reference``, else the first arm whose
    name says control, usual care, waitlist or TAU, else the last arm.

    Examples
    --------
    >>> arm_order(["peer_support", "usual_care"])
    ('usual_care', 'peer_support')
    """
    if reference is None:
        named = [a for a in arms if any(w in a.lower() for w in _CONTROL_WORDS)]
        reference = named[0] if named else arms[-1]
    if reference not in arms:
        raise ReportError(f"reference arm {reference!r} is not an arm ({', '.join(arms)})")
    return (reference, *(a for a in arms if a != reference))


def mixed_record(key: str, fit: MixedModelFit | NestedModelFit) -> ReportModel:
    """The :class:`ReportModel` of a mixed-model fit."""
    return ReportModel(
        key,
        fit.formula_r,
        {fe.term: fe.estimate for fe in fit.fixed},
        dict(fit.variance),
        fit.loglik,
    )


def _software() -> tuple[tuple[str, str], ...]:
    import sys

    versions = [("peerlens", __version__), ("python", sys.version.split()[0])]
    for name in ("statsmodels", "numpy", "pandas", "scipy", "matplotlib", "jinja2"):
        versions.append((name, metadata.version(name)))
    return tuple(versions)


# ------------------------------------------------------------------------------ sections


def flow_section(ctx: ReportContext) -> Section:
    """CONSORT-style participant flow by arm."""
    analysed = {o: f.data for o, f in ctx.fits.items()}
    flow = participant_flow(
        ctx.dataset.participants.assign(
            arm=ctx.dataset.participants["arm"].where(
                ctx.dataset.participants["arm"].isin(ctx.arms)
            )
        ),
        ctx.dataset.scores,
        arms=ctx.arms,
        timepoints=ctx.timepoints,
        analysed=analysed,
    )
    return Section(
        "flow",
        "Participant flow",
        "_flow.html",
        {"table": _records(flow), "arms": ctx.arms},
        (
            "Participant flow follows CONSORT 2010: enrolled participants, their allocation, "
            "who was assessed at each timepoint (at least one score), withdrawals, and who was "
            "analysed for each outcome (at least one value).",
        ),
    )


def baseline_section(ctx: ReportContext) -> Section:
    """Baseline outcomes (mean (SD)) and sites (n (%)) by arm."""
    table = baseline_table(
        ctx.dataset.scores,
        ctx.dataset.participants,
        outcomes=ctx.outcomes,
        arms=ctx.arms,
        baseline=ctx.baseline,
        sites=ctx.dataset.sites,
    )
    table["label"] = [ctx.label(v) if v in ctx.outcomes else v for v in table["variable"]]
    return Section(
        "baseline",
        f"Baseline ({ctx.baseline}) by arm",
        "_baseline.html",
        {"table": _records(table), "groups": (*ctx.arms, "total")},
        ("Baseline characteristics are described (mean (SD), n (%)), not tested.",),
    )


def missing_section(ctx: ReportContext) -> Section:
    """Missing outcome values by arm and timepoint, and the assumption the models make."""
    tables = {
        o: _records(
            missing_table(
                ctx.dataset.scores,
                ctx.dataset.participants,
                outcome=o,
                arms=ctx.arms,
                timepoints=ctx.timepoints,
            )
        )
        for o in ctx.outcomes
    }
    return Section(
        "missing",
        "Missing data",
        "_missing.html",
        {"tables": tables, "labels": {o: ctx.label(o) for o in ctx.outcomes}},
        (
            "Missing outcomes were assumed missing at random (MAR): whether a value is missing "
            "may depend on the participant's observed outcomes and arm, not on the unobserved "
            "value. The likelihood-based mixed models use every observed value under MAR "
            "without imputation.",
        ),
    )


def models_section(ctx: ReportContext) -> Section:
    """Per outcome: the mixed model's fixed effects, variance components and model-based means
    with a plot."""
    outcomes = []
    for o, fit in ctx.fits.items():
        outcomes.append(
            {
                "name": o,
                "label": ctx.label(o),
                "formula": fit.formula_r,
                "n_obs": fit.n_obs,
                "n_participants": fit.n_participants,
                "converged": fit.converged,
                "fixed": [vars(fe) for fe in fit.fixed],
                "variance": list(fit.variance.items()),
                "loglik": fit.loglik,
                "means": _records(fit.means),
                "svg": means_plot(fit.means, outcome=o, arms=ctx.arms, timepoints=ctx.timepoints),
            }
        )
    return Section(
        "models",
        "Outcomes over time by arm (linear mixed models)",
        "_models.html",
        {"outcomes": outcomes, "terms": ctx.effect_terms},
        (
            "Each outcome was modelled with a linear mixed model, y ~ arm x timepoint with a "
            "random intercept per participant (Laird & Ware 1982), fitted by REML (the "
            "deviance profiled over the residual variance; Harville 1977); treatment coding "
            "with the reference arm "
            f"{ctx.arms[0]!r} and the reference timepoint {ctx.baseline!r}. In R: "
            "lmer(y ~ arm * timepoint + (1 | participant), REML = TRUE) (lme4).",
            "Tests and 95 % confidence intervals use Satterthwaite's degrees of freedom, as "
            "lmerTest computes them (Kuznetsova, Brockhoff & Christensen 2017). The effect of "
            "interest is the arm x timepoint interaction: the difference between arms in "
            "change from baseline. Model-based means are shown per arm and timepoint.",
        ),
    )


def change_section(ctx: ReportContext) -> Section:
    """Within-arm effect sizes and reliable / clinically significant change."""
    from peerlens.instruments import (
        PsychometricsError,
        UnknownInstrumentError,
        cronbach_alpha,
        load_spec,
        scale_items,
        score_higher_is_better,
    )

    blocks = []
    notes = []
    for o in ctx.outcomes:
        instrument = ctx.dataset.instruments.get(o, "")
        better: bool | None = None
        alpha: float | None = None
        why = ""
        try:
            spec = load_spec(instrument)
            better = score_higher_is_better(spec, o)
            scale = scale_items(spec, o)
            base = ctx.dataset.items[ctx.dataset.items["timepoint"] == ctx.baseline]
            if all(i in base.columns for i in scale.items):
                alpha = cronbach_alpha(
                    base,
                    list(scale.items),
                    reverse_keyed=list(scale.reverse_keyed),
                    response_range=scale.response_range,
                ).value
            else:
                why = "the items are not in the dataset"
        except (UnknownInstrumentError, PsychometricsError) as exc:
            why = str(exc)
        scores = ctx.dataset.scores
        baseline = scores.loc[
            (scores["timepoint"] == ctx.baseline) & scores["arm"].isin(ctx.arms), o
        ]
        cutoff = sample_cutoff(baseline, higher_is_better=better) if better is not None else None
        table = change_by_arm(
            scores,
            o,
            arms=ctx.arms,
            baseline=ctx.baseline,
            followups=ctx.timepoints[1:],
            reliability=alpha,
            higher_is_better=better,
            cutoff=cutoff,
            seed=ctx.options.seed,
            n_boot=ctx.options.n_boot,
        )
        blocks.append(
            {
                "name": o,
                "label": ctx.label(o),
                "alpha": alpha,
                "higher_is_better": better,
                "cutoff": cutoff,
                "why": why,
                "table": _records(table),
            }
        )
        if alpha is None:
            notes.append(f"{o}: no reliable change ({why or 'no direction of improvement'}).")
    methods = (
        "Within-arm change from baseline: Cohen's d_z with its exact interval and Hedges' g_av "
        f"with a percentile bootstrap interval ({ctx.options.n_boot} resamples, seed "
        f"{ctx.options.seed}) (Lakens 2013), from complete baseline/follow-up pairs.",
        "Reliable change: Jacobson & Truax's (1991) RCI with the reliability r_xx taken as "
        "Cronbach's alpha of the outcome's items at baseline in this sample. Clinically "
        "significant change (recovered): reliably improved and past cut-off a, two baseline "
        "SDs of the pooled sample beyond its mean in the better direction (no functional "
        "norms are assumed).",
        *notes,
    )
    return Section("change", "Change within each arm", "_change.html", {"blocks": blocks}, methods)


def sensitivity_section(ctx: ReportContext) -> Section | None:
    """The main (MAR) estimate beside pattern-mixture delta-adjusted estimates."""
    if len(ctx.arms) < 2:
        return None
    from peerlens.instruments import (
        PsychometricsError,
        UnknownInstrumentError,
        load_spec,
        score_higher_is_better,
    )

    blocks = []
    for o, fit in ctx.fits.items():
        try:
            better = score_higher_is_better(load_spec(ctx.dataset.instruments.get(o, "")), o)
            direction = "lower" if better else "higher"
        except (UnknownInstrumentError, PsychometricsError):
            better, direction = True, "lower (direction of improvement unknown)"
        scores = ctx.dataset.scores
        sd = float(scores.loc[scores["timepoint"] == ctx.baseline, o].std(ddof=1))
        multipliers = (0.0, *ctx.options.deltas_sd)
        deltas = [(-1.0 if better else 1.0) * k * sd for k in multipliers]
        table = delta_adjustment(
            fit,
            deltas=deltas,
            shifted_arms=ctx.arms[1:],
            terms=list(ctx.effect_terms),
            n_imputations=ctx.options.n_imputations,
            seed=ctx.options.seed,
        )
        table.insert(1, "delta_sd", [k for k in multipliers for _ in ctx.effect_terms])
        main = [vars(fit.effect(t)) for t in ctx.effect_terms]
        blocks.append(
            {
                "name": o,
                "label": ctx.label(o),
                "direction": direction,
                "main": main,
                "table": _records(table),
            }
        )
    return Section(
        "sensitivity",
        "Missing-data sensitivity (delta adjustment)",
        "_sensitivity.html",
        {"blocks": blocks, "arms": ctx.arms},
        (
            "Sensitivity to missing not at random: a pattern-mixture delta adjustment by "
            f"multiple imputation ({ctx.options.n_imputations} imputations per delta, seed "
            f"{ctx.options.seed}). Missing values were imputed from the fitted mixed model "
            "(fixed effects drawn from their sampling distribution, random intercepts from "
            "their conditional distribution given the participant's observed values, variance "
            "components fixed at their REML estimates), the imputed values of the "
            f"non-reference arm(s) were shifted by delta = 0, "
            f"{', '.join(f'{k:g}' for k in ctx.options.deltas_sd)} baseline SDs toward a worse "
            "outcome, the same model was refitted to each completed dataset, and the results "
            "were pooled with Rubin's rules and Barnard & Rubin's degrees of freedom (Little "
            "1993; Carpenter, Roger & Kenward 2013).",
        ),
    )


# ------------------------------------------------------------------------------ formatting


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts (NaN as ``None``), for the templates."""
    return [
        {str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict(orient="records")
    ]


def _num(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals (an en dash when missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    text = f"{float(value):.{digits}f}"
    return "0." + "0" * digits if text == "-0." + "0" * digits else text


def _pval(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def _ci(row: Mapping[str, Any], low: str = "ci_low", high: str = "ci_high") -> str:
    return f"[{_num(row.get(low))}, {_num(row.get(high))}]"


# The PS worker sections live in their own module, which builds on this one's classes.
from peerlens.analysis.report_worker import (  # noqa: E402
    mediation_section,
    moderation_section,
    nested_section,
)

#: The section builders, in page order. Analyses of the trial's design (the PS worker level,
#: moderation, mediation, HRV) come after ``models_section`` (before the within-arm change).
SECTIONS: tuple[SectionBuilder, ...] = (
    flow_section,
    baseline_section,
    missing_section,
    models_section,
    nested_section,
    moderation_section,
    mediation_section,
    hrv_section,
    graph_section,
    change_section,
    sensitivity_section,
)
