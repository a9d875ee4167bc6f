"""peerlens.hrv: HRV from portable ECG, fast and exact.

Readers for WFDB, EDF/EDF+/BDF, CSV/TSV, Polar H10 exports and RR files; ECG signal quality
(spikes, clipping, flat lines, lead-off, a per-beat template-matching index); R-peak detection
refined to the R apex; Lipponen & Tarvainen (2019) artifact detection and correction; Task Force
(1996) time- and frequency-domain metrics plus nonlinear indices; per-window analysis.
See ``docs/hrv.md``.
"""

from peerlens.hrv._errors import (
    ChannelNotFoundError,
    EmptyRecordingError,
    EventsFileError,
    FlatSignalError,
    HrvInputError,
    RecordingTooShortError,
    SignalQualityError,
    UnreadableRecordingError,
)
from peerlens.hrv.analysis import GAP_COLUMNS, HrvProvenance, HrvResult, analyze
from peerlens.hrv.artifacts import (
    ARTIFACT_TYPES,
    ArtifactCorrection,
    correct_artifacts,
    detect_artifacts,
)
from peerlens.hrv.batch import BatchOptions, map_tasks, run_batch
from peerlens.hrv.metrics import METRIC_COLUMNS, hrv_metrics, nn_spectrum
from peerlens.hrv.peaks import DetectorSettings, detect_rpeaks
from peerlens.hrv.plot import plot_result
from peerlens.hrv.quality import (
    QUALITY_COLUMNS,
    QualitySettings,
    SignalProblems,
    SignalQuality,
    assess_quality,
    beat_sqi,
    detect_signal_problems,
)
from peerlens.hrv.readers import Recording, read_ecg, read_rr
from peerlens.hrv.windows import consecutive_windows, read_events

__all__ = [
    "ARTIFACT_TYPES",
    "GAP_COLUMNS",
    "METRIC_COLUMNS",
    "QUALITY_COLUMNS",
    "ArtifactCorrection",
    "BatchOptions",
    "ChannelNotFoundError",
    "DetectorSettings",
    "EmptyRecordingError",
    "EventsFileError",
    "FlatSignalError",
    "HrvInputError",
    "HrvProvenance",
    "HrvResult",
    "QualitySettings",
    "Recording",
    "RecordingTooShortError",
    "SignalProblems",
    "SignalQuality",
    "SignalQualityError",
    "UnreadableRecordingError",
    "analyze",
    "assess_quality",
    "beat_sqi",
    "consecutive_windows",
    "correct_artifacts",
    "detect_artifacts",
    "detect_rpeaks",
    "detect_signal_problems",
    "hrv_metrics",
    "map_tasks",
    "nn_spectrum",
    "plot_result",
    "read_ecg",
    "read_events",
    "read_rr",
    "run_batch",
]
