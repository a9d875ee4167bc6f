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
import datetime as dt
import hashlib
import io
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from peerlens._tables import TableReadError, TextTable, parse_text_table, read_text_table
from peerlens.study import _limits, audit
from peerlens.study._catalog import FormSpec, ItemRule, builtin_form, study_forms
from peerlens.study._deid import shift_date
from peerlens.study._identity import merge_fields, read_many
from peerlens.study._lookup import get_study, participant_map, refuse_erased
from peerlens.study._redcap_arms import study_arm
from peerlens.study._redcap_dates import DATE_FORMATS, iso_from_import
from peerlens.study._redcap_instruments import RECORD_ID, with_instrument_forms
from peerlens.study.errors import ImportRejected, Problem
from peerlens.study.models import (
    Field,
    Participant,
    RedcapLayout,
    Response,
    Site,
    Study,
    Timepoint,
    utcnow,
)
from peerlens.study.participants import check_code
from peerlens.study.policy import Caller, Grant, authorize, guarded
from peerlens.study.responses import (
    _META_COLUMNS,
    ImportSummary,
    ItemValue,
    MissingCodes,
    ResponseRecord,
    file_source,
    parse_completion,
    parse_item,
    read_table,
    stored_items,
    write_responses,
)
from peerlens.study.storage import Store

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


def _rejected(exc: TableReadError, source: str) -> ImportRejected:
    """A table reader's refusal as an import refusal (row = data row, column by name)."""
    problems = [
        Problem(p.data_row if p.data_row is not None else p.line, None, p.reason)
        for p in exc.problems
    ] or [Problem(None, None, str(exc).removeprefix(f"{source}: "))]
    return ImportRejected(source, problems)


def read_dictionary(path: str | Path) -> tuple[list[dict[str, str | bool | None]], str]:
    """Read and check the data dictionary at ``path`` (see :func:`parse_data_dictionary`);
    return its rows and the file's sha256. Read by :func:`peerlens._tables.read_text_table`:
    every row must have the header's cells, encodings are detected or refused."""
    try:
        table = read_text_table(path, delimiter=",")
    except TableReadError as exc:
        raise _rejected(exc, str(path)) from None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return dictionary_rows(table), digest


def parse_data_dictionary(text: str, source: str) -> list[dict[str, str | bool | None]]:
    """Parse and check a data dictionary given as text; every problem is reported together.

    Raises
    ------
    ImportRejected
        Wrong header, unknown field type, repeated or badly named field, malformed choices.
    """
    try:
        table = parse_text_table(text.encode("utf-8"), source, delimiter=",")
    except TableReadError as exc:
        raise _rejected(exc, source) from None
    return dictionary_rows(table)


def dictionary_rows(table: TextTable) -> list[dict[str, str | bool | None]]:
    """The checked rows of a data dictionary read as a :class:`~peerlens._tables.TextTable`."""
    source = table.source
    header = [h.strip() for h in table.header]
    if not _is_dictionary_header(header):
        expected = ", ".join(DICTIONARY_COLUMNS)
        raise ImportRejected(
            source,
            [Problem(0, None, f"not a REDCap data dictionary: expected the 18 columns {expected}")],
        )
    header = list(DICTIONARY_COLUMNS)
    reader = enumerate(table.rows, start=1)
    problems: list[Problem] = []
    rows: list[dict[str, str | bool | None]] = []
    seen: set[str] = set()
    for n, cells in reader:
        if not any(c.strip() for c in cells):
            continue
        vals: dict[str, str | bool | None] = {}
        for attr, cell in zip(_ATTRS, cells, strict=True):
            # A cell of spaces is kept as written (REDCap exports a section header of one space
            # to start an unlabelled section); the form name must name a form.
            blank = cell == "" or (attr == "form_name" and cell.strip() == "")
            vals[attr] = None if blank else cell
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
        if ftype in ("radio", "dropdown", "checkbox") and vals["choices"] is not None:
            # A multiple-choice field without choices holds no value; REDCap keeps and exports
            # such fields (REDCapTidieR's test project has one), so it is accepted as it is.
            choices = str(vals["choices"])
            parts = [p.strip() for p in choices.split("|") if p.strip()]
            if not parts or any("," not in p for p in parts):
                problems.append(
                    Problem(n, header[5], f"choices {choices!r} are not 'code, label | ...'")
                )
            else:
                bad = [c for c in (p.split(",", 1)[0].strip() for p in parts) if not _CODE.match(c)]
                if bad:
                    rule = f"codes {bad} are not letters, digits and underscores (REDCap's rule)"
                    problems.append(Problem(n, header[5], rule))
        vals["identifier"] = str(vals["identifier"] or "").strip().lower() == "y"
        vals["required"] = str(vals["required"] or "").strip().lower() == "y"
        for attr, col_name in zip(_ATTRS, header, strict=True):
            why = _limits.problem(getattr(Field, attr), vals[attr])
            if why:
                problems.append(Problem(n, col_name, why))
        rows.append(vals)
    if not rows:
        problems.append(Problem(None, None, "no fields"))
    if problems:
        raise ImportRejected(source, problems)
    return rows


