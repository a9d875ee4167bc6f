from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from peerlens.cli import app

from .conftest import ACTOR, ADMIN, PASSWORD


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``peerlens ARGS`` on a new database whose first admin is :data:`ACTOR` (signed in)."""
    monkeypatch.setenv("PEERLENS_DB", db_url)
    monkeypatch.delenv("PEERLENS_RECORDINGS", raising=False)
    monkeypatch.delenv("PEERLENS_USER", raising=False)
    monkeypatch.delenv("PEERLENS_PASSWORD", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", PASSWORD)
    invoke("init", "--admin", ACTOR, "--recordings", str(tmp_path / "blobs"))
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    return invoke


def test_cli_refuses_a_database_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    typo = tmp_path / "studdy.db"
    result = CliRunner().invoke(
        app, ["participant", "list", "--study", "pilot", "--db", f"sqlite:///{typo}"]
    )
    assert result.exit_code == 2 and "no peerlens database at" in result.output
    assert not typo.exists()  # nothing was created


def test_cli_init_once_and_no_implicit_user(
    run: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run("init", "--admin", "mallory", code=2)
    assert "already has user accounts" in out
    monkeypatch.delenv("PEERLENS_USER")
    assert "give your peerlens user name" in run("study", "list", code=2)


def test_cli_end_to_end(
    run: Callable[..., str], config_path: Path, tmp_path: Path, db_url: str
) -> None:
    assert "created study pilot" in run("study", "create", "pilot", "--config", str(config_path))
    people = tmp_path / "people.csv"
    people.write_text(
        "participant,arm,site,name\nP1,intervention,leeds,Pia One\nP2,control,glasgow,\n"
    )
    out = run("participant", "import", str(people), "--study", "pilot", code=2)
    assert "row 0, column 'name': unknown column" in out
    assert "2 participant(s) enrolled" in run(
        "participant", "import", str(people), "--study", "pilot", "--identity-column", "name"
    )
    from peerlens.study import Store, get_identity

    st = Store.open(db_url)
    assert get_identity(st, "pilot", "P1", caller=ADMIN) == {"name": "Pia One"}
    assert get_identity(st, "pilot", "P2", caller=ADMIN) == {}
    st.close()
    run(
        "participant",
        "add",
        "W1",
        "--study",
        "pilot",
        "--role",
        "ps_worker",
        "--identity",
        "name=Wendy Worker",
    )
    listing = run("participant", "list", "--study", "pilot")
    assert "P1\tservice_user\tintervention\tleeds\tenrolled" in listing
    assert "Wendy" not in listing
    cols = ",".join(f"phq9_{i}" for i in range(1, 10))
    good = tmp_path / "phq.csv"
    good.write_text(f"participant,{cols}\nP1,0,1,2,3,0,1,2,3,0\nP2,1,1,1,1,1,1,1,1,-98\n")
    out = run("responses", "import", str(good), "--study", "pilot", "--timepoint", "week12")
    assert "2 new" in out
    bad = tmp_path / "bad.csv"
    bad.write_text(f"participant,{cols}\nP1,0,1,2,3,0,1,2,3,9\nP7,1,1,1,1,1,1,1,1,1\n")
    out = run("responses", "import", str(bad), "--study", "pilot", "--timepoint", "week12", code=2)
    assert "2 problem(s), nothing was imported" in out
    assert "row 1, column 'phq9_9': 9 is outside the allowed range 0..3" in out
    assert "row 2, column 'participant': unknown participant 'P7'" in out
    start = "2026-01-05T09:00+00:00"
    out = run("participant", "relate", "W1", "P1", "--study", "pilot", "--start", start)
    assert out.startswith("relationship ")
    rel = out.split()[1].rstrip(":")
    run(
        "participant",
        "session",
        rel,
        "s1",
        "--study",
        "pilot",
        "--mode",
        "video",
        "--start",
        "2026-01-12T09:00+00:00",
        "--duration",
        "45",
    )
    out = run(
        "participant",
        "session",
        rel,
        "s2",
        "--study",
        "pilot",
        "--mode",
        "video",
        "--start",
        "2026-01-12T09:00",
        code=2,
    )
    assert "add the time zone" in out
    ecg = tmp_path / "p1.rr"
    ecg.write_bytes(b"800\n810\n790\n")
    out = run(
        "recordings",
        "add",
        str(ecg),
        "--study",
        "pilot",
        "--participant",
        "P1",
        "--session",
        "s1",
        "--window",
        "baseline:0:1.5",
        "--kind",
        "rr",
        "--device",
        "Polar H10",
    )
    assert hashlib.sha256(b"800\n810\n790\n").hexdigest() in out
    run(
        "participant",
        "consent",
        "P1",
        "--study",
        "pilot",
        "--version",
        "v1.2",
        "--at",
        "2026-01-02T10:00+00:00",
        "--scope",
        "questionnaires, ECG",
    )
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM consent")).scalar_one() == "v1.2"
        assert conn.execute(text("SELECT label, end_s FROM recording_window")).one() == (
            "baseline",
            1.5,
        )
    engine.dispose()
    tidy = tmp_path / "tidy.parquet"
    run(
        "export",
        "--study",
        "pilot",
        "--format",
        "tidy",
        "--tier",
        "deidentified",
        "--out",
        str(tidy),
    )
    frame = pd.read_parquet(tidy)
    p1 = frame[(frame.participant == "P1") & (frame.name == "phq9_total")]
    assert p1["value"].tolist() == [12.0]  # 0+1+2+3+0+1+2+3+0, by hand
    manifest = json.loads((tmp_path / "tidy.parquet.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(tidy.read_bytes()).hexdigest()
    run("participant", "withdraw", "P2", "--study", "pilot", "--reason", "moved away")
    run("participant", "erase", "W1", "--study", "pilot", "--reason", "request", "--yes")
    head = manifest["audit_head"]
    ok = run("audit", "verify", "--expect-head", f"{head['seq']}:{head['hash']}")
    assert "audit chain OK" in ok
    shown = run("audit", "show", "--last", "3")
    assert "participant.withdraw" in shown and "participant.erase" in shown
    # An attacker with database rights drops the trigger and edits an old row.
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
        conn.execute(text("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 2"))
    engine.dispose()
    out = run("audit", "verify", code=1)
    assert "TAMPERED: row seq 2" in out


def test_cli_users_and_tiers(
    run: Callable[..., str],
    config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run("study", "create", "pilot", "--config", str(config_path))
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", "research-pass-1")
    run("study", "user-add", "rex")
    run("study", "grant", "rex", "--role", "researcher", "--study", "pilot")
    monkeypatch.setenv("PEERLENS_PASSWORD", "research-pass-1")
    run("participant", "add", "P1", "--study", "pilot", "--user", "rex")
    out = run(
        "export",
        "--study",
        "pilot",
        "--tier",
        "full",
        "--out",
        str(tmp_path / "f.csv"),
        "--user",
        "rex",
        code=2,
    )
    assert "rex may export at most at tier 'remove_identifiers', not 'full'" in out
    run(
        "export",
        "--study",
        "pilot",
        "--tier",
        "remove_identifiers",
        "--out",
        str(tmp_path / "r.csv"),
        "--user",
        "rex",
    )
    out = run(
        "participant",
        "erase",
        "P1",
        "--study",
        "pilot",
        "--reason",
        "x",
        "--yes",
        "--user",
        "rex",
        code=2,
    )
    assert "needs a admin role" in out


def test_cli_transcripts_derive_passwords_and_site_scope(
    run: Callable[..., str],
    config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
) -> None:
    run("study", "create", "pilot", "--config", str(config_path))
    run("participant", "add", "W1", "--study", "pilot", "--role", "ps_worker", "--site", "leeds")
    run("participant", "add", "G1", "--study", "pilot", "--site", "glasgow")
    story = tmp_path / "story.txt"
    story.write_text("I felt exactly the same when I started.\nAt least you have a job.\n")
    assert "story 1 stored for W1" in run(
        "participant", "transcript", "W1", str(story), "--study", "pilot", "--kind", "story"
    )
    out = run("study", "derive", "--study", "pilot", "--what", "story", "--what", "scores")
    assert "story: 1 input(s)" in out and "scores: 0 input(s)" in out
    status = run("study", "derived", "--study", "pilot")
    assert status.splitlines()[0].startswith("what\tinputs\tcurrent\tstale\tmissing\terrors")
    assert any(line.startswith("story\t1\t1\t0\t0\t0\t") for line in status.splitlines())
    out_csv = tmp_path / "story.csv"
    run("study", "derived", "--study", "pilot", "--what", "sentences", "--out", str(out_csv))
    sentences = pd.read_csv(out_csv)
    assert sentences["label"].tolist() == ["connection", "downward"]
    assert "text" not in sentences  # the words stay in the transcript
    assert "derived results OK: story, scores" in run(
        "study", "derived", "--study", "pilot", "--verify"
    )
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM derived_sentence WHERE position = 1"))
    engine.dispose()
    out = run("study", "derived", "--study", "pilot", "--verify", code=1)
    assert "CHANGED: story: stored rows of run" in out

    secrets = [PASSWORD, "leeds-pass-456", "leeds-pass-789"]
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", secrets[1])
    run("study", "user-add", "sid")
    run("study", "grant", "sid", "--role", "researcher", "--study", "pilot", "--site", "leeds")
    monkeypatch.setenv("PEERLENS_USER", "sid")
    monkeypatch.setenv("PEERLENS_PASSWORD", secrets[1])
    rr = tmp_path / "rr.txt"
    rr.write_text("800\n810\n790\n805\n")
    out = run("recordings", "add", str(rr), "--study", "pilot", "--participant", "G1",
              "--kind", "rr", code=2)  # fmt: skip
    assert "unknown participant 'G1' or outside your site(s) leeds" in out
    out = run("participant", "relate", "W1", "G1", "--study", "pilot",
              "--start", "2026-01-05T09:00+00:00", code=2)  # fmt: skip
    assert "outside your site" in out
    out = run("participant", "transcript", "G1", str(story), "--study", "pilot", code=2)
    assert "outside your site" in out
    assert "study-wide" in run("study", "derive", "--study", "pilot", code=2)
    # Changing passwords: your own, never someone else's unless admin.
    assert "may not set another user's password" in run("study", "passwd", ACTOR, code=2)
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", secrets[2])
    out = run("study", "passwd", "sid")
    assert "password changed for sid" in out and not any(p in out for p in secrets)
    assert "wrong password" in run("participant", "list", "--study", "pilot", code=2)
    monkeypatch.setenv("PEERLENS_PASSWORD", secrets[2])
    run("participant", "list", "--study", "pilot")
    # Deactivation: the account stops working; the last global admin cannot be deactivated.
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", secrets[0])
    assert "last active global admin" in run("study", "user-deactivate", ACTOR, code=2)
    run("study", "user-deactivate", "sid", "--reason", "left the project")
    monkeypatch.setenv("PEERLENS_USER", "sid")
    monkeypatch.setenv("PEERLENS_PASSWORD", secrets[2])
    assert "unknown user or wrong password" in run(
        "participant", "list", "--study", "pilot", code=2
    )
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log")).fetchall()
        actions = [r.action for r in rows]
    engine.dispose()
    assert {"user.password", "user.deactivate", "derive.story", "story.add"} <= set(actions)
    dump = repr(rows)
    assert not any(p in dump for p in secrets)
    assert "exactly the same" not in dump  # transcript text never reaches the log


def test_cli_refuses_a_recording_its_readers_cannot_read_as_hrv_analyze_does(
    run: Callable[..., str], config_path: Path, tmp_path: Path
) -> None:
    """``recordings add`` reads the file before storing it: a broken one is refused (exit 2)
    with the message ``hrv analyze`` gives for the same file, and nothing is stored."""
    from .._recordings import broken

    run("study", "create", "pilot", "--config", str(config_path))
    run("participant", "add", "P1", "--study", "pilot")
    for case, upload in broken(tmp_path / "in").items():
        stored = run("recordings", "add", str(upload.path), "--study", "pilot",
                     "--participant", "P1", code=2)  # fmt: skip
        analysed = run("hrv", "analyze", str(upload.path), code=2)
        assert upload.refused is not None and upload.refused in " ".join(stored.split()), case
        assert " ".join(stored.split()) == " ".join(analysed.split()), case
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
