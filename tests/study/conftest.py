"""Fixtures for the study-data tests: every storage test runs on SQLite and on PostgreSQL.

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

from peerlens.study.storage import Store

DATA = Path(__file__).parent / "data"
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
    """An open, migrated store with recordings under ``tmp_path/blobs``."""
    st = Store.open(db_url, blob_dir=tmp_path / "blobs")
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


ACTOR = "tester"
