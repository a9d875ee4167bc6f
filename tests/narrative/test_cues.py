import pytest

from peerlens.narrative import ModelArtifactError
from peerlens.narrative._text import normalize
from peerlens.narrative.cues import CueBook, load_cuebook

BOOK = load_cuebook()


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("me too honestly", "sameness"),
        ("i struggle with that myself", "sameness"),
        ("it makes total sense to feel that", "normalising"),
        ("loads of ppl feel like that", "normalising"),
        ("if i can do it u can", "success_benchmark"),
        ("look at me now", "success_benchmark"),
        ("it's all about willpower", "success_benchmark"),
        ("mine was way worse", "worse_than"),
        ("at least u have ur mum", "worse_than"),
        ("you're lucky it was only once", "worse_than"),
        ("what helped me was walking", "advice_from_experience"),
        ("that sounds really hard", "empathy"),
        ("how r u?", "question"),
        ("there's no shame in being off sick", "normalising"),
        ("i'm living proof it gets better", "lookalike"),
        ("at least we found each other", "lookalike"),
        ("sometimes all anyone can say is at least you're alive", "lookalike"),
    ],
)
def test_family_features(text: str, family: str) -> None:
    row = BOOK.features([normalize(text)])[0]
    assert row[BOOK.families.index(family)] == 1.0


def test_per_pattern_features_follow_the_cue_ids() -> None:
    row = BOOK.cue_features([normalize("at least you still have your family")])[0]
    assert row.shape == (len(BOOK.cue_ids),)
    assert [BOOK.cue_ids[i] for i in row.nonzero()[0]] == ["worse_than/at_least"]


def test_cues_and_hints_keyed_to_the_cue() -> None:
    cues = BOOK.find(normalize("at least u have ur mum"), "downward")
    assert [c.cue_id for c in cues] == ["at_least"]
    assert BOOK.hint("downward", cues) == BOOK.hints["at_least"]
    assert BOOK.hint("upward", ()) == BOOK.hints["upward"]
    assert BOOK.hint("connection", cues) is None


def test_every_comparison_cue_has_a_project_hint() -> None:
    for family, label in BOOK.family_label.items():
        if label in ("upward", "downward"):
            assert family in ("success_benchmark", "worse_than")
    assert all(len(h) > 40 for h in BOOK.hints.values())


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ModelArtifactError, match="bad pattern"):
        CueBook({"families": {"f": {"label": "neutral", "cues": {"x": "("}}}, "hints": {}})
    with pytest.raises(ModelArtifactError, match="has no hint"):
        CueBook({"families": {"f": {"label": "upward", "cues": {"x": "a"}}}, "hints": {}})
