"""peerlens: peer support research and practice.

Sub-packages, each usable on its own:

- :mod:`peerlens.instruments`: questionnaire specs, scoring engine, psychometrics.
- :mod:`peerlens.hrv`: ECG/RR readers, R-peak detection, artifact correction, HRV metrics.
- :mod:`peerlens.narrative`: sentence-level connection/comparison analysis.
- :mod:`peerlens.study`: study data model, storage, import/export, audit.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("peerlens")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


class PeerlensWarning(UserWarning):
    """Base class of every warning peerlens emits (tests turn these into errors)."""


class PeerlensError(Exception):
    """Base class of every error peerlens raises on bad input.

    The message always says what is wrong and where (file, row, column, item).
    """


__all__ = ["PeerlensError", "PeerlensWarning", "__version__"]
