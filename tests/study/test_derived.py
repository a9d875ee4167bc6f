"""Derived results: scores, HRV and story labels recomputed, stored with versions, never edited."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from peerlens.study import (
    NewParticipant,
    PermissionDenied,
    Store,
    add_participants,
    add_recording,
    add_relationship,
    add_session,
    add_transcript,
    create_study,
    derivation_status,
    derive,
    derived_frame,
    erase_participant,
    import_responses,
    verify_derived,
)
from peerlens.study._lookup import get_study
from peerlens.study.audit import check_chain
from peerlens.study.derived import check_derived, hrv_job
from peerlens.study.export import tidy_frame

from .conftest import ACTOR, ADMIN, make_user

MITDB = Path(__file__).parents[2] / ".." / "shared" / "data" / "ecg" / "mitdb" / "100"
PHQ9 = [f"phq9_{i}" for i in range(1, 10)]
GAD7 = [f"gad7_{i}" for i in range(1, 8)]
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def study(store: Store, config_path: Path, tmp_path: Path) -> Store:
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [NewParticipant(f"P{i}", arm="control", site="leeds") for i in (1, 2, 3)]
    people.append(NewParticipant("W1", role="ps_worker", site="leeds"))
    add_participants(store, "pilot", people, caller=ADMIN)
    rng = np.random.default_rng(7)
    rows = [[f"P{i}", *rng.integers(0, 4, 9).tolist()] for i in (1, 2, 3)]
    rows[1][3] = ""  # one unanswered item: PHQ-9 prorates
    rows[2][5] = -99  # a missing code
    _csv(tmp_path / "phq.csv", ["participant", *PHQ9], rows)
    import_responses(store, "pilot", tmp_path / "phq.csv", timepoint="baseline", caller=ADMIN)
    g = [[f"P{i}", *rng.integers(0, 4, 7).tolist()] for i in (1, 2)]
    _csv(tmp_path / "gad.csv", ["participant", *GAD7], g)
    import_responses(store, "pilot", tmp_path / "gad.csv", timepoint="week12", caller=ADMIN)
    return store


def _stored_items(store: Store, instrument: str) -> pd.DataFrame:
    """The stored items of ``instrument`` as the wide table a user would hand to ``score``."""
    with store.engine.connect() as conn:
        long = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT r.id AS rid, i.item, i.value FROM response r "
                    "JOIN response_item i ON i.response_id = r.id WHERE r.instrument = :i"
                ),
                {"i": instrument},
            ).fetchall(),
            columns=["rid", "item", "value"],
        )
    return long.pivot(index="rid", columns="item", values="value").astype("float64")


def test_derived_scores_equal_instruments_score(study: Store) -> None:
    from peerlens.instruments import score

    (summary,) = derive(study, "pilot", ["scores"], caller=ADMIN)
    assert summary.inputs == 5 and summary.errors == 0
    stored = derived_frame(study, "pilot", "scores", caller=ADMIN)
    assert set(stored["derivation"]) == {"current"}
    for inst in ("phq9", "gad7"):
        wide = _stored_items(study, inst)
        expected = score(wide.reset_index(drop=True), inst)
        expected.index = wide.index
        got = stored[stored.instrument == inst]
        total = f"{inst}_total"
        by_participant = got[got.name == total].set_index("participant")["value"]
        assert len(by_participant) == len(wide)
        assert sorted(by_participant.round(9)) == sorted(expected[total].round(9))
        assert set(got["spec_sha256"].str.len()) == {64}
        assert (got["engine_version"] != "").all()
    # The unanswered item was prorated (PHQ manual): the total is not a plain sum.
    p2 = stored[(stored.participant == "P2") & (stored.name == "phq9_prorated")]
    assert p2["value"].tolist() == [1.0]


def test_rederivation_is_idempotent_and_audited(study: Store) -> None:
    first = derive(study, "pilot", ["scores", "story"], caller=ADMIN)
    frame1 = derived_frame(study, "pilot", "scores", caller=ADMIN).drop(columns="derived_at")
    again = derive(study, "pilot", ["scores", "story"], caller=ADMIN)
    frame2 = derived_frame(study, "pilot", "scores", caller=ADMIN).drop(columns="derived_at")
    pd.testing.assert_frame_equal(frame1, frame2)
    assert [a.digest for a in again] == [f.digest for f in first]
    assert all(a.unchanged for a in again) and not any(f.unchanged for f in first)
    with study.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM derived_score")).scalar_one()
        log = conn.execute(
            text("SELECT actor, new FROM audit_log WHERE action = 'derive.scores' ORDER BY seq")
        ).fetchall()
    assert n == len(frame1)  # replaced, not appended
    assert [r[0] for r in log] == [ACTOR, ACTOR]
    entry = json.loads(log[-1][1])
    assert entry["rows"] == n and entry["unchanged"] is True
    assert entry["versions"]["phq9"]["spec_sha256"] == frame1["spec_sha256"].iloc[0]
    with study.transaction() as s:
        assert check_chain(s).ok
        assert check_derived(s, get_study(s, "pilot")).ok


def test_changed_items_make_scores_stale_until_rederived(study: Store, tmp_path: Path) -> None:
    derive(study, "pilot", ["scores"], caller=ADMIN)
    rows = [["P1", 3, 3, 3, 3, 3, 3, 3]]
    _csv(tmp_path / "gad2.csv", ["participant", *GAD7], rows)
    import_responses(study, "pilot", tmp_path / "gad2.csv", timepoint="week12", caller=ADMIN)
    status = derivation_status(study, "pilot", caller=ADMIN).set_index("what")
    assert status.loc["scores", "stale"] == 1 and status.loc["scores", "current"] == 4
    with study.transaction() as s:
        tidy = tidy_frame(s, get_study(s, "pilot"))
    p1 = tidy[(tidy.participant == "P1") & (tidy.name == "gad7_total")]
    # The export recomputes from the items and says the stored result is out of date.
    assert p1["value"].tolist() == [21.0] and p1["derivation"].tolist() == ["stale"]
    derive(study, "pilot", ["scores"], caller=ADMIN)
    with study.transaction() as s:
        tidy = tidy_frame(s, get_study(s, "pilot"))
    assert set(tidy.loc[tidy.kind == "score", "derivation"]) == {"current"}


def test_derived_rows_cannot_be_edited(study: Store) -> None:
    derive(study, "pilot", ["scores"], caller=ADMIN)
    with pytest.raises(Exception, match="never edited"), study.engine.begin() as conn:
        conn.execute(text("UPDATE derived_score SET value = 0"))
    # Inserted or deleted behind peerlens's back: the digest check finds it.
    with study.engine.begin() as conn:
        conn.execute(text("DELETE FROM derived_score WHERE name = 'phq9_total'"))
    with study.transaction() as s:
        check = check_derived(s, get_study(s, "pilot"))
    assert not check.ok and "scores" in check.problems[0]
    import peerlens.study as api

    assert not [n for n in api.__all__ if n.startswith(("set_derived", "update_derived"))]


def test_site_scoped_or_read_only_users_cannot_derive(study: Store) -> None:
    sid = make_user(study, "sid", "researcher", study="pilot", site="leeds", tier="full")
    pat = make_user(study, "pat", "ps_worker", study="pilot")
    with pytest.raises(PermissionDenied, match="study-wide"):
        derive(study, "pilot", caller=sid)
    with pytest.raises(PermissionDenied, match="may not recompute"):
        derive(study, "pilot", caller=pat)


def test_hrv_derivation_matches_analyze_and_failures_become_error_rows(
    study: Store, tmp_path: Path
) -> None:
    from peerlens.hrv import METRIC_COLUMNS, analyze

    hea = MITDB.with_suffix(".hea")
    windows = [("baseline", 0.0, 300.0), ("talk", 600.0, 1500.0)]
    _, sha = add_recording(
        study, "pilot", hea, participant="P1", kind="ecg", windows=windows, caller=ADMIN
    )
    # The record is stored whole (header + signal file) under one address and pseudonymous
    # names (an original record name may hold a person's name); naming its .dat finds the
    # same record.
    folder = study.blob_dir / sha[:2] / f"{sha}.wfdb"
    assert sorted(f.name for f in folder.iterdir()) == ["rec.hea", "rec_1.dat"]
    header = [
        line
        for line in (folder / "rec.hea").read_text(encoding="latin-1").splitlines()
        if not line.startswith("#")
    ]
    assert header[0].startswith("rec 2 360 ") and header[1].startswith("rec_1.dat 212 ")
    _, same = add_recording(
        study, "pilot", MITDB.with_suffix(".dat"), participant="P3", caller=ADMIN
    )
    assert same == sha
    # Read when stored (a 10 s ECG column), yet no beat is found in it when it is analysed.
    broken = _csv(tmp_path / "broken.csv", ["MLII"], [[i % 7] for i in range(2500)])
    add_recording(study, "pilot", broken, participant="P2", sampling_rate_hz=250, caller=ADMIN)
    (summary,) = derive(study, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
    assert summary.inputs == 3 and summary.errors == 1
    frame = derived_frame(study, "pilot", "hrv", caller=ADMIN)
    ok = frame[frame.participant == "P1"].set_index("label")
    events = pd.DataFrame(windows, columns=["label", "start_s", "end_s"])
    # The reference: peerlens.hrv.analyze run directly on the shared-data record.
    direct = analyze(hea, events=events)
    whole = direct.metrics.iloc[0]
    assert ok.loc["whole", "n_beats"] == whole["n_beats"]
    for c in METRIC_COLUMNS:
        assert ok.loc["whole", c] == pytest.approx(whole[c], rel=1e-12, nan_ok=True), c
    for w in direct.windows.to_dict(orient="records"):
        for c in ("rmssd_ms", "sdnn_ms", "hf_ms2", "artifact_rate"):
            assert ok.loc[w["label"], c] == pytest.approx(w[c], rel=1e-12), (w["label"], c)
        assert bool(ok.loc[w["label"], "valid"]) == w["valid"]
    # Independent sanity check: MIT-BIH 100 holds 2,273 annotated beats in 30 min 5 s.
    assert abs(int(ok.loc["whole", "n_beats"]) - 2273) <= 5
    assert set(ok["pipeline_version"]) == {direct.provenance.peerlens_version}
    bad = frame[frame.participant == "P2"]
    assert bad["status"].tolist() == ["error"] and bad["error"].iloc[0]
    status = derivation_status(study, "pilot", caller=ADMIN).set_index("what")
    assert status.loc["hrv", ["inputs", "current", "errors"]].tolist() == [3, 3, 1]
    with study.transaction() as s:
        tidy = tidy_frame(s, get_study(s, "pilot"), tier="deidentified")
        assert check_derived(s, get_study(s, "pilot")).ok
    p1 = tidy[tidy.participant == "P1"]
    rmssd = p1[(p1.kind == "hrv") & (p1.name == "rmssd_ms")].set_index("window")
    assert rmssd.loc["talk", "value"] == pytest.approx(ok.loc["talk", "rmssd_ms"])
    assert set(rmssd["derivation"]) == {"current"} and set(rmssd["source"]) == {sha}
    # Erasing a participant takes their derived rows with the recording; the stored record
    # stays while another participant's recording has the same content.
    erase_participant(study, "pilot", "P1", caller=ADMIN, reason="request")
    assert "P1" not in set(derived_frame(study, "pilot", "hrv", caller=ADMIN).participant)
    assert folder.is_dir()
    erase_participant(study, "pilot", "P3", caller=ADMIN, reason="request")
    assert not folder.exists()


def test_hrv_on_dask_equals_sequential(study: Store, tmp_path: Path) -> None:
    rr = tmp_path / "rr.txt"
    beats = 800 + 40 * np.sin(np.arange(600) / 3.0)
    rr.write_text("\n".join(f"{v:.3f}" for v in beats) + "\n", encoding="utf-8")
    add_recording(
        study, "pilot", rr, participant="P3", kind="rr", windows=[("a", 0, 240)], caller=ADMIN
    )
    (seq,) = derive(study, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
    (par,) = derive(study, "pilot", ["hrv"], caller=ADMIN, executor="dask", processes=False)
    assert par.digest == seq.digest and par.unchanged and par.rows == 2


STORY = (
    "I remember feeling exactly like that when I was first unwell. "
    "At least you have your family around you. "
    "We went to the shop afterwards."
)
TRANSCRIPT = "Sam: I heard voices too.\nAlex: Did you?\nSam: You are doing better than I did."


def test_story_derivation_matches_narrative_analyze(study: Store) -> None:
    from peerlens.narrative import analyze

    rel = add_relationship(study, "pilot", "W1", "P1", started_at=T0, caller=ADMIN)
    add_session(study, "pilot", rel, "s1", started_at=T0, mode="video", caller=ADMIN)
    add_transcript(study, "pilot", STORY, kind="story", participant="W1", caller=ADMIN)
    add_transcript(
        study, "pilot", TRANSCRIPT, participant="W1", session="s1", speaker="Sam", caller=ADMIN
    )
    add_transcript(study, "pilot", TRANSCRIPT, participant="P1", speaker="Kim", caller=ADMIN)
    (summary,) = derive(study, "pilot", ["story"], caller=ADMIN)
    assert summary.inputs == 3 and summary.errors == 1
    stories = derived_frame(study, "pilot", "story", caller=ADMIN).set_index("transcript")
    sentences = derived_frame(study, "pilot", "sentences", caller=ADMIN)
    for tid, (txt, kw) in enumerate(
        [(STORY, {}), (TRANSCRIPT, {"transcript": True, "speaker": "Sam"})], start=1
    ):
        direct = analyze(txt, **kw)  # type: ignore[arg-type]
        row = stories.loc[tid]
        assert row["n_sentences"] == direct.summary.n_sentences
        assert row["connection_index"] == pytest.approx(direct.summary.connection_index)
        assert row["ci_low"] == pytest.approx(direct.summary.ci_low, nan_ok=True)
        got = sentences[sentences.transcript == tid]
        assert got["label"].tolist() == [s.label for s in direct.sentences]
        assert got["confidence"].to_numpy() == pytest.approx(
            [s.confidence for s in direct.sentences]
        )
        assert row["model_sha256"] == direct.model["npz_sha256"]
    assert stories.loc[3, "status"] == "error" and "Kim" in stories.loc[3, "error"]
    with study.transaction() as s:
        tidy = tidy_frame(s, get_study(s, "pilot"), tier="deidentified")
    err = tidy[(tidy.kind == "story") & (tidy.name == "error")]
    assert err["text"].tolist() == ["error"]  # speaker names stay out of de-identified exports
    ci = tidy[(tidy.kind == "story") & (tidy.name == "connection_index")]
    assert len(ci) == 2 and set(ci["derivation"]) == {"current"}
    # Erasing the PS worker removes their transcripts and what was derived from them.
    erase_participant(study, "pilot", "W1", caller=ADMIN, reason="request")
    assert derived_frame(study, "pilot", "story", caller=ADMIN)["transcript"].tolist() == [3]
    assert set(derived_frame(study, "pilot", "sentences", caller=ADMIN)["transcript"]) <= {3}
    # Finding: after a lawful erasure the check called the derived results "changed by hand".
    check = verify_derived(study, "pilot", caller=ADMIN)
    assert check.ok, check.problems
    # ... while a row removed behind peerlens's back after that is still caught.
    with study.engine.begin() as conn:
        conn.execute(text("DELETE FROM derived_story"))
    assert not verify_derived(study, "pilot", caller=ADMIN).ok


def test_failed_derivation_leaves_previous_results(
    study: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import peerlens.study.derived._scores as scores_mod

    derive(study, "pilot", ["scores"], caller=ADMIN)
    before = derived_frame(study, "pilot", "scores", caller=ADMIN)
    _csv(tmp_path / "gad3.csv", ["participant", *GAD7], [["P2", 0, 0, 0, 0, 0, 0, 0]])
    import_responses(study, "pilot", tmp_path / "gad3.csv", timepoint="week12", caller=ADMIN)
    real = scores_mod.bulk_insert

    def half_then_crash(session: Any, model: Any, columns: Any, rows: Iterable[Any]) -> None:
        kept = list(rows)
        real(session, model, columns, kept[: len(kept) // 2])
        raise RuntimeError("power cut")

    monkeypatch.setattr(scores_mod, "bulk_insert", half_then_crash)
    with pytest.raises(RuntimeError, match="power cut"):
        derive(study, "pilot", ["scores"], caller=ADMIN)
    after = derived_frame(study, "pilot", "scores", caller=ADMIN)
    pd.testing.assert_frame_equal(
        before.drop(columns="derivation"), after.drop(columns="derivation")
    )
    with study.engine.connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM derivation")).scalar_one()
        logged = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'derive.scores'")
        ).scalar_one()
    assert runs == logged == 1
    with study.transaction() as s:
        assert check_derived(s, get_study(s, "pilot")).ok
    # The one response that changed is reported stale, the rest still current.
    assert (after["derivation"] == "stale").sum() == after[
        (after.participant == "P2") & (after.instrument == "gad7")
    ].shape[0]


def test_concurrent_derivations_do_not_collide(study: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(lambda _: derive(study, "pilot", ["scores"], caller=ADMIN)[0], range(2))
        )
    assert runs[0].digest == runs[1].digest
    with study.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM derived_score")).scalar_one()
    assert n == runs[0].rows
    with study.transaction() as s:
        assert check_derived(s, get_study(s, "pilot")).ok and check_chain(s).ok


def test_a_derivation_and_a_rescoring_write_never_deadlock(study: Store) -> None:
    """Finding: a derivation took its study's lock and then the audit chain's, while a write that
    re-scores at once (a form completed through a personal link) held the chain's and then took
    the study's: on PostgreSQL the two deadlocked and one failed. Both now take the chain's lock
    first. Here the writer holds the chain while the derivation starts, then re-scores."""
    import threading

    from peerlens.study import audit
    from peerlens.study.derived._api import rescore_in

    if study.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole write transactions (BEGIN IMMEDIATE)")
    errors: list[BaseException] = []

    def run_derive() -> None:
        try:
            derive(study, "pilot", ["scores"], caller=ADMIN)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with study.transaction() as s:
        audit.record(s, ACTOR, "test.write", "study", "pilot")  # the chain's lock is held
        other = threading.Thread(target=run_derive)
        other.start()
        other.join(1.5)  # the derivation computes, then waits for its locks
        rescore_in(s, get_study(s, "pilot"), study.blob_dir, ACTOR, None)
    other.join(60)
    assert not other.is_alive() and errors == []
    with study.transaction() as s:
        assert check_derived(s, get_study(s, "pilot")).ok and check_chain(s).ok


def test_an_instrument_that_cannot_be_scored_is_reported_not_fatal(study: Store) -> None:
    # Items the scoring spec rejects (written behind the import's checks) fail that instrument
    # only; the others are scored and the run records why.
    with study.engine.begin() as conn:
        conn.execute(text("UPDATE response_item SET value = 9 WHERE item = 'phq9_1'"))
    (summary,) = derive(study, "pilot", ["scores"], caller=ADMIN)
    assert summary.errors == 3 and summary.inputs == 5
    assert "phq9_1" in summary.versions["errors"]["phq9"]["error"]
    stored = derived_frame(study, "pilot", "scores", caller=ADMIN)
    assert set(stored["instrument"]) == {"gad7"}
    status = derivation_status(study, "pilot", caller=ADMIN).set_index("what")
    assert status.loc["scores", ["current", "missing", "errors"]].tolist() == [2, 3, 3]


def test_digests_of_error_runs_are_pinned(
    study: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The digest of a run is stored and audited: the rows it covers (their values and, for
    # story rows, their key order) must not change under a refactoring. Versions and the model
    # are fixed here, so the digests depend on nothing but the error rows themselves.
    import peerlens
    import peerlens.hrv
    import peerlens.narrative
    from peerlens import PeerlensError

    meta = {"format": "test", "corpus_sha256": "c" * 64, "npz_sha256": "a" * 64}
    model = SimpleNamespace(meta=meta)

    def hrv_fails(path: str, **kw: Any) -> Any:
        if path.endswith(".csv"):
            raise PeerlensError(f"{path}: no beats found")
        raise OSError(f"cannot open {path}")

    def story_fails(text: str, **kw: Any) -> Any:
        if kw["transcript"]:
            raise PeerlensError("speaker 'Kim' not found")
        raise ValueError("empty text")

    monkeypatch.setattr(peerlens, "__version__", "0.0.pinned")
    # The files stand for recordings that pass the read when stored and then fail analysis
    # (their bytes are pinned in the digests below): the read at upload is not this test's.
    monkeypatch.setattr(peerlens.hrv, "read_ecg", lambda *args, **kwargs: None)
    monkeypatch.setattr(peerlens.hrv, "analyze", hrv_fails)
    monkeypatch.setattr(peerlens.narrative, "load_model", lambda: model)
    monkeypatch.setattr(peerlens.narrative, "analyze", story_fails)
    csv = _csv(tmp_path / "a.csv", ["MLII"], [["1"], ["2"]])
    add_recording(study, "pilot", csv, participant="P1", sampling_rate_hz=250, caller=ADMIN)
    rr = tmp_path / "b.txt"
    rr.write_text("800\n810\n", encoding="utf-8")
    add_recording(
        study, "pilot", rr, participant="P2", kind="rr", windows=[("a", 0, 1)], caller=ADMIN
    )
    add_transcript(study, "pilot", STORY, kind="story", participant="P1", caller=ADMIN)
    add_transcript(study, "pilot", TRANSCRIPT, participant="P2", speaker="Kim", caller=ADMIN)
    hrv, story = derive(study, "pilot", ["hrv", "story"], caller=ADMIN, executor="sequential")
    assert (hrv.rows, hrv.errors, story.rows, story.errors) == (2, 2, 2, 2)
    errors = derived_frame(study, "pilot", "hrv", caller=ADMIN)["error"].tolist()
    assert errors[0].endswith(": no beats found") and "cannot open recording " in errors[1]
    assert hrv.digest == "e48f1d4d24ee735e1e1214645de0c96b37098e9569e97a64e6f1f99a810e378a"
    assert story.digest == "09643905e9b008aefe5bcbebdba30ebe2a17be70fdefacb4cb72b073dafb27ac"
    assert verify_derived(study, "pilot", caller=ADMIN).ok
    # hrv_job is public: its error row keeps its keys, in this order.
    (row,) = hrv_job(str(csv), 250.0, "ecg", [], 0.05)
    assert list(row) == [
        "label",
        "status",
        "error",
        "start_s",
        "end_s",
        "n_beats",
        "artifact_rate",
        "valid",
        "reason",
        "metrics",
        "pipeline_version",
        "provenance",
    ]
    assert (row["valid"], row["metrics"], row["pipeline_version"]) == (False, {}, "0.0.pinned")


def test_hrv_window_gaps_are_stored_exported_and_sealed(study: Store, tmp_path: Path) -> None:
    """A real ECG (MIT-BIH 100, first 8 minutes) with 90 s of invalid samples: each window's
    gaps are stored with its HRV as ``analyze`` reports them, exported, covered by the row seal
    and by the run's digest."""
    import wfdb

    from peerlens.hrv import analyze, read_ecg
    from peerlens.study import verify_audit

    src = wfdb.rdrecord(str(MITDB), channels=[0], sampto=480 * 360)
    x = src.p_signal[:, 0].copy()
    x[200 * 360 : 290 * 360] = np.nan  # the format's missing-value code once written
    wfdb.wrsamp(
        "gap100", fs=360, units=["mV"], sig_name=["MLII"], p_signal=x[:, None], fmt=["16"],
        adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path),
    )  # fmt: skip
    windows = [("before", 0.0, 180.0), ("across", 180.0, 330.0), ("after", 330.0, 480.0)]
    hea = tmp_path / "gap100.hea"
    add_recording(study, "pilot", hea, participant="P1", kind="ecg", windows=windows, caller=ADMIN)
    derive(study, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
    frame = derived_frame(study, "pilot", "hrv", caller=ADMIN).set_index("label")
    events = pd.DataFrame(windows, columns=["label", "start_s", "end_s"])
    direct = analyze(read_ecg(hea), events=events).windows.set_index("label")
    for label in ("before", "across", "after"):
        assert frame.loc[label, "n_gaps"] == direct.loc[label, "n_gaps"]
        assert frame.loc[label, "gap_s"] == pytest.approx(direct.loc[label, "gap_s"])
    assert (
        frame.loc["across", "gap_s"] == pytest.approx(90.0) and frame.loc["before", "n_gaps"] == 0
    )
    assert frame.loc["across", "gaps"] == "missing 200.000-290.000 s (32400 missing samples)"
    assert frame.loc["before", "gaps"] == "" and frame.loc["whole", "n_gaps"] == 1
    with study.transaction() as s:
        tidy = tidy_frame(s, get_study(s, "pilot"), tier="deidentified")
    hrv = tidy[(tidy.kind == "hrv") & (tidy.participant == "P1")]
    gap_s = hrv[hrv.name == "gap_s"].set_index("window")["value"]
    assert gap_s["across"] == pytest.approx(90.0) and gap_s["after"] == 0.0
    text_rows = hrv[hrv.name == "gaps"].set_index("window")["text"]
    assert set(text_rows.index) == {"across", "whole"} and "missing 200.000" in text_rows["across"]
    assert verify_audit(study, caller=ADMIN).ok and verify_derived(study, "pilot", caller=ADMIN).ok
    # Written behind peerlens's back: a changed gap, and gap information removed.
    with study.engine.begin() as conn:
        on = " ON derived_hrv" if study.dialect == "postgresql" else ""
        conn.execute(text(f"DROP TRIGGER derived_hrv_no_update{on}"))
        conn.execute(text("UPDATE derived_hrv SET gap_s = 0 WHERE label = 'across'"))
    problems = verify_audit(study, caller=ADMIN).problems
    assert any(p.startswith("table derived_hrv, ") for p in problems)
    assert not verify_derived(study, "pilot", caller=ADMIN).ok
    with study.engine.begin() as conn:  # put back as it was: clean again
        conn.execute(text("UPDATE derived_hrv SET gap_s = 90.0 WHERE label = 'across'"))
    assert verify_audit(study, caller=ADMIN).ok and verify_derived(study, "pilot", caller=ADMIN).ok
    with study.engine.begin() as conn:
        conn.execute(text("UPDATE derived_hrv SET n_gaps = NULL, gap_s = NULL, gaps_json = NULL"))
    assert any(
        p.startswith("table derived_hrv, ") for p in verify_audit(study, caller=ADMIN).problems
    )
