"""Sentence labels and session summaries: the public ``classify`` and ``analyze`` functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from peerlens.narrative._errors import EmptyInputError
from peerlens.narrative._text import normalize
from peerlens.narrative.corpus import LABELS
from peerlens.narrative.language import LanguageGuess, ensure_english
from peerlens.narrative.model import TextModel, load_model
from peerlens.narrative.splitting import split_sentences
from peerlens.narrative.transcripts import parse_transcript, select_speaker, speakers

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COMPARISON_THRESHOLD",
    "SentenceLabel",
    "SessionSummary",
    "StoryAnalysis",
    "analyze",
    "classify",
    "summarize",
]

#: An upward/downward label is given only when the model puts at least this probability on it;
#: otherwise the sentence takes the more probable of connection and neutral.  Fixed a priori at
#: "more likely than not" because a false comparison alarm costs a PS worker's trust.
COMPARISON_THRESHOLD = 0.5
_CONNECTION_FAMILIES = ("sameness", "normalising")


@dataclass(frozen=True)
class SentenceLabel:
    """The label of one sentence.

    Attributes
    ----------
    text : str
        The sentence as written.
    label : str
        ``connection``, ``upward``, ``downward`` or ``neutral``.
    confidence : float
        Model probability of ``label``.
    probabilities : Mapping[str, float]
        Probability of each label.
    cues : tuple of str
        Cue phrases (normalised spelling) behind the label: matched cue patterns of the label's
        families, else the word n-grams that pushed most towards it.
    hint : str or None
        Connection-based reframing hint (upward/downward only).
    mixed : bool
        A comparison sentence that also holds a connection cue (it takes the comparison label).
    speaker : str or None
        Speaker of the turn (transcripts).
    turn : int or None
        0-based index of the turn in the scored speaker's turns (transcripts).
    """

    text: str
    label: str
    confidence: float
    probabilities: Mapping[str, float]
    cues: tuple[str, ...]
    hint: str | None = None
    mixed: bool = False
    speaker: str | None = None
    turn: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the ``peerlens story classify`` line format)."""
        out = asdict(self)
        out["probabilities"] = {k: round(float(v), 4) for k, v in self.probabilities.items()}
        out["confidence"] = round(self.confidence, 4)
        out["cues"] = list(self.cues)
        return out


@dataclass(frozen=True)
class SessionSummary:
    """Counts, shares and the connection index of one story or session.

    Notes
    -----
    ``connection_index = connection / (connection + upward + downward)``: the share of the
    worker's self-positioning sentences that connect rather than compare (neutral sentences are
    left out).  Its confidence interval is a percentile bootstrap over sentences (Efron &
    Tibshirani 1993, ch. 13): ``n_boot`` resamples of the session's sentences with replacement,
    drawn as multinomial label counts with the observed shares, seeded for reproducibility;
    resamples with no connection or comparison sentence are skipped.
    """

    n_sentences: int
    counts: Mapping[str, int]
    shares: Mapping[str, float]
    connection_index: float
    ci_low: float
    ci_high: float
    ci_level: float = 0.95
    n_boot: int = 2000
    seed: int = 0

    def to_frame(self) -> pd.DataFrame:
        """Return one tidy row per label: ``label``, ``n_sentences``, ``share``."""
        import pandas as pd

        return pd.DataFrame(
            {
                "label": list(LABELS),
                "n_sentences": [self.counts[k] for k in LABELS],
                "share": [self.shares[k] for k in LABELS],
            }
        )


