from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from peerlens.study import NewParticipant, PermissionDenied, Store, add_participants, create_study
from peerlens.study.export import export_study
from peerlens.study.responses import import_responses
from peerlens.study.users import create_user, grant_role, resolve_rights

from .conftest import ACTOR

PW = "correct horse battery"


@pytest.fixture
def staffed(store: Store, config_path: Path, tmp_path: Path) -> Store:
    create_study(store, "pilot", config_path, actor=ACTOR)
    people = [
        NewParticipant("L1", site="leeds", identity={"name": "Lee One"}),
        NewParticipant("G1", site="glasgow"),
    ]
    add_participants(store, "pilot", people, actor=ACTOR)
    f = tmp_path / "gad.csv"
    cols = ",".join(f"gad7_{i}" for i in range(1, 8))
    f.write_text(f"participant,{cols}\nL1,1,1,1,1,1,1,1\nG1,2,2,2,2,2,2,2\n", encoding="utf-8")
    import_responses(store, "pilot", f, timepoint="baseline", actor=ACTOR)
    for name in ("ada", "rex", "pat", "sid"):
        create_user(store, name, PW, actor=ACTOR)
    grant_role(store, "ada", "admin", actor=ACTOR)
    grant_role(store, "rex", "researcher", study="pilot", actor=ACTOR)
    grant_role(store, "pat", "ps_worker", study="pilot", actor=ACTOR)
    grant_role(store, "sid", "researcher", study="pilot", site="leeds", actor=ACTOR)
    return store


def test_passwords_are_argon2id_and_checked(staffed: Store) -> None:
    with staffed.engine.connect() as conn:
        hashes = [r[0] for r in conn.exec_driver_sql("SELECT password_hash FROM app_user")]
    assert all(h.startswith("$argon2id$") for h in hashes) and PW not in "".join(hashes)
    with pytest.raises(PermissionDenied, match="unknown user or wrong password"):
        resolve_rights(staffed, "rex", "wrong password!", "pilot")
    with pytest.raises(PermissionDenied, match="unknown user or wrong password"):
        resolve_rights(staffed, "nobody", PW, "pilot")
    with pytest.raises(PermissionDenied, match="give --user"):
        resolve_rights(staffed, None, None, "pilot")


def test_rights_per_role_study_and_site(staffed: Store) -> None:
    ada = resolve_rights(staffed, "ada", PW, "pilot")
    rex = resolve_rights(staffed, "rex", PW, "pilot")
    pat = resolve_rights(staffed, "pat", PW, "pilot")
    sid = resolve_rights(staffed, "sid", PW, "pilot")
    assert (ada.export_tier, ada.can_write, ada.can_manage, ada.sites) == ("full", 1, 1, None)
    assert (rex.export_tier, rex.can_write, rex.can_manage) == ("remove_identifiers", 1, 0)
    assert (pat.export_tier, pat.can_write) == ("none", 0)
    assert sid.sites == frozenset({"leeds"})


def test_export_tier_checked_against_rights(staffed: Store, tmp_path: Path) -> None:
    rex = resolve_rights(staffed, "rex", PW, "pilot")
    with pytest.raises(PermissionDenied, match="at most tier 'remove_identifiers', not 'full'"):
        export_study(staffed, "pilot", tmp_path / "x.csv", tier="full", rights=rex)
    assert not (tmp_path / "x.csv").exists()
    pat = resolve_rights(staffed, "pat", PW, "pilot")
    with pytest.raises(PermissionDenied):
        export_study(staffed, "pilot", tmp_path / "x.csv", tier="deidentified", rights=pat)
    res = export_study(staffed, "pilot", tmp_path / "ok.csv", tier="deidentified", rights=rex)
    assert set(pd.read_csv(res.path)["participant"]) == {"L1", "G1"}


def test_site_scoped_export_holds_only_that_site(staffed: Store, tmp_path: Path) -> None:
    sid = resolve_rights(staffed, "sid", PW, "pilot")
    res = export_study(staffed, "pilot", tmp_path / "leeds.csv", tier="deidentified", rights=sid)
    frame = pd.read_csv(res.path)
    assert set(frame["participant"]) == {"L1"} and set(frame["site"]) == {"leeds"}
    manifest = json.loads(res.manifest.read_text())
    assert manifest["exported_by"] == "sid" and manifest["tier"] == "deidentified"


def test_site_scoped_researcher_writes_only_for_their_site(staffed: Store, tmp_path: Path) -> None:
    from peerlens.study import ImportRejected
    from peerlens.study.participants import add_participant

    sid = resolve_rights(staffed, "sid", PW, "pilot")
    f = tmp_path / "wk12.csv"
    cols = ",".join(f"gad7_{i}" for i in range(1, 8))
    f.write_text(f"participant,{cols}\nL1,0,0,0,0,0,0,0\nG1,3,3,3,3,3,3,3\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_responses(staffed, "pilot", f, timepoint="week12", sites=sid.sites, actor=sid.actor)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "participant")]
    assert "'G1' is at site 'glasgow', outside your site(s) leeds" in str(info.value)
    with pytest.raises(Exception, match="glasgow is outside your site"):
        add_participant(staffed, "pilot", "G2", site="glasgow", sites=sid.sites, actor="sid")
    assert add_participant(staffed, "pilot", "L2", site="leeds", sites=sid.sites, actor="sid")
