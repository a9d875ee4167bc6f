"""Mutated and random input files through every study import command: each run ends with exit 0
or a clear error (exit 2), never a traceback, and a refused file changes nothing stored."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from peerlens.cli import app

from .._mutation import mutate
from ..conftest import ACTOR, DATA, PASSWORD

GAD7 = ",".join(f"gad7_{i}" for i in range(1, 8))
VALID = {
    "responses": f"participant,{GAD7}\nP1,1,2,3,0,1,2,3\nP2,0,0,0,0,0,0,0\n".encode(),
    "redcap": (DATA / "redcap_records.csv").read_bytes(),
    "participants": b"participant,arm,site,name\nQ1,intervention,leeds,Quin One\n",
    "dictionary": (DATA / "redcap_dictionary.csv").read_bytes(),
    "config": (DATA / "redcap_study.yaml").read_bytes(),
}


EDITS = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 10**6),
        st.one_of(
            st.binary(min_size=1, max_size=6),
            st.sampled_from(
                [
                    b",",
                    b";",
                    b"\t",
                    b'"',
                    b"\r",
                    b"\n",
                    b"\x00",
                    b"\xff\xfe",
                    b"1e999",
                    b"-inf",
                    b"=cmd|' /C calc'!A0",
                    b"\xe9",
                    b"9" * 40,
                    str(2**31).encode(),  # beyond a 32-bit INTEGER column
                    b"x" * 101,  # longer than a VARCHAR(100) column
                ]
            ),
        ),
    ),
    min_size=1,
    max_size=4,
)
FILES = st.one_of(
    st.tuples(st.sampled_from(sorted(VALID)), EDITS).map(
        lambda t: (t[0], mutate(VALID[t[0]], t[1]))
    ),
    st.tuples(st.sampled_from(sorted(VALID)), st.binary(max_size=300)),
)


def _fingerprint(url: str) -> str:
    engine = create_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as conn:
        tables = [
            r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        ]
        for t in sorted(tables):
            for row in conn.execute(text(f'SELECT * FROM "{t}" ORDER BY 1')):
                digest.update(repr(tuple(row)).encode())
    engine.dispose()
    return digest.hexdigest()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    monkeypatch.setenv("PEERLENS_DB", url)
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", PASSWORD)
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--admin", ACTOR]).exit_code == 0
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    done = runner.invoke(
        app, ["study", "create", "rc", "--config", str(tmp_path / "redcap_study.yaml")]
    )
    assert done.exit_code == 0, done.output
    config = tmp_path / "gad.yaml"
    config.write_text(
        "sites: [leeds]\narms: [intervention]\ntimepoints:\n  - name: t0\n    instruments: [gad7]\n"
    )
    assert runner.invoke(app, ["study", "create", "g", "--config", str(config)]).exit_code == 0
    for code in ("P1", "P2"):
        assert runner.invoke(app, ["participant", "add", code, "--study", "g"]).exit_code == 0

    def run(kind: str, path: Path) -> object:
        args = {
            "responses": ["responses", "import", str(path), "--study", "g", "--timepoint", "t0"],
            "redcap": [
                "responses",
                "import-redcap",
                str(path),
                "--study",
                "rc",
                "--create-participants",
            ],
            "participants": [
                "participant",
                "import",
                str(path),
                "--study",
                "g",
                "--identity-column",
                "name",
            ],
            "dictionary": ["study", "dictionary", str(path), "--study", "rc"],
            "config": ["study", "create", f"s{path.stem[-6:]}", "--config", str(path)],
        }[kind]
        before = _fingerprint(url)
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 2), (kind, result.output, result.exception)
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            assert "error:" in result.output, result.output
            assert _fingerprint(url) == before, f"{kind}: a refused file changed the database"
        return result.exit_code

    return run


@pytest.mark.slow
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=FILES)
def test_mutated_inputs_never_end_in_a_traceback(
    cli: Callable[..., object], tmp_path: Path, case: tuple[str, bytes]
) -> None:
    kind, data = case
    suffix = ".yaml" if kind == "config" else ".csv"
    path = tmp_path / f"in-{hashlib.sha256(data).hexdigest()[:12]}{suffix}"
    path.write_bytes(data)
    cli(kind, path)


def test_the_valid_files_import(cli: Callable[..., object], tmp_path: Path) -> None:
    # The fuzzing starts from files that work: each kind imports as it is.
    for kind in ("responses", "participants", "dictionary", "redcap", "config"):
        path = tmp_path / f"valid-{kind}{'.yaml' if kind == 'config' else '.csv'}"
        path.write_bytes(VALID[kind])
        if kind == "config":
            shutil.copy(DATA / "redcap_dictionary.csv", tmp_path / "redcap_dictionary.csv")
        assert cli(kind, path) == 0, kind
