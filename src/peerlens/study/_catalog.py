"""What an instrument's items are and which values they accept.

An instrument scheduled at a timepoint is either a bundled :mod:`peerlens.instruments` spec
(``phq9``, ``scs_sf``, ...; integer items ``<id>_<n>`` in the spec's response range) or a form
defined by the study's REDCap data dictionary (one item per field; checkbox fields expand to
``<field>___<code>`` items holding 0 or 1).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study._redcap_dates import stored_kind, stored_problem
from peerlens.study.models import Field, FormScoring, Study

_NUMERIC_VALIDATIONS = {
    "integer",
    "number",
    "number_1dp",
    "number_2dp",
    "number_3dp",
    "number_4dp",
    "number_comma_decimal",
}
#: ``number_1dp_comma_decimal`` ... ``number_4dp_comma_decimal``.
_COMMA_DECIMAL = re.compile(r"number(_[1-4]dp)?_comma_decimal")
#: Validation names of older REDCap versions, still found in dictionaries.
_VALIDATION_ALIASES = {"int": "integer", "float": "number", "date": "date_ymd"}
_DATE_VALIDATIONS = {"date_ymd", "date_dmy", "date_mdy"}
_DATETIME_VALIDATIONS = {
    "datetime_ymd",
    "datetime_dmy",
    "datetime_mdy",
    "datetime_seconds_ymd",
    "datetime_seconds_dmy",
    "datetime_seconds_mdy",
}
_TIME_VALIDATIONS = {"time", "time_hh_mm_ss", "time_mm_ss"}
#: Field types that carry no data in REDCap records.
NON_DATA_TYPES = {"descriptive"}


@dataclass(frozen=True)
class ItemRule:
    """The values one item accepts.

    ``kind`` is ``"int"`` (integer in ``[low, high]`` or one of ``choices``), ``"number"``,
    ``"code"`` (one of ``choices``, kept as the code's text: REDCap choice codes may be any
    letters, digits and underscores), ``"text"`` (free text), ``"notes"`` (free text),
    ``"date"``, ``"datetime"``, ``"time"`` (text in REDCap's stored form for ``validation``,
    see :mod:`peerlens.study._redcap_dates`) or ``"flag"`` (0/1, checkbox options).

    ``soft_range``: a value outside ``[low, high]`` is kept and flagged (REDCap's text
    validation min/max warn and save); otherwise it is refused (a bundled instrument's range).
    ``decimal_comma``: numbers are written with a decimal comma (REDCap's
    ``number_comma_decimal`` and ``number_Ndp_comma_decimal`` validations).
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: frozenset[str] | None = None
    identifier: bool = False
    soft_range: bool = False
    decimal_comma: bool = False
    validation: str | None = None

    @property
    def free_text(self) -> bool:
        """True for items whose answers are free text (dropped by the de-identified tier)."""
        return self.kind in ("text", "notes")

    @property
    def is_date(self) -> bool:
        """True for date and datetime items (shifted by the de-identified tier)."""
        return self.kind in ("date", "datetime")

    def check(self, raw: str) -> tuple[float | None, str | None, str | None]:
        """Parse ``raw`` (non-empty; free text exactly as written, other kinds stripped) to
        ``(value, text, problem)``.

        The problem of an identifying item never quotes the value (messages reach terminals,
        logs and screenshots; identifying values belong in the vault only)."""
        value, text, problem = self._check(raw)
        if problem is not None and self.identifier:
            problem = problem.replace(repr(raw), "the value").replace(raw, "the value")
            problem += " (identifying field: value not shown)"
        return value, text, problem

    def range_warning(self, value: float | None) -> str | None:
        """Why an accepted ``value`` is flagged (outside a soft min/max), or ``None``."""
        if value is None or not self.soft_range or not self._outside(value):
            return None
        shown = "the value" if self.identifier else _fmt(value)
        return f"{shown} is outside the range {_fmt(self.low)}..{_fmt(self.high)} (kept)"

    def _outside(self, value: float) -> bool:
        return (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        )

    def _check(self, raw: str) -> tuple[float | None, str | None, str | None]:
        if self.kind in ("text", "notes"):
            return None, raw, None
        if self.kind in ("date", "datetime", "time"):
            why = stored_problem(raw, stored_kind(self.validation or "") or self.kind)
            return (None, None, why) if why else (None, raw, None)
        if self.choices is not None and not self.choices:
            # A radio or dropdown field saved without choices: REDCap's import takes only a
            # field's choice codes ("The value is not a valid category"; its validated
            # requirement B.3.16.500), and this one has none.
            return None, None, _NO_CHOICES
        if self.kind == "code":
            if self.choices is not None and raw not in self.choices:
                allowed = ", ".join(sorted(self.choices, key=_sort_key))
                return None, None, f"{raw!r} is not one of the allowed codes ({allowed})"
            return None, raw, None
        number = raw.replace(",", ".", 1) if self.decimal_comma and "." not in raw else raw
        try:
            value = float(number)
        except ValueError:
            return None, None, f"{raw!r} is not a number"
        if not math.isfinite(value):  # nan, inf, and numbers too large for a float (1e999)
            return None, None, f"{raw!r} is not a finite number"
        if (
            self.choices is not None
            and raw not in self.choices
            and _code(value) not in self.choices
        ):
            allowed = ", ".join(sorted(self.choices, key=_sort_key))
            return None, None, f"{raw!r} is not one of the allowed codes ({allowed})"
        if self.kind in ("int", "flag") and value != int(value):
            return None, None, f"{raw!r} is not a whole number"
        if not self.soft_range and self._outside(value):
            return (
                None,
                None,
                f"{raw} is outside the allowed range {_fmt(self.low)}..{_fmt(self.high)}",
            )
        return value, None, None


def _sort_key(code: str) -> tuple[int, float | str]:
    try:
        return (0, float(code))
    except ValueError:
        return (1, code)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else str(value)


def _code(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


@dataclass(frozen=True)
class FormSpec:
    """An instrument's items in order, whether it is bundled (scored), and its spec version.

    A data-dictionary form scored through a field map (the study config's ``scoring``) is
    ``builtin`` with ``instrument`` the bundled instrument it is scored as and ``item_map`` its
    ``(field, item)`` pairs in the instrument's item order.
    """

    name: str
    items: tuple[ItemRule, ...]
    builtin: bool
    version: str | None = None
    instrument: str | None = None
    item_map: tuple[tuple[str, str], ...] = ()

    @property
    def scored_as(self) -> str:
        """The bundled instrument this form's responses are scored as."""
        return self.instrument or self.name

    def item(self, name: str) -> ItemRule | None:
        """The rule of item ``name`` (``None`` if this form has no such item)."""
        for rule in self.items:
            if rule.name == name:
                return rule
        return None


def builtin_form(instrument: str) -> FormSpec | None:
    """The bundled instrument ``instrument`` as a :class:`FormSpec`, or ``None`` if unknown."""
    try:
        from peerlens.instruments import load_spec
    except ImportError:  # pragma: no cover - instruments package always ships with peerlens
        return None
    try:
        spec = load_spec(instrument)
    except Exception:  # UnknownInstrumentError (a PeerlensError) or KeyError
        return None
    lo, hi = float(spec.response_min), float(spec.response_max)
    items = tuple(ItemRule(col, "int", lo, hi) for col in spec.item_columns)
    return FormSpec(spec.id, items, True, str(getattr(spec, "version", "")) or None)


def parse_choices(choices: str | None) -> dict[str, str]:
    """REDCap ``"1, Yes | 0, No"`` choices to ``{"1": "Yes", "0": "No"}``.

    Examples
    --------
    >>> parse_choices("1, Often | 2, Never, really | 99, Unknown")
    {'1': 'Often', '2': 'Never, really', '99': 'Unknown'}
    """
    out: dict[str, str] = {}
    if not choices:
        return out
    for part in choices.split("|"):
        part = part.strip()
        if not part:
            continue
        code, _, label = part.partition(",")
        out[code.strip()] = label.strip()
    return out


def _num(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


_NO_CHOICES = (
    "the field has no choices in the data dictionary, so REDCap's import takes no value for it"
    " (only a field's choice codes): leave the cell blank or add the choices to the dictionary"
)


def field_rules(f: Field) -> list[ItemRule]:
    """The item rule(s) of one data-dictionary field (checkboxes give one per option).

    Notes
    -----
    As REDCap does it (REDCap data dictionary and data import documentation): choice codes are
    any letters, digits and underscores (numeric codes are stored as numbers, any other code as
    its text); text validation min/max warn and save rather than refuse; ``number_comma_decimal``
    values carry a decimal comma; calculated fields are kept as exported, never recomputed
    (``@CALCTEXT`` fields hold text); file-upload, signature and ``sql`` fields hold text.
    """
    ftype = f.field_type
    ident = bool(f.identifier)
    if ftype in NON_DATA_TYPES:
        return []
    if ftype == "checkbox":
        return [
            ItemRule(f"{f.field_name}___{_checkbox_suffix(code)}", "flag", 0, 1, None, ident)
            for code in parse_choices(f.choices)
        ]
    if ftype in ("radio", "dropdown"):
        codes = frozenset(parse_choices(f.choices))
        numbers = [_num(c) for c in codes]
        if any(v is None for v in numbers):
            return [ItemRule(f.field_name, "code", None, None, codes, ident)]
        kind = "int" if all(v == int(v) for v in numbers if v is not None) else "number"
        return [ItemRule(f.field_name, kind, None, None, codes, ident)]
    if ftype in ("yesno", "truefalse"):
        return [ItemRule(f.field_name, "int", None, None, frozenset({"0", "1"}), ident)]
    if ftype == "slider":
        low, high = _num(f.validation_min), _num(f.validation_max)
        return [
            ItemRule(
                f.field_name,
                "int",
                0 if low is None else low,
                100 if high is None else high,
                None,
                ident,
            )
        ]
    if ftype == "calc":
        calctext = "@CALCTEXT" in (f.field_annotation or "").upper() or (
            (f.choices or "").strip().lower().startswith("calctext(")
        )
        kind = "text" if calctext else "number"
        return [ItemRule(f.field_name, kind, None, None, None, ident)]
    if ftype == "notes":
        return [ItemRule(f.field_name, "notes", identifier=ident)]
    if ftype == "text":
        val = _VALIDATION_ALIASES.get((f.validation or "").strip(), (f.validation or "").strip())
        if val in _NUMERIC_VALIDATIONS or _COMMA_DECIMAL.fullmatch(val):
            return [
                ItemRule(
                    f.field_name,
                    "int" if val == "integer" else "number",
                    _num(f.validation_min),
                    _num(f.validation_max),
                    None,
                    ident,
                    soft_range=True,
                    decimal_comma=val.endswith("comma_decimal"),
                )
            ]
        if val in _DATE_VALIDATIONS:
            return [ItemRule(f.field_name, "date", identifier=ident, validation=val)]
        if val in _DATETIME_VALIDATIONS:
            return [ItemRule(f.field_name, "datetime", identifier=ident, validation=val)]
        if val in _TIME_VALIDATIONS:
            return [ItemRule(f.field_name, "time", identifier=ident, validation=val)]
        return [ItemRule(f.field_name, "text", identifier=ident)]
    # file (uploads and signatures), sql and other types: keep the raw text
    return [ItemRule(f.field_name, "text", identifier=ident)]


def _checkbox_suffix(code: str) -> str:
    # REDCap exports checkbox option codes lower-cased, with '-' and '.' as '_'.
    return re.sub(r"[^0-9a-z_]", "_", code.lower())


def dictionary_forms(session: Session, study_id: int) -> dict[str, FormSpec]:
    """Every form defined by the study's data dictionary, fields in dictionary order.

    The dictionary's first field is the record id (REDCap's rule): it names the participant and is
    not an item of its form; a form holding only that field still exists, with no items.
    """
    fields = session.scalars(
        select(Field).where(Field.study_id == study_id).order_by(Field.position)
    ).all()
    grouped: dict[str, list[ItemRule]] = {f.form_name: [] for f in fields[:1]}
    for f in fields[1:]:  # the first field is the record id, not an item
        grouped.setdefault(f.form_name, []).extend(field_rules(f))
    out: dict[str, FormSpec] = {}
    for name, rules in grouped.items():
        bundled = builtin_form(name)
        if bundled is not None and [r.name for r in rules] == [r.name for r in bundled.items]:
            # A REDCap form holding a bundled instrument's items: check values against both
            # the dictionary and the instrument's range, and score it.
            merged = tuple(
                ItemRule(r.name, "int", b.low, b.high, r.choices, r.identifier)
                for r, b in zip(rules, bundled.items, strict=True)
            )
            out[name] = FormSpec(name, merged, True, bundled.version)
        else:
            out[name] = FormSpec(name, tuple(rules), False)
    return out


def resolve_forms(session: Session, study_id: int, names: Iterable[str]) -> dict[str, FormSpec]:
    """Form specs for ``names``: the study's dictionary first, then bundled instruments.

    Unknown names are left out (callers report them).
    """
    dictionary = dictionary_forms(session, study_id)
    out: dict[str, FormSpec] = {}
    for name in names:
        if name in dictionary:
            out[name] = dictionary[name]
        else:
            spec = builtin_form(name)
            if spec is not None:
                out[name] = spec
    return out


def study_forms(session: Session, study: Study) -> dict[str, FormSpec]:
    """Every form of ``study``: its dictionary's forms in dictionary order, then the bundled
    instruments scheduled at its timepoints (the one list the REDCap import, the exports and
    scoring all read)."""
    scheduled = [ti.instrument for tp in study.timepoints for ti in tp.instruments]
    forms = dictionary_forms(session, study.id)
    for name in scheduled:  # as resolve_forms does, without reading the dictionary again
        if name not in forms and (spec := builtin_form(name)) is not None:
            forms[name] = spec
    for row in session.scalars(select(FormScoring).where(FormScoring.study_id == study.id)):
        if row.form in forms:
            forms[row.form] = scored_form(
                forms[row.form], row.instrument, json.loads(row.items_json)
            )
    return forms


def scored_form(form: FormSpec, instrument: str, items: Mapping[str, str]) -> FormSpec:
    """``form`` scored as bundled ``instrument`` through ``items`` (field -> item, already
    checked): its mapped fields take the instrument's range as a bundled form's items do."""
    bundled = builtin_form(instrument)
    if bundled is None:  # an instrument no longer bundled: the form is kept, not scored
        return form
    item_of = dict(items)
    ranges = {r.name: r for r in bundled.items}
    rules = tuple(
        ItemRule(
            r.name,
            "int",
            ranges[item_of[r.name]].low,
            ranges[item_of[r.name]].high,
            r.choices,
            r.identifier,
        )
        if r.name in item_of
        else r
        for r in form.items
    )
    order = {item: i for i, item in enumerate(ranges)}
    pairs = tuple(sorted(item_of.items(), key=lambda fi: order[fi[1]]))
    return FormSpec(form.name, rules, True, bundled.version, instrument, pairs)
