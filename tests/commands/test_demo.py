"""`peerlens demo`: the simulated trial, imported through the study API, checked against its
truth and served; and the provenance of the older bundled example data."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from peerlens.cli import app
from peerlens.examples import example_path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools/make_example_data.py"


def test_example_data_is_what_the_generator_writes() -> None:
    check = subprocess.run([sys.executable, str(GENERATOR), "--check"], check=False)
    assert check.returncode == 0
    for name in ("responses.csv", "session_ecg.edf", "session_events.csv"):
        assert example_path(name).exists()


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    where = tmp_path_factory.mktemp("demo")
    old = Path.cwd()
    try:
        os.chdir(where)
        result = CliRunner().invoke(app, ["demo", "--no-serve"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return where / "demo-out", result.stdout


def _store(out: Path):  # type: ignore[no-untyped-def]
    from peerlens.study import Store, authenticate

    store = Store.open(
        f"sqlite:///{out / 'study.db'}",
        blob_dir=out / "study_recordings",
        key_file=out / "study_vault.key",
    )
    password = (out / "study_admin_password.txt").read_text(encoding="utf-8").strip()
    return store, authenticate(store, "demo", password)


def test_the_demo_imports_the_whole_trial_through_the_study_api(
    demo_out: tuple[Path, str],
) -> None:
    from peerlens.study import derived_frame, list_participants

    out, stdout = demo_out
    trial = out / "trial"
    store, me = _store(out)
    try:
        people = list_participants(store, "trial", caller=me)
        scores = derived_frame(store, "trial", "scores", caller=me)
        hrv = derived_frame(store, "trial", "hrv", caller=me)
        story = derived_frame(store, "trial", "story", caller=me)
    finally:
        store.close()
    users = people[people["role"] == "service_user"]
    assert len(users) == 120 and (people["role"] == "ps_worker").sum() == 8
    assert users["site"].nunique() == 3 and set(users["arm"]) == {"usual_care", "peer_support"}
    # Every simulated answer sheet became a stored response with its scores.
    for tp in ("baseline", "week6", "week12"):
        sheets = pd.read_csv(trial / f"responses_{tp}.csv")
        stored = scores[(scores["timepoint"] == tp) & (scores["name"] == "scs_total")]
        assert set(stored["participant"]) == set(sheets["participant"]), tp
    recordings = pd.read_csv(trial / "recordings.csv")
    # Each recording: its three windows and the whole recording, all valid.
    assert hrv["label"].value_counts().to_dict() == dict.fromkeys(
        ("whole", "baseline", "session", "recovery"), len(recordings)
    )
    assert hrv["valid"].all()
    assert len(story) == len(pd.read_csv(trial / "sessions.csv"))
    assert (story["status"] == "ok").all()
    assert "Built, analysed and checked" in stdout


def test_the_stored_scores_equal_the_engine_on_the_simulated_files(
    demo_out: tuple[Path, str],
) -> None:
    from peerlens.instruments import score
    from peerlens.study import derived_frame

    out, _ = demo_out
    store, me = _store(out)
    try:
        stored = derived_frame(store, "trial", "scores", caller=me)
    finally:
        store.close()
    sheets = pd.read_csv(out / "trial" / "responses_week12.csv")
    direct = score(sheets, ["scs", "fscrs", "ders16"]).set_index("participant")
    week12 = stored[stored["timepoint"] == "week12"].pivot_table(
        index="participant", columns="name", values="value", aggfunc="first"
    )
    for name in ("scs_total", "scs_common_humanity", "fscrs_hated_self", "ders16_total"):
        pd.testing.assert_series_equal(
            week12[name].sort_index().astype(float),
            direct[name].sort_index().astype(float),
            check_names=False,
        )


def test_the_summary_sets_each_estimate_beside_the_truth_it_came_from(
    demo_out: tuple[Path, str],
) -> None:
    out, stdout = demo_out
    truth = json.loads((out / "trial" / "truth.json").read_text(encoding="utf-8"))
    rows = re.findall(
        r"│ (\w+)\s+│ (week\d+)\s+│\s+(\S+) \[(\S+), (\S+)\] │\s+(\S+) │\s+(\w+) │", stdout
    )
    assert len(rows) == 12
    for name, tp, _est, low, high, shown, covered in rows:
        true = truth["arm_effects"][name][tp]
        assert float(shown) == pytest.approx(true, abs=0.005)
        assert covered == ("yes" if float(low) <= true <= float(high) else "no")
    for worker, value in truth["worker_connection"].items():
        assert re.search(rf"│ {worker}\s+│\s+\d+ │\s+[\d.]+ │\s+{value:.2f} │", stdout), worker


def test_the_demo_accounts_open_what_their_roles_allow(demo_out: tuple[Path, str]) -> None:
    from peerlens.study import PermissionDenied, authenticate, list_participants, studio_workers

    out, _ = demo_out
    accounts = dict(
        line.split(" ", 1)
        for line in (out / "demo_accounts.txt").read_text(encoding="utf-8").splitlines()
    )
    store, _me = _store(out)
    try:
        researcher = authenticate(store, "researcher", accounts["researcher"])
        assert len(list_participants(store, "trial", caller=researcher)) == 128
        worker = authenticate(store, "worker", accounts["worker"])
        assert [w.code for w in studio_workers(store, "trial", caller=worker)] == ["W08"]
        with pytest.raises(PermissionDenied):
            list_participants(store, "trial", caller=worker)
    finally:
        store.close()


_SERVE = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from rich.console import Console
    from peerlens._commands._demo_job import DemoAccess, DemoStudy, _serve
    args = json.loads(os.environ["DEMO_ARGS"])
    out = Path(args["out"])
    study = DemoStudy(
        f"sqlite:///{out / 'study.db'}", "trial", out / "study_vault.key",
        out / "study_recordings", out / "trial", "demo",
    )
    access = DemoAccess(args["researcher"], args["worker"], args["code"], "week12", args["token"])
    _serve(study, access, Console(width=200))
    """
)


