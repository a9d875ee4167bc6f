"""Sentence labels and session summaries: the public ``classify`` and ``analyze`` functions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from peerlens.narrative._errors import EmptyInputError, UnsupportedLanguageError
from peerlens.narrative._text import normalize
from peerlens.narrative.corpus import LABELS
from peerlens.narrative.evaluation import Thresholds, apply_threshold
from peerlens.narrative.language import MIN_TOKENS, LanguageGuess, detect_language, ensure_english
from peerlens.narrative.model import TextModel, load_model
from peerlens.narrative.splitting import logical_lines, split_sentences
from peerlens.narrative.transcripts import parse_transcript, select_speaker, speakers

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COMPARISON_THRESHOLD",
    "SentenceLabel",
    "SessionSummary",
    "StoryAnalysis",
    "UnsupportedSentence",
    "analyze",
    "classify",
    "model_provenance",
    "summarize",
    "wilson_interval",
]

#: Lowest comparison threshold ever used: an upward/downward label needs at least this
#: probability.  The packaged model carries its own thresholds, calibrated on development data for
#: <= 3 % false comparison alarms (``TextModel.thresholds``, ``peerlens.narrative.evaluation``);
#: they are never below this floor.
COMPARISON_THRESHOLD = 0.5
#: The percentile bootstrap of the connection index is used from this many connection/comparison
#: sentences up; below it (or when every such sentence has the same side, where all resamples
#: give the same index and the bootstrap interval collapses to one point) the Wilson score
#: interval is reported instead.
MIN_BOOTSTRAP = 10
_CONNECTION_FAMILIES = ("sameness", "normalising")


@dataclass(frozen=True)
class UnsupportedSentence:
    """A sentence left unlabelled because it is not English.

    Attributes
    ----------
    text : str
        The sentence as written.
    language : str
        Readable name of the language or script detected (for example ``"French"``).
    code : str
        Its ISO 639-1 code (``"fr"``), or ``"non-latin"`` for another script.
    position : int
        0-based position of the sentence among all sentences of the story or worker's turns
        (scored and unsupported together), so the original order can be rebuilt.
    speaker, turn
        As in :class:`SentenceLabel` (transcripts only).
    """

    text: str
    language: str
    code: str
    position: int
    speaker: str | None = None
    turn: int | None = None


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
    position : int or None
        0-based position among all sentences of the story or worker's turns, unsupported
        (non-English) ones included (:func:`analyze` only).
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
    position: int | None = None

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

    Attributes
    ----------
    n_sentences : int
        Sentences labelled (unsupported, non-English sentences are not counted).
    counts, shares : Mapping[str, int], Mapping[str, float]
        Sentences and share of ``n_sentences`` per label (shares are NaN when nothing was
        labelled).
    connection_index : float
        ``connection / (connection + upward + downward)``; NaN without any such sentence.
    ci_low, ci_high : float
        Confidence interval of the index at ``ci_level`` (NaN when the index is NaN).
    ci_method : str
        ``"bootstrap"``, ``"wilson"`` or ``"none"`` (see Notes).

    Notes
    -----
    ``connection_index = connection / (connection + upward + downward)``: the share of the
    worker's self-positioning sentences that connect rather than compare (neutral sentences are
    left out).

    Its confidence interval is a percentile bootstrap over sentences (Efron & Tibshirani 1993,
    ch. 13): ``n_boot`` resamples of the session's sentences with replacement, drawn as
    multinomial label counts with the observed shares, seeded for reproducibility; resamples with
    no connection or comparison sentence are skipped.  The percentile bootstrap needs enough
    sentences and collapses to a single point when every positioned sentence is on one side
    (all connection, or none), which would claim certainty from a handful of sentences.  So when
    fewer than :data:`MIN_BOOTSTRAP` (10) sentences are connection/upward/downward, or the index
    is exactly 0 or 1, the Wilson score interval for ``connection`` successes out of the
    positioned sentences is reported instead (Wilson 1927; recommended for small ``n`` and
    proportions near 0 or 1 by Brown, Cai & DasGupta 2001), and ``ci_method`` says which.
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
    ci_method: str = "bootstrap"

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

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN becomes ``None``, valid in strict JSON)."""
        out = asdict(self)
        out["counts"] = {k: int(self.counts[k]) for k in LABELS}
        out["shares"] = {k: _num(self.shares[k], 4) for k in LABELS}
        for key in ("connection_index", "ci_low", "ci_high"):
            out[key] = _num(out[key], 4)
        return out


