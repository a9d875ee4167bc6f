"""The upload area: folders that uploads left behind are swept once unchanged for longer than
the configured age, at the app's start and before each upload; a folder an upload in progress
holds is never touched, however old, nor anything that is not an upload folder. On SQLite and
PostgreSQL (the app tests)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from fastapi.testclient import TestClient

from peerlens.study import Store
from peerlens.web import WebSettings, create_app
from peerlens.web.upload_area import claim_folder, sweep_stale, upload_area, upload_root

from .conftest import Site, csrf_of, signed_in

DAY = dt.timedelta(days=1)


def _age(folder: Path, seconds: float) -> Path:
    """Make ``folder`` and everything in it look last changed ``seconds`` ago."""
    when = time.time() - seconds
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (when, when), follow_symlinks=False)
    return folder


def _abandoned(area: Path, name: str, seconds: float) -> Path:
    """An upload folder with half a file in it, left ``seconds`` ago."""
    folder = area / name
    folder.mkdir(mode=0o700)
    (folder / "holter.edf").write_bytes(b"0" * 4096)
    return _age(folder, seconds)


def test_only_abandoned_upload_folders_older_than_the_age_are_swept(
    store: Store, tmp_path: Path
) -> None:
    settings = WebSettings(secret=b"test", upload_dir=tmp_path / "uploads")
    area = upload_area(settings, store, "pilot")
    root = upload_root(settings, store)
    old = _abandoned(area, "import-old", 2 * 86400)
    recent = _abandoned(area, "import-recent", 3600)
    held = claim_folder(settings, store, "pilot")  # an upload in progress, slow for two days
    (held.path / "holter.edf").write_bytes(b"1" * 4096)
    _age(held.path, 2 * 86400)
    # Not upload folders: other names in an area, an area that is not a digest, a link.
    other = _abandoned(area, "keep-me", 2 * 86400)
    stray = _abandoned(root, "import-at-the-root", 2 * 86400)
    mine = root / "notes"
    mine.mkdir()
    _abandoned(mine, "import-x", 2 * 86400)
    link = area / "import-link"
    link.symlink_to(other, target_is_directory=True)
    removed = sweep_stale(root, DAY)
    assert removed == [old]
    assert not old.exists()
    for kept in (recent, held.path, other, stray, mine / "import-x", link):
        assert kept.exists(), kept
    # Once its request ends the held folder goes with it; a later sweep finds the recent
    # folder only when it too is old enough.
    held.remove()
    assert not held.path.exists()
    assert sweep_stale(root, DAY) == []
    assert sweep_stale(root, dt.timedelta(minutes=30)) == [recent]
    assert sweep_stale(tmp_path / "none", DAY) == []


def test_the_app_sweeps_when_it_starts(store: Store, tmp_path: Path) -> None:
    settings = WebSettings(secret=b"test", upload_dir=tmp_path / "uploads", upload_max_age=DAY)
    area = upload_area(settings, store, "pilot")
    old = _abandoned(area, "import-crashed", 2 * 86400)
    recent = _abandoned(area, "import-recent", 60)
    app = create_app(store, settings)
    assert old.exists()  # made, not started
    with TestClient(app, base_url="https://testserver"):
        assert not old.exists() and recent.exists()


def test_each_upload_sweeps_and_leaves_uploads_in_progress_alone(site: Site) -> None:
    settings: WebSettings = site.client.app.state.settings  # type: ignore[attr-defined]
    area = upload_area(settings, site.store, "pilot")
    old = _abandoned(area, "import-crashed", 2 * 86400)
    elsewhere = _abandoned(upload_area(settings, site.store, "other"), "import-x", 2 * 86400)
    held = claim_folder(settings, site.store, "pilot")  # another worker's upload, in progress
    _age(held.path, 2 * 86400)
    client = signed_in(site)
    token = csrf_of(client.get("/studies/pilot/import").text)
    page = client.post(
        "/studies/pilot/import/responses",
        data={"csrf": token, "timepoint": "baseline"},
        files={"file": ("empty.csv", b"", "text/csv")},
    )
    assert page.status_code == 400  # refused, and its own folder removed
    assert not old.exists() and not elsewhere.exists()
    assert held.path.exists()
    assert sorted(p.name for p in area.iterdir()) == [held.path.name]
    held.remove()
