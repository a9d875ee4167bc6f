"""Instrument documentation generated from the specs (never written twice)."""

from __future__ import annotations

from peerlens.instruments._spec import (
    BandScore,
    CompositeScore,
    ConversionScore,
    FlagScore,
    InstrumentSpec,
    ItemScore,
    Score,
)
from peerlens.instruments.registry import list_specs

__all__ = ["describe_score", "instruments_markdown", "spec_markdown"]


def _items(items: list[int] | str) -> str:
    return "all" if items == "all" else ", ".join(map(str, items))


def describe_score(spec: InstrumentSpec, s: Score) -> str:
    """One line saying how a score is computed, from its declaration."""
    if isinstance(s, ItemScore):
        values = "keyed items (reverse items as min+max-x)" if s.keyed else "raw items"
        rule = s.missing
        if rule.max_missing is None:
            miss = "any number missing"
        elif rule.max_missing == 0:
            miss = "complete responses only"
        else:
            miss = f"up to {rule.max_missing} missing"
        if rule.prorate:
            miss += ", prorated (mean of answered x items"
            miss += ", rounded half up)" if rule.rounding == "half_up" else ", unrounded)"
        if s.requires:
            miss += "; needs " + ", ".join(s.requires)
        return f"{s.aggregate} of {values} {_items(s.items)}; {miss}"
    if isinstance(s, CompositeScore):
        rev = f", reversing {', '.join(s.reverse)}" if s.reverse else ""
        return f"mean of {', '.join(s.of)}{rev}; needs all of them"
    if isinstance(s, BandScore):
        bands = "; ".join(f"{b.label} {b.low:g}-{b.high:g}" for b in s.bands)
        return f"bands of {s.source}: {bands}"
    if isinstance(s, FlagScore):
        return f"true when item {s.item} >= {s.threshold}; missing when item {s.item} is"
    if isinstance(s, ConversionScore):
        return f"{s.source} converted by the published table ({len(s.table)} entries)"
    raise TypeError(type(s))  # pragma: no cover


def spec_markdown(spec: InstrumentSpec) -> str:
    """Markdown documentation of one instrument."""
    lines = [
        f"### `{spec.id}`: {spec.name} ({spec.short_name})",
        "",
        f"{spec.n_items} items (`{spec.id}_1` ... `{spec.id}_{spec.n_items}`), answers "
        f"{spec.response_min}-{spec.response_max}. Reverse-keyed items: "
        f"{_items(sorted(spec.reverse_items)) if spec.reverse_items else 'none'}.",
        "",
        "| column | score | how |",
        "|---|---|---|",
    ]
    for s in spec.scores:
        lines.append(f"| `{s.name}` | {s.label} | {describe_score(spec, s)} |")
    lines += [
        f"| `{spec.id}_n_answered` | Items answered | count of non-missing items |",
        f"| `{spec.id}_prorated` | Prorated | some reported score rests on fewer items "
        "than it has |",
        "",
        f"Citation: {spec.citation}",
        "",
        f"Scoring source: {spec.scoring_source}",
        "",
        f"Wording: {'may be shipped' if spec.wording.shippable else 'not bundled'}; "
        f"{spec.wording.licence}",
    ]
    for w in spec.warnings:
        lines += ["", f"Caution: {w}"]
    for s in spec.scores:
        if s.note:
            lines += ["", f"`{s.name}`: {s.note}"]
    return "\n".join(lines) + "\n"


def instruments_markdown() -> str:
    """Markdown documentation of every bundled instrument (``docs/instruments.md``)."""
    head = (
        "# Instruments\n\n"
        "Generated from the spec files in `src/peerlens/instruments/specs/` by "
        "`peerlens instruments docs`; do not edit by hand.\n\n"
        "| id | instrument | items | answers |\n|---|---|---|---|\n"
    )
    rows = "".join(
        f"| `{s.id}` | {s.name} | {s.n_items} | {s.response_min}-{s.response_max} |\n"
        for s in list_specs()
    )
    return head + rows + "\n" + "\n".join(spec_markdown(s) for s in list_specs())