@dataclass(frozen=True)
class StoryAnalysis:
    """Result of :func:`analyze`: sentence labels plus the session summary and provenance."""

    sentences: tuple[SentenceLabel, ...]
    summary: SessionSummary
    language: LanguageGuess
    source: str = "<text>"
    transcript_format: str | None = None
    speaker: str | None = None
    speakers: tuple[str, ...] = ()
    model: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Return one tidy row per sentence (label, confidence, ``p_<label>``, cues, hint)."""
        import pandas as pd

        rows = []
        for i, s in enumerate(self.sentences):
            row: dict[str, Any] = {
                "sentence": i,
                "speaker": s.speaker,
                "turn": s.turn,
                "text": s.text,
                "label": s.label,
                "confidence": s.confidence,
            }
            row.update({f"p_{k}": float(s.probabilities[k]) for k in LABELS})
            row.update({"mixed": s.mixed, "cues": "; ".join(s.cues), "hint": s.hint})
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: summary first, then provenance, then sentences."""
        summary = asdict(self.summary)
        summary["counts"] = dict(self.summary.counts)
        summary["shares"] = {k: round(float(v), 4) for k, v in self.summary.shares.items()}
        return {
            "summary": summary,
            "source": self.source,
            "transcript_format": self.transcript_format,
            "speaker": self.speaker,
            "speakers": list(self.speakers),
            "language": asdict(self.language),
            "model": dict(self.model),
            "sentences": [s.to_dict() for s in self.sentences],
        }


def classify(
    sentences: Iterable[str],
    *,
    model: TextModel | None = None,
    check_language: bool = True,
    comparison_threshold: float = COMPARISON_THRESHOLD,
) -> tuple[SentenceLabel, ...]:
    """Label each sentence as connection, upward, downward or neutral.

    Parameters
    ----------
    sentences : iterable of str
        One sentence per item (a single string is taken as one sentence; use :func:`analyze`
        for running text).
    model : TextModel, optional
        The packaged model by default.
    check_language : bool
        Raise :class:`~peerlens.narrative.UnsupportedLanguageError` when the sentences, taken
        together, are not English.
    comparison_threshold : float
        Minimum probability for an upward/downward label (see :data:`COMPARISON_THRESHOLD`).

    Returns
    -------
    tuple of SentenceLabel

    Examples
    --------
    >>> [s.label for s in classify(["I felt that too.", "At least you still have your job."])]
    ['connection', 'downward']
    """
    if isinstance(sentences, str):  # one sentence, not an iterable of characters
        sentences = [sentences]
    texts = [str(s) for s in sentences]
    if not texts:
        return ()
    if check_language:
        ensure_english(" ".join(texts))
    model = model or load_model()
    normalized = [normalize(t) for t in texts]
    feats, scores = model.decision(normalized)
    shifted = scores - scores.max(axis=1, keepdims=True)
    proba = np.exp(shifted)
    proba /= proba.sum(axis=1, keepdims=True)
    classes = model.classes
    comparison = [classes.index("upward"), classes.index("downward")]
    fallback = [classes.index("connection"), classes.index("neutral")]
    book = model.cuebook
    out: list[SentenceLabel] = []
    for i, text in enumerate(texts):
        p = proba[i]
        best = int(p.argmax())
        if best in comparison and p[best] < comparison_threshold:
            best = fallback[int(np.argmax(p[fallback]))]
        label = classes[best]
        found = book.find(normalized[i], label)
        cues = tuple(c.phrase for c in found) or tuple(model.top_ngrams(feats, i, label))
        mixed = label in ("upward", "downward") and any(book.find(normalized[i], "connection"))
        out.append(
            SentenceLabel(
                text=text,
                label=label,
                confidence=float(p[best]),
                probabilities={c: float(p[j]) for j, c in enumerate(classes)},
                cues=cues,
                hint=book.hint(label, found),
                mixed=mixed,
            )
        )
    return tuple(out)


def summarize(
    labels: Iterable[str], *, n_boot: int = 2000, ci_level: float = 0.95, seed: int = 0
) -> SessionSummary:
    """Count labels and compute the connection index with a seeded bootstrap CI.

    Examples
    --------
    >>> s = summarize(["connection"] * 3 + ["upward", "neutral"])
    >>> s.connection_index, s.counts["neutral"], s.shares["connection"]
    (0.75, 1, 0.6)
    """
    seq = list(labels)
    n = len(seq)
    counts = {k: sum(1 for x in seq if x == k) for k in LABELS}
    shares = {k: (counts[k] / n if n else float("nan")) for k in LABELS}
    positioned = counts["connection"] + counts["upward"] + counts["downward"]
    index = counts["connection"] / positioned if positioned else float("nan")
    low = high = float("nan")
    if positioned and n_boot > 0:
        rng = np.random.default_rng(seed)
        p = np.array([counts[k] / n for k in LABELS])
        draws = rng.multinomial(n, p, size=n_boot)
        c = draws[:, LABELS.index("connection")]
        d = c + draws[:, LABELS.index("upward")] + draws[:, LABELS.index("downward")]
        ok = d > 0
        boot = c[ok] / d[ok]
        alpha = (1 - ci_level) / 2
        low, high = (float(x) for x in np.quantile(boot, [alpha, 1 - alpha]))
    return SessionSummary(n, counts, shares, index, low, high, ci_level, n_boot, seed)


