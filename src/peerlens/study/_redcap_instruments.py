"""Bundled instruments as REDCap forms: the data-dictionary rows a REDCap project needs to take a
peerlens ``--format redcap`` export of a study that schedules them.

Each bundled instrument becomes a form named by its id whose fields are its item columns
(``phq9_1`` ... ``phq9_9``, the names the record export writes), radio fields whose choices are
the instrument's answers (``0, 0 | 1, 1 | ...``: the spec holds the codes, not their labels).
Field labels are the item wording the study team loaded (``peerlens instruments wording``), else
the spec's marked stand-in wording: validated wording is never shipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from peerlens.instruments import load_spec
from peerlens.instruments.wording import installed_wording, standin_wording
from peerlens.study.models import Field

#: The record id field a study without a data dictionary exports (REDCap's default name).
RECORD_ID = "record_id"


def instrument_fields(instrument: str) -> list[Field]:
    """The REDCap fields of bundled ``instrument`` (unsaved :class:`Field` rows), in item order.

    Examples
    --------
    >>> fields = instrument_fields("gad7")
    >>> [f.field_name for f in fields][:3], fields[0].field_type, fields[0].choices
    (['gad7_1', 'gad7_2', 'gad7_3'], 'radio', '0, 0 | 1, 1 | 2, 2 | 3, 3')
    """
    spec = load_spec(instrument)
    wording = installed_wording(spec.id) or standin_wording(spec)
    codes = range(spec.response_min, spec.response_max + 1)
    choices = " | ".join(f"{c}, {c}" for c in codes)
    return [
        Field(
            field_name=column,
            form_name=spec.id,
            field_type="radio",
            field_label=wording[n],
            choices=choices,
            identifier=False,
            required=False,
        )
        for n, column in enumerate(spec.item_columns, start=1)
    ]


def with_instrument_forms(fields: Sequence[Field], instruments: Sequence[str]) -> list[Field]:
    """``fields`` (a study's data dictionary, maybe empty) followed by the forms of the bundled
    ``instruments`` it does not define; a dictionary of bundled forms only starts with the
    record id field, as REDCap requires."""
    defined = {f.form_name for f in fields}
    extra = [
        f
        for inst in dict.fromkeys(instruments)
        if inst not in defined
        for f in instrument_fields(inst)
    ]
    if extra and not fields:
        first = Field(
            field_name=RECORD_ID,
            form_name=extra[0].form_name,
            field_type="text",
            field_label="Record ID",
            identifier=False,
            required=False,
        )
        return [first, *extra]
    return [*fields, *extra]
