"""Statistics of a peerlens study: mixed models of outcomes over time by arm (``mixed``), the
partially nested PS worker effect (``nested``), moderation by the worker's connection index
(``moderation``), mediation with bootstrap intervals (``mediation``) and the HRV models with the
GRAPH reporting table (``hrv_models``); missing-data sensitivity and the report are to come.

Core maths only: functions take tidy ``pandas`` frames (as ``peerlens.study`` exports them) and
return frozen results; nothing here reads the study store.
"""

from peerlens.analysis.hrv_models import (
    GRAPH_ITEMS,
    HrvModelError,
    HrvModels,
    fit_hrv_models,
    graph_items,
)
from peerlens.analysis.mediation import (
    MEDIATION_CAVEATS,
    MediationError,
    MediationFit,
    PathEstimate,
    fit_mediation,
)
from peerlens.analysis.mixed import FixedEffect, MixedModelError, MixedModelFit, fit_mixed_model
from peerlens.analysis.moderation import ModerationFit, fit_moderation, worker_connection_index
from peerlens.analysis.nested import (
    NestedModelError,
    NestedModelFit,
    WorkerTermImpact,
    fit_nested_model,
)

__all__ = [
    "GRAPH_ITEMS",
    "MEDIATION_CAVEATS",
    "FixedEffect",
    "HrvModelError",
    "HrvModels",
    "MediationError",
    "MediationFit",
    "MixedModelError",
    "MixedModelFit",
    "ModerationFit",
    "NestedModelError",
    "NestedModelFit",
    "PathEstimate",
    "WorkerTermImpact",
    "fit_hrv_models",
    "fit_mediation",
    "fit_mixed_model",
    "fit_moderation",
    "fit_nested_model",
    "graph_items",
    "worker_connection_index",
]
