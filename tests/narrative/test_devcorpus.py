"""The development corpus loader: joins keys, labels and rebuilt texts, and refuses gaps."""

import json
from pathlib import Path

import pytest

from peerlens.narrative import NarrativeError
from peerlens.narrative.devcorpus import (
    DevCorpusPaths,
    canonical_sha256,
    held_out_batches,
    load_dev_corpus,
    neighbours_from_context,
)

ITEMS = (
    "item_id,batch,source,arm\n"
    "item1,1,forum,random\nitem2,2,forum,random\nitem3,2,chat,targeted:x\n"
)
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


def _paths(
    tmp_path: Path, labels: str = LABELS, texts: str = TEXTS, items: str = ITEMS
) -> DevCorpusPaths:
    keys = tmp_path / "keys"
    keys.mkdir(parents=True)
    (keys / "items.csv").write_text(items)
    (keys / "labels.tsv").write_text(labels)
    (tmp_path / "texts.tsv").write_text(texts)
    return DevCorpusPaths(keys, tmp_path / "texts.tsv")


def test_loads_every_labelled_item_with_source_and_neighbours(tmp_path: Path) -> None:
    frame = load_dev_corpus(_paths(tmp_path))
    assert frame["item_id"].tolist() == ["item1", "item2"]  # the unsupported one is left out
    assert frame["label"].tolist() == ["connection", "downward"]
    assert frame["source"].tolist() == ["forum", "forum"]
    assert frame["batch"].tolist() == [1, 2]
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


def test_only_the_asked_batches_are_loaded_and_need_texts(tmp_path: Path) -> None:
    texts = "\n".join(TEXTS.splitlines()[:2]) + "\n"  # item2 and item3 (batch 2) not rebuilt
    paths = _paths(tmp_path, texts=texts)
    frame = load_dev_corpus(paths, batches=[1])
    assert frame["item_id"].tolist() == ["item1"]
    with pytest.raises(NarrativeError, match="no rebuilt text"):
        load_dev_corpus(paths)
    with pytest.raises(NarrativeError, match=r"labels\.tsv: no labelled items of batch 4"):
        load_dev_corpus(paths, batches=[1, 4])


def _hold_out(paths: DevCorpusPaths, flag: object = True) -> None:
    """Mark batch 2 held out in the keys' sources.json (batch 1 is not)."""
    batches = {"1": {"distinct": "source"}, "2": {"distinct": "batch", "held_out": flag}}
    paths.sources.write_text(json.dumps({"batches": batches, "sources": []}))


def test_a_held_out_batch_never_enters_the_default_load(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    assert held_out_batches(paths) == frozenset()  # no sources.json: nothing held out
    assert set(load_dev_corpus(paths)["batch"]) == {1, 2}
    _hold_out(paths)
    assert held_out_batches(paths) == frozenset({2})
    frame = load_dev_corpus(paths)
    assert frame["item_id"].tolist() == ["item1"]
    assert 2 not in set(frame["batch"])


def test_asking_for_a_held_out_batch_is_refused_unless_scoring(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    _hold_out(paths)
    with pytest.raises(NarrativeError, match=r"sources\.json: batch 2 is held out"):
        load_dev_corpus(paths, batches=[1, 2])
    scored = load_dev_corpus(paths, batches=[2], include_held_out=True)
    assert scored["item_id"].tolist() == ["item2"]
    assert set(load_dev_corpus(paths, include_held_out=True)["batch"]) == {1, 2}


def test_a_held_out_flag_that_is_not_a_boolean_is_an_error(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    _hold_out(paths, flag="yes")
    with pytest.raises(NarrativeError, match="batch 2, held_out: 'yes' is not true or false"):
        load_dev_corpus(paths)


def test_a_batch_that_is_not_a_number_names_row_and_column(tmp_path: Path) -> None:
    paths = _paths(tmp_path, items=ITEMS.replace("item2,2,", "item2,two,"))
    with pytest.raises(NarrativeError, match=r"items\.csv: row 3, column batch: 'two'"):
        load_dev_corpus(paths)
    with pytest.raises(NarrativeError, match="row 3, column batch"):
        paths.checksums([1])


def test_checksums_cover_only_the_rows_of_the_batches_in_any_order(tmp_path: Path) -> None:
    base = _paths(tmp_path / "a").checksums([1])
    # rows in another order, a field quoted, and a batch-3 item appended: batch 1 reads the same
    head, *rows = ITEMS.splitlines(keepends=True)
    items = head + "".join(reversed(rows)).replace("item1,1,", '"item1",1,')
    items += "item4,3,forum,random\n"
    head, *rows = LABELS.splitlines(keepends=True)
    labels = head + "".join(reversed(rows)) + "item4\tneutral\tneutral\tneutral\t0\t\n"
    texts = TEXTS + "item4\tHi.\t[[Hi.]]\n"
    assert _paths(tmp_path / "b", labels, texts, items).checksums([1]) == base
    # editing a field of a batch-1 row changes that file's digest only
    relabelled = LABELS.replace("\tconnection\t0", "\tneutral\t0")
    edited = _paths(tmp_path / "c", labels=relabelled).checksums([1])
    assert [k for k in base if edited[k] != base[k]] == ["real_labels_sha256"]
    rewritten = TEXTS.replace("Hi. [[Me too.]]", "Hey. [[Me too.]]")
    edited = _paths(tmp_path / "d", texts=rewritten).checksums([1])
    assert [k for k in base if edited[k] != base[k]] == ["real_texts_sha256"]
    # editing a batch-2 row leaves batch 1's digests alone
    assert (
        _paths(tmp_path / "e", labels=LABELS.replace("downward\t0", "upward\t0")).checksums([1])
        == base
    )


def test_canonical_digest_depends_on_every_value_not_on_order() -> None:
    import pandas as pd

    a = pd.DataFrame({"item_id": ["x", "y"], "final": ["neutral", "upward"]})
    assert canonical_sha256(a) == canonical_sha256(a.iloc[::-1][["final", "item_id"]])
    assert canonical_sha256(a) != canonical_sha256(a.assign(final=["neutral", "downward"]))
    # a value holding the separator cannot pass for two values
    b = pd.DataFrame({"item_id": ["x"], "p": ["a,b"], "q": [""]})
    c = pd.DataFrame({"item_id": ["x"], "p": ["a"], "q": ["b"]})
    assert canonical_sha256(b) != canonical_sha256(c)


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


def test_the_committed_held_out_batch_is_never_a_training_batch() -> None:
    from peerlens.narrative.release import RELEASE_BATCHES

    held = held_out_batches(DevCorpusPaths(REAL, REAL / "absent.tsv"))
    # batch 6 is the first held-out test batch, batch 10 its successor, then batches 13 and 15
    # (sources.json)
    assert {6, 10, 13, 15} <= held
    assert not held & set(RELEASE_BATCHES)
