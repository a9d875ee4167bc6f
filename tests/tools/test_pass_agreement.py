"""tools/pass_agreement.py: two blind passes checked, kappa per source, the adjudication sheet."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from .._scripts import load_script

# pass_agreement imports its sibling build_real_corpus (tools/ is on sys.path when it runs as a
# script); loading the sibling first registers it under that name
brc = load_script(Path("tools/build_real_corpus.py"))
pa = load_script(Path("tools/pass_agreement.py"))

ITEMS = [
    ("item1", "srcA", "random"),
    ("item2", "srcA", "targeted:b12_lucky"),
    ("item3", "srcA", "targeted:b12_worse"),
    ("item4", "srcB", "random"),
    ("item5", "srcB", "targeted:b12_so_can_you"),
    ("item6", "srcB", "random"),
]
PASS1 = {
    "item1": ("neutral", "0"),
    "item2": ("downward", "0"),
    "item3": ("connection", "0"),
    "item4": ("neutral", "0"),
    "item5": ("upward", "1"),
    "item6": ("connection", "0"),
}
# pass 2 differs from pass 1 in one label (item2) and in one mixed flag (item5)
PASS2 = {**PASS1, "item2": ("neutral", "0"), "item5": ("upward", "0")}


def _items_csv(path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=brc.ITEM_COLUMNS, restval="", lineterminator="\n")
        w.writeheader()
        # another batch's item: not part of the check
        w.writerow({"item_id": "item0", "batch": "11", "source": "srcA", "arm": "random"})
        for item_id, source, arm in ITEMS:
            w.writerow({"item_id": item_id, "batch": "12", "source": source, "arm": arm})
    return path


def _pass(path: Path, labels: dict[str, tuple[str, str]], ids: list[str] | None = None) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["item_id", "label", "mixed", "note"])
        for i in ids if ids is not None else list(labels):
            w.writerow([i, *labels[i], ""])
    return path


def _run(tmp_path: Path, p1: list[Path], p2: list[Path], *extra: str) -> int:
    args = ["--batch", "12", "--items", str(_items_csv(tmp_path / "items.csv"))]
    args += ["--pass1", *map(str, p1), "--pass2", *map(str, p2)]
    return pa.main([*args, "--out", str(tmp_path / "adjudicate.tsv"), *extra])


def test_kappa_per_source_and_the_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # pass 1 split over two files, as the annotators' parts are
    p1a = _pass(tmp_path / "p1a.tsv", PASS1, ["item1", "item2", "item3"])
    p1b = _pass(tmp_path / "p1b.tsv", PASS1, ["item4", "item5", "item6"])
    texts = tmp_path / "real_corpus.tsv"
    with texts.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["item_id", "sentence", "context"])
        for i, _, _ in ITEMS:
            w.writerow([i, f"sentence of {i}", f"before ⟦sentence of {i}⟧\nafter"])
    assert (
        _run(tmp_path, [p1a, p1b], [_pass(tmp_path / "p2.tsv", PASS2)], "--texts", str(texts)) == 0
    )
    out = capsys.readouterr().out
    a = [PASS1[i][0] for i, _, _ in ITEMS]
    b = [PASS2[i][0] for i, _, _ in ITEMS]
    assert f"agreement 5/6 (83.3%), Cohen's kappa {cohen_kappa_score(a, b):.3f}" in out
    assert f"srcA: n 3, agree 2 (66.7%), kappa {cohen_kappa_score(a[:3], b[:3]):.3f}" in out
    assert "srcB: n 3, agree 3 (100.0%), kappa 1.000" in out
    assert "pass 1 downward / pass 2 neutral: 1" in out
    assert "pass 1: connection 2, downward 1, neutral 2, upward 1; mixed 1" in out
    with (tmp_path / "adjudicate.tsv").open(newline="") as f:
        sheet = list(csv.DictReader(f, delimiter="\t"))
    # the label disagreement, and the comparison the passes agree on but whose mixed differs
    assert [r["item_id"] for r in sheet] == ["item2", "item5"]
    assert sheet[0]["source"] == "srcA" and sheet[0]["arm"] == "targeted:b12_lucky"
    assert (sheet[1]["pass1"], sheet[1]["mixed1"], sheet[1]["mixed2"]) == ("upward", "1", "0")
    assert sheet[0]["sentence"] == "sentence of item2"
    assert sheet[0]["context"] == "before ⟦sentence of item2⟧ after"


def test_agreed_comparisons_are_still_adjudicated() -> None:
    same = {i: pa.Label(lab, mixed, "") for i, (lab, mixed) in PASS2.items()}
    assert pa.to_adjudicate(same, same) == ["item5"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda rows: [*rows, ["item3", "neutral", "0", ""]],
            "item item3 already labelled in pass 2",
        ),
        (
            lambda rows: [*rows, ["item9", "neutral", "0", ""]],
            "'item9' is not an item of this batch",
        ),
        (lambda rows: rows[:-1], "1 item(s) of the batch unlabelled: item6"),
        (
            lambda rows: [[*rows[0][:1], "Upward", *rows[0][2:]], *rows[1:]],
            "column label: 'Upward'",
        ),
        (lambda rows: [[*rows[0][:2], "yes", rows[0][3]], *rows[1:]], "column mixed: 'yes'"),
    ],
)
def test_bad_pass_files_are_refused_with_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, message: str
) -> None:
    rows = [[i, *PASS2[i], ""] for i, _, _ in ITEMS]
    bad = tmp_path / "p2.tsv"
    with bad.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["item_id", "label", "mixed", "note"])
        w.writerows(change(rows))  # type: ignore[operator]
    assert _run(tmp_path, [_pass(tmp_path / "p1.tsv", PASS1)], [bad]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ")
    assert not (tmp_path / "adjudicate.tsv").exists()


def test_missing_column_and_sheet_inside_the_repository_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headless = tmp_path / "p2.tsv"
    headless.write_text("item_id\tlabel\nitem1\tneutral\n")
    assert _run(tmp_path, [_pass(tmp_path / "p1.tsv", PASS1)], [headless]) == 2
    assert "header lacks column(s) mixed" in capsys.readouterr().err
    p = [_pass(tmp_path / "p1.tsv", PASS1)], [_pass(tmp_path / "p2b.tsv", PASS2)]
    inside = brc.ROOT / "docs" / "adjudicate.tsv"
    args = ["--batch", "12", "--items", str(_items_csv(tmp_path / "items.csv"))]
    code = pa.main([*args, "--pass1", str(p[0][0]), "--pass2", str(p[1][0]), "--out", str(inside)])
    assert code == 2 and "inside the repository" in capsys.readouterr().err
    assert not inside.exists()


def test_a_batch_with_no_items_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p1 = _pass(tmp_path / "p1.tsv", PASS1)
    items = str(_items_csv(tmp_path / "items.csv"))
    code = pa.main(
        [
            "--batch",
            "13",
            "--items",
            items,
            "--pass1",
            str(p1),
            "--pass2",
            str(p1),
            "--out",
            str(tmp_path / "a.tsv"),
        ]
    )
    assert code == 2 and "no items in batch 13" in capsys.readouterr().err
