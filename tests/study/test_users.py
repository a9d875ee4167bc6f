from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from peerlens.study import (
    Caller,
    NewParticipant,
    PermissionDenied,
    Store,
    add_participants,
    authenticate,
    create_study,
    list_participants,
    set_active,
)
from peerlens.study.export import export_study
from peerlens.study.responses import import_responses
from peerlens.study.users import create_user, grant_role

from .conftest import ADMIN, PASSWORD

PW = PASSWORD


@pytest.fixture
def staffed(store: Store, config_path: Path, tmp_path: Path) -> Store:
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [
        NewParticipant("L1", site="leeds", identity={"name": "Lee One"}),
        NewParticipant("G1", site="glasgow"),
    ]
    add_participants(store, "pilot", people, caller=ADMIN)
    f = tmp_path / "gad.csv"
    cols = ",".join(f"gad7_{i}" for i in range(1, 8))
    f.write_text(f"participant,{cols}\nL1,1,1,1,1,1,1,1\nG1,2,2,2,2,2,2,2\n", encoding="utf-8")
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    for name in ("ada", "rex", "pat", "sid"):
        create_user(store, name, PW, caller=ADMIN)
    grant_role(store, "ada", "admin", caller=ADMIN)
    grant_role(store, "rex", "researcher", study="pilot", caller=ADMIN)
    grant_role(store, "pat", "ps_worker", study="pilot", caller=ADMIN)
    grant_role(store, "sid", "researcher", study="pilot", site="leeds", caller=ADMIN)
    return store


def test_passwords_are_argon2id_and_checked(staffed: Store) -> None:
    with staffed.engine.connect() as conn:
        hashes = [r[0] for r in conn.exec_driver_sql("SELECT password_hash FROM app_user")]
    assert all(h.startswith("$argon2id$") for h in hashes) and PW not in "".join(hashes)
    with pytest.raises(PermissionDenied, match="unknown user or wrong password"):
        authenticate(staffed, "rex", "wrong password!")
    with pytest.raises(PermissionDenied, match="unknown user or wrong password"):
        authenticate(staffed, "nobody", PW)
    assert authenticate(staffed, "rex", PW) == Caller("rex")


def test_a_deactivated_user_can_neither_sign_in_nor_act(staffed: Store) -> None:
    rex = authenticate(staffed, "rex", PW)
    set_active(staffed, "rex", False, caller=ADMIN)
    with pytest.raises(PermissionDenied, match="unknown user or wrong password"):
        authenticate(staffed, "rex", PW)
    with pytest.raises(PermissionDenied, match="not an active peerlens user"):
        list_participants(staffed, "pilot", caller=rex)


def test_export_tier_checked_against_rights(staffed: Store, tmp_path: Path) -> None:
    rex, pat = Caller("rex"), Caller("pat")
    with pytest.raises(PermissionDenied, match="at most at tier 'remove_identifiers', not 'full'"):
        export_study(staffed, "pilot", tmp_path / "x.csv", tier="full", caller=rex)
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(PermissionDenied):
        export_study(staffed, "pilot", tmp_path / "x.csv", tier="deidentified", caller=pat)
    res = export_study(staffed, "pilot", tmp_path / "ok.csv", tier="deidentified", caller=rex)
    assert set(pd.read_csv(res.path)["participant"]) == {"L1", "G1"}


def test_site_scoped_export_holds_only_that_site(staffed: Store, tmp_path: Path) -> None:
    sid = Caller("sid")
    res = export_study(staffed, "pilot", tmp_path / "leeds.csv", tier="deidentified", caller=sid)
    frame = pd.read_csv(res.path)
    assert set(frame["participant"]) == {"L1"} and set(frame["site"]) == {"leeds"}
    manifest = json.loads(res.manifest.read_text())
    assert manifest["exported_by"] == "sid" and manifest["tier"] == "deidentified"


def test_site_scoped_researcher_writes_only_for_their_site(staffed: Store, tmp_path: Path) -> None:
    from peerlens.study import ImportRejected
    from peerlens.study.participants import add_participant

    sid = Caller("sid")
    f = tmp_path / "wk12.csv"
    cols = ",".join(f"gad7_{i}" for i in range(1, 8))
    f.write_text(f"participant,{cols}\nL1,0,0,0,0,0,0,0\nG1,3,3,3,3,3,3,3\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_responses(staffed, "pilot", f, timepoint="week12", caller=sid)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "participant")]
    assert "unknown participant 'G1' or outside your site(s) leeds" in str(info.value)
    with pytest.raises(Exception, match="glasgow is outside your site"):
        add_participant(staffed, "pilot", "G2", site="glasgow", caller=sid)
    assert add_participant(staffed, "pilot", "L2", site="leeds", caller=sid)
