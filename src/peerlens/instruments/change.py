"""Individual change: Reliable Change Index and clinically significant change (Jacobson & Truax).

:func:`reliable_change` classifies each participant's pre-post change as improved,
deteriorated or no reliable change, with the direction of improvement given explicitly
(``higher_is_better``: True for well-being or self-compassion, False for symptom scales
such as PHQ-9). :func:`clinical_cutoffs` computes the cut-offs a, b and c from clinical and
functional norms; passing one of them to :func:`reliable_change` adds the Jacobson-Truax
categories recovered / improved / unchanged / deteriorated.

Data come wide (one row per participant, a pre and a post column) or long (one row per
participant x timepoint, with ``timepoint=`` and ``score=`` naming the columns and
``pre``/``post`` naming the two timepoint labels). Participants missing either score are
dropped (listwise) and counted in ``n_excluded``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from peerlens.instruments.reliability import (
    InsufficientDataError,
    PsychometricsError,
    ZeroVarianceError,
    _coerce_numeric,
    _require_columns,
)

if TYPE_CHECKING:
    from peerlens.instruments._spec import InstrumentSpec

__all__ = [
    "ClinicalCutoffs",
    "ReliableChange",
    "clinical_cutoffs",
    "reliable_change",
    "score_higher_is_better",
]

_JT_CITATION = (
    "Jacobson, N. S., & Truax, P. (1991). Clinical significance: A statistical approach to "
    "defining meaningful change in psychotherapy research. Journal of Consulting and "
    "Clinical Psychology, 59(1), 12-19. doi:10.1037/0022-006X.59.1.12"
)

Cutoff = Literal["a", "b", "c"]

_RESULT_COLUMNS = frozenset(
    {
        "pre",
        "post",
        "change",
        "rci",
        "reliable_change",
        "pre_functional",
        "post_functional",
        "jt_category",
    }
)


def _paired_scores(
    data: pd.DataFrame,
    pre: str,
    post: str,
    *,
    participant: str | None,
    timepoint: str | None,
    score: str | None,
) -> tuple[pd.DataFrame, int]:
    """Return a frame with columns (participant,) pre, post of complete pairs, and n dropped."""
    if not isinstance(data, pd.DataFrame):
        raise PsychometricsError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if participant is not None and participant in _RESULT_COLUMNS:
        raise PsychometricsError(
            f"participant column {participant!r} clashes with a result column; rename it"
        )
    if timepoint is None:
        _require_columns(data, [pre, post], "score")
        frame = pd.DataFrame(
            {
                "pre": _coerce_numeric(data[pre], f"column {pre!r}").to_numpy(),
                "post": _coerce_numeric(data[post], f"column {post!r}").to_numpy(),
            }
        )
        if participant is not None:
            _require_columns(data, [participant], "participant")
            frame.insert(0, participant, data[participant].to_numpy())
    else:
        if participant is None or score is None:
            raise PsychometricsError(
                "long-format data (timepoint=...) also needs participant= and score= column names"
            )
        _require_columns(data, [participant, timepoint, score], "long-format")
        values = _coerce_numeric(data[score], f"column {score!r}")
        long = pd.DataFrame(
            {
                "participant": data[participant].to_numpy(),
                "timepoint": data[timepoint].astype("object").to_numpy(),
                "value": values.to_numpy(),
            }
        )
        long = long.loc[long["timepoint"].isin([pre, post])]
        if long.empty:
            raise PsychometricsError(
                f"no rows with {timepoint!r} equal to {pre!r} or {post!r}; timepoints present: "
                f"{sorted(map(str, pd.unique(data[timepoint])))}"
            )
        duplicated = long.duplicated(["participant", "timepoint"])
        if duplicated.any():
            first = long.loc[duplicated].iloc[0]
            raise PsychometricsError(
                f"participant {first['participant']!r} has more than one score at timepoint "
                f"{first['timepoint']!r}"
            )
        wide = long.pivot(index="participant", columns="timepoint", values="value")
        frame = pd.DataFrame(
            {
                participant: wide.index.to_numpy(),
                "pre": wide[pre].to_numpy() if pre in wide.columns else np.nan,
                "post": wide[post].to_numpy() if post in wide.columns else np.nan,
            }
        )
    complete = frame["pre"].notna() & frame["post"].notna()
    n_excluded = int((~complete).sum())
    frame = frame.loc[complete].reset_index(drop=True)
    return frame, n_excluded


@dataclass(frozen=True)
class ClinicalCutoffs:
    """Jacobson & Truax (1991) cut-offs for clinically significant change.

    Attributes
    ----------
    a : float
        Two clinical-population SDs beyond the clinical mean, toward the functional side.
    b : float
        Two functional-population SDs from the functional mean, toward the clinical side.
    c : float
        The point equally likely under both populations (SD-weighted midpoint).
    clinical_mean, clinical_sd, functional_mean, functional_sd : float
        The norms the cut-offs come from.
    higher_is_better : bool
        Direction of improvement on the measure.
    method, citation : str
        Provenance.
    """

    a: float
    b: float
    c: float
    clinical_mean: float
    clinical_sd: float
    functional_mean: float
    functional_sd: float
    higher_is_better: bool
    method: str
    citation: str


def _finite(value: float, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise PsychometricsError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise PsychometricsError(f"{name} must be finite, got {value!r}")
    return out


def clinical_cutoffs(
    *,
    clinical_mean: float,
    clinical_sd: float,
    functional_mean: float,
    functional_sd: float,
    higher_is_better: bool,
) -> ClinicalCutoffs:
    """Cut-offs a, b and c for clinically significant change (Jacobson & Truax, 1991).

    Parameters
    ----------
    clinical_mean, clinical_sd : float
        Mean and SD of the clinical (dysfunctional) population on the measure.
    functional_mean, functional_sd : float
        Mean and SD of the functional (normative) population.
    higher_is_better : bool
        True when higher scores mean better functioning (the functional mean must then be
        above the clinical mean), False for symptom scales.

    Returns
    -------
    ClinicalCutoffs

    Raises
    ------
    PsychometricsError
        Non-finite values, non-positive SDs, or norms that contradict ``higher_is_better``.

    Notes
    -----
    Jacobson & Truax (1991, p. 13), with s = +1 when higher is better and -1 otherwise:

        a = M_clinical + s * 2 * SD_clinical
        b = M_functional - s * 2 * SD_functional
        c = (SD_clinical * M_functional + SD_functional * M_clinical)
            / (SD_clinical + SD_functional)

    c is where a score is equally far, in SD units, from both means; Jacobson & Truax
    recommend c when the two distributions overlap and functional norms are available.

    References
    ----------
    Jacobson, N. S., & Truax, P. (1991). Journal of Consulting and Clinical Psychology,
    59(1), 12-19.

    Examples
    --------
    Dyadic Adjustment Scale norms (Spanier, 1976): married 114.8 (SD 17.8), divorced
    70.7 (SD 23.8); higher is better.

    >>> cut = clinical_cutoffs(clinical_mean=70.7, clinical_sd=23.8,
    ...                        functional_mean=114.8, functional_sd=17.8,
    ...                        higher_is_better=True)
    >>> round(cut.a, 1), round(cut.b, 1), round(cut.c, 2)
    (118.3, 79.2, 95.93)
    """
    m_clin = _finite(clinical_mean, "clinical_mean")
    s_clin = _finite(clinical_sd, "clinical_sd")
    m_func = _finite(functional_mean, "functional_mean")
    s_func = _finite(functional_sd, "functional_sd")
    if s_clin <= 0 or s_func <= 0:
        raise PsychometricsError(
            f"standard deviations must be positive, got clinical_sd={s_clin}, "
            f"functional_sd={s_func}"
        )
    if not isinstance(higher_is_better, bool | np.bool_):
        raise PsychometricsError(
            f"higher_is_better must be True or False, got {higher_is_better!r}"
        )
    if higher_is_better and not m_func > m_clin:
        raise PsychometricsError(
            f"higher_is_better=True but the functional mean ({m_func}) is not above the "
            f"clinical mean ({m_clin}); check the direction of the measure"
        )
    if not higher_is_better and not m_func < m_clin:
        raise PsychometricsError(
            f"higher_is_better=False but the functional mean ({m_func}) is not below the "
            f"clinical mean ({m_clin}); check the direction of the measure"
        )
    sign = 1.0 if higher_is_better else -1.0
    return ClinicalCutoffs(
        a=m_clin + sign * 2.0 * s_clin,
        b=m_func - sign * 2.0 * s_func,
        c=(s_clin * m_func + s_func * m_clin) / (s_clin + s_func),
        clinical_mean=m_clin,
        clinical_sd=s_clin,
        functional_mean=m_func,
        functional_sd=s_func,
        higher_is_better=bool(higher_is_better),
        method="Jacobson & Truax (1991) cut-offs a (2 SD beyond clinical mean), "
        "b (2 SD short of functional mean), c (SD-weighted midpoint)",
        citation=_JT_CITATION,
    )


@dataclass(frozen=True)
class ReliableChange:
    """Per-participant reliable change with the parameters that produced it.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per complete participant: the ``participant`` column (under its own
        name, when given), ``pre``, ``post``,
        ``change`` (post - pre), ``rci``, ``reliable_change`` (``"improved"``,
        ``"deteriorated"`` or ``"no_reliable_change"``) and, when a cut-off was given,
        ``pre_functional``, ``post_functional`` and ``jt_category`` (``"recovered"``,
        ``"improved"``, ``"unchanged"``, ``"deteriorated"``).
    se_diff : float
        Standard error of the difference, SD_pre * sqrt(2) * sqrt(1 - r_xx).
    z_critical : float
        Two-sided normal critical value for ``confidence``.
    min_reliable_change : float
        Smallest raw change that is reliable: z_critical * se_diff (strictly exceeded).
    sd_pre, reliability : float
        Inputs of se_diff.
    sd_pre_source : str
        ``"given"`` or ``"sample"`` (SD of the complete pre scores, n - 1).
    higher_is_better : bool
        Direction of improvement.
    cutoff : float or None
        Cut-off used for the clinical-significance categories.
    n, n_excluded : int
        Participants classified, and dropped for a missing pre or post score.
    method, citation : str
        Provenance.
    """

    table: pd.DataFrame
    se_diff: float
    z_critical: float
    min_reliable_change: float
    sd_pre: float
    sd_pre_source: str
    reliability: float
    higher_is_better: bool
    cutoff: float | None
    n: int
    n_excluded: int
    method: str
    citation: str


def reliable_change(
    data: pd.DataFrame,
    pre: str = "pre",
    post: str = "post",
    *,
    reliability: float,
    higher_is_better: bool,
    sd_pre: float | None = None,
    participant: str | None = None,
    timepoint: str | None = None,
    score: str | None = None,
    cutoff: float | ClinicalCutoffs | None = None,
    criterion: Cutoff = "c",
    confidence: float = 0.95,
) -> ReliableChange:
    """Jacobson-Truax Reliable Change Index and classification for each participant.

    Parameters
    ----------
    data : pandas.DataFrame
        Wide: one row per participant with ``pre`` and ``post`` score columns. Long: one
        row per participant x timepoint; then ``timepoint`` and ``score`` name the columns
        and ``pre``/``post`` are the two timepoint labels.
    pre, post : str
        Column names (wide) or timepoint labels (long).
    reliability : float
        Reliability r_xx of the measure (test-retest or internal consistency from the
        norms or manual), strictly between 0 and 1.
    higher_is_better : bool
        True when an increase is an improvement (self-compassion, well-being), False when a
        decrease is (PHQ-9, GAD-7).
    sd_pre : float, optional
        SD of the measure at baseline from norms. Default: SD of the complete pre scores.
    participant : str, optional
        Participant id column, carried into the table (required for long data).
    timepoint, score : str, optional
        Long-format column names.
    cutoff : float or ClinicalCutoffs, optional
        Cut-off between clinical and functional range; with :class:`ClinicalCutoffs` the
        ``criterion`` (``"a"``, ``"b"`` or ``"c"``) picks which.
    criterion : {"a", "b", "c"}
        Which cut-off of a :class:`ClinicalCutoffs` to use.
    confidence : float
        Two-sided confidence of the reliability criterion (0.95 gives z = 1.95996).

    Returns
    -------
    ReliableChange

    Raises
    ------
    PsychometricsError
        Missing columns, reliability outside (0, 1), non-positive SD, direction
        contradicting the cut-off object.
    InsufficientDataError
        Fewer than 3 complete participants when ``sd_pre`` must be estimated, or none.
    ZeroVarianceError
        The sample pre SD is zero.

    Notes
    -----
    Jacobson & Truax (1991, p. 14):

        SE_diff = sqrt(2 * SE^2) = SD_pre * sqrt(2) * sqrt(1 - r_xx)
        RCI = (x_post - x_pre) / SE_diff

    A change is reliable when |RCI| exceeds z (1.96 at 95%); it is an improvement when
    the RCI points in the better direction (positive if ``higher_is_better``, negative
    otherwise) and a deterioration otherwise. With a cut-off, a participant is
    *recovered* if reliably improved and the post score lies on the functional side of
    the cut-off (beyond it, as in Jacobson & Truax's twofold criterion), *improved* if
    reliably improved only, *deteriorated* if reliably worse, *unchanged* otherwise. The
    pre score's side is reported (``pre_functional``) but not required: filter on it if
    only clients starting in the clinical range should count.

    References
    ----------
    Jacobson, N. S., & Truax, P. (1991). Clinical significance: A statistical approach to
    defining meaningful change in psychotherapy research. Journal of Consulting and
    Clinical Psychology, 59(1), 12-19.
    Christensen, L., & Mendoza, J. L. (1986). A method of assessing change in a single
    subject: An alteration of the RC index. Behavior Therapy, 17, 305-308.

    Examples
    --------
    PHQ-9 (lower is better) with illustrative SD_pre = 5 and r_xx = 0.84:

    >>> import pandas as pd
    >>> scores = pd.DataFrame({"id": [1, 2, 3], "pre": [18, 15, 9], "post": [6, 13, 17]})
    >>> rc = reliable_change(scores, participant="id", reliability=0.84, sd_pre=5.0,
    ...                      higher_is_better=False, cutoff=9.5)
    >>> round(rc.se_diff, 3)
    2.828
    >>> rc.table["reliable_change"].tolist()
    ['improved', 'no_reliable_change', 'deteriorated']
    >>> rc.table["jt_category"].tolist()
    ['recovered', 'unchanged', 'deteriorated']
    """
    if not isinstance(higher_is_better, bool | np.bool_):
        raise PsychometricsError(
            f"higher_is_better must be True or False, got {higher_is_better!r}"
        )
    r_xx = _finite(reliability, "reliability")
    if not 0 < r_xx < 1:
        raise PsychometricsError(
            f"reliability must be strictly between 0 and 1, got {r_xx} (r_xx = 1 would make "
            "every change reliable)"
        )
    if not 0 < confidence < 1:
        raise PsychometricsError(f"confidence must be between 0 and 1, got {confidence}")
    if criterion not in ("a", "b", "c"):
        raise PsychometricsError(f"criterion must be 'a', 'b' or 'c', got {criterion!r}")
    cut: float | None
    if isinstance(cutoff, ClinicalCutoffs):
        if cutoff.higher_is_better != bool(higher_is_better):
            raise PsychometricsError(
                f"the cut-offs were computed with higher_is_better={cutoff.higher_is_better} "
                f"but reliable_change got higher_is_better={higher_is_better}"
            )
        cut = float(getattr(cutoff, criterion))
    elif cutoff is None:
        cut = None
    else:
        cut = _finite(cutoff, "cutoff")

    frame, n_excluded = _paired_scores(
        data, pre, post, participant=participant, timepoint=timepoint, score=score
    )
    n = len(frame)
    if sd_pre is None:
        if n < 3:
            raise InsufficientDataError(
                f"estimating SD_pre from the sample needs at least 3 complete participants, "
                f"got {n} ({n_excluded} dropped for a missing score); pass sd_pre= from norms"
            )
        sd = float(frame["pre"].std(ddof=1))
        if not sd > 0:
            raise ZeroVarianceError(
                "every participant has the same pre score, so SD_pre is zero; pass sd_pre= "
                "from the measure's norms"
            )
        source = "sample"
    else:
        sd = _finite(sd_pre, "sd_pre")
        if not sd > 0:
            raise PsychometricsError(f"sd_pre must be positive, got {sd}")
        source = "given"
    if n == 0:
        raise InsufficientDataError(
            f"no participant has both a pre and a post score ({n_excluded} incomplete)"
        )

    se_diff = sd * math.sqrt(2.0) * math.sqrt(1.0 - r_xx)
    z = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    table = frame.copy()
    table["change"] = table["post"] - table["pre"]
    table["rci"] = table["change"] / se_diff
    better = table["rci"] if higher_is_better else -table["rci"]
    table["reliable_change"] = np.select(
        [better > z, better < -z], ["improved", "deteriorated"], default="no_reliable_change"
    )
    if cut is not None:
        if higher_is_better:
            table["pre_functional"] = table["pre"] > cut
            table["post_functional"] = table["post"] > cut
        else:
            table["pre_functional"] = table["pre"] < cut
            table["post_functional"] = table["post"] < cut
        improved = table["reliable_change"] == "improved"
        table["jt_category"] = np.select(
            [
                improved & table["post_functional"],
                improved,
                table["reliable_change"] == "deteriorated",
            ],
            ["recovered", "improved", "deteriorated"],
            default="unchanged",
        )
    direction = "higher is better" if higher_is_better else "lower is better"
    return ReliableChange(
        table=table,
        se_diff=se_diff,
        z_critical=z,
        min_reliable_change=z * se_diff,
        sd_pre=sd,
        sd_pre_source=source,
        reliability=r_xx,
        higher_is_better=bool(higher_is_better),
        cutoff=cut,
        n=n,
        n_excluded=n_excluded,
        method=(
            f"Jacobson-Truax RCI = (post - pre) / (SD_pre * sqrt(2) * sqrt(1 - r_xx)), "
            f"SD_pre {source} = {sd:.4g}, r_xx = {r_xx:.4g}, |RCI| > {z:.4f} "
            f"({confidence:.0%}), {direction}; listwise deletion ({n_excluded} excluded)"
            + (f"; cut-off {cut:.4g}" if cut is not None else "")
        ),
        citation=_JT_CITATION,
    )


def score_higher_is_better(spec: InstrumentSpec, score: str) -> bool:
    """Direction of improvement of a score, as declared in its instrument spec.

    Parameters
    ----------
    spec : InstrumentSpec
        A loaded instrument spec.
    score : str
        Score name, e.g. ``"phq9_total"``.

    Returns
    -------
    bool
        The spec's ``higher_is_better`` for that score, for :func:`reliable_change` and
        :func:`clinical_cutoffs`.

    Raises
    ------
    PsychometricsError
        Unknown score, or a score whose spec declares no direction (bands, flags).

    Examples
    --------
    >>> from peerlens.instruments.registry import load_spec
    >>> score_higher_is_better(load_spec("phq9"), "phq9_total")
    False
    """
    try:
        definition = spec.score(score)
    except KeyError:
        raise PsychometricsError(
            f"{spec.id} has no score {score!r}; scores: {', '.join(s.name for s in spec.scores)}"
        ) from None
    direction = getattr(definition, "higher_is_better", None)
    if not isinstance(direction, bool):
        raise PsychometricsError(
            f"the {spec.id} spec declares no direction of improvement for {score!r}; pass "
            "higher_is_better= explicitly"
        )
    return direction