#: A choice code as REDCap allows it: letters, digits and underscores (and a sign or decimal
#: point in numeric codes such as ``-99`` or ``0.5``).
_CODE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _is_dictionary_header(header: Sequence[str]) -> bool:
    """True when ``header`` is the 18 dictionary columns in REDCap's order, by either naming.

    The first name is not compared: files edited by hand or by other tools often carry another
    first cell (``field_name``, a garbled byte-order mark, a translated name), and REDCap reads
    the dictionary by column position.
    """
    if len(header) != len(DICTIONARY_COLUMNS):
        return False
    rest = [" ".join(h.split()).lower() for h in header[1:]]
    return any(
        rest == [c.lower() for c in names[1:]]
        for names in (DICTIONARY_COLUMNS, DICTIONARY_API_COLUMNS)
    )


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


# --------------------------------------------------------------------------- flat record files


def _record_id_field(session: Session, study: Study) -> str:
    first = session.scalars(
        select(Field.field_name).where(Field.study_id == study.id).order_by(Field.position)
    ).first()
    return first or RECORD_ID


_DAG = "redcap_data_access_group"


def _dag_sites(study: Study) -> dict[str, list[Site]]:
    """The study's sites by data access group key (two sites may share a key)."""
    out: dict[str, list[Site]] = {}
    for x in sorted(study.sites, key=lambda x: x.name):
        out.setdefault(_dag_key(x.name), []).append(x)
    return out


def _dag_key(name: str) -> str:
    """A site or data access group name compared the way REDCap makes unique group names
    (lower case, runs of other characters as one underscore).

    Examples
    --------
    >>> _dag_key("Leeds North"), _dag_key("leeds_north")
    ('leeds_north', 'leeds_north')
    """
    out = "".join(c if c.isalnum() else "_" for c in name.strip().lower())
    return "_".join(p for p in out.split("_") if p)


@guarded("redcap.import")
def import_records(
    store: Store,
    study_name: str,
    path: str | Path,
    *,
    create_participants: bool = False,
    missing_codes: Sequence[str | int] | None = None,
    date_format: str = "YMD",
    caller: Caller,
    reason: str | None = None,
) -> ImportSummary:
    """Import a REDCap flat record CSV (raw values); all or nothing, idempotent.

    Dates and date-times are stored as REDCap stores them, ``YYYY-MM-DD`` (``YYYY-MM-DD
    HH:MM[:SS]``), whatever the field's display validation: REDCap's exports hold them so.
    ``date_format`` is REDCap's import ``dateFormat``: ``"MDY"`` or ``"DMY"`` also take
    slashed month-first or day-first dates (``4/12/1982``), stored as ``YYYY-MM-DD``; under
    the default ``"YMD"`` a slashed date is refused, never guessed. A two-digit year
    (``6/17/19``) takes REDCap's century: up to ten years past the current year it is 20yy,
    later 19yy (``_redcap_dates.four_digit_year``).

    Rows are matched to timepoints by ``redcap_event_name`` (a study with one timepoint may omit
    it). Values of identifier fields go to the identity vault. With ``create_participants``,
    unknown record ids are enrolled as service users (no arm). A site-scoped caller imports
    records of their sites' participants only (and cannot create participants).

    A ``redcap_data_access_group`` column maps each record to the study site of the same name
    (compared as REDCap's unique group names: ``Leeds North`` matches ``leeds_north``): new
    participants are enrolled at that site, participants without a site are placed there
    (audited), and a group that matches no site, or contradicts the participant's site or
    another row of the record, is a problem that rejects the file. Empty cells say nothing.

    In a study with arms, REDCap's arm ``N`` (the ``_arm_N`` of event names) is the study's
    ``N``-th arm: a record whose events are all in one arm is enrolled in it (or, enrolled
    without an arm, placed in it, audited); a participant already in another arm, or an arm the
    study lacks, is a problem. A record in several arms (REDCap allows it) keeps its arm.

    The import is four steps: parse the file (:func:`_parse_records`), validate its header
    against the study (:func:`_check_header`), map every row to responses, identity values and
    new participants (:func:`_map_records`, every problem collected), and store the lot
    (:func:`_store_records`) only if there was no problem.

    Raises
    ------
    ImportRejected
        Every problem found (row, column, reason); nothing was stored.
    """
    if date_format not in DATE_FORMATS:
        why = f"date format {date_format!r} is not one of {', '.join(DATE_FORMATS)}"
        raise ImportRejected(str(path), [Problem(None, None, why)])
    records = _parse_records(path)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "redcap.import", study)
        target = _RecordTarget.of(s, study, grant, missing_codes, create_participants, date_format)
        problems = _check_header(records, target)
        mapped = _map_records(records, target, problems)
        if problems:
            raise ImportRejected(records.source, problems)
        return _store_records(s, caller, records, target, mapped, reason)


# ----------------------------------------------------------------------------- 1. parse


@dataclass(frozen=True)
class _RecordFile:
    """A flat record file as read: its text cells by column, in file order, stripped of
    surrounding space (``cells``) and exactly as written (``raw``)."""

    source: str
    sha256: str
    n_rows: int
    columns: tuple[str, ...]
    cells: Mapping[str, list[str]]
    raw: Mapping[str, list[str]]

    def cell(self, column: str, i: int) -> str:
        """Row ``i``'s (0-based) cell in ``column``; ``""`` when the file has no such column."""
        values = self.cells.get(column)
        return "" if values is None else values[i]

    def raw_cell(self, column: str, i: int) -> str:
        """Row ``i``'s cell in ``column`` exactly as written."""
        values = self.raw.get(column)
        return "" if values is None else values[i]


def _parse_records(path: str | Path) -> _RecordFile:
    """Read a flat record file as text cells (any read problem is an :class:`ImportRejected`;
    repeated column names are refused by the reader)."""
    frame, digest = read_table(path)
    cols = tuple(frame.columns)
    raw = {c: [str(v) for v in frame[c].tolist()] for c in cols}
    cells = {c: [v.strip() for v in values] for c, values in raw.items()}
    return _RecordFile(str(path), digest, len(frame), cols, cells, raw)


