"""Errors raised by :mod:`peerlens.hrv` on bad input (each names the file and the problem)."""

from __future__ import annotations

from peerlens import PeerlensError


class HrvInputError(PeerlensError):
    """Base class of every HRV input error."""


class UnreadableRecordingError(HrvInputError):
    """The file is missing, in an unknown format, or cannot be parsed."""


class EmptyRecordingError(HrvInputError):
    """The file parses but holds no samples or intervals."""


class FlatSignalError(HrvInputError):
    """The ECG channel is constant (electrode off, disconnected lead)."""


class RecordingTooShortError(HrvInputError):
    """The recording is too short for the requested analysis."""


class ChannelNotFoundError(HrvInputError):
    """The requested channel name or index is not in the recording."""


class EventsFileError(HrvInputError):
    """The events file (label, start, end) is malformed."""


class SignalQualityError(HrvInputError):
    """Too little of the ECG is usable (spikes, clipping, flat line, lead-off, noise)."""
