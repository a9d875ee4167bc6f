"""Derived scores as seal units of their own (seal scheme 2, revision 0023) and the additive
digest of a scores run: a form completed through a personal link re-scores its response without
reading the run, and a score row changed, deleted, added or copied back with SQL is still found
by ``verify_audit`` (the row seals and the totals in the audit chain) and by ``verify_derived``
(the run's digest); a database sealed under the old scheme verifies and is resealed by its first
write with the key, unless something was changed, which is then refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import BindParameter, bindparam, text

from peerlens.study import (
    LinkHolder,
    Store,
    TamperedError,
    add_participant,
    agree_to_consent,
    audit_frame,
    issue_link,
    open_visit,
    save_page,
    verify_audit,
    verify_derived,
)
from peerlens.study.integrity import reseal_all

from .conftest import ADMIN

_SCORE_COLUMNS = (
    "id, derivation_id, response_id, instrument, name, value, text, spec_version, "
    "spec_sha256, engine_version, source_updated_at"
)


def _complete(store: Store, holder: LinkHolder, value: int) -> None:
    """Answer the SCS through ``holder``'s link (every item ``value``): the form completes."""
    agree_to_consent(store, "v1", caller=holder)
    for page in (1, 2, 3):
        layout = open_visit(store, caller=holder).pages[page - 1].layout
        answers = {q.item: str(value) for q in layout.questions}
        assert save_page(store, page, answers, caller=holder).problems == {}


@pytest.fixture
def scored(store: Store, holder: LinkHolder) -> tuple[Store, LinkHolder, LinkHolder]:
    """Study ``pilot`` where A1 and B2 completed the SCS through their links (scored in one run:
    A1's completion scored the study, B2's was scored in place)."""
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    other = LinkHolder(
        "B2", issue_link(store, "pilot", "B2", timepoint="baseline", caller=ADMIN).token
    )
    _complete(store, holder, 4)
    _complete(store, other, 2)
    assert verify_audit(store, caller=ADMIN).ok
    assert verify_derived(store, "pilot", caller=ADMIN).ok
    return store, holder, other


