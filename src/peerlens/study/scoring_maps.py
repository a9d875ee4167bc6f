"""A study's scoring maps after creation: which data-dictionary form is scored as which bundled
instrument, field by item (see :mod:`peerlens.study._form_scoring`, the config's ``scoring``).

A map given at ``study create`` may be wrong or missing (two fields swapped, a form added later).
:func:`set_scoring_map` sets one form's map, checked as the config's is, audited with the map
before and after. Stored scores are derived results: when the study has any, they are derived
again in the same transaction (one new scores run, as ``derive(["scores"])`` writes it), so no
score made under the old map stays behind as current. A study whose scores were never derived
gets them at its next derivation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from peerlens.study import audit
from peerlens.study._catalog import dictionary_forms
from peerlens.study._form_scoring import scoring_problems
from peerlens.study._lookup import get_study
from peerlens.study.config import FormScoringConfig
from peerlens.study.derived._api import rescore_in
from peerlens.study.derived._runs import DerivationSummary, current_runs
from peerlens.study.errors import StudyError
from peerlens.study.models import FormScoring
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store

__all__ = ["scoring_maps", "set_scoring_map"]


@guarded("scoring.map")
def set_scoring_map(
    store: Store,
    study_name: str,
    form: str,
    instrument: str,
    items: Mapping[str, str],
    *,
    caller: Caller,
    reason: str | None = None,
) -> DerivationSummary | None:
    """Score data-dictionary ``form`` as bundled ``instrument`` through ``items`` (field ->
    item), replacing the form's map if it has one.

    Parameters
    ----------
    items
        Each of the form's fields that holds an item, mapped to the instrument's item
        (``{"sc_01": "scs_1", ...}``); every item of the instrument is mapped once.
    caller
        A study-wide admin or researcher (scores of every site change).

    Returns
    -------
    DerivationSummary or None
        The new scores run when the study had derived scores (all derived again under the new
        map), else ``None``.

    Raises
    ------
    StudyError
        Every problem of the map, each naming the form and field (a form not in the dictionary,
        an instrument not bundled, a field not of the form or not numeric, letter choice codes
        or codes outside the instrument's range, an item mapped twice or not mapped); nothing
        is changed.
    """
    try:
        cfg = FormScoringConfig(form=form, instrument=instrument, items=dict(items))
    except ValidationError as exc:
        why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise StudyError(f"scoring map of form {form!r}: {why}") from None
    with store.transaction() as s:
        study = get_study(s, study_name)
        actor = authorize(s, caller, "scoring.map", study).actor
        problems = scoring_problems(dictionary_forms(s, study.id), cfg, form)
        if problems:
            raise StudyError(f"scoring map of form {form!r}: " + "; ".join(problems))
        row = s.scalars(
            select(FormScoring).where(FormScoring.study_id == study.id, FormScoring.form == form)
        ).first()
        old = None if row is None else _as_dict(row)
        if row is None:
            row = FormScoring(study_id=study.id, form=form, instrument=instrument, items_json="")
            s.add(row)
        row.instrument = instrument
        row.items_json = json.dumps(dict(cfg.items))
        s.flush()
        audit.record(
            s,
            actor,
            "scoring.map",
            "form_scoring",
            form,
            study=study.name,
            old=old,
            new=_as_dict(row),
            reason=reason,
        )
        if "scores" not in current_runs(s, study):
            return None
        return rescore_in(s, study, store.blob_dir, actor, reason)


@guarded("study.read")
def scoring_maps(store: Store, study_name: str, *, caller: Caller) -> list[dict[str, Any]]:
    """The study's scoring maps, one per scored form in the order they were set:
    ``{"form", "instrument", "items"}`` (``items``: field -> item)."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        authorize(s, caller, "study.read", study)
        rows = s.scalars(
            select(FormScoring).where(FormScoring.study_id == study.id).order_by(FormScoring.id)
        )
        return [_as_dict(row) for row in rows]


def _as_dict(row: FormScoring) -> dict[str, Any]:
    return {"form": row.form, "instrument": row.instrument, "items": json.loads(row.items_json)}
