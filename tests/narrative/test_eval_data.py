"""The evaluation-only sets (written after training) stay separate from the corpus."""

from pathlib import Path

import pandas as pd

from peerlens.narrative import load_corpus
from peerlens.narrative._text import normalize

DATA = Path(__file__).parent / "data"


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
