"""BERT WordPiece tokenisation on a small hand-made vocabulary."""

from peerlens.narrative._wordpiece import WordPiece

VOCAB = {
    t: i
    for i, t in enumerate(
        [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "i",
            "'",
            "ve",
            "been",
            "there",
            ",",
            "!",
            "un",
            "##believ",
            "##ably",
            "cafe",
            "me",
            "too",
            ".",
        ]
    )
}


def test_words_split_punctuation_lowercase_and_strip_accents() -> None:
    tok = WordPiece(VOCAB)
    assert tok.words("I've been THERE, Café!") == [
        "i",
        "'",
        "ve",
        "been",
        "there",
        ",",
        "cafe",
        "!",
    ]
    assert tok.words("me\ttoo\u00a0.\x00") == ["me", "too", "."]


def test_greedy_longest_match_and_unknown_words() -> None:
    tok = WordPiece(VOCAB)
    assert tok.word_ids("unbelievably") == [VOCAB["un"], VOCAB["##believ"], VOCAB["##ably"]]
    assert tok.word_ids("unbelievableness") == [VOCAB["[UNK]"]]  # no full cover
    assert tok.word_ids("x" * 101) == [VOCAB["[UNK]"]]


def test_encode_adds_special_tokens_and_truncates() -> None:
    tok = WordPiece(VOCAB)
    assert tok.encode("me too") == [VOCAB["[CLS]"], VOCAB["me"], VOCAB["too"], VOCAB["[SEP]"]]
    assert len(tok.encode("me too " * 50, max_length=8)) == 8
