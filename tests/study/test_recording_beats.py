"""The beat series of a stored recording: the RR intervals given back as stored, site scope,
and one refusal for unknown and out-of-site recordings; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from peerlens.study import (
    PermissionDenied,
    Store,
    add_participant,
    add_recording,
    create_study,
    recording_beats,
)
from peerlens.study.models import Recording
from peerlens.study.recording_beats import BEAT_COLUMNS

from .conftest import ADMIN, make_user

#: A clean RR series (ms): no beat for the artifact correction to move.
RR = 800 + 40 * np.sin(np.arange(300) / 3.0)


def _store_rr(store: Store, tmp_path: Path, code: str, rr: np.ndarray = RR) -> str:
    f = tmp_path / f"{code}.txt"
    f.write_text("\n".join(f"{v:.3f}" for v in rr) + "\n", encoding="utf-8")
    add_recording(store, "pilot", f, participant=code, kind="rr", caller=ADMIN)
    with store.transaction() as s:
        return str(s.query(Recording.sha256).order_by(Recording.id.desc()).first()[0])


@pytest.fixture
def shas(store: Store, config_path: Path, tmp_path: Path) -> dict[str, str]:
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "L1", site="leeds", caller=ADMIN)
    add_participant(store, "pilot", "G1", site="glasgow", caller=ADMIN)
    out = {"L1": _store_rr(store, tmp_path, "L1")}
    # Glasgow's recording differs by one interval, so it is stored as another file.
    other = RR.copy()
    other[10] += 5
    out["G1"] = _store_rr(store, tmp_path, "G1", other)
    return out


def test_the_rr_series_comes_back_as_stored(store: Store, shas: dict[str, str]) -> None:
    beats = recording_beats(store, "pilot", "L1", shas["L1"], caller=ADMIN)
    assert list(beats.columns) == BEAT_COLUMNS
    assert set(beats["source"]) == {"original"}
    rr = beats["rr_ms"].to_numpy()[1:]
    # Every stored interval after the first beat, to the file's three decimals.
    np.testing.assert_allclose(rr, np.round(RR, 3), atol=1e-6)
    assert len(rr) == len(RR)  # the first beat starts the series; each interval follows
    # A unique prefix of 12 characters will do.
    short = recording_beats(store, "pilot", "L1", shas["L1"][:12], caller=ADMIN)
    assert short.equals(beats)


def test_the_same_file_of_two_participants_is_told_apart(
    store: Store, shas: dict[str, str], tmp_path: Path
) -> None:
    add_participant(store, "pilot", "L2", site="leeds", caller=ADMIN)
    assert _store_rr(store, tmp_path, "L2") == shas["L1"]
    for code in ("L1", "L2"):
        assert len(recording_beats(store, "pilot", code, shas["L1"], caller=ADMIN)) == len(RR) + 1


def test_a_site_scoped_reader_gets_their_sites_recordings_only(
    store: Store, shas: dict[str, str]
) -> None:
    leeds = make_user(store, "leeds", "researcher", study="pilot", site="leeds")
    assert len(recording_beats(store, "pilot", "L1", shas["L1"], caller=leeds)) > 0
    messages = set()
    for code, key in (
        ("G1", shas["G1"]),  # another site's
        ("L1", shas["G1"]),  # another participant's file
        ("L1", "0" * 64),
        ("L1", "../../etc/passwd"),
        ("L1", "abc"),
        ("nobody", shas["L1"]),
    ):
        with pytest.raises(PermissionDenied) as exc:
            recording_beats(store, "pilot", code, key, caller=leeds)
        messages.add(str(exc.value).split("'")[0])
    assert messages == {"no recording "}


@pytest.mark.parametrize("role", ["auditor", "ps_worker"])
def test_roles_without_participant_data_are_refused(
    store: Store, shas: dict[str, str], role: str
) -> None:
    caller = make_user(store, f"a-{role}", role, study="pilot")
    with pytest.raises(PermissionDenied):
        recording_beats(store, "pilot", "L1", shas["L1"], caller=caller)
