"""``peerlens study scoring-map set|show``: the CLI passes the signed-in user on to
:func:`peerlens.study.set_scoring_map`; a bad map exits 2 with the reason, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from peerlens.cli import app
from peerlens.study.redcap import DICTIONARY_COLUMNS

from ..conftest import ACTOR, PASSWORD

FIELDS = [f"w{i}" for i in range(1, 8)]


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``peerlens ARGS`` on a new database with study ``s``: a dictionary form ``worry`` of
    seven 0-3 radio fields (GAD-7 under other names), not yet scored."""
    monkeypatch.setenv("PEERLENS_DB", db_url)
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", PASSWORD)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    invoke("init", "--admin", ACTOR, "--recordings", str(tmp_path / "blobs"))
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    rows = [["record_id", "worry", "", "text", "ID", *[""] * 13]]
    rows += [[f, "worry", "", "radio", f, "0, a | 1, b | 2, c | 3, d", *[""] * 12] for f in FIELDS]
    pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS)).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        f'data_dictionary: "{tmp_path / "d.csv"}"\n'
        "timepoints:\n  - name: baseline\n    instruments: [worry]\n",
        encoding="utf-8",
    )
    invoke("study", "create", "s", "--config", str(tmp_path / "s.yaml"))
    return invoke


def test_set_from_a_file_and_show(run: Callable[..., str], tmp_path: Path) -> None:
    assert "no scoring maps" in run("study", "scoring-map", "show", "s")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        yaml.safe_dump({f: f"gad7_{i}" for i, f in enumerate(FIELDS, 1)}), encoding="utf-8"
    )
    out = run(
        "study", "scoring-map", "set", "s", "--form", "worry", "--instrument", "gad7",
        "--file", str(mapping), "--reason", "forgot it at creation",
    )  # fmt: skip
    assert "form worry of s is scored as gad7" in out
    shown = yaml.safe_load(run("study", "scoring-map", "show", "s"))
    assert shown == [
        {
            "form": "worry",
            "instrument": "gad7",
            "items": {f: f"gad7_{i}" for i, f in enumerate(FIELDS, 1)},
        }
    ]


def test_a_bad_map_exits_2_naming_the_field(run: Callable[..., str], tmp_path: Path) -> None:
    items = [f"--item={f}=gad7_{i}" for i, f in enumerate(FIELDS, 1)]
    items[6] = "--item=w7=gad7_6"
    out = run(
        "study", "scoring-map", "set", "s", "--form", "worry", "--instrument", "gad7", *items,
        code=2,
    )  # fmt: skip
    assert "w7" in out and "gad7_6" in out and "gad7_7" in out
    out = run(
        "study", "scoring-map", "set", "s", "--form", "worry", "--instrument", "gad7",
        "--item", "w1", code=2,
    )  # fmt: skip
    assert "FIELD=ITEM" in out
    assert "no scoring maps" in run("study", "scoring-map", "show", "s")
