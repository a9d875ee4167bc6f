"""Personal links: issued, revoked, refused alike whatever is wrong, audited without the token."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from peerlens.study import (
    LinkHolder,
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    audit_frame,
    create_study,
    issue_link,
    open_visit,
    revoke_links,
    verify_audit,
)
from peerlens.study.models import ParticipantLink
from peerlens.study.policy import LINK_REFUSED

from .conftest import ADMIN, make_user


@pytest.fixture
def pilot(store: Store, visit_config_path: Path) -> Store:
    create_study(store, "pilot", visit_config_path, caller=ADMIN)
    add_participant(store, "pilot", "A1", site="leeds", caller=ADMIN)
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    return store


def test_a_link_opens_its_participants_timepoint(pilot: Store) -> None:
    link = issue_link(pilot, "pilot", "A1", timepoint="baseline", caller=ADMIN)
    assert len(link.token) >= 43 and link.token not in repr(link)
    visit = open_visit(pilot, caller=LinkHolder("A1", link.token))
    assert (visit.participant, visit.timepoint) == ("A1", "baseline")
    assert [p.layout.instrument for p in visit.pages] == ["scs", "scs", "scs", "phq9"]
    with pilot.transaction() as s:
        stored = s.scalars(select(ParticipantLink.token_sha256)).all()
    assert link.token not in stored and len(stored) == 1  # only its hash is kept


def _refused(store: Store, holder: LinkHolder) -> None:
    with pytest.raises(PermissionDenied) as caught:
        open_visit(store, caller=holder)
    assert str(caught.value) == LINK_REFUSED  # one message whatever the reason


def test_every_bad_link_is_refused_with_the_same_words(pilot: Store) -> None:
    a = issue_link(pilot, "pilot", "A1", timepoint="baseline", caller=ADMIN)
    b = issue_link(pilot, "pilot", "B2", timepoint="baseline", caller=ADMIN)
    _refused(pilot, LinkHolder("B2", a.token))  # A's token under B's code
    _refused(pilot, LinkHolder("A1", "x" * 43))  # a guessed token
    _refused(pilot, LinkHolder("A1", ""))
    revoke_links(pilot, "pilot", "B2", caller=ADMIN)
    _refused(pilot, LinkHolder("B2", b.token))
    with pilot.transaction() as s:  # expire A's link (as time passing would)
        link = s.scalars(select(ParticipantLink).where(ParticipantLink.revoked_at.is_(None))).one()
        link.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    _refused(pilot, LinkHolder("A1", a.token))
    assert verify_audit(pilot, caller=ADMIN).ok


def test_a_new_link_revokes_the_earlier_one(pilot: Store) -> None:
    first = issue_link(pilot, "pilot", "A1", timepoint="baseline", caller=ADMIN)
    second = issue_link(pilot, "pilot", "A1", timepoint="baseline", caller=ADMIN, days=2)
    _refused(pilot, LinkHolder("A1", first.token))
    assert open_visit(pilot, caller=LinkHolder("A1", second.token)).participant == "A1"
    other = issue_link(pilot, "pilot", "A1", timepoint="week12", caller=ADMIN)
    assert open_visit(pilot, caller=LinkHolder("A1", other.token)).timepoint == "week12"
    assert revoke_links(pilot, "pilot", "A1", timepoint="week12", caller=ADMIN) == 1
    assert open_visit(pilot, caller=LinkHolder("A1", second.token)).timepoint == "baseline"


def test_a_link_row_changed_outside_peerlens_grants_nothing(pilot: Store) -> None:
    link = issue_link(pilot, "pilot", "A1", timepoint="baseline", caller=ADMIN, days=1)
    with pilot.engine.begin() as conn:  # stretch the expiry with SQL, past the seal
        conn.execute(
            update(ParticipantLink).values(expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
        )
    with pytest.raises(Exception, match="outside peerlens"):
        open_visit(pilot, caller=LinkHolder("A1", link.token))


def test_issuing_is_site_scoped_checked_and_audited_without_the_token(pilot: Store) -> None:
    leeds = make_user(pilot, "leeds-r", "researcher", study="pilot", site="leeds")
    link = issue_link(pilot, "pilot", "A1", timepoint="baseline", caller=leeds)
    with pytest.raises(PermissionDenied, match="outside your site"):
        issue_link(pilot, "pilot", "B2", timepoint="baseline", caller=leeds)
    with pytest.raises(StudyError, match="1 to 366 days"):
        issue_link(pilot, "pilot", "A1", timepoint="baseline", caller=ADMIN, days=0)
    with pytest.raises(StudyError, match="no timepoint"):
        issue_link(pilot, "pilot", "A1", timepoint="week99", caller=ADMIN)
    revoke_links(pilot, "pilot", "A1", caller=leeds, reason="sent to a wrong address")
    log = audit_frame(pilot, caller=ADMIN)
    actions = log[log["action"].isin(["link.issue", "link.revoke"])]
    assert list(actions["action"]) == ["link.issue", "link.revoke"]
    assert set(actions["actor"]) == {"leeds-r"}
    text = log.to_csv()
    assert link.token not in text
    issued = json.loads(actions.iloc[0]["new"])
    assert issued["timepoint"] == "baseline"
    assert verify_audit(pilot, caller=ADMIN).ok
