"""Data-dictionary forms scored as bundled instruments: the study config's ``scoring`` checked
and stored.

A REDCap project rarely names its fields as peerlens names an instrument's items: the
Self-Compassion Scale may be a form ``self_compassion`` with radio fields ``sc_01`` ... ``sc_26``.
``scoring`` maps each such field to its item (``sc_01: scs_1``); the form's responses are then
scored as the instrument's (:func:`peerlens.study._catalog.scored_form`), so their scores derive
and export like those of a bundled form.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from peerlens.study._catalog import FormSpec, builtin_form, dictionary_forms
from peerlens.study.config import FormScoringConfig
from peerlens.study.errors import StudyError
from peerlens.study.models import FormScoring, Study


def store_form_scoring(
    session: Session, study: Study, scoring: Sequence[FormScoringConfig]
) -> None:
    """Check ``scoring`` against the study's data dictionary and the bundled instruments and
    store it (in the caller's transaction).

    Raises
    ------
    StudyError
        Every problem, each naming its config key (``scoring[0].items.sc_01``): see
        :func:`scoring_problems`.
    """
    forms = dictionary_forms(session, study.id)
    problems: list[str] = []
    seen: set[str] = set()
    for i, cfg in enumerate(scoring):
        key = f"scoring[{i}]"
        if cfg.form in seen:
            problems.append(f"{key}.form: {cfg.form!r} is scored twice")
        seen.add(cfg.form)
        problems += scoring_problems(forms, cfg, key)
        session.add(
            FormScoring(
                study_id=study.id,
                form=cfg.form,
                instrument=cfg.instrument,
                items_json=json.dumps(dict(cfg.items)),
            )
        )
    if problems:
        raise StudyError("study config: " + "; ".join(problems))
    session.flush()


def scoring_problems(forms: Mapping[str, FormSpec], cfg: FormScoringConfig, key: str) -> list[str]:
    """Why ``cfg`` cannot score its form (each problem prefixed with ``key``), or ``[]``.

    ``forms`` are the study's data-dictionary forms. A map is refused when its form is not in
    the dictionary, its instrument is not bundled, a field is not of the form or not numeric, a
    choice code is not a number or lies outside the instrument's range (letter codes, or a form
    coded 1-4 for items scored 0-3, would score wrongly), or an item is not the instrument's,
    is mapped twice or is not mapped.
    """
    problems: list[str] = []
    form = forms.get(cfg.form)
    bundled = builtin_form(cfg.instrument)
    if form is None:
        problems.append(f"{key}.form: {cfg.form!r} is not a form of the data dictionary")
    if bundled is None:
        problems.append(f"{key}.instrument: {cfg.instrument!r} is not a bundled instrument")
    if form is None or bundled is None:
        return problems
    ranges = {r.name: r for r in bundled.items}
    mapped: dict[str, str] = {}
    for field, item in cfg.items.items():
        where = f"{key}.items.{field}"
        rule = form.item(field)
        if rule is None:
            problems.append(f"{where}: {field!r} is not a field of form {cfg.form!r}")
            continue
        if rule.kind not in ("int", "number"):
            problems.append(f"{where}: field {field!r} does not hold a number ({rule.kind})")
        if item not in ranges:
            problems.append(f"{where}: {item!r} is not an item of {cfg.instrument!r}")
            continue
        if item in mapped:
            problems.append(f"{where}: item {item!r} is also field {mapped[item]!r}'s")
            continue
        mapped[item] = field
        low, high = ranges[item].low, ranges[item].high
        assert low is not None and high is not None  # a bundled item's range is set
        codes = list(rule.choices or ())
        wordy = sorted(c for c in codes if _number(c) is None)
        if wordy:
            why = f"choice codes {', '.join(wordy)} are not numbers, as {cfg.instrument!r} scores"
            fix = f"recode the field's choices as the numbers {low:g}..{high:g}"
            problems.append(f"{where}: {why} them: {fix}")
            continue
        outside = sorted(c for c in codes if not low <= float(c) <= high)
        if outside:
            why = f"choice codes {', '.join(outside)} are outside the range"
            problems.append(f"{where}: {why} {low:g}..{high:g} of {cfg.instrument!r}")
    missing = [item for item in ranges if item not in mapped]
    if missing:
        problems.append(f"{key}.items: no field for item(s) {', '.join(missing)}")
    return problems


def _number(code: str) -> float | None:
    try:
        return float(code)
    except ValueError:
        return None
