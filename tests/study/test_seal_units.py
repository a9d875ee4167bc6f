"""Canonical rows: converting a column at a time gives what each value's converter gives."""

from __future__ import annotations

import datetime as dt
import hmac
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from peerlens.study._seal_units import (
    BY_NAME,
    CHILD,
    KINDS,
    _converter,
    canon_rows,
    content,
    head_rows,
    seal_of,
    tally_of,
)

ITEM_COLUMNS = CHILD["response_item"].columns
RESPONSE_COLUMNS = list(BY_NAME["response"].table.c)


def _one_by_one(columns: list[Any], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(_converter(c)(v) for c, v in zip(columns, row, strict=True)) for row in rows]


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to itself and -0.0 told apart from 0.0 (repr tells them apart)."""
    return repr(a) == repr(b) and type(a) is type(b)


# Values of any of the types a column may hold, lawful or not (an int or text in a float
# column, a bool in an integer column: what SQL written outside peerlens can leave).
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


@given(st.lists(st.tuples(*[ANY_VALUE] * len(ITEM_COLUMNS)), max_size=30))
def test_column_at_a_time_equals_value_by_value(rows: list[tuple[Any, ...]]) -> None:
    got = canon_rows(ITEM_COLUMNS, rows)
    want = _one_by_one(ITEM_COLUMNS, rows)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert all(_same(x, y) for x, y in zip(g, w, strict=True)), (g, w)


def test_lawful_rows_are_taken_as_they_are_and_others_converted() -> None:
    lawful = [(1, "a_1", 2.0, None, None), (1, "a_2", None, "x", None)]
    got = canon_rows(ITEM_COLUMNS, lawful)
    assert got == lawful
    assert [tuple(map(type, g)) for g in got] == [tuple(map(type, r)) for r in lawful]
    # An int in the float column becomes a float; text there is marked as not of the type.
    odd = [(1, "a_1", 2, None, None), (1, "a_2", "2.0", None, None)]
    got = canon_rows(ITEM_COLUMNS, odd)
    assert got[0] == (1, "a_1", 2.0, None, None) and type(got[0][2]) is float
    assert got[1][2] == ("!", "'2.0'")
    assert math.isnan(canon_rows(ITEM_COLUMNS, [(1, "a", math.nan, None, None)])[0][2])


def test_head_rows_convert_times_as_sqlite_and_postgresql_give_them_back() -> None:
    kind = BY_NAME["response"]
    at = dt.datetime(2026, 12, 1, 11, 0, 0, 123456, tzinfo=dt.UTC)
    base = [7, 1, 2, None, "phq9", 0, 2, "file:sha256:abc"]
    written = head_rows(kind, [(*base, at)])
    from_sqlite = head_rows(kind, [(*base, "2026-12-01 11:00:00.123456")])
    assert written == from_sqlite == [(*base, "2026-12-01T11:00:00.123456+00:00")]
    assert len(RESPONSE_COLUMNS) == len(base) + 1


# Rows as the bulk writers give them: every value of its column's type, item values often 0.
LAWFUL_ITEM = st.tuples(
    st.integers(1, 10**6),
    st.text(max_size=5),
    st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, 3.0]), st.floats(allow_nan=False)),
    st.one_of(st.none(), st.text(max_size=3)),
    st.one_of(st.none(), st.sampled_from(["-99", "-98"])),
)


@given(st.lists(LAWFUL_ITEM, max_size=30))
def test_lawful_rows_with_zeros_of_either_sign(rows: list[tuple[Any, ...]]) -> None:
    """-0.0 becomes 0.0 whether or not the column also holds 0.0 (SQLite keeps 0.0 for -0.0);
    every other value is kept as it is."""
    got = canon_rows(ITEM_COLUMNS, rows)
    want = _one_by_one(ITEM_COLUMNS, rows)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert all(_same(x, y) for x, y in zip(g, w, strict=True)), (g, w)
    assert not any(v == 0.0 and math.copysign(1.0, v) < 0 for g in got if (v := g[2]) is not None)


def test_content_is_the_documented_repr_so_stored_seals_still_verify() -> None:
    """A unit's content is ``repr([kind, head, child rows sorted by their key])`` in UTF-8 (the
    module docstring and docs/security.md), built here from plain Python values: seals stored by
    earlier releases are over these bytes."""
    kind = BY_NAME["response"]
    head = (7, 1, 2, None, "phq9", 0, 2, "file:sha256:abc", "2026-12-01T11:00:00.123456+00:00")
    items = [
        (7, "phq9_2", 1.0, None, None),
        (7, "phq9_1", None, None, "-99"),
        (7, "é", 0.0, None, None),
    ]
    want = repr(["response", head, sorted(items, key=lambda r: r[1])]).encode("utf-8")
    assert content(kind, head, [items]) == want
    assert all(type(k.name) is str and k.name == k.table.name for k in KINDS)


@given(
    # Any values (lawful or not) but the item name, which is the sort key and never NULL.
    st.lists(
        st.lists(st.tuples(ANY_VALUE, st.text(max_size=5), *[ANY_VALUE] * 3), max_size=8),
        max_size=6,
    ),
    st.lists(st.tuples(st.integers(0, 3), st.text(max_size=2)), max_size=3),
)
def test_content_put_together_from_written_tails_is_repr(
    units: list[list[tuple[Any, ...]]], short: list[tuple[int, str]]
) -> None:
    """Units of one batch sharing the tails written out so far (and rows too short to have a
    tail) get the very bytes of ``repr``: the seals stored without tails still verify."""
    kind = BY_NAME["response"]
    head = (7, 1, 2, None, "phq9", 0, 2, "file:sha256:abc", "2026-12-01T11:00:00.123456+00:00")
    tails: list[dict[tuple[Any, ...], str]] = [{}]
    batch = [canon_rows(ITEM_COLUMNS, rows) for rows in units] + [list(short)]
    for rows in batch:
        want = repr(["response", head, sorted(rows, key=lambda r: r[1:2])])
        assert content(kind, head, [rows], tails) == want.encode("utf-8", "surrogatepass")
        assert content(kind, head, [rows]) == want.encode("utf-8", "surrogatepass")


@given(st.binary(max_size=130), st.binary(max_size=300), st.binary(max_size=130))
def test_seals_and_tallies_are_hmac_sha256(key: bytes, data: bytes, other: bytes) -> None:
    """Seals and tallies are HMAC-SHA256 as :mod:`hmac` computes it (seals stored by earlier
    releases still verify), for keys shorter than, as long as and longer than SHA-256's block,
    and under each key of several in turn (the per-key states are kept apart)."""
    for k in (key, other, key):
        seal = seal_of(k, data)
        assert seal == hmac.digest(k, data, "sha256")
        assert tally_of(k, seal) == int.from_bytes(hmac.digest(k, seal, "sha256"), "big")
