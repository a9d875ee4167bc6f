"""Statistics of a peerlens study: mixed models of outcomes over time by arm (``mixed``), the
partially nested PS worker effect (``nested``), moderation by the worker's connection index
(``moderation``), mediation with bootstrap intervals (``mediation``), the HRV models with the
GRAPH reporting table (``hrv_models``), participant flow (``flow``), descriptive tables
(``tables``), within-arm change (``change_by_arm``), missing-data sensitivity (``missing``) and
the study report (``report``).

Core maths only: functions take tidy ``pandas`` frames (as ``peerlens.study`` exports them) and
return frozen results; nothing here reads the study store.
"""

from peerlens.analysis.change_by_arm import change_by_arm, sample_cutoff
from peerlens.analysis.flow import participant_flow
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
from peerlens.analysis.missing import delta_adjustment
from peerlens.analysis.mixed import FixedEffect, MixedModelError, MixedModelFit, fit_mixed_model
from peerlens.analysis.moderation import ModerationFit, fit_moderation, worker_connection_index
from peerlens.analysis.nested import (
    NestedModelError,
    NestedModelFit,
    WorkerTermImpact,
    fit_nested_model,
)
from peerlens.analysis.plots import means_plot
from peerlens.analysis.report import (
    Report,
    ReportError,
    ReportModel,
    ReportOptions,
    Section,
    build_report,
    render_html,
)
from peerlens.analysis.tables import baseline_table, missing_table

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
    "Report",
    "ReportError",
    "ReportModel",
    "ReportOptions",
    "Section",
    "WorkerTermImpact",
    "baseline_table",
    "build_report",
    "change_by_arm",
    "delta_adjustment",
    "fit_hrv_models",
    "fit_mediation",
    "fit_mixed_model",
    "fit_moderation",
    "fit_nested_model",
    "graph_items",
    "means_plot",
    "missing_table",
    "participant_flow",
    "render_html",
    "sample_cutoff",
    "worker_connection_index",
]
