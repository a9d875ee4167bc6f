"""The evaluation-only sets (written after training) stay separate from the corpus."""

from pathlib import Path

import pandas as pd
import pytest

from peerlens.narrative import load_corpus
from peerlens.narrative._text import normalize

DATA = Path(__file__).parent / "data"
STORY_DATA = Path(__file__).parents[2] / "benchmarks" / "story_data"


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, sep="\t", comment="#", dtype=str, keep_default_na=False)


def test_sets_are_disjoint_from_the_corpus() -> None:
    corpus = set(load_corpus()["text"].map(normalize))
    for name in ("false_alarm_messages.tsv", "paraphrases.tsv"):
        frame = _read(name)
        assert not set(frame["text"].map(normalize)) & corpus, name


def test_false_alarm_set_is_connection_or_neutral_only() -> None:
    frame = _read("false_alarm_messages.tsv")
    assert len(frame) >= 100
    assert set(frame["label"]) == {"connection", "neutral"}


def test_paraphrase_set_is_balanced() -> None:
    counts = _read("paraphrases.tsv")["label"].value_counts()
    assert set(counts.index) == {"connection", "upward", "downward", "neutral"}
    assert counts.min() == counts.max()


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("messy_messages.tsv", (150, 250)),
        ("messy_messages_2.tsv", (100, 250)),
        ("messy_messages_3.tsv", (100, 250)),
    ],
)
def test_messy_held_out_sets_are_disjoint_labelled_and_cover_hard_negatives(
    name: str, size: tuple[int, int]
) -> None:
    frame = pd.read_csv(STORY_DATA / name, sep="\t", comment="#", dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["label", "kind", "text"]
    assert size[0] <= len(frame) <= size[1]
    assert set(frame["label"]) == {"connection", "upward", "downward", "neutral"}
    assert not frame["text"].map(normalize).duplicated().any()
    corpus = set(load_corpus()["text"].map(normalize))
    assert not set(frame["text"].map(normalize)) & corpus
    others = pd.concat(_read(n) for n in ("false_alarm_messages.tsv", "paraphrases.tsv"))
    for other in sorted(STORY_DATA.glob("messy_messages*.tsv")):
        if other.name != name:
            more = pd.read_csv(other, sep="\t", comment="#", dtype=str, keep_default_na=False)
            others = pd.concat([others, more])
    assert not set(frame["text"].map(normalize)) & set(others["text"].map(normalize))
    # hard negatives: advice from experience and recovery without comparison are not comparisons
    assert set(frame.loc[frame["kind"].isin(["advice", "recovery"]), "label"]) == {"neutral"}
    assert (frame["label"].isin(["connection", "neutral"])).sum() >= 75
