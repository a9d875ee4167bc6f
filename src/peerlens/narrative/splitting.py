"""Sentence splitting for written stories, chat messages and transcribed (unpunctuated) speech."""

from __future__ import annotations

import bisect
import itertools
import re

__all__ = ["logical_lines", "split_sentences"]

#: Abbreviations whose full stop does not end a sentence (lower case, without the stop).
_ABBREVIATIONS = frozenset(
    {
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "vs",
        "etc",
        "eg",
        "ie",
        "e.g",
        "i.e",
        "no",
        "approx",
        "dept",
        "jr",
        "sr",
        "mt",
        "a.m",
        "p.m",
        "cf",
        "fig",
        "ft",
    }
)
_END = re.compile(r"([.!?\u2026]+[\"')\]]*)(\s+)")
_WORD = re.compile(r"\S+")
_CLOSED = re.compile(r"[.!?\u2026][\"')\]]*$")
#: Fillers and discourse markers that open a new spoken utterance.
_FILLER = re.compile(
    r"\b(?:um+|uh+|erm+|er|anyway|anyways|okay so|ok so|right so|yeah so|so yeah)\b",
    re.IGNORECASE,
)
_CONJ = re.compile(r"\b(?:and then|and|but|so|because|cos|cause)\b", re.IGNORECASE)
#: A punctuation-free chunk longer than this many words is treated as run-on speech.
MAX_WORDS = 20
_MIN_WORDS = 4


def split_sentences(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """Split a story, message or speaker turn into sentences.

    Parameters
    ----------
    text : str
        Free text.  Line breaks separate messages (chat) unless a line is clearly a hard-wrapped
        part of a paragraph (long, no end punctuation, next line starts in lower case).
    max_words : int
        Longest punctuation-free stretch kept whole (a sentence closed by ``.``, ``!``, ``?`` is
        kept up to 2.5 times this).  Longer stretches (transcribed speech) are
        cut at a filler ("um", "anyway", "you know what") or, failing that, at the conjunction
        ("and", "but", "so", "because") nearest the middle, recursively, never leaving a piece
        shorter than four words.

    Returns
    -------
    list of str
        Sentences, stripped, in order; empty input gives an empty list.

    Examples
    --------
    >>> split_sentences("I felt that too. Dr. Patel said it's common! what helped u?")
    ['I felt that too.', "Dr. Patel said it's common!", 'what helped u?']
    >>> split_sentences("same\\nme too lol")
    ['same', 'me too lol']
    """
    sentences: list[str] = []
    for block in logical_lines(text):
        for piece in _split_punctuated(block):
            sentences.extend(_split_run_on(piece, max_words))
    return [s for s in (x.strip() for x in sentences) if s]


def logical_lines(text: str) -> list[str]:
    """Return the messages/paragraph lines of ``text`` (hard-wrapped lines joined back).

    Examples
    --------
    >>> logical_lines("me too\\n\\nsame lol")
    ['me too', 'same lol']
    """
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    joinable = False
    for line in lines:
        if not line:
            joinable = False
            continue
        if joinable and out and line[:1].islower():
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
        # a long line without end punctuation is a hard-wrapped paragraph line
        joinable = len(line) >= 60 and not re.search(r"[.!?\u2026:;][\"')\]]*$", line)
    return out


def _split_punctuated(block: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(block):
        end = match.end(1)
        before = block[start:end]
        last = before.rsplit(None, 1)[-1] if before.strip() else ""
        token = last.rstrip(".!?\u2026\"')]").lower()
        # "Dr." / "e.g." / a single initial ("J.") do not end a sentence
        initial = len(token) == 1 and token.isalpha() and token != "i"
        if match.group(1) == "." and (token in _ABBREVIATIONS or initial):
            continue
        pieces.append(block[start:end])
        start = match.end()
    pieces.append(block[start:])
    return [q for p in pieces if p.strip() for q in _split_chat(p.strip())]


#: Chat punctuation: a run of emoji (pictographs, dingbats, skin-tone and joiner marks) followed
#: by a space, or "!"/"?" run straight into the next word ("same!!!i was").
_EMOJI_END = re.compile(
    "([\U0001f300-\U0001faff\u2600-\u27bf\U0001f1e6-\U0001f1ff\u200d\ufe0f]+)(\\s+)"
)
_GLUED_END = re.compile(r"([!?]+)(?=[^\W\d_])")
_CHAT_MIN_WORDS = 3


def _split_chat(piece: str) -> list[str]:
    """Cut a message at emoji or glued "!"/"?" used as sentence ends.

    Only where at least three words stand on each side, so "same 😅" or "omg!! me too" stay
    whole and a trailing emoji stays with its sentence.
    """
    cuts: list[tuple[int, int]] = []
    for pattern in (_EMOJI_END, _GLUED_END):
        cuts.extend((m.end(1), m.end()) for m in pattern.finditer(piece))
    if not cuts:
        return [piece]
    out: list[str] = []
    start = 0
    for end, resume in sorted(cuts):
        left, right = piece[start:end], piece[resume:]
        if len(_WORD.findall(left)) >= _CHAT_MIN_WORDS + _emoji_tokens(left) and len(
            _WORD.findall(right)
        ) >= _CHAT_MIN_WORDS + _emoji_tokens(right):
            out.append(left.strip())
            start = resume
    out.append(piece[start:].strip())
    return [x for x in out if x]


def _emoji_tokens(text: str) -> int:
    # whitespace-separated emoji count as "words" for _WORD; do not let them make up the three
    return sum(1 for w in _WORD.findall(text) if not re.search(r"[^\W_]", w))


def _split_run_on(piece: str, max_words: int) -> list[str]:
    words = list(_WORD.finditer(piece))
    if len(words) <= max_words:
        return [piece]
    # a punctuated sentence is kept whole unless it is implausibly long for one sentence
    if _CLOSED.search(piece) and len(words) <= 2.5 * max_words:
        return [piece]
    starts = [w.start() for w in words]
    fillers = _all_cuts(piece, starts, _FILLER)
    if fillers:
        bounds = [0, *fillers, len(piece)]
        parts = [piece[a:b].strip() for a, b in itertools.pairwise(bounds)]
        return [s for part in parts for s in _split_run_on(part, max_words)]
    cut = _best_cut(piece, starts, _CONJ)
    if cut is None:
        # no safe boundary: cut in the middle rather than keep an unscoreable run
        cut = starts[len(starts) // 2]
    left, right = piece[:cut].strip(), piece[cut:].strip()
    return _split_run_on(left, max_words) + _split_run_on(right, max_words)


def _all_cuts(piece: str, starts: list[int], pattern: re.Pattern[str]) -> list[int]:
    """Every match of ``pattern`` that leaves at least four words on each side of it."""
    cuts: list[int] = []
    last_index = 0
    n = len(starts)
    for match in pattern.finditer(piece):
        index = bisect.bisect_left(starts, match.start())
        if index - last_index >= _MIN_WORDS and n - index >= _MIN_WORDS:
            cuts.append(match.start())
            last_index = index
    return cuts


def _best_cut(piece: str, starts: list[int], pattern: re.Pattern[str]) -> int | None:
    n = len(starts)
    best: tuple[int, int] | None = None
    for match in pattern.finditer(piece):
        index = bisect.bisect_left(starts, match.start())
        if index < _MIN_WORDS or n - index < _MIN_WORDS:
            continue
        distance = abs(index - n // 2)
        if best is None or distance < best[0]:
            best = (distance, match.start())
    return None if best is None else best[1]
