"""REDCap interchange: data dictionaries and flat record CSV files.

Data dictionary: the 18 standard columns of REDCap's "Data Dictionary" CSV (either the headers of
the download from the Project Setup page or the short names of the API export). Records: REDCap's
flat CSV export with raw (coded) values, ``record_id`` (the dictionary's first field),
``redcap_event_name`` for longitudinal projects, ``redcap_repeat_instrument`` and
``redcap_repeat_instance`` for repeating instruments, one column per field, checkbox options as
``<field>___<code>`` (0/1) and ``<form>_complete`` (0 incomplete, 1 unverified, 2 complete).
Column layout as documented in the REDCap data-import template and API export (Harris et al. 2009,
J Biomed Inform 42(2):377-381; Harris et al. 2019, J Biomed Inform 95:103208).

Values of fields flagged ``Identifier? = y`` are stored only in the identity vault.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session

from peerlens.study.errors import ImportRejected, Problem
from peerlens.study.models import Field, Study

#: The 18 data-dictionary columns as REDCap's CSV download names them, in order.
DICTIONARY_COLUMNS: tuple[str, ...] = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
#: The same columns as REDCap's API metadata export names them.
DICTIONARY_API_COLUMNS: tuple[str, ...] = (
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
)
#: Field types REDCap allows.
FIELD_TYPES = frozenset(
    {
        "text",
        "notes",
        "dropdown",
        "radio",
        "checkbox",
        "yesno",
        "truefalse",
        "calc",
        "file",
        "slider",
        "descriptive",
        "sql",
    }
)
_ATTRS = (
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "choices",
    "field_note",
    "validation",
    "validation_min",
    "validation_max",
    "identifier",
    "branching_logic",
    "required",
    "custom_alignment",
    "question_number",
    "matrix_group",
    "matrix_ranking",
    "field_annotation",
)


def read_csv_text(path: str | Path) -> str:
    """A CSV file's text (UTF-8, with or without byte-order mark)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ImportRejected(
            str(p), [Problem(None, None, f"cannot read ({exc.strerror})")]
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # REDCap's older exports are Windows-1252.
        return raw.decode("cp1252", errors="replace")


def parse_data_dictionary(text: str, source: str) -> list[dict[str, str | bool | None]]:
    """Parse and check a data dictionary; every problem is reported together.

    Raises
    ------
    ImportRejected
        Wrong header, unknown field type, repeated or badly named field, malformed choices.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportRejected(source, [Problem(None, None, "empty file")]) from None
    if tuple(header) not in (DICTIONARY_COLUMNS, DICTIONARY_API_COLUMNS):
        expected = ", ".join(DICTIONARY_COLUMNS)
        raise ImportRejected(
            source,
            [Problem(0, None, f"not a REDCap data dictionary: expected the 18 columns {expected}")],
        )
    problems: list[Problem] = []
    rows: list[dict[str, str | bool | None]] = []
    seen: set[str] = set()
    for n, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != 18:
            problems.append(Problem(n, None, f"has {len(cells)} cells, expected 18"))
            continue
        vals: dict[str, str | bool | None] = {}
        for attr, cell in zip(_ATTRS, cells, strict=True):
            vals[attr] = cell if cell.strip() != "" else None
        name = str(vals["field_name"] or "").strip()
        col = header[0]
        if not name or not name.replace("_", "a").isalnum() or not name[0].isalpha():
            problems.append(Problem(n, col, f"bad field name {name!r}"))
        elif name != name.lower():
            problems.append(Problem(n, col, f"field name {name!r} must be lower case"))
        elif name in seen:
            problems.append(Problem(n, col, f"field {name!r} defined twice"))
        seen.add(name)
        vals["field_name"] = name
        if not vals["form_name"]:
            problems.append(Problem(n, header[1], "form name is empty"))
        ftype = str(vals["field_type"] or "").strip()
        vals["field_type"] = ftype
        if ftype not in FIELD_TYPES:
            problems.append(Problem(n, header[3], f"unknown field type {ftype!r}"))
        if ftype in ("radio", "dropdown", "checkbox"):
            choices = str(vals["choices"] or "")
            parts = [p.strip() for p in choices.split("|") if p.strip()]
            if not parts or any("," not in p for p in parts):
                problems.append(
                    Problem(n, header[5], f"choices {choices!r} are not 'code, label | ...'")
                )
            elif ftype != "checkbox":
                bad = [p.split(",", 1)[0].strip() for p in parts]
                bad = [c for c in bad if not _is_number(c)]
                if bad:
                    problems.append(
                        Problem(
                            n,
                            header[5],
                            f"codes {bad} are not numeric (coded values are stored as numbers)",
                        )
                    )
        vals["identifier"] = str(vals["identifier"] or "").strip().lower() == "y"
        vals["required"] = str(vals["required"] or "").strip().lower() == "y"
        rows.append(vals)
    if not rows:
        problems.append(Problem(None, None, "no fields"))
    if problems:
        raise ImportRejected(source, problems)
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def store_data_dictionary(
    session: Session, study: Study, rows: Sequence[dict[str, str | bool | None]]
) -> None:
    """Replace the study's field definitions with ``rows`` (in the caller's transaction)."""
    session.execute(delete(Field).where(Field.study_id == study.id))
    session.flush()
    for pos, vals in enumerate(rows):
        session.add(Field(study_id=study.id, position=pos, **vals))
    session.flush()


def dictionary_csv(fields: Sequence[Field]) -> str:
    """The data dictionary as REDCap's CSV download (18 columns, in order)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(DICTIONARY_COLUMNS)
    for f in fields:
        row: list[str] = []
        for attr in _ATTRS:
            v = getattr(f, attr)
            if attr in ("identifier", "required"):
                row.append("y" if v else "")
            else:
                row.append("" if v is None else str(v))
        w.writerow(row)
    return buf.getvalue()
