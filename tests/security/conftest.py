"""Fixtures shared by the security tests (beside the database fixtures of ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlens.study import Store, add_participant, create_study

from ..conftest import ADMIN


@pytest.fixture
def pilot(store: Store, config_path: Path) -> Store:
    """Study ``pilot`` (:func:`config_path`) with participants P1, P2 and P3 at leeds.

    Modules whose findings need another study define their own ``pilot``.
    """
    create_study(store, "pilot", config_path, caller=ADMIN)
    for code in ("P1", "P2", "P3"):
        add_participant(store, "pilot", code, site="leeds", caller=ADMIN)
    return store
