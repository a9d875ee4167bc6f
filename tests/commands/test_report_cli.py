"""``peerlens report`` and ``peerlens export --format spss|stata|r``: the CLI passes the signed-in
user on to the study API; bad input exits 2 with the reason, no traceback and no output file;
a user without a de-identified export right is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerlens.cli import app
from peerlens.study import Store
from peerlens.study.users import create_user, grant_role

from ..analysis._trial import make_trial
from ..conftest import ACTOR, ADMIN, PASSWORD

Run = Callable[..., str]


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``peerlens ARGS`` on a new database holding a 24-participant simulated trial."""
    monkeypatch.setenv("PEERLENS_DB", db_url)
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", PASSWORD)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    invoke("init", "--admin", ACTOR, "--recordings", str(tmp_path / "blobs"))
    store = Store.open(db_url, blob_dir=tmp_path / "blobs")
    try:
        make_trial(store, ADMIN, tmp_path, n=24)
        create_user(store, "ps1", PASSWORD, caller=ADMIN)
        grant_role(store, "ps1", "ps_worker", study="trial", caller=ADMIN)
    finally:
        store.close()
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    return invoke


def test_report_writes_one_page(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    said = run(
        "report", "--study", "trial", "--out", str(out), "--outcomes", "scs_total",
        "--seed", "3", "--imputations", "3",
    )  # fmt: skip
    assert "data snapshot sha256" in said
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "seed 3" in page
    assert out.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "trial", "--outcomes", "scs_totl"], "unknown outcome(s) scs_totl"),
        (["--study", "nosuch"], "nosuch"),
        (["--study", "trial", "--reference-arm", "placebo"], "reference arm 'placebo'"),
        (["--study", "trial", "--imputations", "1"], "needs 2 or more"),
    ],
)
def test_report_bad_input_exits_2_and_writes_nothing(
    run: Run, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "bad" / "r.html"
    said = run("report", *args, "--out", str(out), code=2)
    assert message in " ".join(said.split())
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_report_is_refused_without_a_deidentified_export_right(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLENS_USER", "ps1")
    out = tmp_path / "r.html"
    said = run("report", "--study", "trial", "--out", str(out), code=2)
    assert "may not" in said
    assert not out.exists()


def test_export_spss_stata_r(run: Run, tmp_path: Path) -> None:
    for fmt, name in (("spss", "t.sav"), ("stata", "t.dta"), ("r", "t.csv")):
        said = run("export", "--study", "trial", "--format", fmt, "--out", str(tmp_path / name))
        assert "data snapshot sha256" in said
    assert (tmp_path / "t.R").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "spss", "--out", "x.csv"], "written as .sav"),
        (["--format", "stata", "--out", "x.dta", "--tier", "full"], "de-identified tier only"),
        (["--format", "r", "--out", "x.csv", "--outcomes", "nope"], "unknown outcome(s) nope"),
    ],
)
def test_export_bad_input_exits_2_and_writes_nothing(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.chdir(out_dir)
    said = run("export", "--study", "trial", *args, code=2)
    assert message in " ".join(said.split())
    assert list(out_dir.iterdir()) == []
