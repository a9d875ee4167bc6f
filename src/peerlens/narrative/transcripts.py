"""Transcript parsing: ``Name: text`` lines, WebVTT and SRT captions, into speaker turns."""

from __future__ import annotations

import re
from dataclasses import dataclass

from peerlens.narrative._errors import SpeakerNotFoundError, TranscriptFormatError

__all__ = ["Turn", "detect_format", "parse_transcript", "select_speaker", "speakers"]

_NAME = r"[A-Za-z\u00c0-\u024f][\w'\u2019.\-]*(?: [A-Za-z\u00c0-\u024f][\w'\u2019.\-]*){0,3}"
#: An optional chat-export date ("26/11/2026, ", "11/26/26, ", "2026-11-26 ") before the time.
_DATE = r"(?:\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4},?\s+)"
_STAMP = (
    r"(?:[\[(]?" + _DATE + r"?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
    r"(?:\s?[AaPp]\.?[Mm]\.?)?[\])]?\s*[-\u2013]?\s*)"
)
#: A chat-export line with a date and time but no "Name:" is a system message (WhatsApp's
#: "Messages and calls are end-to-end encrypted", "Sam added Alex", ...): skipped.
_DATED_STAMP = re.compile(r"^\s*" + _STAMP.replace(_DATE + "?", _DATE))
#: Attachments in chat exports carry no words.
_ATTACHMENT = re.compile(r"<(?:media omitted|attached:[^>]*)>|\u200e", re.IGNORECASE)
_LINE = re.compile(
    rf"^\s*{_STAMP}?(?P<name>{_NAME})\s*(?:\(\d{{1,2}}:\d{{2}}(?::\d{{2}})?\))?:\s*(?P<text>.*)$"
)
_BRACKET = re.compile(rf"^\s*\[(?P<name>{_NAME})\]\s*:?\s*(?P<text>.*)$")
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?"
_CAP_NAME = r"[A-Z\u00c0-\u00de][\w'\u2019.\-]*(?: [A-Z\u00c0-\u00de][\w'\u2019.\-]*){0,3}"
_PRONOUNS = r"(?:\s*\([^()\n]{1,30}\))?"
#: A speaker header on a line of its own, the turn's text on the following lines:
#: Microsoft Teams transcript text ("Sam Smith   0:04") and Zoom's transcript text
#: ("[Sam Smith] 10:02:11").  Teams names are taken only when every word is capitalised, so a
#: line of speech such as "see you at 10:30" is not mistaken for a header.
_HEADERS = (
    re.compile(rf"^\s*(?P<name>{_CAP_NAME}){_PRONOUNS}\s+{_CLOCK}\s*$"),
    re.compile(rf"^\s*\[(?P<name>{_NAME}){_PRONOUNS}\]\s+{_CLOCK}\s*$"),
)
#: Zoom chat export: "10:02:11 From Sam Smith to Everyone: text" (also without "to ...").
_ZOOM_CHAT = re.compile(
    rf"^\s*{_CLOCK}\s+From\s+(?P<name>.+?)(?:\s+to\s+[^:]+?)?\s*:\s*(?P<text>.*)$"
)
#: Non-speech annotations of transcribers and caption tools, removed before scoring.
_NON_SPEECH = re.compile(
    r"[\[(](?:laughs?|laughing|laughter|chuckles?|inaudible|unintelligible|indistinct|unclear|"
    r"crosstalk|cross-talk|overlapping|overtalk|music|silence|(?:long )?pause|sighs?|coughs?|"
    r"cries|crying|sniffs?|background noise|noise|applause|phone rings|door|\.\.\.)"
    r"[\])]",
    re.IGNORECASE,
)
_VTT_TIME = r"(?:\d{1,2}:)?\d{1,2}:\d{1,2}\.\d{1,3}"
_SRT_TIME = r"\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}"
_VTT_TIMING = re.compile(rf"^\s*(?P<a>{_VTT_TIME})\s+-->\s+(?P<b>{_VTT_TIME})(?:\s+.*)?$")
_SRT_TIMING = re.compile(rf"^\s*(?P<a>{_SRT_TIME})\s*-->\s*(?P<b>{_SRT_TIME})(?:\s+.*)?$")
_VOICE = re.compile(r"<v(?:\.[\w.\-]+)?\s+(?P<name>[^>]+)>")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<\d{2}:[\d:.]+>")
#: Words that look like a "Name:" prefix but introduce ordinary text.
_NOT_NAMES = frozenset(
    {
        "note",
        "notes",
        "ps",
        "p.s",
        "re",
        "subject",
        "tip",
        "update",
        "edit",
        "http",
        "https",
        "warning",
        "trigger warning",
        "tw",
        "cw",
    }
)


