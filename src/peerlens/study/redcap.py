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
import hashlib
import io
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from peerlens._tables import TableReadError, TextTable, parse_text_table, read_text_table
from peerlens.study import audit
from peerlens.study._catalog import FormSpec, ItemRule, dictionary_forms, resolve_forms
from peerlens.study._deid import shift_date
from peerlens.study._identity import merge_fields, read_many
from peerlens.study._lookup import get_study, participant_map
from peerlens.study.errors import ImportRejected, Problem
from peerlens.study.models import (
    Field,
    Participant,
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
    if tuple(header) not in (DICTIONARY_COLUMNS, DICTIONARY_API_COLUMNS):
        expected = ", ".join(DICTIONARY_COLUMNS)
        raise ImportRejected(
            source,
            [Problem(0, None, f"not a REDCap data dictionary: expected the 18 columns {expected}")],
        )
    reader = enumerate(table.rows, start=1)
    problems: list[Problem] = []
    rows: list[dict[str, str | bool | None]] = []
    seen: set[str] = set()
    for n, cells in reader:
        if not any(c.strip() for c in cells):
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


# --------------------------------------------------------------------------- flat record files


def _record_id_field(session: Session, study: Study) -> str:
    first = session.scalars(
        select(Field.field_name).where(Field.study_id == study.id).order_by(Field.position)
    ).first()
    return first or "record_id"


def _study_forms(session: Session, study: Study) -> dict[str, FormSpec]:
    """Every form of the study: dictionary forms in dictionary order, then bundled instruments."""
    scheduled = [ti.instrument for tp in study.timepoints for ti in tp.instruments]
    forms = dictionary_forms(session, study.id)
    for name, spec in resolve_forms(session, study.id, scheduled).items():
        forms.setdefault(name, spec)
    return forms


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
    caller: Caller,
    reason: str | None = None,
) -> ImportSummary:
    """Import a REDCap flat record CSV (raw values); all or nothing, idempotent.

    Rows are matched to timepoints by ``redcap_event_name`` (a study with one timepoint may omit
    it). Values of identifier fields go to the identity vault. With ``create_participants``,
    unknown record ids are enrolled as service users (no arm). A site-scoped caller imports
    records of their sites' participants only (and cannot create participants).

    A ``redcap_data_access_group`` column maps each record to the study site of the same name
    (compared as REDCap's unique group names: ``Leeds North`` matches ``leeds_north``): new
    participants are enrolled at that site, participants without a site are placed there
    (audited), and a group that matches no site, or contradicts the participant's site or
    another row of the record, is a problem that rejects the file. Empty cells say nothing.

    The import is four steps: parse the file (:func:`_parse_records`), validate its header
    against the study (:func:`_check_header`), map every row to responses, identity values and
    new participants (:func:`_map_records`, every problem collected), and store the lot
    (:func:`_store_records`) only if there was no problem.

    Raises
    ------
    ImportRejected
        Every problem found (row, column, reason); nothing was stored.
    """
    records = _parse_records(path)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "redcap.import", study)
        target = _RecordTarget.of(s, study, grant, missing_codes, create_participants)
        problems = _check_header(records, target)
        mapped = _map_records(records, target, problems)
        if problems:
            raise ImportRejected(records.source, problems)
        return _store_records(s, caller, records, target, mapped, reason)


# ----------------------------------------------------------------------------- 1. parse


@dataclass(frozen=True)
class _RecordFile:
    """A flat record file as read: its stripped text cells by column, in file order."""

    source: str
    sha256: str
    n_rows: int
    columns: tuple[str, ...]
    cells: Mapping[str, list[str]]

    def cell(self, column: str, i: int) -> str:
        """Row ``i``'s (0-based) cell in ``column``; ``""`` when the file has no such column."""
        values = self.cells.get(column)
        return "" if values is None else values[i]