# -------------------------------------------------------------------------- 2. validate


@dataclass(frozen=True)
class _RecordTarget:
    """What the study says a records file may hold, and who imports it."""

    study: Study
    grant: Grant
    forms: dict[str, FormSpec]
    rid_field: str
    codes: MissingCodes
    #: REDCap event name -> timepoint, and timepoint id -> instruments scheduled there.
    events: dict[str, Timepoint]
    scheduled: dict[int, set[str]]
    #: Study code -> participant, as stored before the import.
    people: dict[str, Participant]
    #: Data access group key (:func:`_dag_key`) -> the sites it matches, and site id -> name.
    dag_sites: dict[str, list[Site]]
    site_names: dict[int, str]
    create_participants: bool
    #: The study's arms by name, in order (REDCap's arm 1 first); participant id -> arm name.
    arms: dict[str, int]
    arm_names: dict[int, str]
    #: The order of slashed dates in the file (REDCap's import ``dateFormat``).
    date_format: str = "YMD"
    #: The year two-digit years are read in (REDCap's window slides with it): the import's.
    this_year: int = field(default_factory=lambda: dt.datetime.now(dt.UTC).year)

    @classmethod
    def of(
        cls,
        session: Session,
        study: Study,
        grant: Grant,
        missing_codes: Sequence[str | int] | None,
        create_participants: bool,
        date_format: str = "YMD",
    ) -> _RecordTarget:
        codes = MissingCodes([*json.loads(study.missing_codes_json), *(missing_codes or ())])
        return cls(
            study=study,
            grant=grant,
            forms=_with_stamps(study_forms(session, study)),
            rid_field=_record_id_field(session, study),
            codes=codes,
            events={tp.redcap_event: tp for tp in study.timepoints},
            scheduled={tp.id: {ti.instrument for ti in tp.instruments} for tp in study.timepoints},
            people=participant_map(session, study),
            dag_sites=_dag_sites(study),
            site_names={x.id: x.name for x in study.sites},
            create_participants=create_participants,
            arms={a.name: a.id for a in study.arms},
            arm_names={a.id: a.name for a in study.arms},
            date_format=date_format,
        )


def _date_problem(rule: ItemRule, why: str) -> str:
    """A date problem, never quoting an identifying value."""
    if not rule.identifier:
        return why
    return re.sub(r"^'[^']*'", "the value", why) + " (identifying field: value not shown)"


def _with_stamps(forms: dict[str, FormSpec]) -> dict[str, FormSpec]:
    """``forms`` with each dictionary form's survey timestamp column (``<form>_timestamp``,
    written by REDCap for forms enabled as surveys: a date-time or ``[not completed]``) as a
    free-text item of the form, kept as written."""
    out = dict(forms)
    for name, form in forms.items():
        stamp = ItemRule(f"{name}_timestamp", "text")
        out[name] = FormSpec(name, (*form.items, stamp), form.builtin, form.version)
    return out


def _check_header(records: _RecordFile, target: _RecordTarget) -> list[Problem]:
    """Problems of the file's columns (a wrong first column rejects the file at once)."""
    cols = records.columns
    if not cols or cols[0] != target.rid_field:
        first = Problem(0, cols[0] if cols else None, f"first column must be {target.rid_field!r}")
        raise ImportRejected(records.source, [first])
    owned = {f"{name}_complete" for name in target.forms}
    owned |= {rule.name for form in target.forms.values() for rule in form.items}
    problems = [
        Problem(0, c, "not a field of this study's forms")
        for c in cols[1:]
        if c not in owned and c not in _META_COLUMNS
    ]
    if "redcap_event_name" not in cols and len(target.events) != 1:
        problems.append(
            Problem(0, None, "no redcap_event_name column but the study has several events")
        )
    return problems


# ------------------------------------------------------------------------------- 3. map


