"""Fixtures for the tests that need a study database (``tests/study``, ``tests/security``):
every storage test runs on SQLite and on PostgreSQL.

PostgreSQL runs when ``PEERLENS_TEST_PG_URL`` is set; each test gets a fresh schema (dropped
afterwards). With ``CI`` set and no URL the PostgreSQL tests fail instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from peerlens.study import add_participant, create_study, issue_link
from peerlens.study.policy import Caller, LinkHolder
from peerlens.study.storage import Store
from peerlens.study.users import bootstrap_admin

DATA = Path(__file__).parent / "study" / "data"
#: Real REDCap projects published by others, kept beside the repository with the other real data
#: (``../shared/data/redcap``; ``PEERLENS_REDCAP_DATA`` points at another copy of that folder).
#: ``real-projects/`` holds the sources each with its README and LICENCE; until a source is there
#: the tests built from it skip, naming the folder (benchmarks/redcap_roundtrip.py reads the same).
REDCAP_DATA = Path(
    os.environ.get(
        "PEERLENS_REDCAP_DATA",
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "redcap",
    )
)
REAL_REDCAP = REDCAP_DATA / "real-projects"


def needs_real_redcap(*parts: str) -> pytest.MarkDecorator:
    """Skip the test while the real REDCap project ``real-projects/<parts>`` is absent."""
    path = REAL_REDCAP.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"real REDCap project not found at {path}")


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def _pg_base_url() -> str:
    url = os.environ.get("PEERLENS_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI is set but PEERLENS_TEST_PG_URL is not: PostgreSQL tests must run")
        pytest.skip("PostgreSQL tests need PEERLENS_TEST_PG_URL")
    return url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}"
        return
    base = _pg_base_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    """A new, migrated store with recordings under ``tmp_path/blobs`` and one global admin,
    :data:`ADMIN` (password :data:`PASSWORD`)."""
    st = Store.open(db_url, create=True, blob_dir=tmp_path / "blobs")
    bootstrap_admin(st, ACTOR, PASSWORD)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A study config with two arms, two sites, three timepoints and bundled instruments."""
    p = tmp_path / "study.yaml"
    p.write_text(
        """
title: Peer connection pilot
arms: [intervention, control]
sites: [leeds, glasgow]
missing_codes: [-99, -98]
timepoints:
  - name: baseline
    offset_days: 0
    instruments: [phq9, gad7]
  - name: week12
    redcap_event: week_12_arm_1
    offset_days: 84
    window_before_days: 7
    window_after_days: 14
    instruments: [phq9, gad7]
  - name: week24
    offset_days: 168
    instruments: [phq9]
""",
        encoding="utf-8",
    )
    return p


#: The identity-vault key of every test database (made for the tests, protects nothing).
VAULT_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture(autouse=True)
def _vault_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERLENS_VAULT_KEY", VAULT_KEY)
    monkeypatch.delenv("PEERLENS_VAULT_KEY_FILE", raising=False)


ACTOR = "tester"
#: The password of every test account.
PASSWORD = "correct horse battery"
#: The global admin every test store starts with.
ADMIN = Caller(ACTOR)


def make_user(
    store: Store,
    name: str,
    role: str,
    *,
    study: str | None = None,
    site: str | None = None,
    tier: str | None = None,
) -> Caller:
    """Create user ``name`` (password :data:`PASSWORD`) with one role; return it as a caller."""
    from peerlens.study.users import create_user, grant_role

    create_user(store, name, PASSWORD, caller=ADMIN)
    grant_role(store, name, role, study=study, site=site, export_tier=tier, caller=ADMIN)
    return Caller(name)


@pytest.fixture
def visit_config_path(tmp_path: Path) -> Path:
    """A study config for personal links: the SCS (26 items, 3 pages) and the PHQ-9 (1 page)
    at baseline, a missing code and a consent text."""
    p = tmp_path / "visit-study.yaml"
    p.write_text(
        """
title: Peer connection pilot
sites: [leeds, glasgow]
missing_codes: [-99]
consent:
  version: v1
  text: |
    I agree to take part.

    I know I can stop at any time.
timepoints:
  - name: baseline
    instruments: [scs, phq9]
  - name: week12
    instruments: [phq9]
""",
        encoding="utf-8",
    )
    return p


@pytest.fixture
def holder(store: Store, visit_config_path: Path) -> LinkHolder:
    """Study ``pilot`` (:func:`visit_config_path`) whose participant A1 (leeds) holds a personal
    link for baseline: the link holder (its token)."""
    create_study(store, "pilot", visit_config_path, caller=ADMIN)
    add_participant(store, "pilot", "A1", site="leeds", caller=ADMIN)
    link = issue_link(store, "pilot", "A1", timepoint="baseline", caller=ADMIN)
    return LinkHolder("A1", link.token)
