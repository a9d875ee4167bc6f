"""The per-process cache of study-level data: a participant's link never sees a study's
definition older than the database holds, whichever process changed it (on SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlens.instruments import load_spec
from peerlens.instruments.wording import install_wording
from peerlens.study import (
    LinkHolder,
    Store,
    open_visit,
    save_page,
    set_consent_text,
)
from peerlens.study._catalog_cache import revision

from .conftest import ADMIN


def _revision(store: Store) -> str:
    with store.transaction() as s:
        return revision(s)


def test_a_consent_text_set_through_another_store_is_shown_at_once(
    store: Store, db_url: str, holder: LinkHolder
) -> None:
    first = open_visit(store, caller=holder)
    assert first.consent is not None and first.consent.version == "v1"
    # Another server process (its own store and cache) on the same database.
    with Store.open(db_url) as other:
        assert open_visit(other, caller=holder).consent == first.consent
        set_consent_text(other, "pilot", "v2", "A new wording.", caller=ADMIN)
        assert open_visit(other, caller=holder).consent.version == "v2"  # type: ignore[union-attr]
    again = open_visit(store, caller=holder).consent
    assert again is not None and (again.version, again.text) == ("v2", "A new wording.")


def test_the_revision_changes_with_study_level_data_only(store: Store, holder: LinkHolder) -> None:
    from peerlens.study import agree_to_consent

    before = _revision(store)
    agree_to_consent(store, "v1", caller=holder)
    layout = open_visit(store, caller=holder).pages[0].layout
    save_page(store, 1, {q.item: "3" for q in layout.questions}, caller=holder)
    assert _revision(store) == before  # a participant's answers and consent: not study-level
    set_consent_text(store, "pilot", "v2", "A new wording.", caller=ADMIN)
    assert _revision(store) != before


def test_wording_loaded_while_serving_is_shown_at_once(
    store: Store, holder: LinkHolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "home"))
    assert open_visit(store, caller=holder).pages[0].layout.standin
    install_wording({load_spec("scs").id: {1: "Test wording of the first item."}})
    page = open_visit(store, caller=holder).pages[0].layout
    assert not page.standin
    assert page.questions[0].text == "Test wording of the first item."