@dataclass(frozen=True)
class Turn:
    """One speaker turn.

    Attributes
    ----------
    speaker : str or None
        Speaker name as written (``None`` for caption cues without a speaker).
    text : str
        What was said, caption markup removed, lines joined with spaces.
    line : int
        1-based line of the turn's first line in the file.
    start_s, end_s : float or None
        Cue times in seconds (captions only).
    """

    speaker: str | None
    text: str
    line: int
    start_s: float | None = None
    end_s: float | None = None


def detect_format(text: str) -> str:
    """Return ``"vtt"``, ``"srt"`` or ``"lines"`` for a transcript's text.

    Examples
    --------
    >>> detect_format("WEBVTT\\n\\n00:01.000 --> 00:02.000\\n<v Sam>hi")
    'vtt'
    >>> detect_format("1\\n00:00:01,000 --> 00:00:02,000\\nSam: hi")
    'srt'
    >>> detect_format("Sam: hi\\nAlex: hello")
    'lines'
    """
    body = text.lstrip("\ufeff").lstrip()
    if body.startswith("WEBVTT"):
        return "vtt"
    head = [ln.strip() for ln in body.splitlines()[:3]]
    if len(head) >= 2 and head[0].isdigit() and _SRT_TIMING.match(head[1]):
        return "srt"
    return "lines"


def parse_transcript(text: str, source: str = "<text>", fmt: str | None = None) -> list[Turn]:
    """Parse a transcript into speaker turns (consecutive turns of one speaker are merged).

    Parameters
    ----------
    text : str
        The transcript.
    source : str
        File name used in error messages.
    fmt : {"lines", "vtt", "srt"}, optional
        Format; detected from the text when omitted (:func:`detect_format`).

    Returns
    -------
    list of Turn

    Raises
    ------
    TranscriptFormatError
        With the file and 1-based line of a malformed cue timing, a caption block without a
        timing line, or text before the first ``Name:`` label.

    Examples
    --------
    >>> [(t.speaker, t.text) for t in parse_transcript("Sam: I felt that too.\\nAlex: Really?")]
    [('Sam', 'I felt that too.'), ('Alex', 'Really?')]
    """
    fmt = fmt or detect_format(text)
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if fmt == "lines":
        turns = _parse_lines(lines, source)
    elif fmt in ("vtt", "srt"):
        turns = _parse_captions(lines, source, fmt)
    else:
        raise TranscriptFormatError(f"{source}: unknown transcript format {fmt!r}")
    if not turns:
        raise TranscriptFormatError(f"{source}: no speaker turns found")
    return _merge(turns)


def speakers(turns: list[Turn]) -> list[str]:
    """Return the distinct speaker names in order of first appearance."""
    seen: dict[str, None] = {}
    for turn in turns:
        if turn.speaker is not None:
            seen.setdefault(turn.speaker, None)
    return list(seen)


def select_speaker(turns: list[Turn], speaker: str | None, source: str = "<text>") -> list[Turn]:
    """Return the turns of ``speaker`` (matched case- and space-insensitively).

    A first name alone ("Sam") selects a full name ("Sam Smith") when exactly one speaker has it.

    Raises
    ------
    SpeakerNotFoundError
        If ``speaker`` is ``None`` or does not speak; the message lists the speakers found.
    """
    names = speakers(turns)
    listing = ", ".join(names) if names else "none"
    if not names:
        raise SpeakerNotFoundError(
            f"{source}: no speaker labels found in the transcript ('Name: text' lines, WebVTT "
            "<v Name> tags, Teams or Zoom speaker headers); analyse it as a story (without "
            "--transcript / transcript=False) or add the speaker labels"
        )
    if speaker is None:
        raise SpeakerNotFoundError(
            f"{source}: name the PS worker whose turns to score (speakers found: {listing})"
        )
    key = _key(speaker)
    chosen = [t for t in turns if t.speaker is not None and _key(t.speaker) == key]
    if not chosen:
        # "Sam" for "Sam Smith" (Teams and Zoom export full names), only when unambiguous
        firsts = [n for n in names if _key(n).split(" ", 1)[0] == key]
        if len(firsts) == 1:
            chosen = [t for t in turns if t.speaker == firsts[0]]
        elif len(firsts) > 1:
            raise SpeakerNotFoundError(
                f"{source}: speaker {speaker!r} is ambiguous: {', '.join(firsts)} "
                f"(speakers found: {listing})"
            )
    if not chosen:
        raise SpeakerNotFoundError(
            f"{source}: speaker {speaker!r} not found in the transcript (speakers found: {listing})"
        )
    return chosen


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


