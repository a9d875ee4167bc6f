"""Importing questionnaire responses: all or nothing, idempotent, every problem reported.

A response file is a wide table (CSV or Excel): one row per participant, a participant column
(``participant``, ``record_id``, ``study_id`` or ``participant_id``), the item columns of the
instruments scheduled at the timepoint (``phq9_1`` ... for bundled instruments, field names for
data-dictionary forms) and optionally ``<instrument>_complete`` (0 incomplete, 1 unverified,
2 complete, as in REDCap). Empty cells are unanswered; cells equal to one of the study's missing
codes are stored as that code. Without a ``_complete`` column a response is ``complete`` (2) when
every item has a value or a missing code, else ``incomplete`` (0).

The whole file is checked before anything is written and written in one transaction: any problem
(unknown participant, out-of-range value, duplicate row, unknown column) rejects the file with a
report of every problem, and an interrupted import leaves the database as it was. Importing the
same file again changes nothing; a file with changed values updates those responses and logs
every changed item in the audit log as keyed hashes of its old and new value, never the values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._bulk import allocate_ids, bulk_insert
from peerlens.study._catalog import FormSpec, ItemRule, resolve_forms
from peerlens.study._gc_pause import collection_paused
from peerlens.study._identity import item_hashes, merge_fields
from peerlens.study._lookup import (
    get_session,
    get_study,
    get_timepoint,
    participant_map,
    refuse_erased,
)
from peerlens.study.errors import ImportRejected, Problem, StudyError
from peerlens.study.models import Response, ResponseItem, utcnow
from peerlens.study.participants import check_code
from peerlens.study.policy import Caller, Grant, authorize, guarded
from peerlens.study.storage import Store

#: Column names accepted for the participant's study code, in order of preference.
PARTICIPANT_COLUMNS = ("participant", "record_id", "study_id", "participant_id")
#: REDCap bookkeeping columns that carry no item data (read where needed, otherwise ignored;
#: ``<form>_timestamp`` survey columns are ignored too).
_META_COLUMNS = {
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
}

#: ``(value, text, missing_code)`` of one stored item.
ItemValue = tuple[float | None, str | None, str | None]


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: rows read and responses new / updated / unchanged."""

    source: str
    sha256: str
    rows: int
    new: int
    updated: int
    unchanged: int
    #: Values kept but flagged (outside a REDCap field's validation min/max, as REDCap warns).
    warnings: tuple[Problem, ...] = ()

    def __str__(self) -> str:
        text = (
            f"{self.source}: {self.rows} row(s); responses {self.new} new, "
            f"{self.updated} updated, {self.unchanged} unchanged"
        )
        for w in self.warnings:
            where = f"row {w.row}" + (f", column {w.column!r}" if w.column else "")
            text += f"\n  warning: {where}: {w.reason}"
        return text


@dataclass
class ResponseRecord:
    """One response ready to store (built by the file parsers)."""

    participant_id: int
    participant: str
    timepoint_id: int | None
    instrument: str
    repeat_instance: int
    completion: int | None
    items: dict[str, ItemValue]
    session_id: int | None = None


