"""Spec files: the bundled ones load; malformed ones are refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlens.instruments import (
    SpecError,
    UnknownInstrumentError,
    list_specs,
    load_spec,
    load_spec_file,
)
from peerlens.instruments._spec import ItemScore

EXPECTED_IDS = {
    "scs",
    "scs_sf",
    "fscrs",
    "phq9",
    "gad7",
    "qpr15",
    "swemwbs",
    "incom",
    "ucla3",
    "ders16",
    "sscs_s",
}


def test_every_contract_instrument_is_bundled() -> None:
    assert {s.id for s in list_specs()} == EXPECTED_IDS


@pytest.mark.parametrize(
    ("spec_id", "n_items", "lo", "hi"),
    [
        ("scs", 26, 1, 5),
        ("scs_sf", 12, 1, 5),
        ("fscrs", 22, 0, 4),
        ("phq9", 9, 0, 3),
        ("gad7", 7, 0, 3),
        ("qpr15", 15, 0, 4),
        ("swemwbs", 7, 1, 5),
        ("incom", 11, 1, 5),
        ("ucla3", 3, 1, 3),
        ("ders16", 16, 1, 5),
        ("sscs_s", 6, 1, 5),
    ],
)
def test_items_and_ranges(spec_id: str, n_items: int, lo: int, hi: int) -> None:
    spec = load_spec(spec_id)
    assert (spec.n_items, spec.response_min, spec.response_max) == (n_items, lo, hi)
    assert spec.item_columns[0] == f"{spec_id}_1"
    assert spec.item_columns[-1] == f"{spec_id}_{n_items}"


def test_scs_subscales_partition_the_items() -> None:
    spec = load_spec("scs")
    items: list[int] = []
    for s in spec.scores[:6]:
        assert isinstance(s, ItemScore)
        assert isinstance(s.items, list)
        items += s.items
    assert sorted(items) == list(range(1, 27))
    assert sorted(spec.reverse_items) == sorted([1, 8, 11, 16, 21, 4, 13, 18, 25, 2, 6, 20, 24])


def test_unknown_instrument_lists_known_ones() -> None:
    with pytest.raises(UnknownInstrumentError, match=r"known instruments: .*phq9"):
        load_spec("phq8")


GOOD = """
id: demo
name: Demo
short_name: D
version: "1"
citation: x
scoring_source: x
n_items: 3
response: {min: 1, max: 3}
wording: {shippable: false, licence: x}
scores:
  - {name: demo_total, label: T, items: all, aggregate: sum}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def test_a_user_spec_loads(tmp_path: Path) -> None:
    assert load_spec_file(write(tmp_path, GOOD)).id == "demo"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("items: all", "items: [1, 4]"), "items \\[4\\] outside 1..3"),
        (("{min: 1, max: 3}", "{min: 3, max: 1}"), "must be below"),
        (("aggregate: sum}", "aggregate: sum, missing: {max_missing: 1}}"), "must prorate"),
        (("name: demo_total", "name: other_total"), "must start with 'demo_'"),
        (("n_items: 3", "n_items: three"), "n_items"),
        (("citation: x\n", ""), "citation: Field required"),
    ],
)
def test_malformed_specs_are_refused(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(SpecError, match=message):
        load_spec_file(write(tmp_path, text))


def test_band_overlap_and_forward_references_are_refused(tmp_path: Path) -> None:
    bands = GOOD + (
        "  - {name: demo_band, label: B, kind: bands, source: demo_total, bands: "
        "[{label: a, low: 3, high: 6}, {label: b, low: 6, high: 9}]}\n"
    )
    with pytest.raises(SpecError, match="overlap"):
        load_spec_file(write(tmp_path, bands))
    forward = GOOD.replace(
        "scores:\n", "scores:\n  - {name: demo_c, label: C, kind: composite, of: [demo_total]}\n"
    )
    with pytest.raises(SpecError, match="not declared before it"):
        load_spec_file(write(tmp_path, forward))


def test_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec_file(write(tmp_path, "id: [unclosed"))


def test_prefer_not_to_answer_only_where_every_score_tolerates_a_missing_item() -> None:
    # PHQ-9: the total prorates up to two missing items (Kroenke et al. 2010). SWEMWBS and the
    # SCS-SF each have a score needing every item it counts (max_missing 0, the default).
    from peerlens.instruments import load_spec

    phq9, swemwbs, scs_sf = load_spec("phq9"), load_spec("swemwbs"), load_spec("scs_sf")
    assert all(phq9.may_be_missing(n) for n in range(1, 10))
    assert not any(swemwbs.may_be_missing(n) for n in range(1, 8))
    assert not any(scs_sf.may_be_missing(n) for n in range(1, 13))
