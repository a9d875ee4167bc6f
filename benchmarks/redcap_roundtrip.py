"""REDCap round trip over real projects: dictionary in, records in, records out, cell for cell.

For each real project (a REDCap data dictionary and a flat raw-value record export, both as
REDCap wrote them) this does what a researcher does:

1. ``create_study`` with the dictionary (one timepoint per ``redcap_event_name`` of the records,
   or one for a classic project; every form scheduled at every event; one site per
   ``redcap_data_access_group``; arms ``arm_1`` ... ``arm_N`` when event names carry ``_arm_N``);
2. ``import_records`` of the export with ``create_participants``;
3. ``export_study(format="redcap", tier="full")`` and ``export_dictionary``;

and compares the exported records and dictionary with the files cell for cell (both read as
text, no type guessing). Each project ends **exact**, **refused** (with the reason peerlens
gave), **changed** (with the first differing cells) or **crashed** (a Python exception: a bug).

A project folder may hold ``import.json`` with options of the records import as REDCap's own
import takes them: ``{"date_format": "MDY"}`` for a file written for REDCap's import with
month-first dates (``DMY``: day-first). REDCap stores such dates as ``YYYY-MM-DD`` and exports
them so; a cell that comes back as the same date in that form (checked here with
``datetime.strptime``, independently of peerlens) counts as unchanged and is reported.

Projects: REDCapR's test projects (``../shared/data/redcap/redcapr-test-projects``, MIT) and the
real projects of other public sources in ``../shared/data/redcap/real-projects/<source>/`` (each
source with its README: repository, path and commit of every file, and its LICENSE; the index
README there lists them). ``PEERLENS_REDCAP_DATA`` points at another copy of
``../shared/data/redcap``. Run: ``python benchmarks/redcap_roundtrip.py [--only NAME]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import tempfile
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peerlens._tables import TableReadError, read_text_table
from peerlens.study import Store, bootstrap_admin, create_study
from peerlens.study.errors import ImportRejected, PeerlensError
from peerlens.study.export import export_study
from peerlens.study.policy import Caller
from peerlens.study.redcap import export_dictionary, import_records
from peerlens.study.vault import generate_key

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PEERLENS_REDCAP_DATA", ROOT / ".." / "shared" / "data" / "redcap"))
REDCAPR = DATA / "redcapr-test-projects"
REAL = DATA / "real-projects"
_DICTIONARY_NAMES = ("dictionary.csv", "dictionay.csv", "metadata.csv")
ADMIN = "bench"


@dataclass(frozen=True)
class Project:
    """One real REDCap project: its dictionary and its raw record export."""

    name: str
    dictionary: Path
    records: Path

    @property
    def date_format(self) -> str:
        """The import's date order (``import.json`` beside the records; REDCap's default YMD)."""
        options = self.records.parent / "import.json"
        if not options.is_file():
            return "YMD"
        return str(json.loads(options.read_text(encoding="utf-8")).get("date_format", "YMD"))


@dataclass(frozen=True)
class Outcome:
    """How one project's round trip ended."""

    project: str
    status: str  # exact, refused, changed, crashed
    detail: str = ""


def projects() -> Iterator[Project]:
    """Every project folder holding a dictionary and a record export, sorted by name."""
    roots = [("redcapr", REDCAPR), ("", REAL)]
    for prefix, root in roots:
        if not root.is_dir():
            continue
        for folder in sorted(p.parent for p in root.rglob("data.csv")):
            dictionary = next(
                (folder / n for n in _DICTIONARY_NAMES if (folder / n).is_file()), None
            )
            if dictionary is None:
                continue
            rel = folder.relative_to(root).as_posix()
            yield Project(f"{prefix}/{rel}" if prefix else rel, dictionary, folder / "data.csv")


