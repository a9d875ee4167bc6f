"""Two blind annotation passes of one batch: check them, report agreement, list what to adjudicate.

Each pass is one or more label files (tab-separated, header ``item_id label mixed note``, as the
annotators write them for the blind file of ``build_real_corpus.py blind``).  The tool checks that
every item of the batch (``benchmarks/story_data/real/items.csv``) has exactly one row in each
pass, that every label is one of the four and ``mixed`` is 0 or 1; anything else is refused with
the file and row, exit status 2, and nothing written.  It then prints the agreement and Cohen's
kappa overall and per source (the figures ``SOURCES.md`` reports for each batch), each pass's
label counts and the confusions, and writes the adjudication sheet: every item the passes
disagree on (label or ``mixed``) and every item either pass called a comparison, with its source
and arm from the keys, and its sentence and context when the rebuilt ``real_corpus.tsv`` is given.
The sheet holds source text, so it is refused inside the repository (except
``benchmarks/out/``).

Once the sheet is adjudicated, ``--decisions FILE`` (tab-separated, header ``item_id final mixed
reason``) adds the batch to the committed ``labels.tsv``: one row per item of the batch, in the
keys' order, with both passes' labels and the final one (the agreed label where the passes agree
and no decision overrides it).  It is refused, with the row, exit status 2 and ``labels.tsv``
unchanged, when an item the passes disagree on (label or ``mixed``) has no decision, a decision
that differs from both passes or settles a disagreement gives no reason, a decision names an item
outside the batch or twice, a final label or ``mixed`` is invalid, ``mixed`` is 1 on a label that
is not a comparison, or ``labels.tsv`` already holds an item of the batch.

Run::

    PYTHONPATH=src .venv/bin/python tools/pass_agreement.py --batch 12 \\
        --pass1 p1a/labels.tsv p1b/labels.tsv --pass2 p2a/labels.tsv p2b/labels.tsv \\
        --texts benchmarks/out/real_corpus/real_corpus.tsv --out /tmp/adjudicate.tsv
    # after adjudication: the same passes, and the decisions
    PYTHONPATH=src .venv/bin/python tools/pass_agreement.py --batch 12 \\
        --pass1 ... --pass2 ... --decisions /tmp/decisions.tsv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

import build_real_corpus as brc  # its sibling in tools/ (on sys.path when run as a script)
from peerlens import PeerlensError
from peerlens.narrative.corpus import LABELS

ITEMS = brc.DATA_DIR / "items.csv"
LABELS_TSV = brc.DATA_DIR / "labels.tsv"
PASS_COLUMNS = ("item_id", "label", "mixed", "note")
DECISION_COLUMNS = ("item_id", "final", "mixed", "reason")
LABEL_COLUMNS = ("item_id", "pass1", "pass2", "final", "mixed", "reason")
COMPARISONS = frozenset({"upward", "downward"})
SHEET_COLUMNS = (
    "item_id",
    "source",
    "arm",
    "pass1",
    "mixed1",
    "note1",
    "pass2",
    "mixed2",
    "note2",
    "sentence",
    "context",
)


class PassError(PeerlensError):
    """A pass file or the keys that cannot be used as given."""


@dataclass(frozen=True)
class Label:
    """One annotator's decision on one item."""

    label: str
    mixed: str
    note: str


@dataclass(frozen=True)
class Agreement:
    """Agreement of two passes over a set of items."""

    n: int
    agree: int
    kappa: float

    @property
    def share(self) -> float:
        return self.agree / self.n if self.n else float("nan")


def _tsv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise PassError(f"{path}: cannot be read ({exc})") from exc


def batch_items(items_csv: Path, batch: int) -> dict[str, dict[str, str]]:
    """item_id -> its key row, for the items of ``batch`` in ``items_csv``."""
    try:
        rows = [r for r in brc.read_items(items_csv) if r["batch"] == str(batch)]
    except OSError as exc:
        raise PassError(f"{items_csv}: cannot be read ({exc})") from exc
    if not rows:
        raise PassError(f"{items_csv}: no items in batch {batch}")
    return {r["item_id"]: r for r in rows}


