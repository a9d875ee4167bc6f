"""Statistics of a peerlens study: mixed models of outcomes over time by arm, participant flow,
descriptive tables, within-arm change, missing-data sensitivity and the study report; (to come)
the partially nested worker effect, moderation, mediation and the HRV models.

Core maths only: functions take tidy ``pandas`` frames (as ``peerlens.study`` exports them) and
return frozen results; nothing here reads the study store.
"""

from peerlens.analysis.change_by_arm import change_by_arm, sample_cutoff
from peerlens.analysis.flow import participant_flow
from peerlens.analysis.missing import delta_adjustment
from peerlens.analysis.mixed import FixedEffect, MixedModelError, MixedModelFit, fit_mixed_model
from peerlens.analysis.plots import means_plot
from peerlens.analysis.report import (
    Report,
    ReportError,
    ReportOptions,
    Section,
    build_report,
    render_html,
)
from peerlens.analysis.tables import baseline_table, missing_table

__all__ = [
    "FixedEffect",
    "MixedModelError",
    "MixedModelFit",
    "Report",
    "ReportError",
    "ReportOptions",
    "Section",
    "baseline_table",
    "build_report",
    "change_by_arm",
    "delta_adjustment",
    "fit_mixed_model",
    "means_plot",
    "missing_table",
    "participant_flow",
    "render_html",
    "sample_cutoff",
]
