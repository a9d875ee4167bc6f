import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerlens.narrative.splitting import split_sentences


def test_punctuation_and_abbreviations() -> None:
    text = "Dr. Smith said it was normal. I felt that too! Did you? e.g. at night. J. Bloggs came."
    assert split_sentences(text) == [
        "Dr. Smith said it was normal.",
        "I felt that too!",
        "Did you?",
        "e.g. at night.",
        "J. Bloggs came.",
    ]


def test_lowercase_chat_after_full_stop_and_ellipsis() -> None:
    assert split_sentences("same tbh. at least u tried... me too") == [
        "same tbh.",
        "at least u tried...",
        "me too",
    ]


def test_each_chat_line_is_a_message() -> None:
    assert split_sentences("me too\n\nlol same\r\nhow r u") == ["me too", "lol same", "how r u"]


def test_hard_wrapped_paragraph_is_joined() -> None:
    text = (
        "When I was first on the ward I remember feeling that nobody would ever\n"
        "understand what it was like. Then things changed."
    )
    assert split_sentences(text) == [
        "When I was first on the ward I remember feeling that nobody would ever understand "
        "what it was like.",
        "Then things changed.",
    ]


def test_unpunctuated_speech_is_cut_at_fillers_then_conjunctions() -> None:
    speech = (
        "yeah so i was on the ward for a long time and it was really hard for me "
        "um and then one of the nurses sat with me every night for a week "
        "anyway how are you doing this week with everything"
    )
    parts = split_sentences(speech)
    assert parts == [
        "yeah so i was on the ward for a long time and it was really hard for me",
        "um and then one of the nurses sat with me every night for a week",
        "anyway how are you doing this week with everything",
    ]
    long_run = " ".join(["i felt it too and it was hard"] * 8)
    pieces = split_sentences(long_run)
    assert len(pieces) > 1
    assert all(len(p.split()) <= 20 for p in pieces)
    assert " ".join(pieces).split() == long_run.split()


@pytest.mark.parametrize("blank", ["", "   ", "\n\n\t"])
def test_blank_gives_no_sentences(blank: str) -> None:
    assert split_sentences(blank) == []


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_no_words_lost_or_invented(text: str) -> None:
    assert " ".join(split_sentences(text)).split() == text.split()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "omg i was like that too 😭 honestly the mornings are the worst 😭 what helps u",
            [
                "omg i was like that too 😭",
                "honestly the mornings are the worst 😭",
                "what helps u",
            ],
        ),
        (
            "ugh i felt that too!!what helped u in the end",
            ["ugh i felt that too!!", "what helped u in the end"],
        ),
        # fewer than three words on a side: kept whole (the mixed rule then applies)
        (
            "same 😅 i was exactly like that before group",
            ["same 😅 i was exactly like that before group"],
        ),
        ("me too 😭😭 at least u have a job tho", ["me too 😭😭 at least u have a job tho"]),
        ("i felt that too 💜", ["i felt that too 💜"]),
        ("what?!really?", ["what?!really?"]),
        ("the page is gp.nhs.uk/help ok", ["the page is gp.nhs.uk/help ok"]),
    ],
)
def test_chat_emoji_and_glued_punctuation_end_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
