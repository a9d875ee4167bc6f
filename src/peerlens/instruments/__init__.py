"""Questionnaire instruments as declarative data, one scoring engine, and psychometrics.

Each instrument is a spec file in ``specs/`` (items, response range, reverse keys, scores and
their missing-data rules, bands, conversion tables, citation, licence); :func:`score` scores any
of them the same way.

Psychometrics work on item-level or scored data: :func:`cronbach_alpha`, :func:`omega_total`,
:func:`item_total_correlations` and :func:`reliability_table` (reliability),
:func:`reliable_change` and :func:`clinical_cutoffs` (Jacobson & Truax 1991), and
:func:`prepost_effect_sizes` (Lakens 2013).
"""

from peerlens.instruments._spec import InstrumentSpec
from peerlens.instruments.change import (
    ClinicalCutoffs,
    ReliableChange,
    clinical_cutoffs,
    reliable_change,
    score_higher_is_better,
)
from peerlens.instruments.effect_sizes import EffectSize, PrePostEffectSizes, prepost_effect_sizes
from peerlens.instruments.registry import (
    SpecError,
    UnknownInstrumentError,
    list_specs,
    load_spec,
    load_spec_file,
    spec_digest,
)
from peerlens.instruments.reliability import (
    HeywoodCaseWarning,
    InsufficientDataError,
    NegativeItemTotalWarning,
    NonNumericDataError,
    OmegaEstimate,
    PsychometricsError,
    ReliabilityEstimate,
    ScaleItems,
    ZeroVarianceError,
    cronbach_alpha,
    item_total_correlations,
    omega_total,
    reliability_table,
    scale_items,
    spec_scales,
)
from peerlens.instruments.scoring import (
    ScoreColumnConflictError,
    ScoreResult,
    ScoringCaveatWarning,
    ScoringProvenance,
    score,
    score_matrix,
    score_with_provenance,
)
from peerlens.instruments.validation import (
    ItemColumnError,
    ItemProblem,
    ItemValueError,
    MissingCodeError,
    detect_instruments,
    find_item_columns,
    item_matrix,
)

__all__ = [
    "ClinicalCutoffs",
    "EffectSize",
    "HeywoodCaseWarning",
    "InstrumentSpec",
    "InsufficientDataError",
    "ItemColumnError",
    "ItemProblem",
    "ItemValueError",
    "MissingCodeError",
    "NegativeItemTotalWarning",
    "NonNumericDataError",
    "OmegaEstimate",
    "PrePostEffectSizes",
    "PsychometricsError",
    "ReliabilityEstimate",
    "ReliableChange",
    "ScaleItems",
    "ScoreColumnConflictError",
    "ScoreResult",
    "ScoringCaveatWarning",
    "ScoringProvenance",
    "SpecError",
    "UnknownInstrumentError",
    "ZeroVarianceError",
    "clinical_cutoffs",
    "cronbach_alpha",
    "detect_instruments",
    "find_item_columns",
    "item_matrix",
    "item_total_correlations",
    "list_specs",
    "load_spec",
    "load_spec_file",
    "omega_total",
    "prepost_effect_sizes",
    "reliability_table",
    "reliable_change",
    "scale_items",
    "score",
    "score_higher_is_better",
    "score_matrix",
    "score_with_provenance",
    "spec_digest",
    "spec_scales",
]
