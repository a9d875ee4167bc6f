from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from peerlens.study import NewParticipant, Store, StudyError, add_participants, create_study
from peerlens.study.sessions import (
    add_recording,
    add_relationship,
    add_session,
    add_transcript,
    blob_path,
)

from .conftest import ADMIN, make_user

T0 = dt.datetime(2026, 4, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


@pytest.fixture
def pair(store: Store, config_path: Path) -> int:
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participants(
        store,
        "pilot",
        [NewParticipant("SU1"), NewParticipant("PW1", role="ps_worker")],
        caller=ADMIN,
    )
    return add_relationship(store, "pilot", "PW1", "SU1", started_at=T0, caller=ADMIN)


def test_relationship_roles_and_session_modes(store: Store, pair: int) -> None:
    with pytest.raises(StudyError, match="enrolled as service_user, not ps_worker"):
        add_relationship(store, "pilot", "SU1", "PW1", started_at=T0, caller=ADMIN)
    with pytest.raises(StudyError, match="session mode 'zoom'"):
        add_session(store, "pilot", pair, "s1", started_at=T0, mode="zoom", caller=ADMIN)
    add_session(store, "pilot", pair, "s1", started_at=T0, mode="text_chat", caller=ADMIN)
    from sqlalchemy import select

    from peerlens.study.models import Session, as_utc

    with store.transaction() as s:
        started = as_utc(s.scalars(select(Session.started_at)).one())
    # Stored in UTC: 14:30 at +01:00 is 13:30 UTC.
    assert started == dt.datetime(2026, 4, 1, 13, 30, tzinfo=dt.UTC)


def test_recording_is_content_addressed(store: Store, pair: int, tmp_path: Path) -> None:
    add_session(store, "pilot", pair, "s1", started_at=T0, mode="video", caller=ADMIN)
    data = b"# Polar H10 RR\n812\n798\n805\n"
    src = tmp_path / "rr.txt"
    src.write_bytes(data)
    _, sha = add_recording(
        store,
        "pilot",
        src,
        participant="SU1",
        session="s1",
        kind="rr",
        sampling_rate_hz=1000.0,
        caller=ADMIN,
    )
    assert sha == hashlib.sha256(data).hexdigest()
    stored = blob_path(store.blob_dir, sha, ".txt")
    assert stored == store.blob_dir / sha[:2] / f"{sha}.txt"
    assert stored.read_bytes() == data
    with pytest.raises(StudyError, match="no session 's9'"):
        add_recording(store, "pilot", src, participant="SU1", session="s9", caller=ADMIN)
    with pytest.raises(StudyError, match="window 'bad'"):
        add_recording(
            store, "pilot", src, participant="SU1", windows=[("bad", 5.0, 1.0)], caller=ADMIN
        )
    with pytest.raises(StudyError, match="no such file"):
        add_recording(store, "pilot", tmp_path / "none.edf", participant="SU1", caller=ADMIN)


def test_transcripts_are_versioned(store: Store, pair: int) -> None:
    sid = add_session(store, "pilot", pair, "s1", started_at=T0, mode="phone", caller=ADMIN)
    add_transcript(store, "pilot", "first draft", session_id=sid, author="PW1", caller=ADMIN)
    add_transcript(store, "pilot", "corrected", session_id=sid, author="PW1", caller=ADMIN)
    add_transcript(store, "pilot", "my story", kind="story", participant="PW1", caller=ADMIN)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, version, text FROM transcript ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("transcript", 1, "first draft"),
        ("transcript", 2, "corrected"),
        ("story", 1, "my story"),
    ]


