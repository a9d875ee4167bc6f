"""Creating studies and reading their design back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._catalog import field_rules, resolve_forms
from peerlens.study._form_scoring import store_form_scoring
from peerlens.study._identity import merge_fields
from peerlens.study._lookup import get_study
from peerlens.study.config import StudyConfig, load_config
from peerlens.study.consent_texts import store_consent_text
from peerlens.study.errors import PermissionDenied, StudyError
from peerlens.study.models import (
    Arm,
    Field,
    Participant,
    Response,
    ResponseItem,
    Setting,
    Site,
    Study,
    Timepoint,
    TimepointInstrument,
)
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.redcap import read_dictionary, store_data_dictionary
from peerlens.study.storage import Store


@guarded("study.create")
def create_study(
    store: Store,
    name: str,
    config: StudyConfig | str | Path,
    *,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Create study ``name`` from a config (object or ``study.yaml`` path); return its id.

    Every instrument listed at a timepoint must be a bundled instrument (``phq9``, ...) or a form
    of the data dictionary named by ``data_dictionary``. All or nothing: on any problem nothing
    is created.

    Raises
    ------
    StudyError
        The name is taken, the config is invalid, or an instrument is unknown.
    """
    base = Path(".")
    if not isinstance(config, StudyConfig):
        config, base = load_config(config)
    if not name or len(name) > 100 or not name.replace("_", "a").replace("-", "a").isalnum():
        raise StudyError(f"study name {name!r}: use letters, digits, '_' or '-' (at most 100)")
    with store.transaction() as s:
        actor = authorize(s, caller, "study.create").actor
        if s.scalars(select(Study.id).where(Study.name == name)).first() is not None:
            raise StudyError(f"a study called {name!r} already exists")
        study = Study(
            name=name,
            title=config.title,
            missing_codes_json=json.dumps([str(c) for c in config.missing_codes]),
        )
        s.add(study)
        s.flush()
        for arm in dict.fromkeys(config.arms):
            s.add(Arm(study_id=study.id, name=arm))
        for site in dict.fromkeys(config.sites):
            s.add(Site(study_id=study.id, name=site))
        if config.data_dictionary:
            path = base / config.data_dictionary
            rows, _ = read_dictionary(path)
            store_data_dictionary(s, study, rows)
            _set_identifying(s, study, {str(r["field_name"]) for r in rows if r["identifier"]})
        wanted: list[str] = []
        for pos, tpc in enumerate(config.timepoints):
            tp = Timepoint(
                study_id=study.id,
                name=tpc.name,
                redcap_event=tpc.event,
                offset_days=tpc.offset_days,
                window_before_days=tpc.window_before_days,
                window_after_days=tpc.window_after_days,
                position=pos,
            )
            s.add(tp)
            s.flush()
            for ipos, inst in enumerate(dict.fromkeys(tpc.instruments)):
                s.add(TimepointInstrument(timepoint_id=tp.id, instrument=inst, position=ipos))
                wanted.append(inst)
        known = resolve_forms(s, study.id, wanted)
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise StudyError(
                f"unknown instrument(s) {', '.join(unknown)}: not a bundled instrument and not a "
                "form of the study's data dictionary"
            )
        store_form_scoring(s, study, config.scoring)
        if config.consent is not None:
            store_consent_text(
                s, study, config.consent.version, config.consent.text, actor=actor, reason=reason
            )
        audit.record(
            s,
            actor,
            "study.create",
            "study",
            name,
            study=name,
            new=config.model_dump(mode="json"),
            reason=reason,
        )
        return study.id


