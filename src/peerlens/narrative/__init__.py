"""peerlens.narrative: does a PS worker's sharing connect or compare?

Sentence-level labels (``connection``, ``upward``, ``downward``, ``neutral``) for a peer support
worker's words, with the cue phrases behind each label, a connection-based reframing hint for
comparisons, and per-session shares with a connection index.  The model is trained on a corpus
written by the project (``data/corpus.csv``; rules in ``docs/annotation_guidelines.md``) and ships
as plain arrays: nothing is downloaded, no GPU, no pickle.

>>> from peerlens.narrative import classify
>>> classify(["me too, i had the exact same thing"])[0].label
'connection'
"""

from peerlens.narrative._errors import (
    BinaryInputError,
    EmptyInputError,
    InputEncodingError,
    ModelArtifactError,
    NarrativeError,
    SpeakerNotFoundError,
    TranscriptFormatError,
    UnsupportedLanguageError,
)
from peerlens.narrative._io import decode_bytes, read_text
from peerlens.narrative.analysis import (
    COMPARISON_THRESHOLD,
    SentenceLabel,
    SessionSummary,
    StoryAnalysis,
    UnsupportedSentence,
    analyze,
    classify,
    summarize,
    wilson_interval,
)
from peerlens.narrative.corpus import LABELS, load_corpus
from peerlens.narrative.docx import docx_text
from peerlens.narrative.language import LanguageGuess, detect_language
from peerlens.narrative.model import ModelConfig, TextModel, load_model, train_model
from peerlens.narrative.report import render_html
from peerlens.narrative.splitting import split_sentences
from peerlens.narrative.transcripts import Turn, parse_transcript

__all__ = [
    "COMPARISON_THRESHOLD",
    "LABELS",
    "BinaryInputError",
    "EmptyInputError",
    "InputEncodingError",
    "LanguageGuess",
    "ModelArtifactError",
    "ModelConfig",
    "NarrativeError",
    "SentenceLabel",
    "SessionSummary",
    "SpeakerNotFoundError",
    "StoryAnalysis",
    "TextModel",
    "TranscriptFormatError",
    "Turn",
    "UnsupportedLanguageError",
    "UnsupportedSentence",
    "analyze",
    "classify",
    "decode_bytes",
    "detect_language",
    "docx_text",
    "load_corpus",
    "load_model",
    "parse_transcript",
    "read_text",
    "render_html",
    "split_sentences",
    "summarize",
    "train_model",
    "wilson_interval",
]