@dataclass
class _Mapped:
    """What the rows map to, built row by row (problems go to the caller's list)."""

    records: list[ResponseRecord] = field(default_factory=list)
    #: Study code -> identifier field -> value (for the identity vault).
    identities: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Codes to enrol, in file order -> the placeholder (negative) participant id of their rows.
    pending: dict[str, int] = field(default_factory=dict)
    #: Study code -> site id named by the record's data access group.
    dag_site: dict[str, int] = field(default_factory=dict)
    #: Study code -> arm name (of its events' ``_arm_N``) -> the rows in that arm.
    record_arms: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    #: Study code -> the arm id of a record whose events are all in one arm.
    event_arm: dict[str, int] = field(default_factory=dict)
    #: (code, timepoint id, form, repeat instance) -> the row it was first on.
    seen: dict[tuple[str, int, str, int], int] = field(default_factory=dict)
    #: Values kept but flagged (outside a field's validation min/max).
    warnings: list[Problem] = field(default_factory=list)
    #: Row index -> where it goes, the responses it holds, and its non-empty identifier columns.
    rows: dict[int, _Row] = field(default_factory=dict)
    row_records: dict[int, list[ResponseRecord]] = field(default_factory=dict)
    row_idents: dict[int, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Row:
    """Where one row's values go."""

    i: int
    code: str
    participant_id: int
    timepoint: Timepoint
    repeat_form: str
    repeat: int

    @property
    def n(self) -> int:
        """The row's number in problems (1 = first data row)."""
        return self.i + 1

    @property
    def place(self) -> str:
        """Where in the record the row is (event, repeating form, instance): the suffix of the
        vault names of identifying values that differ from the record's first one."""
        return _place(self.timepoint.redcap_event, self.repeat_form, self.repeat)


def _place(event: str, repeat_form: str, repeat: int) -> str:
    return f"{event}#{repeat_form}#{repeat}"


#: The survey participant list's identifier (an e-mail or name): identifying, to the vault.
_SURVEY_ID = "redcap_survey_identifier"


def _identify(mapped: _Mapped, row: _Row, column: str, raw: str) -> None:
    """Keep identifying cell ``raw`` of ``row`` for the vault: the record's first value under
    ``column``, any other value under ``column@place`` (identifiers may differ between
    instances of a repeating form, as REDCap allows)."""
    ident = mapped.identities.setdefault(row.code, {})
    first = ident.setdefault(column, raw)
    if raw != first:
        ident[f"{column}@{row.place}"] = raw
    mapped.row_idents.setdefault(row.i, []).append(column)


def _map_records(records: _RecordFile, target: _RecordTarget, problems: list[Problem]) -> _Mapped:
    """Every row as responses, identity values and participants to enrol; every problem found
    is appended to ``problems`` (a refused row's values are not looked at)."""
    mapped = _Mapped()
    present = {
        name: [r for r in form.items if r.name in records.cells]
        for name, form in target.forms.items()
        if any(r.name in records.cells for r in form.items) or f"{name}_complete" in records.cells
    }
    for i in range(records.n_rows):
        row = _locate_row(records, target, mapped, problems, i)
        if row is not None:
            mapped.rows[i] = row
            survey_id = records.raw_cell(_SURVEY_ID, i)
            if survey_id.strip():
                _identify(mapped, row, _SURVEY_ID, survey_id)
            for name, rules in present.items():
                _map_form(records, target, mapped, problems, row, name, rules)
    _settle_arms(target, mapped, problems)
    return mapped


def _locate_row(
    records: _RecordFile, target: _RecordTarget, mapped: _Mapped, problems: list[Problem], i: int
) -> _Row | None:
    """Whose row ``i`` is and which event and instance it fills, or ``None`` (a problem)."""
    n = i + 1
    code = records.cell(target.rid_field, i)
    person = target.people.get(code)
    why = _refuse_participant(code, person, target)
    if why:
        problems.append(Problem(n, target.rid_field, why))
        return None
    if records.cell(_DAG, i):
        _check_dag(records.cell(_DAG, i), code, person, target, mapped, problems, n)
    if person is None and code not in mapped.pending:
        mapped.pending[code] = -(len(mapped.pending) + 1)
    pid = person.id if person is not None else mapped.pending[code]
    ev = records.cell("redcap_event_name", i)
    events = target.events
    tp = events.get(ev) if ev else (next(iter(events.values())) if len(events) == 1 else None)
    if tp is None:
        problems.append(Problem(n, "redcap_event_name", f"unknown event {ev!r}"))
        return None
    arm, why = study_arm(tp.redcap_event, list(target.arms))
    if why:
        problems.append(Problem(n, "redcap_event_name", why))
        return None
    if arm is not None:
        mapped.record_arms.setdefault(code, {}).setdefault(arm, []).append(n)
    rep_form = records.cell("redcap_repeat_instrument", i)
    rep_raw = records.cell("redcap_repeat_instance", i)
    repeat = 0
    if rep_form or rep_raw:
        if not rep_raw.isdigit() or int(rep_raw) < 1:
            why = f"{rep_raw!r} is not an instance 1, 2, ..."
            problems.append(Problem(n, "redcap_repeat_instance", why))
            return None
        repeat = int(rep_raw)
        why = _limits.problem(Response.repeat_instance, repeat)
        if why:
            problems.append(Problem(n, "redcap_repeat_instance", why))
            return None
        if rep_form and rep_form not in target.forms:
            problems.append(Problem(n, "redcap_repeat_instrument", f"unknown form {rep_form!r}"))
            return None
    return _Row(i, code, pid, tp, rep_form, repeat)


def _settle_arms(target: _RecordTarget, mapped: _Mapped, problems: list[Problem]) -> None:
    """The study arm of each record whose events are all in one arm (a record in several arms,
    as REDCap allows, keeps its participant's arm); a participant already in another arm is a
    problem on each of the record's rows."""
    for code, by_arm in mapped.record_arms.items():
        if len(by_arm) != 1:
            continue
        ((arm, rows),) = by_arm.items()
        person = target.people.get(code)
        current = target.arm_names.get(person.arm_id) if person and person.arm_id else None
        if current is not None and current != arm:
            why = f"the event is in arm {arm!r}; participant {code!r} is in arm {current!r}"
            problems.extend(Problem(n, "redcap_event_name", why) for n in rows)
        else:
            mapped.event_arm[code] = target.arms[arm]


def _refuse_participant(code: str, person: Participant | None, target: _RecordTarget) -> str | None:
    """Why a row of record ``code`` cannot be imported, or ``None``."""
    why = check_code(code)
    if why:
        return why
    if person is None and target.create_participants and target.grant.sites is None:
        return None  # a new record: enrolled by the import
    # Site-scoped users cannot create participants; unknown and other sites' codes read alike.
    return target.grant.refuse_participant(target.study, code, person)


def _check_dag(
    dag: str,
    code: str,
    person: Participant | None,
    target: _RecordTarget,
    mapped: _Mapped,
    problems: list[Problem],
    n: int,
) -> None:
    """Map record ``code`` to the site of its data access group ``dag`` (or say why not)."""
    matches = target.dag_sites.get(_dag_key(dag), [])
    site = matches[0] if len(matches) == 1 else None
    if len(matches) > 1:
        both = " and ".join(repr(x.name) for x in matches)
        why = (
            f"data access group {dag!r} matches sites {both} of study {target.study.name!r}; "
            f"rename one of the sites or place the record by hand"
        )
        problems.append(Problem(n, _DAG, why))
    elif site is None:
        known = ", ".join(sorted(target.site_names.values())) or "none"
        why = (
            f"data access group {dag!r} matches no site of study {target.study.name!r} "
            f"(sites: {known}); add the site or drop the column"
        )
        problems.append(Problem(n, _DAG, why))
    elif mapped.dag_site.setdefault(code, site.id) != site.id:
        problems.append(Problem(n, _DAG, f"differs from an earlier row of {code!r}"))
    elif person is not None and person.site_id not in (None, site.id):
        why = (
            f"participant {code!r} is at site {target.site_names[person.site_id]!r}, "
            f"not {site.name!r} (data access group {dag!r})"
        )
        problems.append(Problem(n, _DAG, why))


def _map_form(
    records: _RecordFile,
    target: _RecordTarget,
    mapped: _Mapped,
    problems: list[Problem],
    row: _Row,
    name: str,
    rules: list[ItemRule],
) -> None:
    """Form ``name``'s cells in ``row`` as a response (if they hold anything)."""
    n, comp_col = row.n, f"{name}_complete"
    if row.repeat_form and name != row.repeat_form:
        for r in rules:
            raw = records.cell(r.name, row.i)
            if raw and not (r.kind == "flag" and raw == "0"):
                message = f"value in a row of repeating form {row.repeat_form!r}"
                problems.append(Problem(n, r.name, message))
        return
    items = _form_items(records, target, mapped, problems, row, rules)
    completion = None
    if comp_col in records.cells:
        completion, why = parse_completion(records.cell(comp_col, row.i))
        if why:
            problems.append(Problem(n, comp_col, why))
    kinds = {r.name: r.kind for r in rules}
    has_data = any(not (v == (0.0, None, None) and kinds[k] == "flag") for k, v in items.items())
    if not has_data and completion is None:
        return
    tp = row.timepoint
    if name not in target.scheduled[tp.id]:
        where = comp_col if comp_col in records.cells else None
        why = f"form {name!r} is not scheduled at event {tp.redcap_event!r}"
        problems.append(Problem(n, where, why))
        return
    key = (row.code, tp.id, name, row.repeat)
    if key in mapped.seen:
        why = f"{row.code!r} {tp.redcap_event} {name} also on row {mapped.seen[key]}"
        problems.append(Problem(n, target.rid_field, why))
        return
    mapped.seen[key] = n
    record = ResponseRecord(
        row.participant_id, row.code, tp.id, name, row.repeat, completion or 0, items
    )
    mapped.records.append(record)
    mapped.row_records.setdefault(row.i, []).append(record)


def _form_items(
    records: _RecordFile,
    target: _RecordTarget,
    mapped: _Mapped,
    problems: list[Problem],
    row: _Row,
    rules: list[ItemRule],
) -> dict[str, ItemValue]:
    """The item values of one form in ``row``; identifier values go to ``mapped.identities``."""
    items: dict[str, ItemValue] = {}
    for rule in rules:
        raw = records.cell(rule.name, row.i)
        if raw == "":
            continue
        if rule.kind == "flag" and raw == "0":
            # REDCap writes 0 for every unticked checkbox option: no data.
            items[rule.name] = (0.0, None, None)
            continue
        # Free text is kept exactly as written (spaces and line breaks included).
        text = records.raw_cell(rule.name, row.i) if rule.free_text else raw
        if rule.is_date and target.codes.match(text) is None:
            # Month- or day-first dates as the import's date format names them (REDCap's).
            iso, why = iso_from_import(text, target.date_format, this_year=target.this_year)
            if iso is None:
                problems.append(Problem(row.n, rule.name, _date_problem(rule, why or "")))
                continue
            text = iso
        parsed, why = parse_item(rule, text, target.codes)
        if why:
            problems.append(Problem(row.n, rule.name, why))
            continue
        if parsed is None:
            continue
        warning = rule.range_warning(parsed[0])
        if warning:
            mapped.warnings.append(Problem(row.n, rule.name, warning))
        if rule.identifier:
            _identify(mapped, row, rule.name, text)
        else:
            items[rule.name] = parsed
    return items


# ----------------------------------------------------------------------------- 4. store


def _store_records(
    s: Session,
    caller: Caller,
    records: _RecordFile,
    target: _RecordTarget,
    mapped: _Mapped,
    reason: str | None,
) -> ImportSummary:
    """Enrol, place, vault and write what ``mapped`` holds, and audit the import."""
    study, actor = target.study, target.grant.actor
    # Locked before anything is written or recorded (see lock_participants); exclusively, as
    # participants without a site or arm get theirs below.
    named = {r.participant for r in mapped.records} | set(mapped.identities)
    known = [target.people[c] for c in sorted(named) if c in target.people]
    refuse_erased(s, *known, exclusive=True)
    people = _enrol_new(s, caller, records, target, mapped, reason)
    _place_unplaced(
        s,
        actor,
        target,
        mapped,
        people,
        reason,
        what="site",
        chosen=mapped.dag_site,
        names=target.site_names,
        source="redcap_data_access_group",
    )
    _place_unplaced(
        s,
        actor,
        target,
        mapped,
        people,
        reason,
        what="arm",
        chosen=mapped.event_arm,
        names=target.arm_names,
        source="redcap_event_name",
    )
    if mapped.identities:
        authorize(s, caller, "identity.write", study)
    for code, fields in mapped.identities.items():
        merge_fields(s, people[code], fields, actor=actor, study_name=study.name, reason=reason)
    new, updated, unchanged = write_responses(
        s,
        mapped.records,
        source=file_source("redcap", records.sha256),
        actor=actor,
        study_name=study.name,
        reason=reason,
    )
    _store_layout(s, records, target, mapped, people)
    audit.record(
        s,
        actor,
        "redcap.import",
        "response",
        None,
        study=study.name,
        new={
            "sha256": records.sha256,
            "rows": records.n_rows,
            "new": new,
            "updated": updated,
            "unchanged": unchanged,
            "participants_created": len(mapped.pending),
            "warnings": len(mapped.warnings),
        },
        reason=reason,
    )
    return ImportSummary(
        records.source,
        records.sha256,
        records.n_rows,
        new,
        updated,
        unchanged,
        tuple(mapped.warnings),
    )


def _store_layout(
    s: Session,
    records: _RecordFile,
    target: _RecordTarget,
    mapped: _Mapped,
    people: dict[str, Participant],
) -> None:
    """Keep the file's column and row order and the cells it wrote otherwise than peerlens
    writes the stored values (merged into the layout of earlier imports: a row already known
    keeps its place and takes this file's cells)."""
    rules = {name: list(form.items) for name, form in target.forms.items()}
    kinds = {r.name: r for rs in rules.values() for r in rs}
    dag_of = {x.id: _dag_key(x.name) for x in target.study.sites}
    new_rows: list[list[object]] = []
    for i, row in mapped.rows.items():
        filled = {r.instrument: (r.completion, r.items) for r in mapped.row_records.get(i, [])}
        site_id = people[row.code].site_id
        written = _write_row(
            target.rid_field,
            _RowKey(row.code, row.timepoint.redcap_event, row.repeat_form, row.repeat),
            filled,
            rules,
            dag_of.get(site_id, "") if site_id is not None else "",
            flags_zero=False,
        )
        idents = sorted(set(mapped.row_idents.get(i, [])))
        overrides: dict[str, list[str]] = {}
        for c in records.columns:
            rule = kinds.get(c)
            raw = records.raw_cell(c, i)
            if c in idents or c == _SURVEY_ID or (rule is not None and rule.identifier):
                continue
            if rule is not None and (rule.free_text or rule.is_date) and raw.strip():
                continue  # free text and dates are stored as items, never here
            if written.get(c, "") != raw:
                overrides[c] = [written.get(c, ""), raw]
        new_rows.append(
            [row.code, row.timepoint.redcap_event, row.repeat_form, row.repeat, overrides, idents]
        )
    layout = s.get(RedcapLayout, target.study.id)
    old_rows: list[list[object]] = json.loads(layout.rows_json) if layout else []
    old_cols: list[str] = json.loads(layout.columns_json) if layout else []
    fresh = {tuple(r[:4]): r for r in new_rows}
    merged = [fresh.pop(tuple(r[:4]), r) for r in old_rows]
    merged += [r for r in new_rows if tuple(r[:4]) in fresh]
    columns = list(dict.fromkeys([*records.columns, *old_cols]))
    if layout is None:
        layout = RedcapLayout(study_id=target.study.id, columns_json="[]", rows_json="[]")
        s.add(layout)
    layout.columns_json = json.dumps(columns)
    layout.rows_json = json.dumps(merged, separators=(",", ":"))
    layout.updated_at = utcnow()


def forget_layout_rows(s: Session, study_id: int, code: str) -> int:
    """Drop the REDCap layout rows of participant ``code`` (their responses were purged at
    erasure: no row of theirs is exported again); return how many were dropped."""
    layout = s.get(RedcapLayout, study_id)
    if layout is None:
        return 0
    rows: list[list[object]] = json.loads(layout.rows_json)
    kept = [r for r in rows if r[0] != code]
    if len(kept) != len(rows):
        layout.rows_json = json.dumps(kept, separators=(",", ":"))
        layout.updated_at = utcnow()
    return len(rows) - len(kept)


def _enrol_new(
    s: Session,
    caller: Caller,
    records: _RecordFile,
    target: _RecordTarget,
    mapped: _Mapped,
    reason: str | None,
) -> dict[str, Participant]:
    """Enrol the records' unknown codes as service users (at their group's site) and point
    their responses at them; return the study's participants by code."""
    if not mapped.pending:
        return target.people
    study = target.study
    authorize(s, caller, "participant.add", study)
    add_rows = [
        {
            "study_id": study.id,
            "study_code": c,
            "role": "service_user",
            "status": "enrolled",
            "enrolled_at": utcnow(),
            "date_shift_days": secrets.randbelow(365),
            "site_id": mapped.dag_site.get(c),
            "arm_id": mapped.event_arm.get(c),
        }
        for c in mapped.pending
    ]
    s.execute(insert(Participant), add_rows)
    people = participant_map(s, study)
    for rec in mapped.records:
        if rec.participant_id < 0:
            rec.participant_id = people[rec.participant].id
    events = [
        audit.AuditEvent(
            "participant.add",
            "participant",
            c,
            study.name,
            None,
            {
                "role": "service_user",
                "site": target.site_names.get(mapped.dag_site.get(c, -1)),
                "arm": target.arm_names.get(mapped.event_arm.get(c, -1)),
                "source": f"sha256:{records.sha256[:12]}",
            },
            reason,
        )
        for c in mapped.pending
    ]
    audit.record_many(s, target.grant.actor, events)
    return people


def _place_unplaced(
    s: Session,
    actor: str,
    target: _RecordTarget,
    mapped: _Mapped,
    people: dict[str, Participant],
    reason: str | None,
    *,
    what: str,
    chosen: Mapping[str, int],
    names: Mapping[int, str],
    source: str,
) -> None:
    """A participant enrolled without a ``what`` (``site`` or ``arm``) takes the one their rows
    name (``chosen``: study code -> id, from the ``source`` column); each placement is audited."""
    column = f"{what}_id"
    for code, value in chosen.items():
        person = people[code]
        if code in mapped.pending or getattr(person, column) is not None:
            continue
        setattr(person, column, value)
        audit.record(
            s,
            actor,
            f"participant.{what}",
            "participant",
            code,
            study=target.study.name,
            old={what: None},
            new={what: names[value], "from": source},
            reason=reason,
        )


def _fmt_value(
    value: float | None, text: str | None, missing: str | None, comma: bool = False
) -> str:
    if missing is not None:
        return missing
    if text is not None:
        return text
    if value is None:
        return ""
    out = str(int(value)) if value == int(value) else repr(value)
    return out.replace(".", ",") if comma else out


@dataclass(frozen=True)
class _RowKey:
    """Which row of a flat record file: record, event, repeating form, instance (0: none)."""

    code: str
    event: str
    repeat_form: str
    repeat: int


def _write_row(
    rid_field: str,
    key: _RowKey,
    filled: Mapping[str, tuple[int | None, Mapping[str, ItemValue]]],
    rules: Mapping[str, Sequence[ItemRule]],
    dag: str,
    *,
    flags_zero: bool,
    shift: int | None = None,
) -> dict[str, str]:
    """One row's cells as peerlens writes them from stored values: ``filled`` maps each form
    of the row to its completion and items. Used by the import (to find the cells a file wrote
    otherwise) and the export, so both write alike."""
    row = {
        rid_field: key.code,
        "redcap_event_name": key.event,
        "redcap_repeat_instrument": key.repeat_form,
        "redcap_repeat_instance": str(key.repeat) if key.repeat > 0 else "",
        _DAG: dag,
    }
    for form, (completion, items) in filled.items():
        for rule in rules.get(form, ()):
            if rule.name in items:
                v, t, m = items[rule.name]
                if shift is not None and rule.is_date and t is not None and m is None:
                    t = shift_date(t, shift)
                row[rule.name] = _fmt_value(v, t, m, rule.decimal_comma)
            elif flags_zero and rule.kind == "flag":
                row[rule.name] = "0"
        row[f"{form}_complete"] = "" if completion is None else str(completion)
    return row


def records_frame(
    session: Session,
    study: Study,
    *,
    identity: bool,
    drop_free_text: bool,
    shift_dates: bool,
    sites: frozenset[str] | None = None,
) -> pd.DataFrame:
    """The study's data as a REDCap flat record table (all cells text).

    Records imported from a REDCap file come back in that file's row and column order, each
    cell as it was written (see :class:`~peerlens.study.models.RedcapLayout`); other responses
    follow, ordered by record (enrolment order), event, repeating form and instance.
    ``identity`` puts identity-vault values back into identifier fields and the survey
    identifier column (else those columns are left out); ``drop_free_text`` leaves out text
    fields without validation, notes fields and survey timestamps; ``shift_dates`` moves date
    fields back by the participant's date shift.
    """
    forms = _with_stamps(study_forms(session, study))
    rid_field = _record_id_field(session, study)
    tps = {tp.id: tp for tp in study.timepoints}
    q = (
        select(
            Participant.id,
            Participant.study_code,
            Participant.date_shift_days,
            Participant.site_id,
            Response.id,
            Response.timepoint_id,
            Response.instrument,
            Response.repeat_instance,
            Response.completion,
        )
        .join(Response, Response.participant_id == Participant.id, isouter=True)
        .where(Participant.study_id == study.id)
    )
    if sites is not None:
        q = q.join(Site, Site.id == Participant.site_id).where(Site.name.in_(sorted(sites)))
    found = session.execute(q).all()
    responses = [r for r in found if r[5] is not None]
    by_resp = stored_items(session, [r[4] for r in responses])
    keep: dict[str, list[ItemRule]] = {}
    for name, form in forms.items():
        keep[name] = [
            r
            for r in form.items
            if not (r.identifier and not identity) and not (r.free_text and drop_free_text)
        ]
    dag_of = {x.id: _dag_key(x.name) for x in study.sites}
    people = {c: (pid, shift, dag_of.get(site or -1, "")) for pid, c, shift, site, *_ in found}
    vault = read_many(session, (p[0] for p in people.values())) if identity else {}
    # Each response by the row it belongs to.
    filled: dict[tuple[str, str, int], dict[str, tuple[int | None, dict[str, ItemValue]]]] = {}
    for _pid, code, _shift, _site, rid, tid, inst, rep, comp in responses:
        tp = tps[tid or 0]
        filled.setdefault((code, tp.redcap_event, rep), {})[inst] = (comp, by_resp.get(rid, {}))
    layout = session.get(RedcapLayout, study.id)
    keys: list[tuple[_RowKey, dict[str, list[str]], list[str], bool]] = []
    claimed: set[tuple[str, str, int, str]] = set()
    for code, event, rform, rep, overrides, idents in json.loads(
        layout.rows_json if layout else "[]"
    ):
        if code in people:
            keys.append((_RowKey(code, event, rform, rep), overrides, idents, True))
            for inst in [rform] if rform else list(filled.get((code, event, rep), {})):
                claimed.add((code, event, rep, inst))
    keys += _other_rows(responses, tps, claimed, forms)
    rows: list[dict[str, str]] = []
    for key, overrides, idents, from_file in keys:
        pid, shift, dag = people[key.code]
        here = filled.get((key.code, key.event, key.repeat), {})
        if key.repeat_form:
            here = {key.repeat_form: here[key.repeat_form]} if key.repeat_form in here else {}
        row = _write_row(
            rid_field,
            key,
            here,
            keep,
            dag,
            flags_zero=not from_file,
            shift=shift if shift_dates else None,
        )
        ident = vault.get(pid, {})
        place = _place(key.event, key.repeat_form, key.repeat)
        for c in idents if identity else ():
            value = ident.get(f"{c}@{place}", ident.get(c))
            if value is not None:
                row[c] = value
        for c, (written, raw) in overrides.items():
            if row.get(c, "") == written:
                row[c] = raw
        rows.append(row)
    return _frame(rows, layout, rid_field, keep, identity, len(study.timepoints) > 1)


def _other_rows(
    responses: Sequence[Any],
    tps: Mapping[int, Timepoint],
    claimed: set[tuple[str, str, int, str]],
    forms: Mapping[str, FormSpec],
) -> list[tuple[_RowKey, dict[str, list[str]], list[str], bool]]:
    """Rows for the responses no imported REDCap row holds, ordered by record (enrolment
    order), event, repeating form and instance; a record's identifier values go on the row
    where their form was first filled in (REDCap keeps them there)."""
    rows: dict[tuple[int, int, str, int], _RowKey] = {}
    first: dict[tuple[str, str], tuple[int, int, str, int]] = {}
    for pid, code, _shift, _site, _rid, tid, inst, rep, _comp in responses:
        tp = tps[tid]
        if (code, tp.redcap_event, rep, inst) in claimed:
            continue
        rform = inst if rep > 0 else ""
        order = (pid, tp.position, rform, rep)
        rows.setdefault(order, _RowKey(code, tp.redcap_event, rform, rep))
        if rep == 0 and order < first.get((code, inst), (1 << 62, 0, "", 0)):
            first[(code, inst)] = order
    idents: dict[tuple[int, int, str, int], list[str]] = {k: [] for k in rows}
    for (_code, inst), order in first.items():
        form = forms.get(inst)
        idents[order] += [r.name for r in form.items if r.identifier] if form else []
    return [(rows[k], {}, idents[k], False) for k in sorted(rows)]


def _frame(
    rows: list[dict[str, str]],
    layout: RedcapLayout | None,
    rid_field: str,
    keep: Mapping[str, list[ItemRule]],
    identity: bool,
    longitudinal: bool,
) -> pd.DataFrame:
    """``rows`` as a table: the imported file's columns (those this tier keeps) in its order,
    then any other column holding a value; without an imported file, REDCap's own order.

    Only a ``longitudinal`` study (several timepoints) has a ``redcap_event_name`` column of its
    own: a study of one timepoint is REDCap's classic project, whose exports and import
    template have no event column (REDCap's Data Import Tool instructions: "If your project
    is longitudinal ... the template will include the field redcap_event_name")."""
    used = {c for row in rows for c, v in row.items() if v != ""}
    default = [rid_field, "redcap_event_name"] if longitudinal else [rid_field]
    if "redcap_repeat_instance" in used:
        default += ["redcap_repeat_instrument", "redcap_repeat_instance"]
    for name, rules in keep.items():
        stamp = f"{name}_timestamp"
        default += [r.name for r in rules if r.name != stamp or stamp in used]
        default.append(f"{name}_complete")
    if layout is None:
        columns = default
    else:
        allowed = set(default) | {r.name for rs in keep.values() for r in rs}
        # A file's own event column stays (a longitudinal project may have one event).
        allowed |= {"redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance", _DAG}
        if identity:
            allowed.add(_SURVEY_ID)
        columns = [c for c in json.loads(layout.columns_json) if c in allowed]
        # A classic project's file has no event column: one is added only when needed.
        several = len({row["redcap_event_name"] for row in rows}) > 1
        extra = [c for c in default if c in used and c not in columns]
        columns += [c for c in extra if c != "redcap_event_name" or several]
    data = [[row.get(c, "") for c in columns] for row in rows]
    return pd.DataFrame(data, columns=columns, dtype="string").fillna("")


@guarded("dictionary.export")
def export_dictionary(store: Store, study_name: str, *, caller: Caller) -> str:
    """The study's data dictionary as REDCap's 18-column CSV, followed by a form for each
    scheduled bundled instrument it does not define (see
    :mod:`peerlens.study._redcap_instruments`), so that a REDCap project made from it takes
    the study's ``--format redcap`` export."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        authorize(s, caller, "dictionary.export", study)
        fields = s.scalars(
            select(Field).where(Field.study_id == study.id).order_by(Field.position)
        ).all()
        scheduled = [ti.instrument for tp in study.timepoints for ti in tp.instruments]
        bundled = [name for name in scheduled if builtin_form(name) is not None]
        return dictionary_csv(with_instrument_forms(fields, bundled))
