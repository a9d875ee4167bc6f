import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlens.narrative import SpeakerNotFoundError, TranscriptFormatError
from peerlens.narrative.transcripts import (
    detect_format,
    parse_transcript,
    select_speaker,
    speakers,
)

VTT = """WEBVTT - session 3

NOTE recorded with consent

1
00:00:01.000 --> 00:00:04.000 align:start
<v Sam Jones>I heard voices too</v>

2
00:00:04.500 --> 00:00:06.000
<v Sam Jones>when I was on the ward.

00:07.000 --> 00:09.500
<v.loud Alex>Really? <i>What</i> helped?
"""

SRT = """1
00:00:01,000 --> 00:00:03,000
Sam: at least you have your family

2
00:00:03,500 --> 00:00:05,000
Alex: yeah
I suppose

3
00:00:05,100 --> 00:00:07,000
- Sam: sorry, that came out wrong.
"""


def test_detect_format() -> None:
    assert detect_format(VTT) == "vtt"
    assert detect_format("\ufeff" + SRT) == "srt"
    assert detect_format("Sam: hi\nAlex: hello") == "lines"


def test_webvtt_voices_tags_notes_and_merging() -> None:
    turns = parse_transcript(VTT)
    assert [(t.speaker, t.text) for t in turns] == [
        ("Sam Jones", "I heard voices too when I was on the ward."),
        ("Alex", "Really? What helped?"),
    ]
    assert turns[0].start_s == 1.0 and turns[0].end_s == 6.0
    assert turns[1].start_s == 7.0


def test_srt_names_continuation_lines_and_dashes() -> None:
    turns = parse_transcript(SRT)
    assert [(t.speaker, t.text) for t in turns] == [
        ("Sam", "at least you have your family"),
        ("Alex", "yeah I suppose"),
        ("Sam", "sorry, that came out wrong."),
    ]
    assert turns[2].start_s == pytest.approx(5.1)


def test_name_lines_with_timestamps_and_continuations() -> None:
    text = "[00:01:02] Sam: hi there\nhow are you\n\nAlex (00:02): fine\r\nSam: good"
    turns = parse_transcript(text)
    assert [(t.speaker, t.text, t.line) for t in turns] == [
        ("Sam", "hi there how are you", 1),
        ("Alex", "fine", 4),
        ("Sam", "good", 5),
    ]
    assert speakers(turns) == ["Sam", "Alex"]


def test_select_speaker_is_case_and_space_insensitive() -> None:
    turns = parse_transcript(VTT)
    assert [t.speaker for t in select_speaker(turns, "  sam   JONES ")] == ["Sam Jones"]


def test_missing_speaker_lists_who_speaks() -> None:
    turns = parse_transcript(SRT)
    with pytest.raises(SpeakerNotFoundError, match=r"'Jo' not found.*Sam, Alex"):
        select_speaker(turns, "Jo", "s.srt")
    with pytest.raises(SpeakerNotFoundError, match=r"name the PS worker.*Sam, Alex"):
        select_speaker(turns, None, "s.srt")


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("just a story with no labels\nSam: hi", "lines", r"line 1: expected 'Name: text'"),
        ("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\n<v A>hi", "vtt", r"line 3: caption block"),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\n<v A>hi", "vtt", r"line 3: malformed cue"),
        ("WEBVTT\n\n00:00:05.000 --> 00:00:02.000\n<v A>hi", "vtt", r"ends before it starts"),
        (
            "1\n00:00:01,000 --> 00:00:02,000\nA: hi\n\nx\n00:00:03,000 --> 00:00:04,000\nB: yo",
            "srt",
            r"line 5: SRT cue number",
        ),
        ("1\n00:00:01,000 --> 00:00:02,000\nA: hi\n\n2\nB: yo", "srt", r"line 5: caption block"),
        (
            "Subtitles\n\n1\n00:00:01,000 --> 00:00:02,000\nA: hi",
            "vtt",
            r"must start with 'WEBVTT'",
        ),
        ("WEBVTT\n", "vtt", r"no speaker turns"),
    ],
)
def test_malformed_transcripts_name_the_line(text: str, fmt: str, message: str) -> None:
    with pytest.raises(TranscriptFormatError, match=message):
        parse_transcript(text, "t", fmt)