def test_site_scoped_user_writes_only_for_their_sites(store: Store, tmp_path: Path) -> None:
    from peerlens.study import PermissionDenied

    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        "arms: [a]\nsites: [leeds, glasgow]\ntimepoints:\n  - name: t0\n    instruments: [gad7]\n",
        encoding="utf-8",
    )
    create_study(store, "multi", cfg, caller=ADMIN)
    add_participants(
        store,
        "multi",
        [
            NewParticipant("L-SU", site="leeds"),
            NewParticipant("L-PW", role="ps_worker", site="leeds"),
            NewParticipant("G-SU", site="glasgow"),
            NewParticipant("N-SU"),  # no site
        ],
        caller=ADMIN,
    )
    leeds = make_user(store, "sid", "researcher", study="multi", site="leeds")
    rec = tmp_path / "rr.txt"
    rec.write_text("800\n810\n790\n805\n", encoding="utf-8")
    for code in ("G-SU", "N-SU"):
        with pytest.raises(PermissionDenied, match="outside your site"):
            add_relationship(store, "multi", "L-PW", code, started_at=T0, caller=leeds)
        with pytest.raises(PermissionDenied, match="outside your site"):
            add_recording(store, "multi", rec, participant=code, kind="rr", caller=leeds)
        with pytest.raises(PermissionDenied, match="outside your site"):
            add_transcript(store, "multi", "hi there", participant=code, caller=leeds)
    with pytest.raises(PermissionDenied, match="only for a participant or session"):
        add_transcript(store, "multi", "a study-level note", caller=leeds)
    # A cross-site relationship made by a study-wide user stays out of a Leeds user's reach.
    cross = add_relationship(store, "multi", "L-PW", "G-SU", started_at=T0, caller=ADMIN)
    with pytest.raises(PermissionDenied, match="unknown participant 'G-SU' or outside your site"):
        add_session(store, "multi", cross, "s1", started_at=T0, mode="phone", caller=leeds)
    add_session(store, "multi", cross, "s1", started_at=T0, mode="phone", caller=ADMIN)
    with pytest.raises(PermissionDenied, match="outside your site"):
        add_transcript(store, "multi", "hello", participant="L-PW", session="s1", caller=leeds)
    # Within their site everything works.
    own = add_relationship(store, "multi", "L-PW", "L-SU", started_at=T0, caller=leeds)
    add_session(store, "multi", own, "s2", started_at=T0, mode="video", caller=leeds)
    add_recording(store, "multi", rec, participant="L-SU", kind="rr", caller=leeds)
    add_transcript(store, "multi", "Me too.", participant="L-PW", session="s2", caller=leeds)
    with store.engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE actor = 'sid' AND action NOT LIKE 'data.%'")
        ).scalar_one()
    assert n == 4  # the four allowed writes; nothing refused left a trace


def test_wfdb_header_without_its_signal_file_is_refused(
    store: Store, pair: int, tmp_path: Path
) -> None:
    import shutil

    mitdb = Path(__file__).parents[2] / ".." / "shared" / "data" / "ecg" / "mitdb" / "100.hea"
    lone = tmp_path / "100.hea"
    shutil.copy(mitdb, lone)
    with pytest.raises(StudyError, match=r"100.hea: signal file 100.dat not found beside it"):
        add_recording(store, "pilot", lone, participant="SU1", caller=ADMIN)
    lone.write_text("x/y 2 360\n", encoding="utf-8")
    with pytest.raises(StudyError, match="multi-segment"):
        add_recording(store, "pilot", lone, participant="SU1", caller=ADMIN)


def _nothing_stored(store: Store) -> None:
    """No recording row, no file in the recordings folder, no recording audited."""
    from sqlalchemy import func, select

    from peerlens.study.models import AuditLog, Recording

    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == 0
        actions = set(s.scalars(select(AuditLog.action)))
    assert not actions & {"recording.add", "recording.windows"}
    assert [p for p in store.blob_dir.rglob("*") if p.is_file()] == []


def test_a_recording_the_readers_cannot_read_is_refused_and_nothing_is_stored(
    store: Store, pair: int, tmp_path: Path
) -> None:
    """Each broken file is read when stored and refused with the ECG readers' own words (as
    ``peerlens hrv analyze`` says them: the file and what is wrong), never found only when the
    results are derived."""
    from peerlens import PeerlensError
    from peerlens.hrv import read_ecg

    from .._recordings import broken

    for case, upload in broken(tmp_path / "in").items():
        assert upload.refused is not None
        with pytest.raises(PeerlensError) as refused:
            add_recording(store, "pilot", upload.path, participant="SU1", caller=ADMIN)
        assert upload.refused in str(refused.value), case
        with pytest.raises(PeerlensError) as reader:
            read_ecg(upload.path)
        assert str(refused.value) == str(reader.value), case
        _nothing_stored(store)


def test_real_records_are_read_and_stored(store: Store, pair: int, tmp_path: Path) -> None:
    from sqlalchemy import select

    from peerlens.study.models import Recording

    from .._recordings import readable

    for upload in readable(tmp_path / "in").values():
        add_recording(store, "pilot", upload.path, participant="SU1", caller=ADMIN)
    with store.transaction() as s:
        assert sorted(s.scalars(select(Recording.suffix))) == [".edf", ".wfdb", ".wfdb"]
