"""The development corpus loader: joins keys, labels and rebuilt texts, and refuses gaps."""

from pathlib import Path

import pytest

from peerlens.narrative import NarrativeError
from peerlens.narrative.devcorpus import DevCorpusPaths, load_dev_corpus, neighbours_from_context

ITEMS = "item_id,source,arm\nitem1,forum,random\nitem2,forum,random\nitem3,chat,targeted:x\n"
LABELS = (
    "item_id\tpass1\tpass2\tfinal\tmixed\treason\n"
    "item1\tneutral\tconnection\tconnection\t0\t\n"
    "item2\tdownward\tdownward\tdownward\t0\t\n"
    "item3\tneutral\tneutral\tneutral\t0\tunsupported: French\n"
)
TEXTS = (
    "item_id\tsentence\tcontext\n"
    "item1\tMe too.\tHi. [[Me too.]] At least you tried.\n"
    "item2\tAt least you tried.\tMe too. [[At least you tried.]]\n"
    "item3\tMoi aussi.\t[[Moi aussi.]]\n"
)


def _paths(tmp_path: Path, labels: str = LABELS, texts: str = TEXTS) -> DevCorpusPaths:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "items.csv").write_text(ITEMS)
    (keys / "labels.tsv").write_text(labels)
    (tmp_path / "texts.tsv").write_text(texts)
    return DevCorpusPaths(keys, tmp_path / "texts.tsv")


def test_loads_every_labelled_item_with_source_and_neighbours(tmp_path: Path) -> None:
    frame = load_dev_corpus(_paths(tmp_path))
    assert frame["item_id"].tolist() == ["item1", "item2"]  # the unsupported one is left out
    assert frame["label"].tolist() == ["connection", "downward"]
    assert frame["source"].tolist() == ["forum", "forum"]
    assert frame[["prev", "next"]].values.tolist() == [
        ["Hi.", "At least you tried."],
        ["Me too.", ""],
    ]


def test_a_labelled_item_without_rebuilt_text_is_an_error(tmp_path: Path) -> None:
    texts = "\n".join(TEXTS.splitlines()[:2]) + "\n"
    with pytest.raises(NarrativeError, match="no rebuilt text; rerun"):
        load_dev_corpus(_paths(tmp_path, texts=texts))


def test_unknown_label_names_row_and_column(tmp_path: Path) -> None:
    bad = LABELS.replace("downward\tdownward\tdownward", "downward\tdownwards\tdownward")
    with pytest.raises(NarrativeError, match="row 3, column pass2"):
        load_dev_corpus(_paths(tmp_path, labels=bad))


def test_missing_texts_say_how_to_rebuild(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.rebuilt.unlink()
    assert not paths.available()
    with pytest.raises(NarrativeError, match="build_real_corpus"):
        load_dev_corpus(paths)


def test_neighbours_ignore_elided_parts() -> None:
    assert neighbours_from_context("[…] One. Two. [[Three.]] Four. […]") == ("Two.", "Four.")


REAL = Path(__file__).resolve().parents[2] / "benchmarks" / "story_data" / "real"


def test_committed_labels_cover_whole_batches_and_give_a_reason_for_every_dispute() -> None:
    import pandas as pd

    read = {"dtype": str, "keep_default_na": False}
    items = pd.read_csv(REAL / "items.csv", **read)
    labels = pd.read_csv(REAL / "labels.tsv", sep="\t", **read)
    assert list(labels.columns) == ["item_id", "pass1", "pass2", "final", "mixed", "reason"]
    assert labels["item_id"].is_unique
    assert set(labels["item_id"]) <= set(items["item_id"])
    labelled = items["item_id"].isin(labels["item_id"])
    # a batch is labelled whole or not at all
    assert labelled.groupby(items["batch"]).nunique().eq(1).all()
    disputed = (labels["pass1"] != labels["pass2"]) | (labels["final"] != labels["pass1"])
    assert (labels.loc[disputed, "reason"] != "").all(), "an adjudicated item has no reason"
    assert set(labels["mixed"]) <= {"0", "1"}
    assert labels.loc[labels["mixed"] == "1", "final"].isin(["upward", "downward"]).all()
