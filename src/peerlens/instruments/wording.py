"""Item wording: loaded by users, never bundled for licensed instruments.

Validated questionnaire wording is copyrighted for most instruments, so peerlens ships none of it.
A study team loads the wording it has permission to use, from a simple CSV
(``instrument,item,text``) or a REDCap data dictionary, and peerlens checks it against the spec
(every item present once, no unknown items). Until then, :func:`standin_wording` gives clearly
marked placeholder text generated from the spec, which the demo and example pages use.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from peerlens import PeerlensError
from peerlens._tables import read_table
from peerlens.instruments._spec import InstrumentSpec, ItemScore
from peerlens.instruments.registry import UnknownInstrumentError, load_spec

__all__ = [
    "STANDIN_MARK",
    "WordingError",
    "install_wording",
    "installed_wording",
    "parse_wording",
    "standin_wording",
    "wording_home",
]

STANDIN_MARK = "[stand-in wording, not the validated item]"

REDCAP_FIELD = "Variable / Field Name"
REDCAP_LABEL = "Field Label"


class WordingError(PeerlensError):
    """An item-wording file does not match the instrument specs."""


def wording_home() -> Path:
    """Where loaded wording is kept: ``$PEERLENS_HOME/wording`` (default ``~/.peerlens``)."""
    return Path(os.environ.get("PEERLENS_HOME", Path.home() / ".peerlens")) / "wording"


def _strip_html(text: str) -> str:
    # REDCap labels may carry rich-text markup.
    return re.sub(r"<[^>]+>", "", text).strip()


def parse_wording(path: str | Path) -> dict[str, dict[int, str]]:
    """Read and validate item wording from a CSV or a REDCap data dictionary.

    Parameters
    ----------
    path
        Either a table with columns ``instrument``, ``item`` (1-based), ``text``, or a REDCap data
        dictionary (its ``Variable / Field Name`` column names items ``<id>_<n>`` and its
        ``Field Label`` holds the wording; fields that are not items of a known instrument, such
        as ``record_id``, are ignored).

    Returns
    -------
    dict
        Instrument id to ``{item number: text}``, complete for every instrument in the file.

    Raises
    ------
    WordingError
        Unknown instrument, item outside the instrument, an item given twice, empty text, or an
        instrument with items missing; every problem is listed with its 1-based data row.
    """
    path = Path(path)
    table = read_table(path)
    problems: list[str] = []
    found: dict[str, dict[int, str]] = {}
    if REDCAP_FIELD in table.columns and REDCAP_LABEL in table.columns:
        rows = _redcap_rows(table)
    elif {"instrument", "item", "text"} <= set(table.columns):
        rows = [
            (i + 1, str(r["instrument"]).strip().lower(), str(r["item"]).strip(), str(r["text"]))
            for i, r in table.iterrows()
            if isinstance(i, int)
        ]
    else:
        raise WordingError(
            f"{path}: expected columns instrument,item,text or a REDCap data dictionary "
            f"('{REDCAP_FIELD}', '{REDCAP_LABEL}'); found {', '.join(map(str, table.columns))}"
        )
    specs: dict[str, InstrumentSpec] = {}
    for row, instrument, item_text, text in rows:
        try:
            spec = specs.setdefault(instrument, load_spec(instrument))
        except UnknownInstrumentError:
            problems.append(f"row {row}: unknown instrument {instrument!r}")
            continue
        if not item_text.isascii() or not item_text.isdigit():  # int() takes "٣" and "1_0"
            problems.append(f"row {row}: item {item_text!r} is not a whole number")
            continue
        item = int(item_text)
        if not 1 <= item <= spec.n_items:
            problems.append(f"row {row}: {instrument} has items 1-{spec.n_items}, not {item}")
            continue
        items = found.setdefault(instrument, {})
        if item in items:
            problems.append(f"row {row}: {instrument} item {item} is given twice")
            continue
        if not text.strip() or text.strip().lower() == "nan":
            problems.append(f"row {row}: {instrument} item {item} has no text")
            continue
        items[item] = text.strip()
    for instrument, items in found.items():
        missing = [n for n in range(1, specs[instrument].n_items + 1) if n not in items]
        if missing:
            problems.append(f"{instrument}: items {missing} have no wording")
    if problems:
        raise WordingError(
            f"{path}: item wording does not match the specs:\n  " + "\n  ".join(problems)
        )
    if not found:
        raise WordingError(f"{path}: no items of any known instrument found")
    return found


def _redcap_rows(table: pd.DataFrame) -> list[tuple[int, str, str, str]]:
    rows: list[tuple[int, str, str, str]] = []
    pattern = re.compile(r"^([a-z][a-z0-9_]*?)_0*(\d+)$", re.IGNORECASE)
    for i, (field, label) in enumerate(
        zip(table[REDCAP_FIELD].astype(str), table[REDCAP_LABEL].astype(str), strict=True),
        start=1,
    ):
        m = pattern.match(field.strip())
        if not m:
            continue
        instrument = m.group(1).lower()
        try:
            load_spec(instrument)
        except UnknownInstrumentError:
            continue  # a study's own fields (record_id, age_1, ...) are not items
        rows.append((i, instrument, m.group(2), _strip_html(label)))
    return rows


def install_wording(
    wording: Mapping[str, Mapping[int, str]], home: Path | None = None
) -> list[Path]:
    """Save validated wording (from :func:`parse_wording`) for later use; returns the files."""
    folder = home or wording_home()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for instrument, items in wording.items():
        target = folder / f"{instrument}.json"
        tmp = target.with_suffix(".json.partial")
        tmp.write_text(
            json.dumps({str(k): v for k, v in sorted(items.items())}, indent=1, ensure_ascii=False),
            encoding="utf-8",
        )
        tmp.replace(target)
        written.append(target)
    return written


def installed_wording(instrument_id: str, home: Path | None = None) -> dict[int, str] | None:
    """Wording the user loaded for ``instrument_id``, or ``None``."""
    target = (home or wording_home()) / f"{instrument_id}.json"
    if not target.exists():
        return None
    data = json.loads(target.read_text(encoding="utf-8"))
    return {int(k): str(v) for k, v in data.items()}


def standin_wording(spec: InstrumentSpec) -> dict[int, str]:
    """Placeholder wording for every item, visibly marked as not the validated wording.

    Examples
    --------
    >>> from peerlens.instruments import load_spec
    >>> standin_wording(load_spec("scs"))[3]
    '[stand-in wording, not the validated item] SCS item 3 (Common humanity)'
    """
    where: dict[int, str] = {}
    for s in spec.scores:
        if isinstance(s, ItemScore) and s.items != "all":
            for n in s.items:
                where.setdefault(n, s.label)
    return {
        n: f"{STANDIN_MARK} {spec.short_name} item {n}" + (f" ({where[n]})" if n in where else "")
        for n in range(1, spec.n_items + 1)
    }
