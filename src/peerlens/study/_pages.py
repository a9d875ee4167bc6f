"""How a timepoint's questionnaires are laid out as pages for the web: one page per block of
items, in the order the study scheduled the instruments.

A bundled instrument has no blocks in its spec, so it is cut into pages of at most
:data:`MAX_PAGE_ITEMS` items of nearly equal size (26 SCS items: 9, 9, 8); a data-dictionary
form gets one page per REDCap section header, each cut the same way. The wording is what the
study team loaded (:func:`peerlens.instruments.wording.installed_wording`); until then the
stand-in wording, and the page says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study._catalog import FormSpec, ItemRule, _sort_key, parse_choices
from peerlens.study.models import Field, Study

#: The most items one page holds (a phone screen's worth of questions).
MAX_PAGE_ITEMS = 10


@dataclass(frozen=True)
class Choice:
    """One answer option: the value stored and the label shown."""

    value: str
    label: str


@dataclass(frozen=True)
class Question:
    """One item as asked: its stored name, wording, options (none: a typed answer) and
    whether "prefer not to answer" is offered (stored as ``skip_code``)."""

    item: str
    text: str
    choices: tuple[Choice, ...]
    skip_code: str | None = None


@dataclass(frozen=True)
class PageLayout:
    """One page: the instrument it belongs to, its heading and its questions."""

    instrument: str
    title: str
    questions: tuple[Question, ...]
    standin: bool = False


def split_evenly(items: Sequence[Question], size: int = MAX_PAGE_ITEMS) -> list[list[Question]]:
    """``items`` cut into the fewest pages of at most ``size``, of nearly equal length.

    Examples
    --------
    >>> [len(p) for p in split_evenly(list(range(26)))]  # type: ignore[arg-type]
    [9, 9, 8]
    >>> [len(p) for p in split_evenly(list(range(9)))]  # type: ignore[arg-type]
    [9]
    """
    if not items:
        return []
    n = math.ceil(len(items) / size)
    base, extra = divmod(len(items), n)
    out: list[list[Question]] = []
    at = 0
    for k in range(n):
        step = base + (1 if k < extra else 0)
        out.append(list(items[at : at + step]))
        at += step
    return out


def layout_pages(
    s: Session, study: Study, forms: Sequence[FormSpec], skip_code: str | None
) -> list[PageLayout]:
    """The pages of ``forms`` (in order); ``skip_code`` is the missing code stored for "prefer
    not to answer" (``None``: the study has none, so it is not offered)."""
    pages: list[PageLayout] = []
    for form in forms:
        if form.builtin and not form.item_map:
            pages.extend(_builtin_pages(form, skip_code))
        else:
            pages.extend(_dictionary_pages(s, study, form, skip_code))
    return pages


def _builtin_pages(form: FormSpec, skip_code: str | None) -> list[PageLayout]:
    from peerlens.instruments import load_spec
    from peerlens.instruments.wording import installed_wording, standin_wording

    spec = load_spec(form.name)
    loaded = installed_wording(spec.id)
    wording = loaded or standin_wording(spec)
    choices = tuple(
        Choice(str(v), spec.response_labels.get(v, str(v)))
        for v in range(spec.response_min, spec.response_max + 1)
    )
    questions = [
        Question(
            column,
            wording.get(n, column),
            choices,
            skip_code if spec.may_be_missing(n) else None,
        )
        for n, column in enumerate(spec.item_columns, start=1)
    ]
    parts = split_evenly(questions)
    return [
        PageLayout(
            form.name,
            spec.short_name + (f" (part {k} of {len(parts)})" if len(parts) > 1 else ""),
            tuple(part),
            standin=loaded is None,
        )
        for k, part in enumerate(parts, start=1)
    ]


def _dictionary_pages(
    s: Session, study: Study, form: FormSpec, skip_code: str | None
) -> list[PageLayout]:
    fields = {
        f.field_name: f
        for f in s.scalars(
            select(Field).where(Field.study_id == study.id, Field.form_name == form.name)
        )
    }
    record_id = s.scalars(
        select(Field.field_name).where(Field.study_id == study.id).order_by(Field.position)
    ).first()
    sections: list[tuple[str, list[Question]]] = [(form.name, [])]
    started: set[str] = set()
    for rule in form.items:
        field_name = rule.name.split("___")[0]
        f = fields.get(field_name)
        if f is not None and f.section_header and field_name not in started:
            # A section header opens a new page (or names the page not yet holding anything).
            if sections[-1][1]:
                sections.append((f.section_header, []))
            else:
                sections[-1] = (f.section_header, [])
        started.add(field_name)
        if asked(rule, f, record_id):
            sections[-1][1].append(_dictionary_question(rule, f, skip_code))
    pages: list[PageLayout] = []
    for title, questions in sections:
        for part in split_evenly(questions):
            pages.append(PageLayout(form.name, title, tuple(part)))
    return pages


def asked(rule: ItemRule, f: Field | None, record_id: str | None) -> bool:
    """Whether a data-dictionary item is asked through a personal link: not an identifying
    field (those belong in the identity vault), not the record id (REDCap's first field), and
    not hidden from surveys (``@HIDDEN`` or ``@HIDDEN-SURVEY``)."""
    if rule.identifier or (f is not None and f.field_name == record_id):
        return False
    notes = (f.field_annotation or "").upper() if f is not None else ""
    return not re.search(r"@HIDDEN(-SURVEY)?\b", notes)


def _dictionary_question(rule: ItemRule, f: Field | None, skip_code: str | None) -> Question:
    """One data-dictionary item as asked; "prefer not to answer" is offered on every item the
    dictionary does not mark required (a checkbox option is answered yes or no instead)."""
    label = (f.field_label if f is not None else None) or rule.name
    if f is not None and f.required:
        skip_code = None
    if rule.kind == "flag" and f is not None:
        code = rule.name.split("___", 1)[1]
        option = parse_choices(f.choices).get(code, code)
        return Question(rule.name, f"{label}: {option}", (Choice("1", "Yes"), Choice("0", "No")))
    options = parse_choices(f.choices) if f is not None else {}
    if f is not None and f.field_type in ("yesno", "truefalse"):
        options = (
            {"1": "Yes", "0": "No"} if f.field_type == "yesno" else {"1": "True", "0": "False"}
        )
    if rule.choices is not None:
        order = [c for c in options if c in rule.choices]
        order += sorted(rule.choices - set(order), key=_sort_key)
        choices = tuple(Choice(c, options.get(c, c)) for c in order)
        return Question(rule.name, label, choices, skip_code)
    return Question(rule.name, label, (), skip_code)  # typed: text, number, date, notes
