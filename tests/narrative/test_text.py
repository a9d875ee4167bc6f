from peerlens.narrative._text import normalize


def test_chat_abbreviations_expand_to_the_same_words_as_written_english() -> None:
    assert normalize("ur not alone, u r doing great") == normalize(
        "your not alone, you are doing great"
    )


def test_repeated_letters_and_curly_apostrophes() -> None:
    assert normalize("Sooo SAMEEE, I\u2019m tired") == "so same, i'm tired"


def test_ambiguous_words_are_not_rewritten() -> None:
    # "ill" means unwell and "2" is a number: neither is expanded
    assert normalize("I was ill for 2 years") == "i was ill for 2 years"
    # a letter inside a word is not an abbreviation
    assert normalize("run") == "run"