def _sql(store: Store, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def _one(store: Store, sql: str, **params: object) -> object:
    with store.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def _score_id(store: Store, code: str, name: str = "scs_total") -> int:
    return int(
        str(
            _one(
                store,
                "SELECT s.id FROM derived_score s JOIN response r ON r.id = s.response_id "
                "JOIN participant p ON p.id = r.participant_id "
                "WHERE p.study_code = :c AND s.name = :n",
                c=code,
                n=name,
            )
        )
    )


def _problems(store: Store) -> tuple[list[str], list[str]]:
    """What ``verify_audit`` and ``verify_derived`` find."""
    return (
        list(verify_audit(store, caller=ADMIN).problems),
        list(verify_derived(store, "pilot", caller=ADMIN).problems),
    )


def test_each_score_is_sealed_alone_and_a_completion_amends_the_run_by_a_sum(
    scored: tuple[Store, LinkHolder, LinkHolder],
) -> None:
    store, _, other = scored
    scores = int(str(_one(store, "SELECT count(*) FROM derived_score")))
    seals = _one(store, "SELECT count(*) FROM row_seal WHERE kind = 'derived_score'")
    assert scores > 0 and seals == scores
    log = audit_frame(store, caller=ADMIN)
    amended = log[log["action"] == "derive.amend"]
    assert len(amended) == 1 and '"sum"' in amended.iloc[0]["new"]
    # A changed answer after completion re-scores the response in place: still verifies.
    _complete(store, other, 5)
    assert _problems(store) == ([], [])


def test_a_score_changed_with_sql_is_found(scored: tuple[Store, LinkHolder, LinkHolder]) -> None:
    store = scored[0]
    sid = _score_id(store, "B2")
    # Rows of derived results cannot be updated; whoever holds the database deletes and
    # inserts the row with another value under the same id.
    row = _row(store, sid)
    _sql(store, "DELETE FROM derived_score WHERE id = :i", i=sid)
    _insert(store, {**row, "value": float(str(row["value"])) + 1.0})
    seals, derived = _problems(store)
    assert any(f"table derived_score, id {sid}: changed outside peerlens" in p for p in seals)
    assert derived and "stored rows of run" in derived[0]


def test_a_score_deleted_with_sql_is_found(scored: tuple[Store, LinkHolder, LinkHolder]) -> None:
    store = scored[0]
    sid = _score_id(store, "A1")
    _sql(store, "DELETE FROM derived_score WHERE id = :i", i=sid)
    seals, derived = _problems(store)
    assert any(f"table derived_score, id {sid}: removed outside peerlens" in p for p in seals)
    assert derived and "stored rows of run" in derived[0]
    # Deleted together with its seal: the totals in the audit chain no longer add up.
    _sql(store, "DELETE FROM row_seal WHERE kind = 'derived_score' AND unit = :u", u=str(sid))
    seals, derived = _problems(store)
    removed = "table derived_score: 1 row(s) removed outside peerlens together with their seals"
    assert any(removed in p for p in seals)
    assert derived


def test_a_score_added_with_sql_is_found(scored: tuple[Store, LinkHolder, LinkHolder]) -> None:
    store = scored[0]
    row = _row(store, _score_id(store, "A1"))
    new_id = int(str(_one(store, "SELECT max(id) FROM derived_score"))) + 100
    _insert(store, {**row, "id": new_id, "name": "scs_extra"})
    seals, derived = _problems(store)
    assert any(f"table derived_score, id {new_id}: added outside peerlens" in p for p in seals)
    assert derived and "stored rows of run" in derived[0]


def test_scores_copied_back_with_their_seals_are_found(
    scored: tuple[Store, LinkHolder, LinkHolder],
) -> None:
    """B2's scores and their seals as they were, put back after B2 changed an answer (the
    completion replaced them with rows and seals of its own): each old row matches its old
    seal, but the seals no longer add up to the audit chain's totals, nor the run's rows to
    its newest sum."""
    store, _, other = scored
    old_rows = _rows_of(store, "B2")
    with store.engine.connect() as conn:
        old_seals = conn.execute(
            text(
                "SELECT unit, mac FROM row_seal WHERE kind = 'derived_score' AND unit IN :u"
            ).bindparams(_expanding("u")),
            {"u": [str(r["id"]) for r in old_rows]},
        ).all()
    _complete(store, other, 5)
    assert _problems(store) == ([], [])
    new_ids = [str(r["id"]) for r in _rows_of(store, "B2")]
    with store.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM derived_score WHERE id IN :i").bindparams(_expanding("i")),
            {"i": [int(i) for i in new_ids]},
        )
    with store.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM row_seal WHERE kind = 'derived_score' AND unit IN :u").bindparams(
                _expanding("u")
            ),
            {"u": new_ids},
        )
        for unit, mac in old_seals:
            conn.execute(
                text("INSERT INTO row_seal (kind, unit, mac) VALUES ('derived_score', :u, :m)"),
                {"u": unit, "m": mac},
            )
    for row in old_rows:
        _insert(store, row)
    seals, derived = _problems(store)
    # As many rows as the chain vouches for, each matching its own seal: only the tallies tell.
    assert seals == [
        "table derived_score: seals differ from what the audit chain vouches for (rows "
        "replaced with other or older sealed versions)"
    ]
    assert derived and "stored rows of run" in derived[0]


def test_a_completion_leaves_tampering_elsewhere_in_the_run_to_be_found(
    scored: tuple[Store, LinkHolder, LinkHolder],
) -> None:
    """The sum recorded by a completion is the old one less the rows it replaced plus the new
    ones: a row of another response changed before it stays found (nothing is re-blessed)."""
    store, _, other = scored
    sid = _score_id(store, "A1")
    _sql(store, "DELETE FROM derived_score WHERE id = :i", i=sid)
    _complete(store, other, 5)
    seals, derived = _problems(store)
    assert any(f"table derived_score, id {sid}: removed outside peerlens" in p for p in seals)
    assert derived and "stored rows of run" in derived[0]


def _legacy(store: Store) -> None:
    """Reseal everything as peerlens did before revision 0023 (seal scheme 1: a run's scores
    sealed as child rows of the run's unit)."""
    with store.transaction() as s:
        reseal_all(s, store.vault_key(s), actor="old", reason="as sealed before 0023", scheme=1)


