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


LABELS_HEADER = "item_id\tpass1\tpass2\tfinal\tmixed\treason\n"
EARLIER = 'item0\tneutral\tdownward\tneutral\t0\t"a quoted ""reason"", kept as it was"\n'


def _decide(
    tmp_path: Path, decisions: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, Path]:
    """Run the merge of PASS1/PASS2 with ``decisions`` into a labels file holding one row."""
    labels = tmp_path / "labels.tsv"
    labels.write_text(LABELS_HEADER + EARLIER)
    path = tmp_path / "decisions.tsv"
    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["item_id", "final", "mixed", "reason"])
        w.writerows(decisions)
    args = ["--batch", "12", "--items", str(_items_csv(tmp_path / "items.csv"))]
    args += ["--pass1", str(_pass(tmp_path / "p1.tsv", PASS1))]
    args += ["--pass2", str(_pass(tmp_path / "p2.tsv", PASS2))]
    code = pa.main([*args, "--decisions", str(path), "--labels", str(labels)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err, labels


def test_decisions_add_the_batch_to_the_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decisions = [
        ["item2", "downward", "0", "rule 9: the other's remaining good set against their loss"],
        ["item5", "upward", "0", "no separate connection cue in the sentence"],
        # an agreed item may be overridden, with its reason
        ["item3", "neutral", "0", "B8-4: advice, not sameness"],
    ]
    code, out, labels = _decide(tmp_path, decisions, capsys)
    assert code == 0, out
    assert "added 6 row(s)" in out and "connection 1, downward 1, neutral 3, upward 1" in out
    text = labels.read_text()
    assert text.startswith(LABELS_HEADER + EARLIER)  # earlier rows untouched, byte for byte
    with labels.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    added = {r["item_id"]: r for r in rows[1:]}
    assert [r["item_id"] for r in rows[1:]] == [i for i, _, _ in ITEMS]  # the keys' order
    assert (added["item2"]["pass1"], added["item2"]["pass2"]) == ("downward", "neutral")
    assert (added["item2"]["final"], added["item2"]["reason"][:7]) == ("downward", "rule 9:")
    assert (added["item3"]["pass1"], added["item3"]["final"]) == ("connection", "neutral")
    # agreed and not decided: the agreed label, no reason
    assert (added["item6"]["final"], added["item6"]["mixed"], added["item6"]["reason"]) == (
        "connection",
        "0",
        "",
    )
    # the same batch again is refused: it is in the labels now
    code, out, _ = _decide_again(tmp_path, capsys)
    assert code == 2 and "already holds 6 item(s) of this batch" in out


def _decide_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    labels = tmp_path / "labels.tsv"
    before = labels.read_bytes()
    args = ["--batch", "12", "--items", str(tmp_path / "items.csv")]
    args += ["--pass1", str(tmp_path / "p1.tsv"), "--pass2", str(tmp_path / "p2.tsv")]
    code = pa.main([*args, "--decisions", str(tmp_path / "decisions.tsv"), "--labels", str(labels)])
    captured = capsys.readouterr()
    assert labels.read_bytes() == before
    return code, captured.out + captured.err, labels


@pytest.mark.parametrize(
    ("decisions", "message"),
    [
        # item5's mixed flag differs between the passes: it must be decided
        ([["item2", "downward", "0", "why"]], "no decision for item5"),
        ([["item2", "downward", "0", ""], ["item5", "upward", "0", "x"]], "on item2"),
        # an agreed item overridden without a reason
        (
            [
                ["item2", "neutral", "0", "r"],
                ["item5", "upward", "1", "r"],
                ["item6", "neutral", "0", ""],
            ],
            "on item6",
        ),
        ([["item2", "Neutral", "0", "r"]], "column final: 'Neutral'"),
        ([["item2", "neutral", "1", "r"]], "is not a comparison"),
        ([["item2", "neutral", "0", "r"], ["item2", "neutral", "0", "r"]], "item2 decided twice"),
        ([["item7", "neutral", "0", "r"]], "'item7' is not an item of this batch"),
    ],
)
def test_bad_decisions_are_refused_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], decisions: list[list[str]], message: str
) -> None:
    code, out, labels = _decide(tmp_path, decisions, capsys)
    assert code == 2 and message in out and "error: " in out
    assert labels.read_text() == LABELS_HEADER + EARLIER
    assert not (tmp_path / "labels.tsv.part").exists()


def test_sheet_or_decisions_not_both(tmp_path: Path) -> None:
    p = str(_pass(tmp_path / "p1.tsv", PASS1))
    args = ["--batch", "12", "--pass1", p, "--pass2", p]
    with pytest.raises(SystemExit) as neither:
        pa.main(args)
    with pytest.raises(SystemExit) as both:
        pa.main([*args, "--out", str(tmp_path / "a.tsv"), "--decisions", p])
    assert neither.value.code == both.value.code == 2
