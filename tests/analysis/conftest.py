"""One simulated trial stored through the study API, shared by the report and export tests
(built once per session: storing it takes a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peerlens.study import AnalysisDataset, Store, analysis_dataset, bootstrap_admin

from ..conftest import ADMIN, PASSWORD, VAULT_KEY
from ._trial import Trial, make_trial


@pytest.fixture(scope="session")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Trial]]:
    """A SQLite store with study ``trial`` (40 participants, see :func:`make_trial`)."""
    tmp = tmp_path_factory.mktemp("trial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEERLENS_VAULT_KEY", VAULT_KEY)
        store = Store.open(f"sqlite:///{tmp / 'study.db'}", create=True, blob_dir=tmp / "blobs")
        bootstrap_admin(store, ADMIN.username, PASSWORD)
        trial = make_trial(store, ADMIN, tmp, n=40)
        try:
            yield store, trial
        finally:
            store.close()


@pytest.fixture(scope="session")
def dataset(stored: tuple[Store, Trial]) -> AnalysisDataset:
    """The trial's analysis dataset, read as the admin."""
    return analysis_dataset(stored[0], "trial", caller=ADMIN)
