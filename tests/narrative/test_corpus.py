"""The corpus itself: size, balance, coverage, frozen split and the hard negatives it must hold."""

import re
from pathlib import Path

import pytest

from peerlens.narrative import LABELS, NarrativeError, load_corpus
from peerlens.narrative._text import normalize

CORPUS = load_corpus()


def test_size_and_balance() -> None:
    assert len(CORPUS) >= 2000
    counts = CORPUS["label"].value_counts()
    assert set(counts.index) == set(LABELS)
    # roughly balanced; the hard negatives written after batch 3 (column ``rule``) are neutral by
    # design, so neutral leads (training weighs the classes to balance anyway)
    assert counts.min() / counts.max() > 0.8


def test_spans_diagnoses_settings_registers() -> None:
    for column, values in {
        "diagnosis": [
            "psychosis",
            "depression",
            "anxiety",
            "bipolar",
            "eating disorders",
            "self-harm",
            "addiction",
            "trauma",
            "grief",
        ],
        "setting": ["ward", "community", "group", "online chat", "family"],
        "register": ["spoken", "texted", "formal"],
    }.items():
        for value in values:
            sub = CORPUS[CORPUS[column] == value]
            # every value is present for every label
            assert set(sub["label"]) == set(LABELS), (column, value)


def test_frozen_test_split_is_stratified_and_disjoint() -> None:
    test = CORPUS[CORPUS["split"] == "test"]
    train = CORPUS[CORPUS["split"] == "train"]
    assert 0.18 < len(test) / len(CORPUS) < 0.22
    assert set(test["text"].map(normalize)).isdisjoint(set(train["text"].map(normalize)))
    shares = test["label"].value_counts(normalize=True)
    assert shares.min() > 0.22


def test_mixed_sentences_take_comparison_labels() -> None:
    mixed = CORPUS[CORPUS["mixed"] == 1]
    assert len(mixed) >= 40
    assert set(mixed["label"]) == {"upward", "downward"}


def _labels_where(pattern: str) -> set[str]:
    hits = CORPUS[CORPUS["text"].str.lower().str.contains(pattern, regex=True)]
    return set(hits["label"])


@pytest.mark.parametrize(
    ("pattern", "must_include"),
    [
        (r"\bme too\b", {"connection"}),  # "me too" is sameness ...
        (r"\bmyself\b", {"connection", "neutral", "upward"}),  # ... "myself" goes every way
        (r"\bas well\b", {"connection", "neutral"}),
        (r"\bat least\b", {"downward", "neutral"}),  # "at least text me when you get home"
        (r"\blucky\b", {"downward", "neutral"}),  # "I was lucky to get a good nurse"
        (r"what helped me|what worked for me", {"neutral"}),  # advice from experience
        (r"i'm in recovery|i've been (?:sober|clean|well|out of hospital)", {"neutral"}),
        (r"sounds? (?:really )?(?:hard|tough|awful)", {"neutral"}),  # empathy without sameness
        (r"\blook at\b", {"upward", "neutral"}),
    ],
)
def test_hard_negatives_present(pattern: str, must_include: set[str]) -> None:
    assert must_include <= _labels_where(pattern)


def test_validation_reports_row_and_column(tmp_path: Path) -> None:
    bad = CORPUS.head(5).copy()
    bad.loc[3, "label"] = "sideways"
    path = tmp_path / "c.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(NarrativeError, match=r"row 4, column 'label': unknown value 'sideways'"):
        load_corpus(path)


def test_no_identifying_data() -> None:
    # written by the project: no e-mail addresses, phone numbers other than helplines, or URLs
    text = " ".join(CORPUS["text"])
    assert not re.search(r"[\w.]+@[\w.]+|https?://|\b0\d{9,10}\b", text)


def test_rows_added_in_review_follow_the_hash_split_rule() -> None:
    # docs/annotation_guidelines.md: test exactly when sha256(text) mod 5 == 0
    import hashlib

    added = CORPUS[CORPUS["id"].str[1:].astype(int) > 1000]
    assert len(added) >= 100
    for text, split in zip(added["text"], added["split"], strict=True):
        expected = (
            "test" if int(hashlib.sha256(text.encode()).hexdigest(), 16) % 5 == 0 else "train"
        )
        assert split == expected, text


def test_hard_negatives_cite_rules_the_guidelines_have() -> None:
    guidelines = (Path(__file__).resolve().parents[2] / "docs/annotation_guidelines.md").read_text(
        encoding="utf-8"
    )
    cited = CORPUS[CORPUS["rule"] != ""]
    assert len(cited) >= 50
    for rule in set(cited["rule"]):
        if rule[0] == "B":  # "B2-4": a rule added after a real batch, as a bold heading
            assert f"**{rule}." in guidelines, rule
        else:  # "3", "4b", "6a": a numbered decision rule or sub-rule
            assert re.search(rf"^\s*{re.escape(rule)}\. \*\*", guidelines, re.M), rule
    # the traps they were written for are mostly not comparisons
    assert (cited["label"] == "neutral").mean() > 0.8
