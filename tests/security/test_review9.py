"""Review 9 (hostile review of seal scheme 2, additive run digests and the scheme upgrade,
commits 8116f58, 33dcacc and 9d6770c): findings, each a test that fails while the finding
stands."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import text

from peerlens.study import (
    LinkHolder,
    Store,
    add_participant,
    agree_to_consent,
    audit_frame,
    issue_link,
    open_visit,
    save_page,
    verify_audit,
    verify_derived,
)
from peerlens.study import integrity
from peerlens.study.integrity import reseal_all

from ..conftest import ADMIN

_SCORE_COLUMNS = (
    "id",
    "derivation_id",
    "response_id",
    "instrument",
    "name",
    "value",
    "text",
    "spec_version",
    "spec_sha256",
    "engine_version",
    "source_updated_at",
)


def _complete(store: Store, holder: LinkHolder, value: int) -> None:
    """Answer the SCS through ``holder``'s link (every item ``value``): the form completes."""
    agree_to_consent(store, "v1", caller=holder)
    for page in (1, 2, 3):
        layout = open_visit(store, caller=holder).pages[page - 1].layout
        answers = {q.item: str(value) for q in layout.questions}
        assert save_page(store, page, answers, caller=holder).problems == {}


def _scored_legacy(store: Store, holder: LinkHolder) -> None:
    """Study ``pilot`` where A1 and B2 completed the SCS, then sealed as peerlens did before
    revision 0023 (seal scheme 1): a database the next keyed write upgrades."""
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    other = LinkHolder(
        "B2", issue_link(store, "pilot", "B2", timepoint="baseline", caller=ADMIN).token
    )
    _complete(store, holder, 4)
    _complete(store, other, 2)
    with store.transaction() as s:
        reseal_all(s, store.vault_key(s), actor="old", reason="as sealed before 0023", scheme=1)
    assert verify_audit(store, caller=ADMIN).ok
    assert verify_derived(store, "pilot", caller=ADMIN).ok


def _problems(store: Store) -> tuple[list[str], list[str]]:
    return (
        list(verify_audit(store, caller=ADMIN).problems),
        list(verify_derived(store, "pilot", caller=ADMIN).problems),
    )


# ---------------------------------------------------------------------------- finding R9-1
#
# The scheme upgrade (integrity.ensure_scheme) checks every unit under the old scheme
# (check_seals, one set of statements) and then reseals every unit as it reads it *again*
# (reseal_all, other statements). On PostgreSQL, under READ COMMITTED, each statement sees what
# other connections committed before it began, and neither step locks the rows it reads: a row
# changed with SQL between the check and the reseal is read by the reseal and sealed as if it
# were genuine. Afterwards every check passes. (On SQLite the upgrading transaction holds the
# write lock from its first statement, so nobody can write in between: sound there.)
#
# Here the change hides that a score is stale: its ``source_updated_at`` (not in the run's
# digest) is moved past the response's last change, so ``check_derived`` cannot see it either.


def test_r9_1_a_row_changed_between_the_upgrade_check_and_the_reseal_is_sealed_as_genuine(
    store: Store, holder: LinkHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the upgrading transaction holds the write lock (sound)")
    _scored_legacy(store, holder)
    with store.engine.connect() as conn:
        row: dict[str, Any] = dict(
            conn.execute(
                text(
                    f"SELECT {', '.join(_SCORE_COLUMNS)} FROM derived_score "
                    "WHERE name = 'scs_total' ORDER BY id LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
    tampered = {**row, "source_updated_at": row["source_updated_at"] + dt.timedelta(days=30)}
    # A second connection, as whoever holds the database: it takes no peerlens lock.
    outside = store.engine.connect()
    real_check = integrity.check_seals
    done: list[bool] = []

    def check_then_tamper(*args: Any, **kwargs: Any) -> Any:
        found = real_check(*args, **kwargs)
        if "skip" in kwargs and not done:  # the upgrade's check (ensure_scheme) has passed
            done.append(True)
            with outside.begin():
                outside.execute(text("DELETE FROM derived_score WHERE id = :i"), {"i": row["id"]})
                outside.execute(
                    text(
                        f"INSERT INTO derived_score ({', '.join(_SCORE_COLUMNS)}) VALUES "
                        f"({', '.join(':' + c for c in _SCORE_COLUMNS)})"
                    ),
                    tampered,
                )
        return found

    monkeypatch.setattr(integrity, "check_seals", check_then_tamper)
    try:
        add_participant(store, "pilot", "C3", site="leeds", caller=ADMIN)  # the first keyed write
    finally:
        monkeypatch.undo()
        outside.close()
    assert done, "the upgrade did not run"
    log = audit_frame(store, caller=ADMIN)
    assert log[log["action"] == "data.reseal"].iloc[-1]["reason"].startswith("seal scheme")
    with store.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT source_updated_at FROM derived_score WHERE id = :i"), {"i": row["id"]}
        ).scalar_one()
    assert stored == tampered["source_updated_at"]  # the change with SQL is in the database
    seals, _ = _problems(store)
    # Expected: the change is found (or the upgrade refused). On main every check passes.
    assert any(f"derived_score, id {row['id']}" in p for p in seals), seals
