"""`peerlens demo`: the main job on the bundled example data, and that data's provenance."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from peerlens.cli import app
from peerlens.examples import example_path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools/make_example_data.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_example_data", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        result = CliRunner().invoke(app, ["demo"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return where / "demo-out", result.stdout


def test_demo_scores_every_response(demo_out: tuple[Path, str]) -> None:
    out, stdout = demo_out
    assert "scs_total" in stdout
    scored = pd.read_csv(out / "scored.csv")
    assert len(scored) == 80 and scored["phq9_total"].notna().all()


def test_demo_effect_sizes_follow_the_simulated_arms(demo_out: tuple[Path, str]) -> None:
    # The generator gives the peer-support arm a larger latent gain (0.7 vs 0.2 SD units).
    es = pd.read_csv(demo_out[0] / "effect_sizes.csv")
    g = es[es.effect_size == "g_av"].set_index("arm")["value"]
    assert g["peer_support"] > 0.5 > g["usual_care"]
    rel = pd.read_csv(demo_out[0] / "reliability.csv").set_index("scale")
    assert rel.loc["scs_total", "n_items"] == 26
    assert 0.0 < rel.loc["scs_total", "alpha"] < 1.0


def test_demo_hrv_recovers_the_simulated_session(demo_out: tuple[Path, str]) -> None:
    windows = pd.read_csv(demo_out[0] / "hrv_windows.csv").set_index("label")
    assert list(windows.index) == ["baseline", "session", "recovery"]
    assert windows["valid"].all()
    # Simulated truth: heart rate highest in the session, RSA (HF) largest in recovery and
    # smallest in the session (tools/make_example_data.py PHASES).
    hr, rmssd = windows["mean_hr_bpm"], windows["rmssd_ms"]
    assert hr["session"] > hr["baseline"] > hr["recovery"]
    assert rmssd["recovery"] > rmssd["baseline"] > rmssd["session"]
    for label, _start, _end, mean_rr, _rsa in _generator().PHASES:
        # Mean HR of each phase is what the generator set, within 3 bpm (40 s ramps between).
        assert abs(hr[label] - 60000.0 / mean_rr) < 3.0, label
    beats = _generator().beat_times()
    assert windows["n_beats"].sum() == pytest.approx(len(beats), abs=3)
    assert np.isfinite(windows["ln_hf"]).all()


def test_demo_story_flags_the_comparisons(demo_out: tuple[Path, str]) -> None:
    out, stdout = demo_out
    sentences = pd.read_csv(out / "story_sentences.csv")
    assert set(sentences["speaker"]) == {"Sam"}
    compared = sentences[sentences["label"].isin(["upward", "downward"])]
    assert compared["hint"].notna().all()
    assert "at least you" in " ".join(compared["text"]).lower()
    assert "Connection index" in stdout
    assert "<html" in (out / "story.html").read_text(encoding="utf-8").lower()


def test_demo_study_database_holds_everything_and_scores_agree(
    demo_out: tuple[Path, str],
) -> None:
    out, stdout = demo_out
    assert "hash-chained entries, verified" in stdout
    tidy = pd.read_csv(out / "study_tidy.csv")
    assert tidy["participant"].nunique() == 40
    assert set(tidy["arm"].dropna()) == {"peer_support", "usual_care"}
    # Scores the export recomputed from the stored items equal those of step 1 (same engine,
    # independent path: items went through the database and back).
    stored = tidy[tidy["kind"] == "score"].pivot_table(
        index=["participant", "timepoint"], columns="name", values="value", aggfunc="first"
    )
    scored = pd.read_csv(out / "scored.csv").set_index(["participant", "timepoint"])
    for column in ("scs_total", "phq9_total", "fscrs_hated_self", "swemwbs_metric"):
        joined = stored[[column]].join(
            scored[[column]].rename(columns={column: f"{column}_step1"}), how="outer"
        )
        assert len(joined) == 80
        pd.testing.assert_series_equal(
            joined[column].astype(float),
            joined[f"{column}_step1"].astype(float),
            check_names=False,
        )


def test_demo_derived_hrv_and_story_equal_the_direct_analyses(demo_out: tuple[Path, str]) -> None:
    out, _ = demo_out
    tidy = pd.read_csv(out / "study_tidy.csv")
    assert (tidy.loc[tidy["kind"].isin(["hrv", "story"]), "derivation"] == "current").all()
    hrv = tidy[tidy["kind"] == "hrv"].pivot_table(
        index="window", columns="name", values="value", aggfunc="first"
    )
    direct = pd.read_csv(out / "hrv_windows.csv").set_index("label")
    for label in ("baseline", "session", "recovery"):
        for metric in ("n_beats", "rmssd_ms", "hf_ms2", "sdnn_ms"):
            assert hrv.loc[label, metric] == pytest.approx(direct.loc[label, metric], rel=1e-9)
    story = tidy[tidy["kind"] == "story"].set_index("name")["value"]
    labels = pd.read_csv(out / "story_sentences.csv")["label"].value_counts()
    assert story["n_sentences"] == labels.sum()
    assert story["connection_index"] == pytest.approx(
        labels["connection"] / (labels["connection"] + labels["upward"] + labels["downward"])
    )