def analyze(
    text: str,
    transcript: bool = False,
    speaker: str | None = None,
    *,
    source: str = "<text>",
    model: TextModel | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> StoryAnalysis:
    """Analyse a story, or a PS worker's turns in a transcript, sentence by sentence.

    Parameters
    ----------
    text : str
        A story (plain text) or, with ``transcript=True``, a transcript (``Name: text`` lines,
        WebVTT or SRT; detected automatically).
    transcript : bool
        Parse ``text`` as a transcript and score only ``speaker``'s turns.
    speaker : str, optional
        The PS worker's name as it appears in the transcript (case-insensitive).  Required with
        ``transcript=True`` unless the transcript has a single speaker.
    source : str
        File name for error messages and provenance.
    model : TextModel, optional
        The packaged model by default.
    n_boot, seed : int
        Bootstrap resamples and seed for the connection-index CI.

    Returns
    -------
    StoryAnalysis

    Raises
    ------
    EmptyInputError
        No sentences to score.
    SpeakerNotFoundError
        Transcript without the named speaker (the message lists who does speak).
    TranscriptFormatError
        Malformed transcript (file and line given).
    UnsupportedLanguageError
        The text is not English.

    Examples
    --------
    >>> story = "Sam: I heard voices too.\\nAlex: Did you?"
    >>> result = analyze(story, transcript=True, speaker="sam")
    >>> [(s.speaker, s.label) for s in result.sentences]
    [('Sam', 'connection')]
    """
    if not text.strip():
        raise EmptyInputError(f"{source}: the text is empty (no sentences to analyse)")
    model = model or load_model()
    fmt: str | None = None
    names: tuple[str, ...] = ()
    units: list[tuple[str, str | None, int | None]] = []
    if transcript:
        from peerlens.narrative.transcripts import detect_format

        fmt = detect_format(text)
        turns = parse_transcript(text, source, fmt)
        names = tuple(speakers(turns))
        if speaker is None and len(names) == 1:
            speaker = names[0]
        chosen = select_speaker(turns, speaker, source)
        speaker = chosen[0].speaker
        for index, turn in enumerate(chosen):
            units.extend((s, turn.speaker, index) for s in split_sentences(turn.text))
    else:
        units = [(s, None, None) for s in split_sentences(text)]
    if not units:
        raise EmptyInputError(f"{source}: no sentences to analyse")
    language = ensure_english(" ".join(u[0] for u in units), source)
    labelled = classify([u[0] for u in units], model=model, check_language=False)
    sentences = tuple(
        SentenceLabel(**{**_fields(s), "speaker": who, "turn": turn})
        for s, (_, who, turn) in zip(labelled, units, strict=True)
    )
    summary = summarize([s.label for s in sentences], n_boot=n_boot, seed=seed)
    provenance = {
        "format": model.meta.get("format"),
        "corpus_sha256": model.meta.get("corpus_sha256"),
        "npz_sha256": model.meta.get("npz_sha256"),
        "comparison_threshold": COMPARISON_THRESHOLD,
    }
    return StoryAnalysis(
        sentences=sentences,
        summary=summary,
        language=language,
        source=str(source) if not isinstance(source, Path) else source.name,
        transcript_format=fmt,
        speaker=speaker,
        speakers=names,
        model=provenance,
    )


def _fields(label: SentenceLabel) -> dict[str, Any]:
    return {f: getattr(label, f) for f in SentenceLabel.__dataclass_fields__}
