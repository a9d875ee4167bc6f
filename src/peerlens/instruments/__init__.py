"""Questionnaire instruments as declarative data, one scoring engine, and psychometrics.

Each instrument is a spec file in ``specs/`` (items, response range, reverse keys, scores and
their missing-data rules, bands, conversion tables, citation, licence); :func:`score` scores any
of them the same way.
"""

from peerlens.instruments._spec import InstrumentSpec
from peerlens.instruments.registry import (
    SpecError,
    UnknownInstrumentError,
    list_specs,
    load_spec,
    load_spec_file,
    spec_digest,
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
    "InstrumentSpec",
    "ItemColumnError",
    "ItemProblem",
    "ItemValueError",
    "MissingCodeError",
    "ScoreColumnConflictError",
    "ScoreResult",
    "ScoringCaveatWarning",
    "ScoringProvenance",
    "SpecError",
    "UnknownInstrumentError",
    "detect_instruments",
    "find_item_columns",
    "item_matrix",
    "list_specs",
    "load_spec",
    "load_spec_file",
    "score",
    "score_matrix",
    "score_with_provenance",
    "spec_digest",
]
