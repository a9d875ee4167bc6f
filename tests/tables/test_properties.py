"""Hypothesis properties of the table reader and writer.

* A table serialised by the independent writer below (any delimiter, line ending, quoting,
  encoding, trailing delimiter) reads back cell for cell, on the lines the writer put it, or,
  where the bytes are ambiguous, is refused; it is never read differently.
* Random and mutated bytes give a correct table or a :class:`TableReadError`, never another
  exception; an accepted table reads back unchanged after being written out again.
* ``write_table(raw=True)`` then ``read_table`` gives the frame back.
* ``peerlens score`` on mutated input exits 0 or 2, and writes output only on 0.

Examples are derandomised and limited, as elsewhere in the suite, so CI stays fast and stable.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from peerlens._tables import (
    TableNoteWarning,
    TableReadError,
    TableWriteError,
    TextTable,
    name_key,
    parse_text_table,
    read_table,
    write_table,
)
from peerlens.cli import app

CANDIDATES = (",", ";", "\t")
BREAKS = re.compile(r"\r\n|\r|\n")

# Characters that stress a CSV reader, mixed into any other text (no NUL, no lone surrogates:
# no text file holds those).
SPECIAL = st.sampled_from([",", ";", "\t", '"', "\r", "\n", "\r\n", " ", "é", "中", "\ufeff"])
ANY_CHAR = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
CELL = st.lists(st.one_of(SPECIAL, ANY_CHAR), max_size=8).map("".join)
NAME = CELL.map(str.strip).filter(lambda s: s != "" and not s.startswith("\ufeff"))


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique_by=name_key))
    rows = draw(st.lists(st.lists(CELL, min_size=len(names), max_size=len(names)), max_size=6))
    return names, rows


@dataclass(frozen=True)
class Layout:
    delimiter: str
    ending: str
    quote_all: bool
    trailing: bool
    final_break: bool


LAYOUTS = st.builds(
    Layout,
    delimiter=st.sampled_from(CANDIDATES),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    quote_all=st.booleans(),
    trailing=st.booleans(),
    final_break=st.booleans(),
)


def _field(cell: str, layout: Layout, header: bool) -> str:
    special = {layout.delimiter, '"', "\r", "\n"} | (set(CANDIDATES) if header else set())
    if layout.quote_all or any(ch in cell for ch in special):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def serialise(names: list[str], rows: list[list[str]], layout: Layout) -> tuple[str, list[int]]:
    """The table as text (RFC 4180 quoting, written here without the csv module) and the line
    each data row starts on."""
    records = []
    for i, cells in enumerate([names, *rows]):
        fields = [_field(c, layout, header=i == 0) for c in cells]
        fields += [""] if layout.trailing else []
        if fields == [""]:
            fields = ['""']  # a lone empty cell must not look like an empty line
        records.append(layout.delimiter.join(fields))
    text = layout.ending.join(records) + (layout.ending if layout.final_break else "")
    starts, line = [], 1
    for record in records:
        starts.append(line)
        line += len(BREAKS.findall(record + layout.ending))
    return text, starts[1:]


def check_exact(
    table: TextTable, names: list[str], rows: list[list[str]], starts: list[int], layout: Layout
) -> None:
    assert table.header == names
    assert table.rows == rows
    assert table.row_numbers == starts
    assert table.header_line == 1
    assert table.trailing_delimiter == layout.trailing
    if rows or layout.final_break:
        assert table.line_ending == layout.ending


@settings(max_examples=300, deadline=None, derandomize=True)
@given(table=tables(), layout=LAYOUTS)
def test_utf8_tables_read_back_exactly(
    table: tuple[list[str], list[list[str]]], layout: Layout
) -> None:
    names, rows = table
    text, starts = serialise(names, rows, layout)
    data = text.encode("utf-8")
    given_delimiter = parse_text_table(data, "t.csv", delimiter=layout.delimiter)
    check_exact(given_delimiter, names, rows, starts, layout)
    assert given_delimiter.encoding == "utf-8"
    if len(names) + layout.trailing > 1:  # a header to find the delimiter in
        detected = parse_text_table(data, "t.csv")
        check_exact(detected, names, rows, starts, layout)
        assert detected.delimiter == layout.delimiter
    else:  # one column: the delimiter cannot be told, so an exact read or a refusal
        try:
            detected = parse_text_table(data, "t.csv")
        except TableReadError:
            return
        check_exact(detected, names, rows, starts, layout)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    table=tables(),
    layout=LAYOUTS,
    encoding=st.sampled_from(
        ["utf-8-sig", "utf-16", "utf-16-be", "utf-32", "utf-16-le", "utf-32-be", "cp1252"]
    ),
)
def test_other_encodings_read_back_exactly_or_are_refused(
    table: tuple[list[str], list[list[str]]], layout: Layout, encoding: str
) -> None:
    names, rows = table
    text, starts = serialise(names, rows, layout)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
        return
    with_bom = encoding in ("utf-8-sig", "utf-16", "utf-32")
    try:
        result = parse_text_table(data, "t.csv", delimiter=layout.delimiter)
    except TableReadError:
        # Only text whose encoding cannot be known for sure may be refused.
        assert not with_bom
        return
    if encoding == "cp1252":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            assert [n.kind for n in result.notes][:1] == ["encoding"]
        else:  # bytes that are also UTF-8 are UTF-8: nothing to tell them apart by
            assume(False)
    check_exact(result, names, rows, starts, layout)
    assert result.bom == with_bom


INTERESTING = st.sampled_from(
    [b",", b";", b"\t", b'"', b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b"\xef\xbb\xbf", b"\xe9"]
)
MUTATION = st.tuples(
    st.sampled_from(["insert", "delete", "replace"]),
    st.integers(min_value=0, max_value=10**6),
    st.one_of(INTERESTING, st.binary(min_size=1, max_size=3)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    for kind, at, chunk in mutations:
        at = at % (len(data) + 1)
        if kind == "insert":
            data = data[:at] + chunk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(chunk) :]
        else:
            data = data[:at] + chunk + data[at + len(chunk) :]
    return data


def check_valid(table: TextTable) -> None:
    """What any accepted table satisfies, and it reads back unchanged once written again."""
    width = len(table.header)
    assert width >= 1 and all(len(row) == width for row in table.rows)
    assert all(name != "" and name == name.strip() for name in table.header)
    assert len({name_key(n) for n in table.header}) == width
    assert len(table.row_numbers) == len(table.rows)
    lines = [table.header_line, *table.row_numbers]
    assert lines == sorted(set(lines))
    layout = Layout(table.delimiter, table.line_ending, True, table.trailing_delimiter, True)
    text, _ = serialise(table.header, table.rows, layout)
    again = parse_text_table(text.encode("utf-8"), "again.csv", delimiter=table.delimiter)
    assert (again.header, again.rows) == (table.header, table.rows)
    try:
        written = table.to_bytes()
    except TableWriteError:  # a Windows-1252 table holding U+FFFD from a mutation
        assert table.encoding == "cp1252"
        return
    if table.encoding == "cp1252" and _is_utf8(written):
        return  # requoting made the bytes valid UTF-8: they then are UTF-8, nothing tells
    own = parse_text_table(written, "own.csv")
    same = ("header", "rows", "delimiter", "encoding", "bom", "trailing_delimiter", "line_ending")
    assert [getattr(own, a) for a in same] == [getattr(table, a) for a in same]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_or_refuse(data: bytes) -> None:
    try:
        table = parse_text_table(data, "t.csv")
    except TableReadError as exc:
        assert str(exc).startswith("t.csv: ")
        return
    check_valid(table)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.binary(max_size=400))
def test_random_bytes_give_a_valid_table_or_a_table_read_error(data: bytes) -> None:
    read_or_refuse(data)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    table=tables(),
    layout=LAYOUTS,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le"]),
    mutations=st.lists(MUTATION, min_size=1, max_size=4),
)
def test_mutated_tables_give_a_valid_table_or_a_table_read_error(
    table: tuple[list[str], list[list[str]]],
    layout: Layout,
    encoding: str,
    mutations: list[tuple[str, int, bytes]],
) -> None:
    text, _ = serialise(*table, layout)
    read_or_refuse(mutate(text.encode(encoding, errors="replace"), mutations))


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    table=tables(),
    layout=LAYOUTS,
    mutations=st.lists(MUTATION, max_size=3),
    suffix=st.sampled_from([".csv", ".tsv", ".txt", ".xlsx", ".parquet"]),
)
def test_read_table_on_mutated_files_gives_a_frame_or_a_table_read_error(
    tmp_path: Path,
    table: tuple[list[str], list[list[str]]],
    layout: Layout,
    mutations: list[tuple[str, int, bytes]],
    suffix: str,
) -> None:
    text, _ = serialise(*table, layout)
    path = tmp_path / f"in{suffix}"
    path.write_bytes(mutate(text.encode("utf-8"), mutations))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableNoteWarning)
        try:
            frame = read_table(path)
        except TableReadError:
            return
    assert isinstance(frame, pd.DataFrame)


TEXT_FRAMES = tables().map(lambda t: pd.DataFrame(t[1], columns=t[0], dtype=str))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(frame=TEXT_FRAMES, suffix=st.sampled_from([".csv", ".tsv"]))
def test_raw_written_text_frames_read_back_equal(
    tmp_path: Path, frame: pd.DataFrame, suffix: str
) -> None:
    path = tmp_path / f"out{suffix}"
    assert write_table(frame, path, raw=True) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no notes either: our own output is plain
        back = read_table(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False, check_column_type=False)


# Workbooks cannot hold control characters or tell an empty text cell from an empty cell.
WORKBOOK_CELL = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(["=", "-", "@", " "]),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    names=st.lists(
        WORKBOOK_CELL.map(str.strip).filter(bool), min_size=1, max_size=4, unique_by=name_key
    ),
    data=st.data(),
)
def test_raw_written_workbooks_read_back_equal(
    tmp_path: Path, names: list[str], data: st.DataObject
) -> None:
    width = len(names)
    rows = data.draw(st.lists(st.lists(WORKBOOK_CELL, min_size=width, max_size=width), max_size=4))
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    path = tmp_path / "out.xlsx"
    write_table(frame, path, raw=True)
    back = read_table(path)
    pd.testing.assert_frame_equal(back, frame, check_column_type=False)


GAD = (
    "id,timepoint," + ",".join(f"gad7_{i}" for i in range(1, 8)) + "\r\n"
    "p1,baseline,3,3,2,2,1,1,0\r\n"
    'p2,"week 12, late",1,0,0,,0,1,0\r\n'
    "p3,week12,0,0,0,0,0,0,0\r\n"
).encode()

runner = CliRunner()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    mutations=st.lists(MUTATION, max_size=4),
    suffix=st.sampled_from([".csv", ".tsv", ".xlsx"]),
)
def test_score_on_mutated_input_exits_0_or_2_and_writes_only_on_success(
    tmp_path: Path, mutations: list[tuple[str, int, bytes]], suffix: str
) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(mutate(GAD, mutations))
    out = tmp_path / f"out{suffix}"
    out.unlink(missing_ok=True)
    result = runner.invoke(app, ["score", str(src), "-i", "gad7", "-o", str(out)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert out.exists() == (result.exit_code == 0)
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("mutations", [[], [("insert", 40, b",")], [("delete", 60, b"x")]])
def test_the_cli_property_sees_both_outcomes(
    tmp_path: Path, mutations: list[tuple[str, int, bytes]]
) -> None:
    """Guards the property above against passing vacuously (always 0 or always 2)."""
    src = tmp_path / "in.csv"
    src.write_bytes(mutate(GAD, mutations))
    result = runner.invoke(app, ["score", str(src), "-i", "gad7", "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == (0 if not mutations else 2), result.output