def _batch_rows(
    path: Path, needed: Sequence[str], items: Mapping[str, object]
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """``(where, item_id, row)`` of a label file whose header has ``needed``, items of the batch."""
    columns, rows = _tsv_rows(path)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise PassError(f"{path}: header lacks column(s) {', '.join(missing)}")
    for line, row in enumerate(rows, start=2):
        at = f"{path}, row {line}"
        item = (row["item_id"] or "").strip()
        if item not in items:
            raise PassError(f"{at}, column item_id: {item!r} is not an item of this batch")
        yield at, item, row


def _label_and_mixed(at: str, item: str, row: Mapping[str, str], column: str) -> tuple[str, str]:
    """The row's label (in ``column``) and ``mixed``, each checked."""
    label = (row[column] or "").strip()
    if label not in LABELS:
        raise PassError(
            f"{at}, column {column}: {label!r} for {item} is not one of {', '.join(LABELS)}"
        )
    mixed = (row["mixed"] or "").strip()
    if mixed not in ("0", "1"):
        raise PassError(f"{at}, column mixed: {mixed!r} for {item} is not 0 or 1")
    return label, mixed


def read_pass(paths: Sequence[Path], items: Mapping[str, object], name: str) -> dict[str, Label]:
    """One pass from its files: every item of the batch exactly once, every value valid."""
    out: dict[str, Label] = {}
    where: dict[str, str] = {}
    for path in paths:
        for at, item, row in _batch_rows(path, PASS_COLUMNS[:3], items):
            if item in out:
                raise PassError(f"{at}: item {item} already labelled in {name} at {where[item]}")
            label, mixed = _label_and_mixed(at, item, row, "label")
            out[item] = Label(label, mixed, (row.get("note") or "").strip())
            where[item] = at
    absent = sorted(set(items) - set(out))
    if absent:
        shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
        raise PassError(f"{name}: {len(absent)} item(s) of the batch unlabelled: {shown}")
    return out


def agreement(p1: Mapping[str, Label], p2: Mapping[str, Label], ids: Sequence[str]) -> Agreement:
    """Raw agreement and Cohen's kappa on the label (``nan`` when only one label occurs)."""
    a = [p1[i].label for i in ids]
    b = [p2[i].label for i in ids]
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    kappa = cohen_kappa_score(a, b) if len(set(a) | set(b)) > 1 else float("nan")
    return Agreement(len(ids), agree, float(kappa))


def to_adjudicate(p1: Mapping[str, Label], p2: Mapping[str, Label]) -> list[str]:
    """Items the passes disagree on, or that either pass called a comparison, in id order."""
    return sorted(
        i
        for i in p1
        if (p1[i].label, p1[i].mixed) != (p2[i].label, p2[i].mixed)
        or {p1[i].label, p2[i].label} & COMPARISONS
    )


def _texts(path: Path | None, ids: Sequence[str]) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    columns, rows = _tsv_rows(path)
    if not {"item_id", "sentence", "context"} <= set(columns):
        raise PassError(f"{path}: not a rebuilt real_corpus.tsv (needs item_id, sentence, context)")
    wanted = set(ids)
    found = {r["item_id"]: r for r in rows if r["item_id"] in wanted}
    absent = sorted(wanted - set(found))
    if absent:
        raise PassError(f"{path}: no rebuilt text for {len(absent)} item(s), e.g. {absent[0]}")
    return found


def write_sheet(
    path: Path,
    ids: Sequence[str],
    items: Mapping[str, Mapping[str, str]],
    p1: Mapping[str, Label],
    p2: Mapping[str, Label],
    texts: Mapping[str, Mapping[str, str]],
) -> None:
    """Write the adjudication sheet whole, then move it into place."""
    brc._refuse_inside_repository(path, "adjudication sheet (it holds source text)")
    part = path.with_name(path.name + ".part")
    with part.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(SHEET_COLUMNS)
        for i in ids:
            text = texts.get(i, {})
            w.writerow(
                [
                    i,
                    items[i]["source"],
                    items[i]["arm"],
                    p1[i].label,
                    p1[i].mixed,
                    p1[i].note,
                    p2[i].label,
                    p2[i].mixed,
                    p2[i].note,
                    text.get("sentence", ""),
                    " ".join(text.get("context", "").split()),
                ]
            )
    os.replace(part, path)


def report(
    items: Mapping[str, Mapping[str, str]], p1: Mapping[str, Label], p2: Mapping[str, Label]
) -> list[str]:
    """The printed summary: overall and per-source agreement, label counts, confusions."""
    ids = sorted(items)
    whole = agreement(p1, p2, ids)
    lines = [
        f"agreement {whole.agree}/{whole.n} ({whole.share:.1%}), Cohen's kappa {whole.kappa:.3f}"
    ]
    by_source: dict[str, list[str]] = {}
    for i in ids:
        by_source.setdefault(items[i]["source"], []).append(i)
    for source, sids in sorted(by_source.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        a = agreement(p1, p2, sids)
        lines.append(f"  {source}: n {a.n}, agree {a.agree} ({a.share:.1%}), kappa {a.kappa:.3f}")
    for name, p in (("pass 1", p1), ("pass 2", p2)):
        counts = Counter(p[i].label for i in ids)
        shown = ", ".join(f"{lab} {counts.get(lab, 0)}" for lab in LABELS)
        lines.append(f"{name}: {shown}; mixed {sum(p[i].mixed == '1' for i in ids)}")
    confusions = Counter((p1[i].label, p2[i].label) for i in ids if p1[i].label != p2[i].label)
    for (a_, b_), n in confusions.most_common():
        lines.append(f"  pass 1 {a_} / pass 2 {b_}: {n}")
    return lines


@dataclass(frozen=True)
class Decision:
    """The adjudicator's final label for one item, and why."""

    final: str
    mixed: str
    reason: str


def read_decisions(path: Path, items: Mapping[str, object]) -> dict[str, Decision]:
    """The adjudicated decisions: items of the batch, once each, valid labels and ``mixed``."""
    out: dict[str, Decision] = {}
    for at, item, row in _batch_rows(path, DECISION_COLUMNS, items):
        if item in out:
            raise PassError(f"{at}: item {item} decided twice")
        final, mixed = _label_and_mixed(at, item, row, "final")
        if mixed == "1" and final not in COMPARISONS:
            raise PassError(
                f"{at}, column mixed: {item} is mixed but its final label {final!r} is not a "
                "comparison (mixed marks a comparison that also holds a connection cue)"
            )
        out[item] = Decision(final, mixed, " ".join((row["reason"] or "").split()))
    return out


def final_rows(
    ids: Sequence[str],
    p1: Mapping[str, Label],
    p2: Mapping[str, Label],
    decisions: Mapping[str, Decision],
    where: Path,
) -> list[dict[str, str]]:
    """The ``labels.tsv`` rows of the batch; every disagreement decided, with a reason."""
    rows = []
    for i in ids:
        a, b, d = p1[i], p2[i], decisions.get(i)
        agreed = (a.label, a.mixed) == (b.label, b.mixed)
        if d is None:
            if not agreed:
                raise PassError(
                    f"{where}: no decision for {i}, on which the passes disagree "
                    f"(pass 1 {a.label}/{a.mixed}, pass 2 {b.label}/{b.mixed})"
                )
            d = Decision(a.label, a.mixed, "")
        elif not d.reason and (not agreed or (d.final, d.mixed) != (a.label, a.mixed)):
            raise PassError(
                f"{where}, column reason: the decision on {i} ({d.final}/{d.mixed}; pass 1 "
                f"{a.label}/{a.mixed}, pass 2 {b.label}/{b.mixed}) needs a reason"
            )
        rows.append(
            {
                "item_id": i,
                "pass1": a.label,
                "pass2": b.label,
                "final": d.final,
                "mixed": d.mixed,
                "reason": d.reason,
            }
        )
    return rows


def append_labels(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    """Add ``rows`` to ``labels.tsv``: refused if any item is there; written whole, then moved."""
    columns, existing = _tsv_rows(path)
    if tuple(columns) != LABEL_COLUMNS:
        raise PassError(f"{path}: header is not {' '.join(LABEL_COLUMNS)}")
    present = {r["item_id"] for r in existing} & {r["item_id"] for r in rows}
    if present:
        raise PassError(
            f"{path}: already holds {len(present)} item(s) of this batch, e.g. {min(present)}"
        )
    part = path.with_name(path.name + ".part")
    with part.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=LABEL_COLUMNS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(existing)
        w.writerows(rows)
    os.replace(part, path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--pass1", type=Path, nargs="+", required=True, help="pass 1's files")
    parser.add_argument("--pass2", type=Path, nargs="+", required=True, help="pass 2's files")
    parser.add_argument("--items", type=Path, default=ITEMS, help="the committed keys")
    parser.add_argument("--texts", type=Path, help="rebuilt real_corpus.tsv (adds the text)")
    parser.add_argument("--out", type=Path, help="the adjudication sheet to write")
    parser.add_argument(
        "--decisions", type=Path, help="adjudicated decisions: add the batch to --labels"
    )
    parser.add_argument("--labels", type=Path, default=LABELS_TSV, help="the committed labels")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.out is None) == (args.decisions is None):
        parser.error("give either --out (write the adjudication sheet) or --decisions")
    try:
        items = batch_items(args.items, args.batch)
        p1 = read_pass(args.pass1, items, "pass 1")
        p2 = read_pass(args.pass2, items, "pass 2")
        if args.decisions is not None:
            decisions = read_decisions(args.decisions, items)
            rows = final_rows(list(items), p1, p2, decisions, args.decisions)
            append_labels(args.labels, rows)
        else:
            ids = to_adjudicate(p1, p2)
            write_sheet(args.out, ids, items, p1, p2, _texts(args.texts, ids))
    except (PassError, brc.RealCorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report(items, p1, p2)))
    if args.decisions is not None:
        finals = Counter(r["final"] for r in rows)
        shown = ", ".join(f"{lab} {finals.get(lab, 0)}" for lab in LABELS)
        print(f"added {len(rows)} row(s) to {args.labels}: {shown}")
    else:
        print(f"wrote {len(ids)} item(s) to adjudicate to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
