"""Errors raised by :mod:`peerlens.narrative` on bad input."""

from __future__ import annotations

from peerlens import PeerlensError

__all__ = [
    "BinaryInputError",
    "EmptyInputError",
    "InputEncodingError",
    "ModelArtifactError",
    "NarrativeError",
    "SpeakerNotFoundError",
    "TranscriptFormatError",
    "UnsupportedLanguageError",
]


class NarrativeError(PeerlensError):
    """Base class of every bad-input error from the story analysis."""


class EmptyInputError(NarrativeError):
    """The file or text holds no sentences to analyse."""


class BinaryInputError(NarrativeError):
    """The file is binary (for example a Word document or an image), not plain text."""


class InputEncodingError(NarrativeError):
    """The file is not valid UTF-8 (or UTF-16 with a byte-order mark)."""


class TranscriptFormatError(NarrativeError):
    """A transcript line or cue could not be parsed."""


class SpeakerNotFoundError(NarrativeError):
    """The named PS worker does not speak in the transcript, or no speaker was named."""


class UnsupportedLanguageError(NarrativeError):
    """The text is not English; the model was trained on English only."""


class ModelArtifactError(NarrativeError):
    """The packaged model artifact is missing, corrupt or does not match its metadata."""
