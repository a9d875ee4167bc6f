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
from collections.abc import Sequence
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
    utcnow,
)
from peerlens.study.participants import check_code
from peerlens.study.policy import Caller, authorize, guarded
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

    Raises
    ------
    ImportRejected
        Every problem found (row, column, reason); nothing was stored.
    """
    frame, digest = read_table(path)
    source = str(path)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "redcap.import", study)
        actor, sites = grant.actor, grant.sites
        forms = _study_forms(s, study)
        rid_field = _record_id_field(s, study)
        codes = MissingCodes([*json.loads(study.missing_codes_json), *(missing_codes or ())])
        problems: list[Problem] = []
        cols = list(frame.columns)
        if not cols or cols[0] != rid_field:
            problems.append(
                Problem(0, cols[0] if cols else None, f"first column must be {rid_field!r}")
            )
            raise ImportRejected(source, problems)
        owner: dict[str, tuple[str, ItemRule | None]] = {}
        for name, form in forms.items():
            for rule in form.items:
                owner[rule.name] = (name, rule)
            owner[f"{name}_complete"] = (name, None)
        for c in cols[1:]:
            if c not in owner and c not in _META_COLUMNS and not c.endswith("_timestamp"):
                problems.append(Problem(0, c, "not a field of this study's forms"))
        events = {tp.redcap_event: tp for tp in study.timepoints}
        scheduled = {tp.id: {ti.instrument for ti in tp.instruments} for tp in study.timepoints}
        if "redcap_event_name" not in cols and len(events) != 1:
            problems.append(
                Problem(0, None, "no redcap_event_name column but the study has several events")
            )
        people = participant_map(s, study)
        values = {c: [str(v).strip() for v in frame[c].tolist()] for c in cols}
        dag_sites = {_dag_key(x.name): x for x in study.sites}
        site_of = {x.id: x.name for x in study.sites}
        dag_site: dict[str, int] = {}
        present = {
            name: [r for r in form.items if r.name in values]
            for name, form in forms.items()
            if any(r.name in values for r in form.items) or f"{name}_complete" in values
        }
        records: list[ResponseRecord] = []
        identities: dict[str, dict[str, str]] = {}
        new_codes: list[str] = []
        seen: dict[tuple[str, int, str, int], int] = {}
        pending: dict[str, int] = {}
        for i in range(len(frame)):
            n = i + 1
            code = values[rid_field][i]
            why = check_code(code)
            if why:
                problems.append(Problem(n, rid_field, why))
                continue
            person = people.get(code)
            if person is None and not create_participants:
                problems.append(Problem(n, rid_field, f"unknown participant {code!r}"))
                continue
            if person is not None and person.status == "erased":
                problems.append(Problem(n, rid_field, f"participant {code!r} was erased"))
                continue
            if person is not None and (why := grant.outside(study, person)):
                problems.append(Problem(n, rid_field, why))
                continue
            if person is None and sites is not None:
                why = f"unknown participant {code!r} (site-scoped users cannot create them)"
                problems.append(Problem(n, rid_field, why))
                continue
            if _DAG in values and values[_DAG][i]:
                dag = values[_DAG][i]
                site = dag_sites.get(_dag_key(dag))
                if site is None:
                    known = ", ".join(sorted(site_of.values())) or "none"
                    problems.append(
                        Problem(
                            n,
                            _DAG,
                            f"data access group {dag!r} matches no site of study "
                            f"{study_name!r} (sites: {known}); add the site or drop the column",
                        )
                    )
                elif dag_site.setdefault(code, site.id) != site.id:
                    problems.append(Problem(n, _DAG, f"differs from an earlier row of {code!r}"))
                elif person is not None and person.site_id not in (None, site.id):
                    problems.append(
                        Problem(
                            n,
                            _DAG,
                            f"participant {code!r} is at site {site_of[person.site_id]!r}, "
                            f"not {site.name!r} (data access group {dag!r})",
                        )
                    )
            if person is None and code not in pending:
                pending[code] = -(len(pending) + 1)
                new_codes.append(code)
            pid = person.id if person is not None else pending[code]
            ev = values["redcap_event_name"][i] if "redcap_event_name" in values else ""
            tp = (
                events.get(ev)
                if ev
                else (next(iter(events.values())) if len(events) == 1 else None)
            )
            if tp is None:
                problems.append(Problem(n, "redcap_event_name", f"unknown event {ev!r}"))
                continue
            rep_form = (
                values["redcap_repeat_instrument"][i]
                if "redcap_repeat_instrument" in values
                else ""
            )
            rep_raw = (
                values["redcap_repeat_instance"][i] if "redcap_repeat_instance" in values else ""
            )
            repeat = 0
            if rep_form or rep_raw:
                if not rep_raw.isdigit() or int(rep_raw) < 1:
                    problems.append(
                        Problem(
                            n, "redcap_repeat_instance", f"{rep_raw!r} is not an instance 1, 2, ..."
                        )
                    )
                    continue
                repeat = int(rep_raw)
                if rep_form and rep_form not in forms:
                    problems.append(
                        Problem(n, "redcap_repeat_instrument", f"unknown form {rep_form!r}")
                    )
                    continue
            for name, rules in present.items():
                kinds = {r.name: r.kind for r in rules}
                if rep_form and name != rep_form:
                    for r in rules:
                        if values[r.name][i] and not (
                            r.kind == "flag" and values[r.name][i] == "0"
                        ):
                            problems.append(
                                Problem(n, r.name, f"value in a row of repeating form {rep_form!r}")
                            )
                    continue
                items: dict[str, ItemValue] = {}
                for rule in rules:
                    raw = values[rule.name][i]
                    if raw == "":
                        continue
                    if rule.kind == "flag" and raw == "0":
                        # REDCap writes 0 for every unticked checkbox option: no data.
                        items[rule.name] = (0.0, None, None)
                        continue
                    parsed, why = parse_item(rule, raw, codes)
                    if why:
                        problems.append(Problem(n, rule.name, why))
                        continue
                    if parsed is None:
                        continue
                    if rule.identifier:
                        ident = identities.setdefault(code, {})
                        if ident.get(rule.name, raw) != raw:
                            problems.append(
                                Problem(n, rule.name, f"differs from an earlier row of {code!r}")
                            )
                        ident[rule.name] = raw
                    else:
                        items[rule.name] = parsed
                comp_col = f"{name}_complete"
                completion = None
                if comp_col in values:
                    completion, why = parse_completion(values[comp_col][i])
                    if why:
                        problems.append(Problem(n, comp_col, why))
                has_data = any(
                    not (v == (0.0, None, None) and kinds[k] == "flag") for k, v in items.items()
                )
                if not has_data and completion is None:
                    continue
                if name not in scheduled[tp.id]:
                    problems.append(
                        Problem(
                            n,
                            comp_col if comp_col in values else None,
                            f"form {name!r} is not scheduled at event {tp.redcap_event!r}",
                        )
                    )
                    continue
                key = (code, tp.id, name, repeat)
                if key in seen:
                    problems.append(
                        Problem(
                            n,
                            rid_field,
                            f"{code!r} {tp.redcap_event} {name} also on row {seen[key]}",
                        )
                    )
                    continue
                seen[key] = n
                if completion is None:
                    completion = 0
                records.append(ResponseRecord(pid, code, tp.id, name, repeat, completion, items))
        if problems:
            raise ImportRejected(source, problems)
        if new_codes:
            authorize(s, caller, "participant.add", study)
            add_rows = [
                {
                    "study_id": study.id,
                    "study_code": c,
                    "role": "service_user",
                    "status": "enrolled",
                    "enrolled_at": utcnow(),
                    "date_shift_days": secrets.randbelow(365),
                    "site_id": dag_site.get(c),
                }
                for c in new_codes
            ]
            s.execute(insert(Participant), add_rows)
            people = participant_map(s, study)
            for rec in records:
                if rec.participant_id < 0:
                    rec.participant_id = people[rec.participant].id
            audit.record_many(
                s,
                actor,
                [
                    audit.AuditEvent(
                        "participant.add",
                        "participant",
                        c,
                        study_name,
                        None,
                        {
                            "role": "service_user",
                            "site": site_of.get(dag_site.get(c, -1)),
                            "source": f"sha256:{digest[:12]}",
                        },
                        reason,
                    )
                    for c in new_codes
                ],
            )
        placed = [people[c] for c in dag_site if c not in pending and people[c].site_id is None]
        for person in placed:
            # A participant enrolled without a site takes the site of their REDCap group.
            person.site_id = dag_site[person.study_code]
            audit.record(
                s,
                actor,
                "participant.site",
                "participant",
                person.study_code,
                study=study_name,
                old={"site": None},
                new={"site": site_of[person.site_id], "from": "redcap_data_access_group"},
                reason=reason,
            )
        if identities:
            authorize(s, caller, "identity.write", study)
        for code, fields in identities.items():
            merge_fields(s, people[code], fields, actor=actor, study_name=study_name, reason=reason)
        new, updated, unchanged = write_responses(
            s,
            records,
            source=file_source("redcap", digest),
            actor=actor,
            study_name=study_name,
            reason=reason,
        )
        audit.record(
            s,
            actor,
            "redcap.import",
            "response",
            None,
            study=study_name,
            new={
                "sha256": digest,
                "rows": len(frame),
                "new": new,
                "updated": updated,
                "unchanged": unchanged,
                "participants_created": len(new_codes),
            },
            reason=reason,
        )
        return ImportSummary(source, digest, len(frame), new, updated, unchanged)


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
