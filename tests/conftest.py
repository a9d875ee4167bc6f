"""Fixtures for the tests that need a study database (``tests/study``, ``tests/security``):
every storage test runs on SQLite and on PostgreSQL.

PostgreSQL runs when ``PEERLENS_TEST_PG_URL`` is set; each test gets a fresh schema (dropped
afterwards). With ``CI`` set and no URL the PostgreSQL tests fail instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Connection, create_engine, text

from peerlens.study import add_participant, create_study, issue_link
from peerlens.study.audit import GENESIS, row_hash
from peerlens.study.policy import Caller, LinkHolder
from peerlens.study.storage import Store, create_study_engine, upgrade
from peerlens.study.users import bootstrap_admin

DATA = Path(__file__).parent / "study" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Give the test process, each pytest-xdist worker (``make test`` runs one per core) and the
    commands the tests start one BLAS thread.

    The story model's encoder otherwise uses one BLAS thread per core in every process, and
    threads that outnumber the free cores wait on each other: on the shared 2-core machine under
    load, the packaged model classified 300 corpus sentences in 9.8 s with two threads and 2.2 s
    with one, and the simulated trial's sessions in 2.9 s each against 0.41 s (see
    ``peerlens._blas`` and :meth:`peerlens.narrative.encoder.MiniLMEncoder.embed`). One thread
    everywhere also gives a serial run and a parallel one the same floating-point results.
    """
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # libraries loaded from now on, and child processes
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # those already loaded in this process


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


# Tampering with the audit log as someone holding the database (no key) can.

#: The columns of an audit entry every revision has (``mac`` came with revision 0021).
AUDIT_COLUMNS = (
    "seq",
    "at_utc",
    "actor",
    "action",
    "entity",
    "entity_id",
    "study",
    "old",
    "new",
    "reason",
    "prev_hash",
    "hash",
)


def drop_audit_guards(store: Store) -> None:
    """Drop the triggers that keep the audit log append-only, as the database's owner can."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))


def audit_rows(store: Store) -> list[dict[str, Any]]:
    """Every audit entry as stored, in chain order."""
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).mappings().all()
    return [dict(r) for r in found]


def insert_audit_row(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert ``row`` (its :data:`AUDIT_COLUMNS`, no MAC) into the audit log with SQL."""
    values = ", ".join(f":{c}" for c in AUDIT_COLUMNS)
    sql = f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES ({values})"
    conn.execute(text(sql), {c: row.get(c) for c in AUDIT_COLUMNS})


def rewrite_chain(store: Store, seq: int, actor: str, *, strip_macs: bool = False) -> None:
    """Give row ``seq`` another ``actor`` and recompute every hash from it on, so that every
    hash and link checks out again; with ``strip_macs`` also set every row's MAC to NULL (the
    chain then looks like one written before revision 0021)."""
    drop_audit_guards(store)
    rows = audit_rows(store)
    sql = "UPDATE audit_log SET actor = :actor, prev_hash = :prev_hash, hash = :hash"
    sql += ", mac = NULL WHERE seq = :seq" if strip_macs else " WHERE seq = :seq"
    prev = GENESIS
    with store.engine.begin() as conn:
        for row in rows:
            if row["seq"] == seq:
                row["actor"] = actor
            if strip_macs or row["seq"] >= seq:
                row["prev_hash"] = prev
                row["hash"] = row_hash(row)
                conn.execute(text(sql), row)
            prev = str(row["hash"])


def legacy_database(
    db_url: str,
    entries: Sequence[tuple[str, str]],
    new: Callable[[int, str, str], str | None] = lambda seq, prev, action: None,
) -> None:
    """A database at revision 0018 whose audit log holds ``entries`` (action, entity), written
    before audit entries carried MACs; ``new(seq, prev_hash, action)`` gives an entry's
    ``new``."""
    engine = create_study_engine(db_url)
    upgrade(engine, "0018")
    prev = GENESIS
    with engine.begin() as conn:
        for seq, (action, entity) in enumerate(entries, start=1):
            row: dict[str, Any] = dict.fromkeys(AUDIT_COLUMNS)
            row.update(
                seq=seq,
                at_utc="2026-11-30T10:00:00.000000+00:00",
                actor="old",
                action=action,
                entity=entity,
                new=new(seq, prev, action),
                prev_hash=prev,
            )
            row["hash"] = prev = row_hash(row)
            insert_audit_row(conn, row)
    engine.dispose()
