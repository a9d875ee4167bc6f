"""`peerlens score` and `peerlens instruments` end to end through the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from peerlens._tables import read_table
from peerlens.cli import app
from peerlens.instruments.docs import instruments_markdown

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

GAD_HEADER = "id,timepoint," + ",".join(f"gad7_{i}" for i in range(1, 8))


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_score_to_stdout_keeps_other_columns(tmp_path: Path) -> None:
    src = write(tmp_path, GAD_HEADER + "\np1,baseline,3,3,2,2,1,1,0\np2,week12,1,0,0,,0,1,0\n")
    result = runner.invoke(app, ["score", str(src), "--instrument", "gad7"])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(io.StringIO(result.stdout))
    assert list(out["id"]) == ["p1", "p2"]
    assert list(out["gad7_total"]) == [12.0, 2.0]  # p2: 2 over 6 items -> 2.33 -> 2
    assert list(out["gad7_severity"]) == ["moderate", "minimal"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet", ".tsv"])
def test_score_writes_each_format(tmp_path: Path, suffix: str) -> None:
    src = write(tmp_path, GAD_HEADER + "\np1,baseline,3,3,2,2,1,1,0\n")
    out = tmp_path / f"out{suffix}"
    result = runner.invoke(app, ["score", str(src), "-i", "gad7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    readers = {
        ".csv": pd.read_csv,
        ".tsv": lambda p: pd.read_csv(p, sep="\t"),
        ".xlsx": pd.read_excel,
        ".parquet": pd.read_parquet,
    }
    assert readers[suffix](out)["gad7_total"].iloc[0] == 12.0


def test_bad_value_exits_2_names_file_row_column_and_writes_nothing(tmp_path: Path) -> None:
    src = write(tmp_path, GAD_HEADER + "\np1,b,3,3,2,2,1,1,0\np2,b,1,0,often,0,0,1,0\n")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["score", str(src), "-i", "gad7", "-o", str(out)])
    assert result.exit_code == 2
    assert str(src) in result.stderr
    assert "row 2, column gad7_3: 'often'" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial"))


def test_missing_codes_option_and_all_detection(tmp_path: Path) -> None:
    src = write(tmp_path, "id,ucla3_1,ucla3_2,ucla3_3\np1,-9,2,3\np2,1,1,1\n")
    bad = runner.invoke(app, ["score", str(src), "--all"])
    assert bad.exit_code == 2 and "'-9'" in bad.stderr
    ok = runner.invoke(app, ["score", str(src), "--all", "--missing-codes", "-9,-99"])
    assert ok.exit_code == 0
    out = pd.read_csv(io.StringIO(ok.stdout))
    assert pd.isna(out["ucla3_total"].iloc[0]) and out["ucla3_total"].iloc[1] == 3.0


def test_scores_only_drops_items(tmp_path: Path) -> None:
    src = write(tmp_path, "id,ucla3_1,ucla3_2,ucla3_3\np1,1,2,3\n")
    result = runner.invoke(app, ["score", str(src), "--all", "--scores-only"])
    assert list(pd.read_csv(io.StringIO(result.stdout)).columns) == [
        "id",
        "ucla3_total",
        "ucla3_n_answered",
        "ucla3_prorated",
    ]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"", ["--all"], "empty"),
        (b"\x00\x01\x02PK", ["--all"], "binary"),
        (b"id,x\n1,2\n", ["--all"], "no instrument item columns"),
        (b"id,ucla3_1,ucla3_2\n1,1,1\n", ["-i", "ucla3"], "missing item column(s) ucla3_3"),
        (b"id,ucla3_1,ucla3_2,ucla3_3\n1,1,1,1\n", ["-i", "nope"], "unknown instrument 'nope'"),
        (b"id,ucla3_1,ucla3_2,ucla3_3\n1,1,1,1\n", [], "--instrument ID"),
    ],
)
def test_bad_inputs_give_clear_errors(
    tmp_path: Path, content: bytes, args: list[str], message: str
) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    result = runner.invoke(app, ["score", str(src), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_semicolon_bom_and_cp1252_exports(tmp_path: Path) -> None:
    text = "\ufeffid;ucla3_1;ucla3_2;ucla3_3\nJosé;1;2;3\n"
    src = tmp_path / "excel.csv"
    src.write_bytes(text.encode("cp1252", errors="ignore"))
    result = runner.invoke(app, ["score", str(src), "--all"])
    assert result.exit_code == 0, result.output
    assert "ucla3_total" in result.stdout and ",6.0," in result.stdout


def test_instruments_list_show_and_json() -> None:
    listed = runner.invoke(app, ["instruments", "list"])
    assert listed.exit_code == 0 and "sscs_s" in listed.stdout
    shown = runner.invoke(app, ["instruments", "show", "phq9"])
    assert "moderately_severe 15-19" in shown.stdout
    as_json = runner.invoke(app, ["instruments", "show", "scs", "--json"])
    assert '"n_items": 26' in as_json.stdout
    assert runner.invoke(app, ["instruments", "show", "zzz"]).exit_code == 2


def test_committed_instrument_docs_are_generated_from_the_specs() -> None:
    assert (ROOT / "docs/instruments.md").read_text(encoding="utf-8") == instruments_markdown()


def test_load_text_csv_and_redcap_dictionary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "home"))
    csv_file = write(
        tmp_path, "instrument,item,text\nucla3,1,one\nucla3,2,two\nucla3,3,three\n", "w.csv"
    )
    assert runner.invoke(app, ["instruments", "load-text", str(csv_file)]).exit_code == 0
    assert (tmp_path / "home/wording/ucla3.json").exists()
    header = (
        '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
        '"Choices, Calculations, OR Slider Labels","Field Note",'
        '"Text Validation Type OR Show Slider Number","Text Validation Min",'
        '"Text Validation Max",Identifier?,"Branching Logic (Show field only if...)",'
        '"Required Field?","Custom Alignment","Question Number (surveys only)",'
        '"Matrix Group Name","Matrix Ranking?","Field Annotation"'
    )
    rows = ["record_id,demo,,text,Record ID,,,,,,,,,,,,,"] + [
        f'gad7_{i},gad7,,radio,"<b>Item</b> {i}","0, a | 1, b",,,,,,,,,,,,' for i in range(1, 8)
    ]
    dd = write(tmp_path, header + "\n" + "\n".join(rows) + "\n", "dd.csv")
    result = runner.invoke(app, ["instruments", "load-text", str(dd)])
    assert result.exit_code == 0, result.output
    assert '"3": "Item 3"' in (tmp_path / "home/wording/gad7.json").read_text()


def test_load_text_refuses_incomplete_or_unknown_items(tmp_path: Path) -> None:
    bad = write(tmp_path, "instrument,item,text\nucla3,1,one\nucla3,4,four\nfoo,1,x\n", "b.csv")
    result = runner.invoke(app, ["instruments", "load-text", str(bad)])
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert "row 2: ucla3 has items 1-3, not 4" in err
    assert "row 3: unknown instrument 'foo'" in err
    assert "ucla3: items [2, 3] have no wording" in err


def test_score_a_qualtrics_export_with_item_patterns(tmp_path: Path) -> None:
    rows = [
        "ResponseId,Finished," + ",".join(f"Q7_{n}" for n in range(1, 8)),
        '"Response ID","Finished",' + ",".join(f'"Worry - {n}"' for n in range(1, 8)),
        '"{""ImportId"":""_recordId""}","{""ImportId"":""finished""}",'
        + ",".join(f'"{{""ImportId"":""QID7_{n}""}}"' for n in range(1, 8)),
        "R_a,1,3,3,3,3,3,3,3",
        "R_b,1,0,1,0,1,0,1,",
    ]
    path = write(tmp_path, "\n".join(rows) + "\n", "qualtrics.csv")
    result = runner.invoke(app, ["score", str(path), "--items", "gad7=Q7_{n}", "--scores-only"])
    assert result.exit_code == 0, result.output
    assert "skipped 2 Qualtrics header row(s)" in result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert list(out["ResponseId"]) == ["R_a", "R_b"]
    # R_b: six answers summing to 3, one missing -> prorated 3/6*7 = 3.5, rounded half up to 4.
    assert list(out["gad7_total"]) == [21, 4]
    assert list(out["gad7_prorated"]) == [False, True]


def test_score_with_a_map_file_reports_bad_cells_at_file_rows(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "column,instrument,item\n" + "".join(f"lonely{n},ucla3,{n}\n" for n in (1, 2, 3)),
        "map.csv",
    )
    data = write(tmp_path, "id,lonely1,lonely2,lonely3\na,1,2,3\nb,1,4,2\n", "d.csv")
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["score", str(data), "--map", str(mapping), "-i", "ucla3", "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "row 2, column ucla3_2: '4' is outside the response range 1-3" in " ".join(
        result.stderr.split()
    )
    assert not out.exists()


def test_map_and_items_may_not_map_one_column_twice(tmp_path: Path) -> None:
    mapping = write(tmp_path, "column,instrument,item\nQ1,ucla3,1\n", "map.csv")
    data = write(tmp_path, "Q1,Q2,Q3\n1,2,3\n", "d.csv")
    result = runner.invoke(
        app, ["score", str(data), "--map", str(mapping), "--items", "ucla3=Q{n}", "-i", "ucla3"]
    )
    assert result.exit_code == 2
    assert "--map and --items: column 'Q1' is mapped twice" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GAD_HEADER + "\np1,b,3,3,2,2,1,1,0,\np2,b,1,0,1,0,0,1,0,\n",
            "data row 1 (line 2): has 10",
        ),
        (GAD_HEADER + ",\np1,b,3,3,2,2,1,1,0\n", "the header ends with a delimiter the rows lack"),
        (GAD_HEADER + "\np1,b,3,3,2,2,1,1,0\np2,b,1,0,1,0,0,1\n", "data row 2 (line 3): has 8"),
        ("id,ID,gad7_1\n", "column 2 'ID' repeats column 1 'id'"),
    ],
)
def test_ragged_rows_and_bad_headers_exit_2_and_write_nothing(
    tmp_path: Path, text: str, message: str
) -> None:
    src = write(tmp_path, text)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["score", str(src), "-i", "gad7", "-o", str(out)])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_trailing_delimiter_on_every_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    src = write(tmp_path, GAD_HEADER + ",\r\np1,b,3,3,2,2,1,1,0,\r\n")
    result = runner.invoke(app, ["score", str(src), "-i", "gad7"])
    assert result.exit_code == 0, result.output
    assert "every line ends with a delimiter" in " ".join(result.stderr.split())
    out = pd.read_csv(io.StringIO(result.stdout))
    assert list(out["id"]) == ["p1"] and list(out["gad7_total"]) == [12]


@pytest.mark.parametrize("cell", ["1e999", "inf", "-inf", "Infinity", "9" * 400])
def test_overflowing_numbers_exit_2_with_the_cell(tmp_path: Path, cell: str) -> None:
    src = write(tmp_path, f"id,ucla3_1,ucla3_2,ucla3_3\np1,1,2,3\np2,1,{cell},3\n")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["score", str(src), "--all", "-o", str(out)])
    assert result.exit_code == 2
    assert f"row 2, column ucla3_2: {cell!r} is not a finite number" in " ".join(
        result.stderr.split()
    )
    assert not out.exists()


@pytest.mark.parametrize("suffix", ["", ".csv", ".xlsx"])
def test_formula_like_text_is_neutralised_unless_raw_values(tmp_path: Path, suffix: str) -> None:
    src = write(tmp_path, 'id,note,ucla3_1,ucla3_2,ucla3_3\np1,"=HYPERLINK(""x"")",1,2,3\n')
    out = tmp_path / f"out{suffix}"
    target = ["-o", str(out)] if suffix else []
    safe = runner.invoke(app, ["score", str(src), "--all", *target])
    assert safe.exit_code == 0, safe.output
    assert "1 text cell(s) beginning with =, +, -, @" in " ".join(safe.stderr.split())
    raw = runner.invoke(app, ["score", str(src), "--all", "--raw-values", *target])
    assert raw.exit_code == 0, raw.output
    assert "beginning with" not in raw.stderr

    def note(result_stdout: str) -> str:
        if not suffix:
            return str(pd.read_csv(io.StringIO(result_stdout))["note"].iloc[0])
        return str(read_table(out)["note"].iloc[0])

    assert note(raw.stdout) == '=HYPERLINK("x")'
    runner.invoke(app, ["score", str(src), "--all", *target])
    assert note(safe.stdout) == '\'=HYPERLINK("x")'


def test_an_encoding_warning_is_shown_even_when_scoring_fails(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes("id;ucla3_1;ucla3_2;ucla3_3\nJosé;1;9;3\n".encode("cp1252"))
    result = runner.invoke(app, ["score", str(src), "--all"])
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert "row 1, column ucla3_2: '9'" in err and "decoded as Windows-1252" in err


def test_utf16_excel_unicode_text_exports_are_scored(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes("id\tucla3_1\tucla3_2\tucla3_3\r\nZoë\t1\t2\t3\r\n".encode("utf-16"))
    result = runner.invoke(app, ["score", str(src), "--all", "--scores-only"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(io.StringIO(result.stdout))["ucla3_total"].tolist() == [6]


def test_load_text_refuses_item_numbers_int_would_bend(tmp_path: Path) -> None:
    bad = write(tmp_path, "instrument,item,text\nucla3,1,one\nucla3,\u0662,two\n", "w.csv")
    result = runner.invoke(app, ["instruments", "load-text", str(bad)])
    assert result.exit_code == 2
    assert "row 2: item '\u0662' is not a whole number" in " ".join(result.stderr.split())