def test_ordinary_colon_prefixes_are_not_speakers() -> None:
    turns = parse_transcript("Sam: see the list\nNote: bring your letter")
    assert [(t.speaker, t.text) for t in turns] == [("Sam", "see the list Note: bring your letter")]


_pieces = st.sampled_from(
    [
        "WEBVTT",
        "1",
        "00:00:01.000 --> 00:00:02.000",
        "00:00:01,000 --> 00:00:02,000",
        "00:00:0x --> oops",
        "<v Sam>me too</v>",
        "Sam: at least you tried",
        "- Alex: ok",
        "NOTE x",
        "",
        "plain words",
        "[Jo]: hi",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_pieces, max_size=12), st.sampled_from(["lines", "vtt", "srt", None]))
def test_parser_returns_turns_or_a_clear_error(lines: list[str], fmt: str | None) -> None:
    text = "\n".join(lines)
    try:
        turns = parse_transcript(text, "fuzz", fmt)
    except TranscriptFormatError as exc:
        assert str(exc).startswith("fuzz: ")
    else:
        assert turns and all(t.text for t in turns)
        # merged: no two neighbouring turns share a speaker
        assert all(a.speaker != b.speaker for a, b in itertools.pairwise(turns))


def test_teams_transcript_text_with_speaker_headers() -> None:
    # Microsoft Teams transcript download (.docx saved as text): name and time, then the words
    text = (
        "Sam Smith   0:04\n"
        "I felt that too when I started.\n\n"
        "Alex Jones (they/them)   0:09\n"
        "Did you?\n"
        "see you at 10:30 then\n\n"
        "Sam Smith   1:02:12\n"
        "At least you have a job though.\n"
    )
    turns = parse_transcript(text)
    assert [(t.speaker, t.text) for t in turns] == [
        ("Sam Smith", "I felt that too when I started."),
        ("Alex Jones", "Did you? see you at 10:30 then"),
        ("Sam Smith", "At least you have a job though."),
    ]


def test_zoom_transcript_and_chat_exports() -> None:
    transcript = "[Sam Smith] 10:02:11\nI felt that too.\n[Alex] 10:02:15\nreally?\n"
    assert [(t.speaker, t.text) for t in parse_transcript(transcript)] == [
        ("Sam Smith", "I felt that too."),
        ("Alex", "really?"),
    ]
    chat = (
        "10:02:11 From Sam Smith to Everyone: me too tbh\n"
        "10:02:40 From  Alex : thanks\n"
        "10:03:02 From Sam Smith to Alex(Direct Message): at least u have ur mum\n"
    )
    assert [(t.speaker, t.text) for t in parse_transcript(chat)] == [
        ("Sam Smith", "me too tbh"),
        ("Alex", "thanks"),
        ("Sam Smith", "at least u have ur mum"),
    ]


def test_non_speech_annotations_are_dropped() -> None:
    text = "Sam: I felt that too [laughs]\n[inaudible]\nAlex: (sighs) yeah\n[crosstalk]\n"
    turns = parse_transcript(text)
    assert [(t.speaker, t.text) for t in turns] == [("Sam", "I felt that too"), ("Alex", "yeah")]
    assert speakers(turns) == ["Sam", "Alex"]


def test_webvtt_loose_hour_timings_and_cue_settings() -> None:
    text = (
        "WEBVTT\n\n"
        "a1b2-0\n0:0:0.0 --> 0:0:4.120 align:start position:10%\n"
        "<v Sam Smith>I felt that too.</v>\n\n"
        "a1b2-1\n0:0:4.120 --> 0:0:6.0\n<v Alex>[laughs] Did you?</v>\n"
    )
    turns = parse_transcript(text)
    assert [(t.speaker, t.text, t.start_s, t.end_s) for t in turns] == [
        ("Sam Smith", "I felt that too.", 0.0, 4.12),
        ("Alex", "Did you?", 4.12, 6.0),
    ]


