"""``peerlens serve`` and the link commands: a link printed by the CLI opens in the app, a
revoked one does not; the CLI only passes the signed-in user on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from peerlens.cli import app
from peerlens.study import Store
from peerlens.web import create_app

from ..conftest import ACTOR, ADMIN, PASSWORD, make_user


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``peerlens ARGS`` on a new database with study ``pilot`` and participant A1."""
    monkeypatch.setenv("PEERLENS_DB", db_url)
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", PASSWORD)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    invoke("init", "--admin", ACTOR, "--recordings", str(tmp_path / "blobs"))
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    return invoke


def test_a_printed_link_opens_and_a_revoked_one_does_not(
    run: Callable[..., str], db_url: str, visit_config_path: Path, tmp_path: Path
) -> None:
    run("study", "create", "pilot", "--config", str(visit_config_path))
    run("participant", "add", "A1", "--study", "pilot", "--site", "leeds")
    consent = tmp_path / "consent.txt"
    consent.write_text("I agree, version two.", encoding="utf-8")
    assert "consent text v2 set" in run(
        "study", "consent-text", "pilot", "--version", "v2", "--file", str(consent)
    )
    out = run(
        "participant",
        "link",
        "A1",
        "--study",
        "pilot",
        "--timepoint",
        "baseline",
        "--days",
        "3",
        "--base-url",
        "https://study.example.org",
    )
    url = next(line for line in out.splitlines() if line.startswith("https://"))
    path = url.removeprefix("https://study.example.org")
    assert path.startswith("/p/A1/")
    store = Store.open(db_url)
    try:
        with TestClient(create_app(store)) as client:
            first = client.get(path)
            assert first.status_code == 200 and "I agree, version two." in first.text
            assert "revoked 1 link(s)" in run(
                "participant", "revoke-link", "A1", "--study", "pilot"
            )
            assert client.get(path).status_code == 404
    finally:
        store.close()
    out = run("participant", "link", "A1", "--study", "pilot", "--timepoint", "nope", code=2)
    assert "no timepoint 'nope'" in out and "Traceback" not in out
    out = run(
        "participant",
        "link",
        "A1",
        "--study",
        "pilot",
        "--timepoint",
        "baseline",
        "--days",
        "999",
        code=2,
    )
    assert "1 to 366 days" in out


def test_serve_is_a_command() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--db", "--host", "--port", "--behind-tls"):
        assert option in result.output


def test_the_studio_command_ties_an_account_to_a_workers_studio(
    run: Callable[..., str], db_url: str, config_path: Path, tmp_path: Path
) -> None:
    run("study", "create", "pilot", "--config", str(config_path))
    run("participant", "add", "W1", "--study", "pilot", "--site", "leeds", "--role", "ps_worker")
    run("study", "user-add", "coach")
    run("study", "grant", "coach", "--role", "trainer", "--study", "pilot")
    out = run(
        "participant", "studio", "W1", "--study", "pilot", "--account", "coach", "--as", "trainer"
    )
    assert "coach opens W1's story studio as trainer" in out
    from peerlens.study import (
        Caller,
        grant_studio_access,
        mark_disagreement,
        save_story,
        studio_workers,
    )
    from peerlens.study.stories import DISAGREEMENT_COLUMNS

    store = Store.open(db_url)
    try:
        assert [w.code for w in studio_workers(store, "pilot", caller=Caller("coach"))] == ["W1"]
        again = run(
            "participant",
            "studio",
            "W1",
            "--study",
            "pilot",
            "--account",
            "coach",
            "--as",
            "trainer",
            code=2,
        )
        assert "already opens" in again
        run("participant", "studio", "W1", "--study", "pilot", "--account", "coach", "--remove")
        assert studio_workers(store, "pilot", caller=Caller("coach")) == []
        make_user(store, "sam", "ps_worker", study="pilot")
        grant_studio_access(store, "pilot", "W1", "sam", relation="worker", caller=ADMIN)
        story = save_story(
            store, "pilot", "Me too.", told_on=dt.date(2026, 3, 2), caller=Caller("sam")
        )
        mark_disagreement(store, story, 0, "neutral", note="just polite", caller=Caller("sam"))
        marks = tmp_path / "marks.csv"
        assert "1 mark(s)" in run("study", "disagreements", "--study", "pilot", "--out", str(marks))
        frame = pd.read_csv(marks)
        assert list(frame.columns) == list(DISAGREEMENT_COLUMNS)
        assert frame.loc[
            0, ["worker", "sentence", "model_label", "proposed_label", "note"]
        ].tolist() == ["W1", "Me too.", "connection", "neutral", "just polite"]
    finally:
        store.close()


def test_serve_opens_a_database_connection_per_worker_thread(
    run: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` sizes the connection pool to the worker threads (PEERLENS_WEB_THREADS) and the
    app runs its sync work on that many threads, so that a request given a thread never waits
    for a connection (issue 12)."""
    import anyio.to_thread
    import uvicorn

    seen: dict[str, int] = {}

    def fake_run(app_: object, **_: object) -> None:
        store = app_.state.store  # type: ignore[attr-defined]
        seen["pool"] = store.engine.pool.size()
        with TestClient(app_) as client:  # type: ignore[arg-type]
            limiter = anyio.to_thread.current_default_thread_limiter
            seen["threads"] = int(client.portal.call(lambda: limiter().total_tokens))  # type: ignore[union-attr]

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("PEERLENS_WEB_THREADS", "7")
    run("serve")
    assert seen == {"pool": 7, "threads": 7}


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_serve_limits_blas_to_one_thread_before_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import uvicorn
    from threadpoolctl import threadpool_limits

    seen: list[list[int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append(_blas_threads()))
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", PASSWORD)
    made = CliRunner().invoke(
        app, ["init", "--db", db, "--admin", ACTOR, "--recordings", str(tmp_path / "blobs")]
    )
    assert made.exit_code == 0, made.output
    with threadpool_limits(limits=2, user_api="blas"):  # the tests' own processes run one
        if max(_blas_threads(), default=1) < 2:
            pytest.skip("BLAS here cannot run two threads")
        result = CliRunner().invoke(app, ["serve", "--db", db, "--port", "8765"])
        assert result.exit_code == 0, result.output
    assert seen and seen[0] and set(seen[0]) == {1}
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"  # for libraries loaded later