@guarded("dictionary.import")
def import_data_dictionary(
    store: Store,
    study_name: str,
    path: str | Path,
    *,
    allow_identifier_downgrade: bool = False,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Replace a study's REDCap data dictionary with the file at ``path``; return #fields.

    Forms already scheduled at a timepoint must still be defined afterwards. What is identifying
    is worked out again: values already stored for a field the new dictionary flags
    ``Identifier? = y`` move into the identity vault; a field that loses the flag is refused
    unless ``allow_identifier_downgrade`` is set by an admin (audited), since its values would
    then reach lower export tiers.
    """
    rows, digest = read_dictionary(path)
    with store.transaction() as s:
        study = get_study(s, study_name)
        actor = authorize(s, caller, "dictionary.import", study).actor
        before = s.scalars(select(Field).where(Field.study_id == study.id)).all()
        old = [f.field_name for f in before]
        # A field once identifying stays so (even while a dictionary leaves it out) until an
        # admin says otherwise: two imports cannot launder the flag away.
        was_ident = {f.field_name for f in before if f.identifier} | _identifying(s, study)
        now_ident = {str(r["field_name"]) for r in rows if r["identifier"]}
        downgraded = sorted(was_ident & {str(r["field_name"]) for r in rows} - now_ident)
        if downgraded:
            if not allow_identifier_downgrade:
                raise PermissionDenied(
                    f"{path}: field(s) {', '.join(downgraded)} are identifiers now but not in "
                    "this dictionary; their values would reach lower export tiers. An admin may "
                    "allow it (--allow-identifier-downgrade)"
                )
            authorize(s, caller, "dictionary.identifier", study)
        store_data_dictionary(s, study, rows)
        _set_identifying(s, study, (was_ident - set(downgraded)) | now_ident)
        wanted = [ti.instrument for tp in study.timepoints for ti in tp.instruments]
        missing = sorted(set(wanted) - set(resolve_forms(s, study.id, wanted)))
        if missing:
            raise StudyError(
                f"{path}: the study schedules form(s) {', '.join(missing)} that this dictionary "
                "does not define"
            )
        audit.record(
            s,
            actor,
            "dictionary.import",
            "field",
            None,
            study=study_name,
            old={"fields": len(old)},
            new={
                "fields": len(rows),
                "sha256": digest,
                "identifiers_added": sorted(now_ident - was_ident),
                "identifiers_removed": downgraded,
            },
            reason=reason,
        )
        moved = _vault_field_values(s, study, sorted(now_ident - was_ident), actor, reason)
        if moved:
            audit.record(
                s,
                actor,
                "identity.from_items",
                "field",
                None,
                study=study_name,
                new={"fields": sorted(now_ident - was_ident), "values_moved": moved},
                reason=reason,
            )
    return len(rows)


def _identifying_key(study: Study) -> str:
    return f"identifying_fields/{study.id}"


def _identifying(s: Session, study: Study) -> set[str]:
    """Every field of the study ever identifying and not cleared by an admin."""
    row = s.get(Setting, _identifying_key(study))
    return set(json.loads(row.value)) if row is not None else set()


def _set_identifying(s: Session, study: Study, fields: set[str]) -> None:
    row = s.get(Setting, _identifying_key(study))
    value = json.dumps(sorted(fields))
    if row is None:
        s.add(Setting(key=_identifying_key(study), value=value))
    else:
        row.value = value


def _vault_field_values(
    s: Session, study: Study, fields: list[str], actor: str, reason: str | None
) -> int:
    """Move stored item values of ``fields`` (now identifying) into the identity vault; return
    how many values moved. The first value found per participant and field wins (identifier
    fields hold one value per record)."""
    if not fields:
        return 0
    # A checkbox field's values are stored as one item per option (``field___code``).
    defined = s.scalars(
        select(Field).where(Field.study_id == study.id, Field.field_name.in_(fields))
    ).all()
    items = set(fields) | {rule.name for f in defined for rule in field_rules(f)}
    q = (
        select(
            Participant,
            ResponseItem.response_id,
            ResponseItem.item,
            ResponseItem.value,
            ResponseItem.text,
        )
        .join(Response, Response.participant_id == Participant.id)
        .join(ResponseItem, ResponseItem.response_id == Response.id)
        .where(Participant.study_id == study.id, ResponseItem.item.in_(sorted(items)))
        .order_by(Participant.id, Response.id)
    )
    found: dict[int, tuple[Participant, dict[str, str]]] = {}
    keys: list[tuple[int, str]] = []
    for person, response_id, item, value, text in s.execute(q):
        keys.append((response_id, item))
        raw = text if text is not None else ("" if value is None else _number_text(value))
        found.setdefault(person.id, (person, {}))[1].setdefault(str(item), raw)
    for person, values in found.values():
        if person.status != "erased":
            merge_fields(s, person, values, actor=actor, study_name=study.name, reason=reason)
    pair = tuple_(ResponseItem.response_id, ResponseItem.item)
    for i in range(0, len(keys), 5000):
        s.execute(delete(ResponseItem).where(pair.in_(keys[i : i + 5000])))
    return len(keys)


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


@guarded("dictionary.identifier")
def set_field_identifier(
    store: Store,
    study_name: str,
    field: str,
    identifying: bool,
    *,
    caller: Caller,
    reason: str,
) -> None:
    """Mark a data-dictionary field as identifying (its stored values move to the identity
    vault) or, an admin-only audited step, as not identifying."""
    if not reason or not reason.strip():
        raise StudyError("changing whether a field is identifying needs a reason (audited)")
    with store.transaction() as s:
        study = get_study(s, study_name)
        actor = authorize(s, caller, "dictionary.identifier", study).actor
        f = s.scalars(
            select(Field).where(Field.study_id == study.id, Field.field_name == field)
        ).first()
        if f is None:
            raise StudyError(f"study {study_name!r} has no field {field!r}")
        if bool(f.identifier) == identifying:
            return
        f.identifier = identifying
        marked = _identifying(s, study)
        _set_identifying(s, study, marked | {field} if identifying else marked - {field})
        audit.record(
            s,
            actor,
            "field.identifier",
            "field",
            field,
            study=study_name,
            old={"identifier": not identifying},
            new={"identifier": identifying},
            reason=reason,
        )
        if identifying:
            _vault_field_values(s, study, [field], actor, reason)


@guarded("study.list")
def list_studies(store: Store, *, caller: Caller) -> list[dict[str, Any]]:
    """The studies the caller holds any role in: ``name`` and ``title`` of each."""
    out = []
    with store.transaction() as s:
        for study in s.scalars(select(Study).order_by(Study.name)):
            try:
                authorize(s, caller, "study.list", study)
            except PermissionDenied:
                continue
            out.append({"name": study.name, "title": study.title})
        if not out:
            authorize(s, caller, "study.list")  # says why when the caller sees none
    return out


@guarded("study.read")
def study_design(store: Store, study_name: str, *, caller: Caller) -> dict[str, Any]:
    """The study's arms, sites and timepoints (with instruments) as plain data."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        authorize(s, caller, "study.read", study)
        return {
            "name": study.name,
            "title": study.title,
            "arms": [a.name for a in study.arms],
            "sites": [x.name for x in study.sites],
            "missing_codes": json.loads(study.missing_codes_json),
            "timepoints": [
                {
                    "name": tp.name,
                    "redcap_event": tp.redcap_event,
                    "offset_days": tp.offset_days,
                    "instruments": [ti.instrument for ti in tp.instruments],
                }
                for tp in study.timepoints
            ],
        }