def _cells(path: Path) -> tuple[list[str], list[list[str]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = read_text_table(path, delimiter=",")
    return list(table.header), [list(r) for r in table.rows]


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config(project: Project, folder: Path) -> Path:
    """A study.yaml for ``project``: its events as timepoints, its groups as sites."""
    header, rows = _cells(project.records) if project.records.read_bytes().strip() else ([], [])
    col = {c: i for i, c in enumerate(header)}
    events = _distinct(rows, col.get("redcap_event_name"))
    sites = _distinct(rows, col.get("redcap_data_access_group"))
    dictionary = _cells(project.dictionary)[1]
    forms = list(dict.fromkeys(r[1] for r in dictionary if len(r) > 1 and r[1].strip()))
    lines = [f"data_dictionary: {_yaml_str(str(project.dictionary))}"]
    numbers = [int(m[1]) for ev in events if (m := re.search(r"_arm_([0-9]+)$", ev))]
    if numbers:  # REDCap's arms 1..N as study arms, in order
        lines.append("arms: [" + ", ".join(f"arm_{n}" for n in range(1, max(numbers) + 1)) + "]")
    if sites:
        lines.append("sites: [" + ", ".join(_yaml_str(s) for s in sites) + "]")
    lines.append("timepoints:")
    for i, ev in enumerate(events or ["event_1_arm_1"]):
        lines += [
            f"  - name: {_yaml_str(f'e{i + 1}')}",
            f"    redcap_event: {_yaml_str(ev)}",
            "    instruments: [" + ", ".join(_yaml_str(f) for f in forms) + "]",
        ]
    path = folder / "study.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _distinct(rows: list[list[str]], index: int | None) -> list[str]:
    if index is None:
        return []
    return list(dict.fromkeys(r[index] for r in rows if r[index] != ""))


def first_differences(
    want: tuple[list[str], list[list[str]]], got: tuple[list[str], list[list[str]]], limit: int = 3
) -> list[str]:
    """The first ``limit`` differences between two tables (header, row count, cells)."""
    (wh, wr), (gh, gr) = want, got
    out: list[str] = []
    if wh != gh:
        missing = [c for c in wh if c not in gh]
        extra = [c for c in gh if c not in wh]
        if missing or extra:
            out.append(f"columns: missing {missing[:4]} extra {extra[:4]}")
        else:
            out.append("columns in another order")
        return out
    if len(wr) != len(gr):
        out.append(f"{len(wr)} rows in, {len(gr)} rows out")
    for n, (a, b) in enumerate(zip(wr, gr, strict=False), start=1):
        for c, x, y in zip(wh, a, b, strict=True):
            if x != y:
                out.append(f"row {n} {c}: {x[:40]!r} -> {y[:40]!r}")
                if len(out) >= limit:
                    return out
    return out


def round_trip(project: Project, folder: Path, db_url: str | None = None) -> Outcome:
    """Create, import and export ``project`` in a new store: an empty database at ``db_url``
    (SQLite or PostgreSQL), by default a new SQLite file under ``folder``."""
    caller = Caller(ADMIN)
    url = db_url or f"sqlite:///{folder / 'study.db'}"
    store = Store.open(url, create=True, blob_dir=folder / "b")
    try:
        bootstrap_admin(store, ADMIN, "benchmark password 1")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            has_records = project.records.read_bytes().strip() != b""
            try:
                create_study(store, "p", _config(project, folder), caller=caller)
                if has_records:
                    import_records(
                        store,
                        "p",
                        project.records,
                        create_participants=True,
                        date_format=project.date_format,
                        caller=caller,
                    )
            except ImportRejected as exc:
                first = exc.problems[0]
                where = f"row {first.row}, column {first.column!r}: " if first.row else ""
                more = f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
                return Outcome(project.name, "refused", f"{where}{first.reason}{more}")
            except PeerlensError as exc:
                return Outcome(project.name, "refused", str(exc))
            diffs: list[str] = []
            normalised = 0
            if has_records:
                out = folder / "out.csv"
                export_study(
                    store, "p", out, format="redcap", tier="full", raw_values=True, caller=caller
                )
                want, got = _cells(project.records), _cells(out)
                if project.date_format != "YMD":
                    want, normalised = _as_stored_dates(want, got, project.date_format)
                diffs = first_differences(want, got)
            dict_out = folder / "dict.csv"
            dict_out.write_text(export_dictionary(store, "p", caller=caller), encoding="utf-8")
            want_dict = _cells(project.dictionary)
            got_dict = _cells(dict_out)
            if want_dict[1] != got_dict[1]:
                # Rows only: the file may name the columns as the API does (field_name, ...).
                rows_only = (got_dict[0], want_dict[1])
                diffs += ["dictionary " + d for d in first_differences(rows_only, got_dict, 1)]
    except (PeerlensError, TableReadError) as exc:
        return Outcome(project.name, "refused", str(exc))
    except Exception as exc:  # a crash is what this benchmark reports
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(
            project.name, "crashed", f"{type(exc).__name__}: {exc} ({tb.filename}:{tb.lineno})"
        )
    finally:
        store.close()
    if diffs:
        return Outcome(project.name, "changed", "; ".join(diffs))
    if normalised:
        order = project.date_format
        note = f"({normalised} {order} dates written YYYY-MM-DD, as REDCap stores them)"
        return Outcome(project.name, "exact", note)
    return Outcome(project.name, "exact", "" if has_records else "(no records: dictionary only)")


def _as_stored_dates(
    want: tuple[list[str], list[list[str]]], got: tuple[list[str], list[list[str]]], order: str
) -> tuple[tuple[list[str], list[list[str]]], int]:
    """``want`` with each slashed date (``order`` MDY or DMY, REDCap's import ``dateFormat``)
    that ``got`` holds as the same date in ``YYYY-MM-DD`` form replaced by that form, and how
    many were replaced. Read with :func:`datetime.datetime.strptime`, not with peerlens."""
    forms = []
    # Two-digit years too (%y: strptime's POSIX pivot puts 00-68 in the 2000s; REDCap's window
    # agrees for the years up to ten past the current one, and a year where the two differ
    # shows as changed).
    for year in ("%Y", "%y"):
        day_month = f"%m/%d/{year}" if order == "MDY" else f"%d/%m/{year}"
        forms += [(day_month, "%Y-%m-%d"), (f"{day_month} %H:%M", "%Y-%m-%d %H:%M")]
        forms.append((f"{day_month} %H:%M:%S", "%Y-%m-%d %H:%M:%S"))
    header, rows = want
    out, n = [], 0
    for a, b in zip(rows, got[1], strict=False):
        row = list(a)
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x == y or "/" not in x:
                continue
            for read, write in forms:
                try:
                    same = dt.datetime.strptime(x, read).strftime(write) == y
                except ValueError:
                    continue
                if same:
                    row[i], n = y, n + 1
                    break
        out.append(row)
    return (header, out + rows[len(out) :]), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only projects whose name contains this")
    args = parser.parse_args()
    os.environ.setdefault("PEERLENS_VAULT_KEY", generate_key())
    outcomes = []
    for project in projects():
        if args.only and args.only not in project.name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            outcome = round_trip(project, Path(tmp))
        outcomes.append(outcome)
        print(f"{outcome.project:55s} {outcome.status:8s} {outcome.detail[:300]}", flush=True)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    print(f"\n{len(outcomes)} projects: {tally}")


if __name__ == "__main__":
    main()
