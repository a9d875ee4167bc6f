"""tools/select_by_score.py: choosing a batch's scored arm from a model's ranking."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from .._scripts import load_script

sel = load_script(Path("tools/select_by_score.py"))


def _cand(name: str, up: float, down: float) -> object:
    return sel.Candidate(
        "src", name * 64 if len(name) == 1 else name, {"upward": up, "downward": down}
    )


def _pool() -> list[object]:
    # ten sentences, upward falling a..j, downward rising a..j
    return [_cand(c, 1 - i / 10, i / 10) for i, c in enumerate("abcdefghij")]


def test_top_then_band_per_class_and_never_twice() -> None:
    rows = sel.select(_pool(), top=2, band=2, band_depth=4, seed="s")
    arms = [(r["sentence_sha256"][0], r["arm"]) for r in rows]
    assert arms[:2] == [("a", "upward_top"), ("b", "upward_top")]
    up_band = [s for s, a in arms if a == "upward_band"]
    assert len(up_band) == 2 and set(up_band) <= set("cdef")  # ranks 3-6 only
    down_top = [s for s, a in arms if a == "downward_top"]
    assert down_top == ["j", "i"]  # highest downward, none of upward's picks
    down_band = [s for s, a in arms if a == "downward_band"]
    assert len(down_band) == 2 and not set(down_band) & {*up_band, "a", "b", "i", "j"}
    digests = [r["sentence_sha256"] for r in rows]
    assert len(digests) == len(set(digests)) == 8
    ranks = {(r["sentence_sha256"][0], r["arm"]): r["rank"] for r in rows}
    assert ranks[("a", "upward_top")] == "1" and ranks[("j", "downward_top")] == "1"
    assert all(3 <= int(r["rank"]) <= 6 for r in rows if r["arm"].endswith("_band"))
    # the same seed draws the same band, another seed may not
    assert sel.select(_pool(), 2, 2, 4, "s") == rows


def test_ties_break_by_hash_and_a_short_pool_gives_what_it_has() -> None:
    pool = [_cand(c, 0.5, 0.1) for c in "dcba"]
    rows = sel.select(pool, top=3, band=5, band_depth=5, seed="s")
    up = [r["sentence_sha256"][0] for r in rows if r["arm"] == "upward_top"]
    assert up == ["a", "b", "c"]
    assert [r["arm"] for r in rows].count("upward_band") == 1  # only "d" was left
    assert not [r for r in rows if r["arm"].startswith("downward")]  # nothing left to rank


def test_the_selection_file_is_keys_only_and_never_rewritten(tmp_path: Path) -> None:
    rows = sel.select(_pool(), top=1, band=0, band_depth=0, seed="s")
    out = tmp_path / "selections" / "batch9.tsv"
    sel.write_selection(rows, out)
    with out.open(encoding="utf-8", newline="") as handle:
        got = list(csv.DictReader(handle, delimiter="\t"))
    assert tuple(got[0]) == sel.COLUMNS and got == rows
    with pytest.raises(sel.brc.RealCorpusError, match="never rewritten"):
        sel.write_selection(rows, out)


def _keys(tmp_path: Path, held: bool) -> Path:
    data = tmp_path / "keys"
    data.mkdir()
    source = {
        "repo": "example/replies",
        "commit": "0" * 40,
        "files": {"replies.csv": "0" * 40},
        "format": "csv",
        "record_id": ["id"],
        "text": "text",
        "clean": "plain",
    }
    specs = {
        "seed": 7,
        "batches": {"1": {"distinct": "source"}, "2": {"distinct": "batch", "held_out": held}},
        "sources": [
            {**source, "id": "train_src", "samples": {"1": {"n_random": 1, "n_targeted": 0}}},
            {**source, "id": "held_src", "samples": {"2": {"n_random": 1, "n_targeted": 0}}},
        ],
    }
    (data / "sources.json").write_text(json.dumps(specs))
    (data / "items.csv").write_text(",".join(sel.brc.ITEM_COLUMNS) + "\n")
    return data


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ("nope", "unknown \\['nope'\\]"),
        ("train_src,held_src", "\\['held_src'\\] belong to a held-out batch"),
    ],
)
def test_unknown_or_held_out_sources_are_refused_before_anything_is_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: str, message: str
) -> None:
    data = _keys(tmp_path, held=True)
    out = tmp_path / "sel.tsv"
    argv = ["--batch", "3", "--sources", sources, "--top", "1", "--band", "0"]
    argv += ["--band-depth", "0", "--out", str(out), "--data", str(data)]
    assert sel.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err)
    assert not out.exists()


def test_negative_counts_or_a_band_deeper_than_its_span_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _keys(tmp_path, held=False)
    out = tmp_path / "sel.tsv"
    for top, band, depth in (("-1", "0", "0"), ("1", "5", "4")):
        argv = ["--batch", "3", "--sources", "train_src", "--top", top, "--band", band]
        argv += ["--band-depth", depth, "--out", str(out), "--data", str(data)]
        assert sel.main(argv) == 2
        assert "must be >= 0, band <= depth" in capsys.readouterr().err
    assert not out.exists()