@dataclass(frozen=True)
class StoryAnalysis:
    """Result of :func:`analyze`: sentence labels plus the session summary and provenance.

    Attributes
    ----------
    sentences : tuple of SentenceLabel
        The labelled sentences in text order.
    summary : SessionSummary
        Counts, shares and the connection index with its CI.
    language : LanguageGuess
        The language check of the scored text as a whole.
    source : str
        File name (or ``"<text>"``).
    transcript_format : str or None
        ``"lines"``, ``"vtt"`` or ``"srt"`` for transcripts.
    speaker : str or None
        The PS worker scored (as written in the transcript).
    speakers : tuple of str
        Every speaker found in the transcript.
    model : Mapping
        Provenance: ``model_version``, ``npz_sha256``, ``corpus_sha256``, ``format``,
        ``comparison_threshold``, ``comparison_thresholds`` (per class; ``None`` where the
        model abstains), ``encoder`` (the sentence encoder's pinned revision and SHA-256, or
        ``None``), ``peerlens_version``.
    unsupported : tuple of UnsupportedSentence
        Sentences not labelled because they are not English.
    """

    sentences: tuple[SentenceLabel, ...]
    summary: SessionSummary
    language: LanguageGuess
    source: str = "<text>"
    transcript_format: str | None = None
    speaker: str | None = None
    speakers: tuple[str, ...] = ()
    model: Mapping[str, Any] = field(default_factory=dict)
    unsupported: tuple[UnsupportedSentence, ...] = ()

    @property
    def model_version(self) -> str:
        """Version of the model that gave the labels (store it beside the labels)."""
        return str(self.model.get("model_version", "unknown"))

    def to_frame(self) -> pd.DataFrame:
        """Return one tidy row per labelled sentence.

        Columns: ``sentence`` (0-based row), ``position`` (0-based among all sentences,
        unsupported ones included), ``speaker``, ``turn``, ``text``, ``label``, ``confidence``,
        ``p_connection``, ``p_downward``, ``p_neutral``, ``p_upward``, ``mixed``, ``cues``
        (``"; "``-joined), ``hint`` and ``model_version`` (the same on every row, so stored rows
        say which model labelled them).
        """
        import pandas as pd

        columns = [
            "sentence",
            "position",
            "speaker",
            "turn",
            "text",
            "label",
            "confidence",
            *(f"p_{k}" for k in LABELS),
            "mixed",
            "cues",
            "hint",
            "model_version",
        ]
        rows = []
        for i, s in enumerate(self.sentences):
            row: dict[str, Any] = {
                "sentence": i,
                "position": s.position,
                "speaker": s.speaker,
                "turn": s.turn,
                "text": s.text,
                "label": s.label,
                "confidence": s.confidence,
            }
            row.update({f"p_{k}": float(s.probabilities[k]) for k in LABELS})
            row.update(
                {
                    "mixed": s.mixed,
                    "cues": "; ".join(s.cues),
                    "hint": s.hint,
                    "model_version": self.model_version,
                }
            )
            rows.append(row)
        return pd.DataFrame(rows, columns=columns)

    def summary_record(self) -> dict[str, Any]:
        """Return the session summary as one flat, JSON-ready record (for a study database).

        Keys: ``source``, ``speaker``, ``n_sentences``, ``n_unsupported``, ``n_<label>`` and
        ``share_<label>`` per label, ``connection_index``, ``ci_low``, ``ci_high``,
        ``ci_level``, ``ci_method``, ``n_boot``, ``seed``, ``language``, ``model_version``,
        ``model_sha256``, ``corpus_sha256``, ``peerlens_version``.  NaN becomes ``None``.
        """
        s = self.summary
        record: dict[str, Any] = {
            "source": self.source,
            "speaker": self.speaker,
            "n_sentences": s.n_sentences,
            "n_unsupported": len(self.unsupported),
        }
        record.update({f"n_{k}": int(s.counts[k]) for k in LABELS})
        record.update({f"share_{k}": _num(s.shares[k], 6) for k in LABELS})
        record.update(
            {
                "connection_index": _num(s.connection_index, 6),
                "ci_low": _num(s.ci_low, 6),
                "ci_high": _num(s.ci_high, 6),
                "ci_level": s.ci_level,
                "ci_method": s.ci_method,
                "n_boot": s.n_boot,
                "seed": s.seed,
                "language": self.language.code,
                "model_version": self.model_version,
                "model_sha256": self.model.get("npz_sha256"),
                "corpus_sha256": self.model.get("corpus_sha256"),
                "peerlens_version": self.model.get("peerlens_version"),
            }
        )
        return record

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: summary first, then provenance, then sentences.

        NaN values (an undefined connection index) become ``None`` so that the result is
        strict JSON that a web page can parse.
        """
        return {
            "summary": self.summary.to_dict(),
            "source": self.source,
            "transcript_format": self.transcript_format,
            "speaker": self.speaker,
            "speakers": list(self.speakers),
            "language": asdict(self.language),
            "model": dict(self.model),
            "sentences": [s.to_dict() for s in self.sentences],
            "unsupported": [asdict(u) for u in self.unsupported],
        }


def _num(value: float, digits: int) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


def classify(
    sentences: Iterable[str],
    *,
    model: TextModel | None = None,
    check_language: bool = True,
    comparison_threshold: Thresholds | None = None,
    prev: Sequence[str] | None = None,
    nxt: Sequence[str] | None = None,
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
        together, are not English, or when any single sentence is in another language (the
        message names the items); nothing is then labelled.
    comparison_threshold : float or mapping, optional
        Minimum probability for an upward/downward label, one for both or one per class
        (``{"upward": t, "downward": t}``; ``None`` for a class that is never reported); the
        model's calibrated :attr:`~peerlens.narrative.TextModel.thresholds` by default.  Below
        it the sentence takes the more probable of connection and neutral, and keeps its
        probabilities.
    prev, nxt : sequence of str, optional
        The sentence before and after each one in the same message (``""`` at the edges); used
        only by a model trained with neighbour context.  Without them each sentence is read
        alone.

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
        foreign = [(i, g) for i, t in enumerate(texts) if not (g := detect_language(t)).supported]
        if foreign:
            listing = ", ".join(f"item {i + 1} ({g.name})" for i, g in foreign[:5])
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise UnsupportedLanguageError(
                f"not English: {listing}{more}; story analysis supports English only, so "
                "nothing was labelled (use analyze() to skip such sentences and list them)"
            )
    model = model or load_model()
    threshold = model.thresholds if comparison_threshold is None else comparison_threshold
    normalized = [normalize(t) for t in texts]
    context = None
    if model.config.context and prev is not None and nxt is not None:
        context = ([normalize(t) for t in prev], [normalize(t) for t in nxt])
    feats, scores = model.decision(normalized, *(context or (None, None)))
    shifted = scores - scores.max(axis=1, keepdims=True)
    proba = np.exp(shifted)
    proba /= proba.sum(axis=1, keepdims=True)
    classes = model.classes
    decided = apply_threshold(proba, classes, threshold)
    book = model.cuebook
    out: list[SentenceLabel] = []
    for i, text in enumerate(texts):
        p = proba[i]
        best = int(decided[i])
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
    """Count labels and compute the connection index with its confidence interval.

    The interval is a seeded percentile bootstrap over sentences, or the Wilson score interval
    with fewer than :data:`MIN_BOOTSTRAP` connection/comparison sentences or an index of exactly
    0 or 1 (see :class:`SessionSummary`).

    Examples
    --------
    >>> s = summarize(["connection"] * 3 + ["upward", "neutral"])
    >>> s.connection_index, s.counts["neutral"], s.shares["connection"], s.ci_method
    (0.75, 1, 0.6, 'wilson')
    """
    seq = list(labels)
    n = len(seq)
    counts = {k: sum(1 for x in seq if x == k) for k in LABELS}
    shares = {k: (counts[k] / n if n else float("nan")) for k in LABELS}
    connected = counts["connection"]
    positioned = connected + counts["upward"] + counts["downward"]
    index = connected / positioned if positioned else float("nan")
    low = high = float("nan")
    method = "none"
    if positioned and (positioned < MIN_BOOTSTRAP or connected in (0, positioned)):
        low, high = wilson_interval(connected, positioned, ci_level)
        method = "wilson"
    elif positioned and n_boot > 0:
        rng = np.random.default_rng(seed)
        p = np.array([counts[k] / n for k in LABELS])
        draws = rng.multinomial(n, p, size=n_boot)
        c = draws[:, LABELS.index("connection")]
        d = c + draws[:, LABELS.index("upward")] + draws[:, LABELS.index("downward")]
        ok = d > 0
        boot = c[ok] / d[ok]
        alpha = (1 - ci_level) / 2
        low, high = (float(x) for x in np.quantile(boot, [alpha, 1 - alpha]))
        method = "bootstrap"
    return SessionSummary(n, counts, shares, index, low, high, ci_level, n_boot, seed, method)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Notes
    -----
    With ``p = successes / n`` and ``z`` the standard normal ``(1 + level) / 2`` quantile,
    the interval is ``(p + z^2/(2n) +- z sqrt(p(1-p)/n + z^2/(4n^2))) / (1 + z^2/n)``
    (Wilson 1927, "Probable inference, the law of succession, and statistical inference",
    JASA 22:209-212; Brown, Cai & DasGupta 2001, Statistical Science 16:101-133).

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(3, 3)]
    [0.4385, 1.0]
    """
    if n <= 0:
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf((1 + level) / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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

    This is the one entry point for other code (a web page, a study database): text in, a
    frozen :class:`StoryAnalysis` out, with :meth:`StoryAnalysis.to_frame` (one tidy row per
    sentence), :meth:`StoryAnalysis.summary_record` (one flat row per session, with the model
    version and checksums to store beside the labels) and :meth:`StoryAnalysis.to_dict`
    (strict JSON).

    Parameters
    ----------
    text : str
        A story (plain text) or, with ``transcript=True``, a transcript (``Name: text`` lines,
        WebVTT or SRT, Teams/Zoom text exports; detected automatically).
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
        The text as a whole is not English.  Single non-English sentences in English text
        (a quoted phrase, a turn in another language) are not labelled but listed in
        :attr:`StoryAnalysis.unsupported`.

    Examples
    --------
    >>> story = "Sam: Me too, I heard voices for years.\\nAlex: Did you?"
    >>> result = analyze(story, transcript=True, speaker="sam")
    >>> [(s.speaker, s.label) for s in result.sentences]
    [('Sam', 'connection')]
    """
    if not text.strip():
        raise EmptyInputError(f"{source}: the text is empty (no sentences to analyse)")
    model = model or load_model()
    fmt: str | None = None
    names: tuple[str, ...] = ()
    # (sentence, speaker, turn, block): a block is a turn or a story line; a sentence too short
    # to judge its language alone takes its block's language
    units: list[tuple[str, str | None, int | None, int]] = []
    blocks: list[str] = []
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
            blocks.append(turn.text)
            units.extend((s, turn.speaker, index, index) for s in split_sentences(turn.text))
    else:
        for line in logical_lines(text):
            blocks.append(line)
            units.extend((s, None, None, len(blocks) - 1) for s in split_sentences(line))
    if not units:
        raise EmptyInputError(f"{source}: no sentences to analyse")
    language = ensure_english(" ".join(u[0] for u in units), source)
    keep, unsupported = _split_by_language(units, blocks)
    if not keep:
        first = unsupported[0]
        raise UnsupportedLanguageError(
            f"{source}: no English sentence found (first sentence looks like {first.language}); "
            "story analysis supports English only, so nothing is labelled"
        )
    # neighbours: the sentences before and after in the same turn (transcript) or line (story)
    block_of = [u[3] for u in units]
    prev = [units[i - 1][0] if i > 0 and block_of[i - 1] == block_of[i] else "" for i in keep]
    nxt = [
        units[i + 1][0] if i + 1 < len(units) and block_of[i + 1] == block_of[i] else ""
        for i in keep
    ]
    labelled = classify(
        [units[i][0] for i in keep], model=model, check_language=False, prev=prev, nxt=nxt
    )
    sentences = tuple(
        SentenceLabel(**{**_fields(s), "speaker": units[i][1], "turn": units[i][2], "position": i})
        for s, i in zip(labelled, keep, strict=True)
    )
    summary = summarize([s.label for s in sentences], n_boot=n_boot, seed=seed)
    return StoryAnalysis(
        sentences=sentences,
        summary=summary,
        language=language,
        source=str(source) if not isinstance(source, Path) else source.name,
        transcript_format=fmt,
        speaker=speaker,
        speakers=names,
        model=model_provenance(model),
        unsupported=tuple(unsupported),
    )


def model_provenance(model: TextModel) -> dict[str, Any]:
    """Return what identifies the model behind a result (stored with the labels)."""
    from peerlens import __version__

    return {
        "model_version": model.version,
        "format": model.meta.get("format"),
        "npz_sha256": model.meta.get("npz_sha256"),
        "corpus_sha256": model.meta.get("corpus_sha256"),
        "comparison_threshold": model.threshold,
        "comparison_thresholds": model.thresholds,
        "trained_on": model.meta.get("trained_on"),
        "real_batches": model.meta.get("real_batches"),
        "real_labels_sha256": model.meta.get("real_labels_sha256"),
        "real_texts_sha256": model.meta.get("real_texts_sha256"),
        # the sentence encoder's pinned weights (revision and SHA-256), for a model that uses it
        "encoder": model.meta.get("encoder"),
        "peerlens_version": __version__,
    }


def _split_by_language(
    units: list[tuple[str, str | None, int | None, int]], blocks: list[str]
) -> tuple[list[int], list[UnsupportedSentence]]:
    """Indices of English sentences, and the others as :class:`UnsupportedSentence`."""
    block_guess: dict[int, LanguageGuess] = {}
    keep: list[int] = []
    unsupported: list[UnsupportedSentence] = []
    for i, (sentence, who, turn, block) in enumerate(units):
        guess = detect_language(sentence)
        if guess.n_tokens < MIN_TOKENS and guess.code == "en":
            if block not in block_guess:
                block_guess[block] = detect_language(blocks[block])
            guess = block_guess[block]
        if guess.supported:
            keep.append(i)
        else:
            unsupported.append(UnsupportedSentence(sentence, guess.name, guess.code, i, who, turn))
    return keep, unsupported


def _fields(label: SentenceLabel) -> dict[str, Any]:
    return {f: getattr(label, f) for f in SentenceLabel.__dataclass_fields__}
