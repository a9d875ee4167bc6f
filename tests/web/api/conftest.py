"""Fixtures of the API tests: the web app's test study (``tests/web/conftest.py``: A1 at Leeds,
B2 at Glasgow), Glasgow's data (:func:`glasgow`) and personal access tokens of its users, on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from peerlens.study import (
    Caller,
    add_participant,
    add_recording,
    create_token,
    derive,
    derived_frame,
    grant_studio_access,
    import_responses,
    save_story,
    set_identity,
)

from ..conftest import ADMIN, PASSWORD, Site, make_user, walk_routes

__all__ = [
    "ADMIN",
    "PASSWORD",
    "Glasgow",
    "Site",
    "api",
    "bearer",
    "make_user",
    "token",
    "walk_routes",
]


def token(site: Site, caller: Caller = ADMIN, scopes: Iterable[str] = ("read",)) -> str:
    """A new personal access token of ``caller`` with ``scopes``."""
    return create_token(site.store, "test", scopes=list(scopes), caller=caller).token


def bearer(value: str) -> dict[str, str]:
    """The ``Authorization`` header presenting token ``value``."""
    return {"Authorization": f"Bearer {value}"}


def api(site: Site, caller: Caller = ADMIN, scopes: Iterable[str] = ("read",)) -> TestClient:
    """A client of the app sending a new token of ``caller`` with ``scopes`` on every request."""
    client = TestClient(
        site.client.app, base_url="https://testserver", raise_server_exceptions=False
    )
    client.headers.update(bearer(token(site, caller, scopes)))
    return client


@dataclass(frozen=True)
class Glasgow:
    """Site B's data in the test study: B2's answers, identity and analysed RR recording, and a
    Glasgow PS worker's practice story."""

    recording: str
    worker: str
    story: int
    #: An access token of the Glasgow PS worker's (only a global admin may revoke it).
    token: int = 0
    name: str = "Gail Example"


@pytest.fixture
def glasgow(site: Site, tmp_path: Path) -> Glasgow:
    store = site.store
    for code in ("A1", "B2"):
        answers = tmp_path / f"{code}.csv"
        items = ",".join(f"phq9_{i}" for i in range(1, 10))
        answers.write_text(f"participant,{items}\n{code},{','.join('1' * 9)}\n")
        import_responses(
            store, "pilot", answers, timepoint="baseline", instrument="phq9", caller=ADMIN
        )
    set_identity(store, "pilot", "B2", {"name": Glasgow.name}, caller=ADMIN)
    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(f"{800 + 40 * math.sin(i / 3):.3f}" for i in range(300)) + "\n")
    add_recording(store, "pilot", rr, participant="B2", kind="rr", caller=ADMIN)
    derive(store, "pilot", ["hrv", "scores"], caller=ADMIN)
    recording = str(derived_frame(store, "pilot", "hrv", caller=ADMIN)["recording"].iloc[0])
    add_participant(store, "pilot", "GW", site="glasgow", role="ps_worker", caller=ADMIN)
    own = make_user(store, "own-gw", "ps_worker", study="pilot", site="glasgow")
    grant_studio_access(store, "pilot", "GW", own.username, relation="worker", caller=ADMIN)
    story = save_story(
        store, "pilot", "I felt the same way once.", told_on=dt.date(2026, 3, 2), caller=own
    )
    token = create_token(store, "gw sync", scopes=["read"], caller=own).id
    return Glasgow(recording, "GW", story, token)
