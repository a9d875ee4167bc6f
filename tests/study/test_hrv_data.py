"""The HRV analysis table: one row per derived window with pseudonymous keys, the recording's
timepoint and metadata, errors spread over the windows they leave empty, a site-scoped reader's
sites only, and the read audited as an export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import peerlens.hrv
from peerlens.study import HRV_TABLE_COLUMNS, Store, StudyError, add_recording, derive, hrv_table
from peerlens.study.models import AuditLog

from ..analysis._hrv_trial import WINDOWS, add_hrv
from ..analysis._trial import make_trial
from ..conftest import ADMIN, make_user


@pytest.fixture
def study(store: Store, tmp_path: Path) -> tuple[Store, list[str]]:
    trial = make_trial(store, ADMIN, tmp_path, n=4)
    codes = sorted(trial.items["participant"].unique())
    add_hrv(store, ADMIN, tmp_path, codes)
    return store, codes


def test_one_row_per_window_with_pseudonymous_keys_and_metadata(
    study: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, codes = study
    table = hrv_table(store, "trial", caller=ADMIN)
    w = table.windows
    assert list(w.columns) == list(HRV_TABLE_COLUMNS)
    # 4 participants x 2 timepoints + 1 untimed recording, each whole + three windows.
    assert len(w) == (2 * len(codes) + 1) * 4
    assert set(w["recording"]) == {f"{c}-R{k}" for c in codes for k in (1, 2)} | {f"{codes[1]}-R3"}
    first = w[(w["participant"] == codes[0]) & (w["timepoint"] == "week12")]
    assert first["arm"].unique().tolist() == ["peer_support"]
    assert set(first["window"]) == {"whole", *(x[0] for x in WINDOWS)}
    session = first.set_index("window").loc["session"]
    assert session["duration_s"] == 120.0 and session["status"] == "ok"
    assert not session["valid"] and "artifact" in str(session["reason"]).lower()
    assert session["artifact_rate"] > 0.05
    untimed = w[w["recording"] == f"{codes[1]}-R3"]
    assert untimed["timepoint"].isna().all()
    assert (w["kind"] == "rr").all()
    assert (w.loc[w["timepoint"].notna(), "device"] == "chest strap").all()
    assert untimed["device"].isna().all()  # stored without one
    assert w["sampling_rate_hz"].isna().all()  # an RR list has none
    assert w["artifact_method"].notna().all() and w["spectral_method"].notna().all()
    # Nothing that could lead back to the file: no path, name or content hash.
    text = w.to_csv()
    assert "rr/" not in text and ".txt" not in text
    with store.transaction() as s:
        from peerlens.study.models import Recording

        for sha in s.scalars(select(Recording.sha256)):
            assert sha[:12] not in text
        last = s.scalars(select(AuditLog).order_by(AuditLog.seq.desc())).first()
        assert last is not None and last.action == "export"
        assert table.sha256 in (last.new or "")
    # The same data give the same hash.
    assert hrv_table(store, "trial", caller=ADMIN).sha256 == table.sha256
    assert len(table.recordings) == 2 * len(codes) + 1


def test_a_failed_analysis_is_an_error_row_per_window(
    study: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, codes = study
    broken = tmp_path / "broken.txt"
    broken.write_text("800\n", encoding="utf-8")
    # A file stored before recordings were read at upload (the readers refuse it there now).
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(peerlens.hrv, "read_ecg", lambda *args, **kwargs: None)
        add_recording(
            store, "trial", broken, participant=codes[2], kind="rr", windows=list(WINDOWS),
            timepoint="week24", caller=ADMIN,
        )  # fmt: skip
    derive(store, "trial", ["hrv"], caller=ADMIN, executor="sequential")
    w = hrv_table(store, "trial", caller=ADMIN).windows
    rows = w[w["timepoint"] == "week24"]
    assert sorted(rows["window"]) == sorted(["whole", *(x[0] for x in WINDOWS)])
    assert (rows["status"] == "error").all() and (rows["reason"] == "analysis error").all()
    assert rows["rmssd_ms"].isna().all() and (~rows["valid"]).all()


def test_a_site_scoped_reader_gets_their_sites_only(
    study: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, _ = study
    north = make_user(store, "north-r", "researcher", study="trial", site="north")
    mine = hrv_table(store, "trial", caller=north).windows
    assert len(mine) and set(mine["site"]) == {"north"}
    everyone = hrv_table(store, "trial", caller=ADMIN).windows
    assert len(mine) == int((everyone["site"] == "north").sum())


def test_a_recording_at_an_unknown_timepoint_is_refused(
    study: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, codes = study
    path = tmp_path / "x.txt"
    path.write_text("\n".join(str(800 + int(x)) for x in np.arange(50) % 7), encoding="utf-8")
    with pytest.raises(StudyError, match="no timepoint 'week99'"):
        add_recording(
            store, "trial", path, participant=codes[0], kind="rr", timepoint="week99",
            caller=ADMIN,
        )  # fmt: skip
