"""Creating studies and reading their design back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from peerlens.study import audit
from peerlens.study._catalog import resolve_forms
from peerlens.study._lookup import get_study
from peerlens.study.config import StudyConfig, load_config
from peerlens.study.errors import StudyError
from peerlens.study.models import Arm, Field, Site, Study, Timepoint, TimepointInstrument
from peerlens.study.redcap import parse_data_dictionary, read_csv_text, store_data_dictionary
from peerlens.study.storage import Store


def create_study(
    store: Store,
    name: str,
    config: StudyConfig | str | Path,
    *,
    actor: str,
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
            rows = parse_data_dictionary(read_csv_text(path), str(path))
            store_data_dictionary(s, study, rows)
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


def import_data_dictionary(
    store: Store, study_name: str, path: str | Path, *, actor: str, reason: str | None = None
) -> int:
    """Replace a study's REDCap data dictionary with the file at ``path``; return #fields.

    Forms already scheduled at a timepoint must still be defined afterwards.
    """
    text = read_csv_text(path)
    rows = parse_data_dictionary(text, str(path))
    with store.transaction() as s:
        study = get_study(s, study_name)
        old = [f.field_name for f in s.scalars(select(Field).where(Field.study_id == study.id))]
        store_data_dictionary(s, study, rows)
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
            new={"fields": len(rows), "sha256": _sha256(text)},
            reason=reason,
        )
    return len(rows)


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def study_design(store: Store, study_name: str) -> dict[str, Any]:
    """The study's arms, sites and timepoints (with instruments) as plain data."""
    with store.transaction() as s:
        study = get_study(s, study_name)
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