def _parse_records(path: str | Path) -> _RecordFile:
    """Read a flat record file as text cells (any read problem is an :class:`ImportRejected`;
    repeated column names are refused by the reader)."""
    frame, digest = read_table(path)
    cols = tuple(frame.columns)
    cells = {c: [str(v).strip() for v in frame[c].tolist()] for c in cols}
    return _RecordFile(str(path), digest, len(frame), cols, cells)


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

    @classmethod
    def of(
        cls,
        session: Session,
        study: Study,
        grant: Grant,
        missing_codes: Sequence[str | int] | None,
        create_participants: bool,
    ) -> _RecordTarget:
        codes = MissingCodes([*json.loads(study.missing_codes_json), *(missing_codes or ())])
        return cls(
            study=study,
            grant=grant,
            forms=_study_forms(session, study),
            rid_field=_record_id_field(session, study),
            codes=codes,
            events={tp.redcap_event: tp for tp in study.timepoints},
            scheduled={tp.id: {ti.instrument for ti in tp.instruments} for tp in study.timepoints},
            people=participant_map(session, study),
            dag_sites=_dag_sites(study),
            site_names={x.id: x.name for x in study.sites},
            create_participants=create_participants,
        )


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
        if c not in owned and c not in _META_COLUMNS and not c.endswith("_timestamp")
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
    #: (code, timepoint id, form, repeat instance) -> the row it was first on.
    seen: dict[tuple[str, int, str, int], int] = field(default_factory=dict)


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
            for name, rules in present.items():
                _map_form(records, target, mapped, problems, row, name, rules)
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
    rep_form = records.cell("redcap_repeat_instrument", i)
    rep_raw = records.cell("redcap_repeat_instance", i)
    repeat = 0
    if rep_form or rep_raw:
        if not rep_raw.isdigit() or int(rep_raw) < 1:
            why = f"{rep_raw!r} is not an instance 1, 2, ..."
            problems.append(Problem(n, "redcap_repeat_instance", why))
            return None
        repeat = int(rep_raw)
        if rep_form and rep_form not in target.forms:
            problems.append(Problem(n, "redcap_repeat_instrument", f"unknown form {rep_form!r}"))
            return None
    return _Row(i, code, pid, tp, rep_form, repeat)


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
        parsed, why = parse_item(rule, raw, target.codes)
        if why:
            problems.append(Problem(row.n, rule.name, why))
            continue
        if parsed is None:
            continue
        if rule.identifier:
            ident = mapped.identities.setdefault(row.code, {})
            if ident.get(rule.name, raw) != raw:
                why = f"differs from an earlier row of {row.code!r}"
                problems.append(Problem(row.n, rule.name, why))
            ident[rule.name] = raw
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
    people = _enrol_new(s, caller, records, target, mapped, reason)
    _place_by_dag(s, actor, target, mapped, people, reason)
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
        },
        reason=reason,
    )
    return ImportSummary(records.source, records.sha256, records.n_rows, new, updated, unchanged)


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
                "source": f"sha256:{records.sha256[:12]}",
            },
            reason,
        )
        for c in mapped.pending
    ]
    audit.record_many(s, target.grant.actor, events)
    return people


def _place_by_dag(
    s: Session,
    actor: str,
    target: _RecordTarget,
    mapped: _Mapped,
    people: dict[str, Participant],
    reason: str | None,
) -> None:
    """A participant enrolled without a site takes the site of their REDCap group (audited)."""
    placed = [
        people[c] for c in mapped.dag_site if c not in mapped.pending and people[c].site_id is None
    ]
    for person in placed:
        person.site_id = mapped.dag_site[person.study_code]
        audit.record(
            s,
            actor,
            "participant.site",
            "participant",
            person.study_code,
            study=target.study.name,
            old={"site": None},
            new={"site": target.site_names[person.site_id], "from": "redcap_data_access_group"},
            reason=reason,
        )