def _split_name(line: str, headers: bool = True) -> tuple[str | None, str]:
    for pattern in (*(_HEADERS if headers else ()), _ZOOM_CHAT):
        match = pattern.match(line)
        if match:
            said = match.groupdict().get("text") or ""
            return match.group("name").strip(), said.strip()
    for pattern in (_LINE, _BRACKET):
        match = pattern.match(line)
        if match and match.group("name").strip().casefold() not in _NOT_NAMES:
            return match.group("name").strip(), match.group("text").strip()
    return None, line.strip()


def _is_header(line: str) -> bool:
    return any(pattern.match(line) for pattern in _HEADERS)


def _is_system(line: str) -> bool:
    stamp = _DATED_STAMP.match(line)
    return stamp is not None and _split_name(line[stamp.end() :], headers=False)[0] is None


def _parse_lines(lines: list[str], source: str) -> list[Turn]:
    turns: list[Turn] = []
    # Teams/Zoom header lines ("Sam Smith   0:04") are recognised only in a transcript that
    # starts with one, so "Tuesday 10:30" inside a 'Name: text' transcript stays speech
    headers: bool | None = None
    for number, raw in enumerate(lines, 1):
        raw = _ATTACHMENT.sub("", _NON_SPEECH.sub("", raw))
        if not raw.strip() or _is_system(raw):
            continue
        if headers is None:
            headers = _is_header(raw)
        name, said = _split_name(raw, headers)
        if name is not None:
            turns.append(Turn(name, said, number))
        elif turns:
            last = turns[-1]
            turns[-1] = Turn(last.speaker, f"{last.text} {said}".strip(), last.line)
        else:
            raise TranscriptFormatError(
                f"{source}: line {number}: expected 'Name: text' (a speaker label before the "
                f"first turn), found {raw.strip()[:40]!r}; if this is a story rather than a "
                "transcript, analyse it without --transcript (transcript=False)"
            )
    return turns


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


def _parse_captions(lines: list[str], source: str, fmt: str) -> list[Turn]:
    timing_re = _VTT_TIMING if fmt == "vtt" else _SRT_TIMING
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start_line = 1
    for number, raw in enumerate(lines, 1):
        if raw.strip():
            if not current:
                start_line = number
            current.append(raw.rstrip())
        elif current:
            blocks.append((start_line, current))
            current = []
    if current:
        blocks.append((start_line, current))
    if fmt == "vtt":
        if not blocks or not blocks[0][1][0].startswith("WEBVTT"):
            raise TranscriptFormatError(f"{source}: line 1: a WebVTT file must start with 'WEBVTT'")
        blocks = blocks[1:]
    turns: list[Turn] = []
    last_speaker: str | None = None
    for first, block in blocks:
        head = block[0].strip()
        if fmt == "vtt" and head.split(" ", 1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        t_index = next((i for i, ln in enumerate(block[:2]) if "-->" in ln), None)
        if t_index is None:
            raise TranscriptFormatError(
                f"{source}: line {first}: caption block without a timing line "
                f"('00:00:01{',' if fmt == 'srt' else '.'}000 --> ...'), found {head[:40]!r}"
            )
        if fmt == "srt" and t_index == 1 and not head.isdigit():
            raise TranscriptFormatError(
                f"{source}: line {first}: SRT cue number must be an integer, found {head[:20]!r}"
            )
        match = timing_re.match(block[t_index])
        if match is None:
            raise TranscriptFormatError(
                f"{source}: line {first + t_index}: malformed cue timing {block[t_index].strip()!r}"
            )
        start, end = _seconds(match.group("a")), _seconds(match.group("b"))
        if end < start:
            raise TranscriptFormatError(
                f"{source}: line {first + t_index}: cue ends before it starts "
                f"({match.group('a')} --> {match.group('b')})"
            )
        for offset, payload in enumerate(block[t_index + 1 :], t_index + 1):
            voice = _VOICE.search(payload)
            name: str | None = voice.group("name").strip() if voice else None
            said = _NON_SPEECH.sub("", _TAG.sub("", payload)).strip().lstrip("-\u2013 ").strip()
            if name is None:
                name, said = _split_name(said, headers=False)
                if name is None:
                    name = last_speaker  # a caption line continues the current speaker
            if said:
                turns.append(Turn(name, said, first + offset, start, end))
                last_speaker = name
    return turns


def _merge(turns: list[Turn]) -> list[Turn]:
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].speaker == turn.speaker:
            last = merged[-1]
            merged[-1] = Turn(
                last.speaker,
                f"{last.text} {turn.text}".strip(),
                last.line,
                last.start_s,
                turn.end_s,
            )
        else:
            merged.append(turn)
    # a header with no words under it (or only non-speech) is not a turn
    return [t for t in merged if t.text.strip()]