def _sign_in(base: str, username: str, password: str, target: str) -> httpx.Response:
    with httpx.Client(base_url=base, follow_redirects=True, timeout=60) as client:
        form = client.get(f"/login?next={target}")
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
        return client.post(
            "/login", data={**hidden, "username": username, "password": password, "next": target}
        )


def test_serving_prints_three_working_links_and_stops_on_ctrl_c(
    demo_out: tuple[Path, str],
) -> None:
    from peerlens.study import add_consent, issue_link, list_participants

    out, _ = demo_out
    accounts = dict(
        line.split(" ", 1)
        for line in (out / "demo_accounts.txt").read_text(encoding="utf-8").splitlines()
    )
    store, me = _store(out)
    try:
        code = str(list_participants(store, "trial", caller=me)["participant"].iloc[3])
        add_consent(
            store,
            "trial",
            code,
            version="test",
            consented_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
            caller=me,
        )
        link = issue_link(store, "trial", code, timepoint="week12", caller=me)
    finally:
        store.close()
    args = {"out": str(out), "code": code, "token": link.token, **accounts}
    env = {**os.environ, "DEMO_ARGS": json.dumps(args), "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        printed = ""
        deadline = time.monotonic() + 120
        while "Ctrl+C stops" not in printed and time.monotonic() < deadline:
            line = server.stdout.readline() if server.stdout else ""
            if not line and server.poll() is not None:
                break
            printed += line
        links = re.findall(r"http://127\.0\.0\.1:\d+\S*", printed)
        assert len(links) == 3, printed
        base = re.match(r"http://127\.0\.0\.1:\d+", links[0])
        assert base is not None
        for _ in range(100):  # until uvicorn listens
            try:
                page = httpx.get(links[0], follow_redirects=True, timeout=60)
                break
            except httpx.ConnectError:
                time.sleep(0.2)
        assert page.status_code == 200 and "SCS" in page.text
        studio = _sign_in(base.group(0), "worker", accounts["worker"], "/studio/trial")
        assert studio.status_code == 200 and studio.url.path == "/studio/trial"
        dashboard = _sign_in(base.group(0), "researcher", accounts["researcher"], "/studies/trial")
        assert dashboard.status_code == 200 and dashboard.url.path == "/studies/trial"
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_demo_without_the_encoder_weights_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    from peerlens.narrative.encoder import WEIGHTS_ENV
    from peerlens.narrative.model import packaged_model_meta

    if packaged_model_meta()["config"].get("embedding") != "minilm":
        pytest.skip("the packaged model does not use the encoder")
    done = subprocess.run(
        [sys.executable, "-c", "from peerlens.cli import main; main()", "demo", "--no-serve"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, WEIGHTS_ENV: str(tmp_path / "absent.whl"), "PYTHONPATH": _SRC},
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "absent.whl" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


# the peerlens under test, also for a child process started in another directory
_SRC = str(Path(__import__("peerlens").__file__).resolve().parents[1])