def _fmt_value(value: float | None, text: str | None, missing: str | None) -> str:
    if missing is not None:
        return missing
    if text is not None:
        return text
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else repr(value)


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

    ``identity`` puts identity-vault values back into identifier fields (else those columns are
    left out); ``drop_free_text`` leaves out text fields without validation and notes fields;
    ``shift_dates`` moves date fields back by the participant's date shift.
    """
    forms = _study_forms(session, study)
    rid_field = _record_id_field(session, study)
    tps = {tp.id: tp for tp in study.timepoints}
    q = (
        select(
            Participant.id,
            Participant.study_code,
            Participant.date_shift_days,
            Response.id,
            Response.timepoint_id,
            Response.instrument,
            Response.repeat_instance,
            Response.completion,
        )
        .join(Response, Response.participant_id == Participant.id)
        .where(Participant.study_id == study.id, Response.timepoint_id.is_not(None))
    )
    if sites is not None:
        q = q.join(Site, Site.id == Participant.site_id).where(Site.name.in_(sorted(sites)))
    responses = session.execute(q).all()
    by_resp = stored_items(session, [r[3] for r in responses])
    keep: dict[str, list[ItemRule]] = {}
    for name, form in forms.items():
        rules = []
        for r in form.items:
            if r.identifier and not identity:
                continue
            if r.free_text and drop_free_text:
                continue
            rules.append(r)
        keep[name] = rules
    repeating = any(r[6] > 0 for r in responses)
    vault = read_many(session, (r[0] for r in responses)) if identity else {}
    # Identifier values go where their form was first filled in (REDCap keeps them there).
    ident_by_form = {name: [r.name for r in rules if r.identifier] for name, rules in keep.items()}
    form_rows: dict[tuple[int, str], tuple[int, tuple[str, int, str, int]]] = {}
    rows: dict[tuple[str, int, str, int], dict[str, str]] = {}
    order: dict[str, int] = {}  # participant code -> database id (enrolment order)
    for pid, code, shift, rid, tid, inst, rep, comp in responses:
        tp = tps[tid or 0]
        rep_form = inst if rep > 0 else ""
        key = (code, tp.position, rep_form, rep)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                rid_field: code,
                "redcap_event_name": tp.redcap_event,
                "redcap_repeat_instrument": rep_form,
                "redcap_repeat_instance": str(rep) if rep > 0 else "",
            }
        if rep == 0:
            first = form_rows.get((pid, inst))
            if first is None or tp.position < first[0]:
                form_rows[(pid, inst)] = (tp.position, key)
        order[code] = pid
        items = by_resp.get(rid, {})
        for rule in keep.get(inst, []):
            if rule.name in items:
                v, t, m = items[rule.name]
                if shift_dates and rule.is_date and t is not None and m is None:
                    t = shift_date(t, shift)
                row[rule.name] = _fmt_value(v, t, m)
        row[f"{inst}_complete"] = "" if comp is None else str(comp)
    for (pid, inst), (_, key) in form_rows.items():
        for fname in ident_by_form.get(inst, []):
            if fname in vault.get(pid, {}):
                rows[key][fname] = vault[pid][fname]
    columns = [rid_field, "redcap_event_name"]
    if repeating:
        columns += ["redcap_repeat_instrument", "redcap_repeat_instance"]
    for name, rules in keep.items():
        columns += [r.name for r in rules]
        columns.append(f"{name}_complete")
    # Identifier fields may sit on the record-id form even when no response of it exists.
    ordered = sorted(rows.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2], kv[0][3]))
    flags = {r.name for rules in keep.values() for r in rules if r.kind == "flag"}
    # REDCap writes 0 for every unticked checkbox option, in every row.
    data = [[row.get(c, "0" if c in flags else "") for c in columns] for _, row in ordered]
    return pd.DataFrame(data, columns=columns, dtype="string").fillna("")


@guarded("dictionary.export")
def export_dictionary(store: Store, study_name: str, *, caller: Caller) -> str:
    """The study's data dictionary as REDCap's 18-column CSV."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        authorize(s, caller, "dictionary.export", study)
        fields = s.scalars(
            select(Field).where(Field.study_id == study.id).order_by(Field.position)
        ).all()
        return dictionary_csv(fields)