def test_a_database_sealed_under_the_old_scheme_verifies_and_is_resealed_by_its_next_write(
    scored: tuple[Store, LinkHolder, LinkHolder],
) -> None:
    store = scored[0]
    _legacy(store)
    assert _one(store, "SELECT count(*) FROM row_seal WHERE kind = 'derived_score'") == 0
    assert _problems(store) == ([], [])
    add_participant(store, "pilot", "C3", site="leeds", caller=ADMIN)
    log = audit_frame(store, caller=ADMIN)
    reseals = log[log["action"] == "data.reseal"]
    assert reseals.iloc[-1]["reason"] == "seal scheme upgraded (derived scores sealed one by one)"
    scores = _one(store, "SELECT count(*) FROM derived_score")
    assert _one(store, "SELECT count(*) FROM row_seal WHERE kind = 'derived_score'") == scores
    assert _problems(store) == ([], [])


def test_the_scheme_upgrade_refuses_to_bless_tampering(
    scored: tuple[Store, LinkHolder, LinkHolder],
) -> None:
    store = scored[0]
    _legacy(store)
    sid = _score_id(store, "A1")
    _sql(store, "DELETE FROM derived_score WHERE id = :i", i=sid)
    seals, _ = _problems(store)
    assert any("table derivation" in p and "changed outside peerlens" in p for p in seals)
    with pytest.raises(TamperedError, match="table derivation"):
        add_participant(store, "pilot", "C3", site="leeds", caller=ADMIN)
    assert _one(store, "SELECT count(*) FROM row_seal WHERE kind = 'derived_score'") == 0
    assert _one(store, "SELECT count(*) FROM participant WHERE study_code = 'C3'") == 0


# ------------------------------------------------------------------------------ helpers


def _expanding(name: str) -> BindParameter[Any]:
    return bindparam(name, expanding=True)


def _row(store: Store, sid: int) -> dict[str, object]:
    with store.engine.connect() as conn:
        found = conn.execute(
            text(f"SELECT {_SCORE_COLUMNS} FROM derived_score WHERE id = :i"), {"i": sid}
        ).mappings()
        return dict(found.one())


def _rows_of(store: Store, code: str) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        found = conn.execute(
            text(
                f"SELECT {', '.join('s.' + c.strip() for c in _SCORE_COLUMNS.split(','))} "
                "FROM derived_score s JOIN response r ON r.id = s.response_id "
                "JOIN participant p ON p.id = r.participant_id WHERE p.study_code = :c"
            ),
            {"c": code},
        ).mappings()
        return [dict(r) for r in found]


def _insert(store: Store, row: dict[str, object]) -> None:
    names = [c.strip() for c in _SCORE_COLUMNS.split(",")]
    _sql(
        store,
        f"INSERT INTO derived_score ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + n for n in names)})",
        **{n: row[n] for n in names},
    )


def test_a_run_from_before_sums_is_given_one_at_its_first_completion(
    store: Store, holder: LinkHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scores run whose audit entry records no sum (derived before runs carried one) is
    checked whole against its sha256 digest at the first completion scored into it, which
    records its sum; later completions amend that sum."""
    from peerlens.study.derived._scores import SCORES

    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    other = LinkHolder(
        "B2", issue_link(store, "pilot", "B2", timepoint="baseline", caller=ADMIN).token
    )
    monkeypatch.setattr(SCORES, "summed", False)  # as runs were derived before revision 0023
    _complete(store, holder, 4)
    monkeypatch.undo()
    log = audit_frame(store, caller=ADMIN)
    assert '"sum"' not in log[log["action"] == "derive.scores"].iloc[0]["new"]
    _complete(store, other, 2)
    _complete(store, other, 3)  # each of its saves now completes the form: three re-scorings
    amended = audit_frame(store, caller=ADMIN).query("action == 'derive.amend'")
    assert len(amended) == 4
    assert '"digest"' in amended.iloc[0]["old"] and '"sum"' in amended.iloc[0]["new"]
    assert all('"sum"' in old and '"sum"' in new for old, new in amended[["old", "new"]].values[1:])
    assert _problems(store) == ([], [])
    sid = _score_id(store, "A1")
    _sql(store, "DELETE FROM derived_score WHERE id = :i", i=sid)
    seals, derived = _problems(store)
    assert any(f"table derived_score, id {sid}: removed outside peerlens" in p for p in seals)
    assert derived and "stored rows of run" in derived[0]