def test_captions_without_any_speaker_label_say_so() -> None:
    text = "WEBVTT\n\n00:01.000 --> 00:02.000\nI felt that too\n"
    turns = parse_transcript(text)
    with pytest.raises(SpeakerNotFoundError, match="no speaker labels found"):
        select_speaker(turns, "Sam")


def test_timestamped_name_lines() -> None:
    text = (
        "[00:01:02] Sam: I felt that too.\n[00:01:05] Alex: really\n"
        "(00:01:07) Sam: at least u have a job"
    )
    assert [(t.speaker, t.text) for t in parse_transcript(text)] == [
        ("Sam", "I felt that too."),
        ("Alex", "really"),
        ("Sam", "at least u have a job"),
    ]


def test_whatsapp_exports_android_and_ios() -> None:
    android = (
        "26/11/2026, 21:02 - Messages and calls are end-to-end encrypted. No one outside of "
        "this chat can read them.\n"
        "26/11/2026, 21:03 - Sam: me too\n"
        "honestly\n"
        "26/11/2026, 21:03 - Alex: <Media omitted>\n"
        "11/26/26, 9:04\u202fPM - Alex: really?\n"
    )
    assert [(t.speaker, t.text, t.line) for t in parse_transcript(android)] == [
        ("Sam", "me too honestly", 2),
        ("Alex", "really?", 4),
    ]
    ios = "[26/11/2026, 21:03:11] Sam Smith: me too\n[26/11/2026, 21:04:02] Alex: ok\n"
    assert [(t.speaker, t.text) for t in parse_transcript(ios)] == [
        ("Sam Smith", "me too"),
        ("Alex", "ok"),
    ]


def test_first_name_selects_a_unique_full_name() -> None:
    turns = parse_transcript("Sam Smith: me too\nAlex Jones: ok\nSam Smith: same here")
    assert [t.text for t in select_speaker(turns, "sam")] == ["me too", "same here"]
    both = parse_transcript("Sam Smith: me too\nSam Jones: ok")
    with pytest.raises(SpeakerNotFoundError, match="ambiguous: Sam Smith, Sam Jones"):
        select_speaker(both, "Sam")
    with pytest.raises(SpeakerNotFoundError, match="'Jo' not found"):
        select_speaker(both, "Jo")


def test_a_time_inside_a_name_text_transcript_is_speech_not_a_header() -> None:
    text = "Sam: can we meet on\nTuesday 10:30\nAlex: ok"
    assert [(t.speaker, t.text) for t in parse_transcript(text)] == [
        ("Sam", "can we meet on Tuesday 10:30"),
        ("Alex", "ok"),
    ]


def test_a_story_passed_as_a_transcript_gets_a_pointer() -> None:
    with pytest.raises(TranscriptFormatError, match="without --transcript"):
        parse_transcript("I felt that too when I was first unwell.\nIt gets easier.")


_SPEAKER = st.sampled_from(["Sam", "Alex Jones", "Jo", "Priya K", "Oluwaseun"])
_WORDS = st.lists(
    st.sampled_from(["me", "too", "honestly", "at", "least", "u", "ok", "10:30", "lol", "😭"]),
    min_size=1,
    max_size=8,
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_SPEAKER, _WORDS), min_size=1, max_size=10),
    st.sampled_from(["android", "ios", "lines", "zoom_chat"]),
)
def test_chat_exports_round_trip(messages: list[tuple[str, str]], style: str) -> None:
    layout = {
        "android": "26/11/2026, 21:{m:02d} - {who}: {text}",
        "ios": "[26/11/2026, 21:{m:02d}:05] {who}: {text}",
        "lines": "[00:{m:02d}:05] {who}: {text}",
        "zoom_chat": "21:{m:02d}:05 From {who} to Everyone: {text}",
    }[style]
    lines = [layout.format(m=i, who=who, text=text) for i, (who, text) in enumerate(messages)]
    expected: list[tuple[str, str]] = []
    for who, text in messages:  # consecutive messages of one speaker form one turn
        if expected and expected[-1][0] == who:
            expected[-1] = (who, f"{expected[-1][1]} {text}")
        else:
            expected.append((who, text))
    assert [(t.speaker, t.text) for t in parse_transcript("\n".join(lines))] == expected