def read_table(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read a response table as text cells (no type guessing); return it and the file's sha256.

    Reading is :func:`peerlens._tables.read_table` (CSV/TSV with the delimiter detected, UTF-8
    with or without BOM or Windows-1252 with a warning, Excel, Parquet); Excel and Parquet cells
    are turned into text, empty cells into ``""``. Any read failure is an :class:`ImportRejected`.
    """
    from peerlens._tables import TableReadError
    from peerlens._tables import read_table as read_any_table

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ImportRejected(
            str(p), [Problem(None, None, f"cannot read ({exc.strerror})")]
        ) from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        frame = read_any_table(p)
    except TableReadError as exc:
        reason = str(exc).removeprefix(f"{p}: ")
        raise ImportRejected(str(p), [Problem(None, None, reason)]) from None
    text = frame.astype("string").fillna("")
    cells = {c: text[c].astype(object) for c in text.columns}
    # Text tables holding a NUL are refused as binary when decoded; Parquet cells can hold one.
    # A column's cells are searched one by one only when its text as a whole holds one.
    nul = [
        Problem(int(i) + 1, str(c), "holds a NUL character (\\x00); remove it")
        for c in text.columns
        if "\x00" in "".join(cells[c])
        for i in text.index[text[c].str.contains("\x00", regex=False)]
    ]
    if nul:
        raise ImportRejected(str(p), nul)
    frame = pd.DataFrame(cells, index=frame.index)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, digest


def _as_float(text: str) -> float | None:
    try:
        return float(text) + 0.0  # "-0" is 0.0: SQLite cannot store -0.0 (it keeps 0.0)
    except ValueError:
        return None


class MissingCodes:
    """Membership test for missing codes that treats ``-99`` and ``-99.0`` as the same code."""

    def __init__(self, codes: Iterable[str | int | float]) -> None:
        self.text = {str(c).strip() for c in codes if str(c).strip() != ""}
        self.numbers = {v: c for c in self.text if (v := _as_float(c)) is not None}

    def match(self, raw: str) -> str | None:
        """The code ``raw`` stands for, or ``None``."""
        if raw in self.text:
            return raw
        v = _as_float(raw)
        if v is not None and v in self.numbers:
            return self.numbers[v]
        return None


def parse_item(
    rule: ItemRule, raw: str, codes: MissingCodes
) -> tuple[ItemValue | None, str | None]:
    """``raw`` (stripped, non-empty) as a stored item value, or a problem."""
    code = codes.match(raw)
    if code is not None:
        return (None, None, code), None
    value, text, problem = rule.check(raw)
    if problem:
        return None, problem
    return (value, text, None), None


def parse_completion(raw: str) -> tuple[int | None, str | None]:
    """A ``<form>_complete`` cell: ``(status, problem)``; empty means not given."""
    if raw == "":
        return None, None
    v = _as_float(raw)
    if v is None or v not in (0.0, 1.0, 2.0):
        return None, f"{raw!r} is not a completion status (0, 1 or 2)"
    return int(v), None


@guarded("responses.import")
def import_responses(
    store: Store,
    study_name: str,
    path: str | Path,
    *,
    timepoint: str | None = None,
    session: str | None = None,
    instrument: str | None = None,
    missing_codes: Sequence[str | int] | None = None,
    columns: Mapping[str, str] | None = None,
    caller: Caller,
    reason: str | None = None,
) -> ImportSummary:
    """Import a wide response file for one timepoint or one PS session (see module docstring).

    Parameters
    ----------
    timepoint
        Timepoint name or REDCap event name.
    session
        Instead of a timepoint: the label of a PS session (e.g. ``s3``); each row's response is
        linked to that participant's session with this label. Needs ``instrument``.
    instrument
        Read only this instrument's columns (other scheduled instruments' columns are ignored).
    missing_codes
        Codes meaning "not answered" in addition to the study's own.
    caller
        Who imports; for a site-scoped caller, rows of participants of other sites are problems.
        Values of identifier fields (``Identifier? = y`` in the data dictionary) go to the
        identity vault only, which also needs the right to write it.
    columns
        Column map (source column -> item column ``<id>_<n>``), e.g. from
        :func:`peerlens.instruments.columns.read_column_map` or ``pattern_column_map``, for
        exports named after a survey tool's question ids. The two rows Qualtrics writes under its
        header are skipped in any case; reported row numbers stay those of the file.

    Raises
    ------
    ImportRejected
        Lists every problem found (row, column, reason); nothing was stored.
    """
    from peerlens.instruments.columns import apply_column_map, drop_qualtrics_rows

    frame, digest = read_table(path)
    source = str(path)
    frame, _ = drop_qualtrics_rows(frame)
    if columns:
        frame = apply_column_map(frame, columns, source)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "responses.import", study)
        if (timepoint is None) == (session is None):
            raise StudyError("give either a timepoint or a session label")
        if timepoint is not None:
            tp = get_timepoint(s, study, timepoint)
            tp_id, where = tp.id, tp.name
            scheduled = [ti.instrument for ti in tp.instruments]
            if instrument is not None and instrument not in scheduled:
                raise StudyError(
                    f"instrument {instrument!r} is not scheduled at {tp.name!r} "
                    f"(scheduled: {', '.join(scheduled) or 'none'})"
                )
        else:
            if instrument is None:
                raise StudyError("a session import needs --instrument")
            tp_id, where, scheduled = None, f"session {session}", [instrument]
        forms = resolve_forms(s, study.id, scheduled)
        if session is not None and instrument not in forms:
            raise StudyError(f"unknown instrument {instrument!r}")
        codes = MissingCodes([*json.loads(study.missing_codes_json), *(missing_codes or ())])
        with collection_paused():  # the collector's passes over a file's cells, not its work
            # Loaded once: the rows are checked against it and the accepted ones written with it.
            people = participant_map(s, study)
            parsed = _parse_wide(
                frame, forms, instrument, codes, s, study, people, tp_id, session, grant
            )
        if parsed.problems:
            raise ImportRejected(source, parsed.problems)
        # Locked before anything is written or recorded (see lock_participants): an erasure
        # committed since the file was checked refuses the import, one started meanwhile waits.
        named = {r.participant for r in parsed.records} | set(parsed.identities)
        refuse_erased(s, *(people[c] for c in sorted(named)))
        if parsed.identities:
            authorize(s, caller, "identity.write", study)
            for code, fields in parsed.identities.items():
                merge_fields(
                    s, people[code], fields, actor=grant.actor, study_name=study_name, reason=reason
                )
        new, updated, unchanged = write_responses(
            s,
            parsed.records,
            source=file_source("file", digest),
            actor=grant.actor,
            study_name=study_name,
            reason=reason,
        )
        summary = ImportSummary(source, digest, len(frame), new, updated, unchanged)
        audit.record(
            s,
            grant.actor,
            "responses.import",
            "response",
            where,
            study=study_name,
            new={
                "sha256": digest,
                "timepoint": timepoint,
                "session": session,
                "instrument": instrument,
                "rows": len(frame),
                "new": new,
                "updated": updated,
                "unchanged": unchanged,
            },
            reason=reason,
        )
    return summary


def file_source(kind: str, digest: str) -> str:
    """What a response records as its source: the kind of import and the file's sha256 prefix,
    never the file's name (names of files often carry participants' names).

    Examples
    --------
    >>> file_source("file", "ab" * 32)
    'file:sha256:abababababab'
    """
    return f"{kind}:sha256:{digest[:12]}"


@dataclass
class ParsedRows:
    """Responses, identifying values (study code -> field -> value) and problems of a file."""

    records: list[ResponseRecord]
    identities: dict[str, dict[str, str]]
    problems: list[Problem]


def _parse_wide(
    frame: pd.DataFrame,
    forms: dict[str, FormSpec],
    only: str | None,
    codes: MissingCodes,
    s: Session,
    study: Any,
    people: Mapping[str, Any],
    timepoint_id: int | None,
    session_label: str | None,
    grant: Grant,
) -> ParsedRows:
    problems: list[Problem] = []
    pcol = next((c for c in PARTICIPANT_COLUMNS if c in frame.columns), None)
    if pcol is None:
        need = f"no participant column (one of {', '.join(PARTICIPANT_COLUMNS)})"
        return ParsedRows([], {}, [Problem(0, None, need)])
    cols = list(frame.columns)
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    for c in dupes:
        problems.append(Problem(0, c, "column appears more than once"))
    owner: dict[str, str] = {}
    for name, form in forms.items():
        for rule in form.items:
            owner[rule.name] = name
        owner[f"{name}_complete"] = name
    wanted = [only] if only else list(forms)
    present: dict[str, FormSpec] = {}
    for name in wanted:
        maybe = forms.get(name)
        if maybe is None:
            problems.append(Problem(None, None, f"instrument {name!r} has no definition"))
            continue
        have = [r.name for r in maybe.items if r.name in frame.columns]
        if not have and f"{name}_complete" not in frame.columns:
            continue
        lacking = [r.name for r in maybe.items if r.name not in frame.columns]
        if lacking:
            problems.append(
                Problem(0, None, f"{name}: item column(s) missing: {', '.join(lacking)}")
            )
        present[name] = maybe
    for c in cols:
        if c == pcol or c in _META_COLUMNS or c.endswith("_timestamp"):
            continue
        if c in owner:  # an item of a scheduled instrument (ignored unless selected)
            continue
        problems.append(Problem(0, c, "unknown column (not an item of the instruments scheduled)"))
    if not present and not problems:
        problems.append(Problem(None, None, "no item columns of any scheduled instrument"))
    # Carry on through the rows even after header problems so that every problem is reported.
    values = {c: frame[c].tolist() for c in frame.columns}
    rows = [int(label) + 1 for label in frame.index]  # file rows, also after dropped rows
    accepted: list[tuple[int, str, Any, int | None]] = []  # (index, code, person, session id)
    seen: dict[str, int] = {}
    refused: list[tuple[int, Problem]] = []  # (index, problem) of rows not accepted
    for i in range(len(frame)):
        n = rows[i]
        code = str(values[pcol][i]).strip()
        if not code:
            refused.append((i, Problem(n, pcol, "empty participant code")))
            continue
        if code in seen:
            refused.append((i, Problem(n, pcol, f"participant {code!r} also on row {seen[code]}")))
            continue
        seen[code] = n
        person = people.get(code)
        # A value that cannot be a study code is not quoted: it is often a name.
        why = (check_code(code) if person is None else None) or grant.refuse_participant(
            study, code, person
        )
        if why is not None or person is None:
            refused.append((i, Problem(n, pcol, why or grant.hidden(code))))
            continue
        session_id = None
        if session_label is not None:
            try:
                session_id = get_session(s, study, person, session_label).id
            except StudyError as exc:
                refused.append((i, Problem(n, pcol, str(exc))))
                continue
        accepted.append((i, code, person, session_id))
    cells = [_FormCells(form, values, codes, rows, accepted) for form in present.values()]
    # Problems in file order: by row, and within a row by instrument, item, completion column.
    found = [*refused, *(p for c in cells for p in c.problems)]
    problems.extend(p for _, p in sorted(found, key=lambda p: p[0]))
    records: list[ResponseRecord] = []
    identities: dict[str, dict[str, str]] = {}
    for k, (_, code, person, session_id) in enumerate(accepted):
        for part in cells:
            answers = part.items[k]
            vaulted = part.vaulted[k]
            if vaulted:
                identities.setdefault(code, {}).update(vaulted)
            completion = part.completion[k]
            if not answers and completion is None:
                continue
            if completion is None:
                completion = 2 if len(answers) + len(vaulted) == part.size else 0
            records.append(
                ResponseRecord(
                    person.id, code, timepoint_id, part.name, 0, completion, answers, session_id
                )
            )
    return ParsedRows(records, identities, problems)


class _FormCells:
    """One instrument's cells in the accepted rows of a wide file, parsed a column at a time.

    Each distinct cell of a column is parsed once (the same few codes repeat down a column); a
    row's items are then gathered from the parsed columns. For the ``k``-th accepted row:
    ``items[k]`` (item -> stored value), ``vaulted[k]`` (identifier item -> value as written,
    for the vault only, never a response item) and ``completion[k]`` (the ``<form>_complete``
    cell, None when empty or absent). ``problems`` are ``(row index, Problem)``, in row order per
    column. ``size`` is how many items the instrument has (a response answering all of them,
    identifying items included, is complete).
    """

    def __init__(
        self,
        form: FormSpec,
        values: Mapping[str, list[Any]],
        codes: MissingCodes,
        rows: Sequence[int],
        accepted: Sequence[tuple[int, str, Any, int | None]],
    ) -> None:
        self.name = form.name
        self.size = len(form.items)
        self.problems: list[tuple[int, Problem]] = []
        at = [i for i, *_ in accepted]
        names: list[str] = []
        parsed: list[list[ItemValue | None]] = []
        self.vaulted: list[dict[str, str]] = [{} for _ in at]
        for rule in form.items:
            column = values.get(rule.name)
            if column is None:
                continue
            cells = list(map(column.__getitem__, at))
            meaning = {cell: self._parse(rule, cell, codes) for cell in set(cells)}
            if any(isinstance(m, str) for m in meaning.values()):
                for i, cell in zip(at, cells, strict=True):
                    why = meaning[cell]
                    if isinstance(why, str):
                        self.problems.append((i, Problem(rows[i], rule.name, why)))
            if rule.identifier:
                # Identifying values go to the vault only, never into the response items.
                for k, cell in enumerate(cells):
                    if isinstance(meaning[cell], tuple):
                        self.vaulted[k][rule.name] = str(cell).strip()
                continue
            names.append(rule.name)
            # One look-up per cell (no call per cell: a file has hundreds of thousands).
            stored = {cell: _value_or_none(m) for cell, m in meaning.items()}
            parsed.append(list(map(stored.__getitem__, cells)))
        self.items: list[dict[str, ItemValue]] = [
            {name: v for name, v in zip(names, row, strict=True) if v is not None}
            for row in (zip(*parsed, strict=True) if parsed else ((),) * len(at))
        ]
        self.completion: list[int | None] = [None] * len(at)
        comp_col = f"{form.name}_complete"
        column = values.get(comp_col)
        if column is not None:
            for k, i in enumerate(at):
                status, why = parse_completion(str(column[i]).strip())
                if why:
                    self.problems.append((i, Problem(rows[i], comp_col, why)))
                self.completion[k] = status

    @staticmethod
    def _parse(rule: ItemRule, cell: Any, codes: MissingCodes) -> ItemValue | str | None:
        """A cell as a stored value, a problem (str), or None when empty."""
        raw = str(cell).strip()
        if raw == "":
            return None
        value, why = parse_item(rule, raw, codes)
        return why if why else value


def _value_or_none(meaning: ItemValue | str | None) -> ItemValue | None:
    return meaning if isinstance(meaning, tuple) else None


def _audit_items(
    s: Session, participant_id: int, items: dict[str, ItemValue], keys: Iterable[str]
) -> dict[str, Any]:
    """What the audit log records of changed items: a keyed hash per value (``None`` when the
    item had or has none), never the value (see :func:`peerlens.study._identity.item_hashes`)."""
    empty: ItemValue = (None, None, None)
    return item_hashes(s, participant_id, {k: items.get(k, empty) for k in keys})


@collection_paused()
def write_responses(
    s: Session,
    records: Sequence[ResponseRecord],
    *,
    source: str,
    actor: str,
    study_name: str,
    reason: str | None,
) -> tuple[int, int, int]:
    """Store ``records`` idempotently in ``s``'s transaction; return (new, updated, unchanged).

    A bulk step: the cyclic collector is paused meanwhile (see :mod:`peerlens.study._gc_pause`;
    its passes over the many key tuples and rows made here were a tenth of an import's time)."""
    if not records:
        return 0, 0, 0
    keyset = {
        (r.participant_id, r.timepoint_id, r.session_id, r.instrument, r.repeat_instance)
        for r in records
    }
    existing: dict[tuple[int, int | None, int | None, str, int], tuple[int, int | None]] = {}
    pids = sorted({k[0] for k in keyset})
    insts = sorted({k[3] for k in keyset})
    tids = {k[1] for k in keyset}
    for chunk in _chunks(pids, 5000):
        stmt = select(
            Response.id,
            Response.participant_id,
            Response.timepoint_id,
            Response.session_id,
            Response.instrument,
            Response.repeat_instance,
            Response.completion,
        ).where(Response.participant_id.in_(chunk), Response.instrument.in_(insts))
        if None not in tids:  # not other timepoints' responses of these participants
            stmt = stmt.where(Response.timepoint_id.in_(sorted(tids)))
        for rid, pid, tid, sid, inst, rep, comp in s.execute(stmt):
            key = (pid, tid, sid, inst, rep)
            if key in keyset:
                existing[key] = (rid, comp)
    old_items = stored_items(s, sorted(v[0] for v in existing.values()))
    now = utcnow()
    new_rows: list[ResponseRecord] = []
    changed: list[tuple[int, ResponseRecord, int | None]] = []
    unchanged = 0
    for r in records:
        key = (r.participant_id, r.timepoint_id, r.session_id, r.instrument, r.repeat_instance)
        if key not in existing:
            new_rows.append(r)
            continue
        rid, comp = existing[key]
        if old_items.get(rid, {}) == r.items and comp == r.completion:
            unchanged += 1
        else:
            changed.append((rid, r, comp))
    if new_rows:
        new_ids = allocate_ids(s, Response, len(new_rows))
        bulk_insert(
            s,
            Response,
            _RESPONSE_COLUMNS,
            [
                (
                    rid,
                    r.participant_id,
                    r.timepoint_id,
                    r.session_id,
                    r.instrument,
                    r.repeat_instance,
                    r.completion,
                    source,
                    now,
                )
                for rid, r in zip(new_ids, new_rows, strict=True)
            ],
        )
        _insert_items(s, zip(new_ids, new_rows, strict=True))
    events: list[audit.AuditEvent] = []
    for rid, r, comp in changed:
        old = old_items.get(rid, {})
        keys = sorted(k for k in set(old) | set(r.items) if old.get(k) != r.items.get(k))
        s.execute(delete(ResponseItem).where(ResponseItem.response_id == rid))
        s.execute(
            update(Response)
            .where(Response.id == rid)
            .values(completion=r.completion, source=source, updated_at=now)
        )
        events.append(
            audit.AuditEvent(
                "response.update",
                "response",
                f"{r.participant}/{r.timepoint_id}/{r.instrument}/{r.repeat_instance}",
                study_name,
                {"completion": comp, "items": _audit_items(s, r.participant_id, old, keys)},
                {
                    "completion": r.completion,
                    "items": _audit_items(s, r.participant_id, r.items, keys),
                },
                reason,
            )
        )
    _insert_items(s, ((rid, r) for rid, r, _ in changed))
    audit.record_many(s, actor, events)
    return len(new_rows), len(changed), unchanged


_RESPONSE_COLUMNS = (
    "id",
    "participant_id",
    "timepoint_id",
    "session_id",
    "instrument",
    "repeat_instance",
    "completion",
    "source",
    "updated_at",
)
_ITEM_COLUMNS = ("response_id", "item", "value", "text", "missing_code")


def _insert_items(s: Session, pairs: Iterable[tuple[int, ResponseRecord]]) -> None:
    rows = [
        (rid, item, value, text, miss)
        for rid, r in pairs
        for item, (value, text, miss) in r.items.items()
    ]
    bulk_insert(s, ResponseItem, _ITEM_COLUMNS, rows)


def stored_items(s: Session, response_ids: Sequence[int]) -> dict[int, dict[str, ItemValue]]:
    """The stored items of each of ``response_ids`` that has any (item -> value)."""
    out: dict[int, dict[str, ItemValue]] = {}
    for chunk in _chunks(response_ids, 5000):
        for rid, item, value, text, miss in s.execute(
            select(
                ResponseItem.response_id,
                ResponseItem.item,
                ResponseItem.value,
                ResponseItem.text,
                ResponseItem.missing_code,
            ).where(ResponseItem.response_id.in_(chunk))
        ):
            out.setdefault(rid, {})[item] = (value, text, miss)
    return out


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]
