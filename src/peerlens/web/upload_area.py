"""The upload area: the private folders imports are streamed to while they are read, and the
sweep that removes the ones an upload left behind.

Each import gets a new folder ``<root>/<digest of the study name>/import-*`` (mode 0700), held
with an exclusive ``flock`` on the folder for as long as its request runs, and deleted when the
import is done or refused (:func:`claim_folder`, :meth:`HeldFolder.remove`). A folder is left
behind only when its request never reached that point: the server process was killed or
crashed mid-upload (a client that drops the connection ends its request, which removes the
folder). :func:`sweep_stale` removes such folders once nothing in them has changed for longer
than the settings' ``upload_max_age``; it never touches a folder whose lock is held, so an
upload in progress, however slow, is left alone (the kernel drops the lock of a process that
dies). The app sweeps when it starts and before every upload.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from peerlens.study import Store
from peerlens.web.settings import WebSettings

try:  # POSIX; elsewhere folders are judged by their age alone
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms peerlens is served from
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FOLDER_PREFIX",
    "HeldFolder",
    "claim_folder",
    "sweep_stale",
    "upload_area",
    "upload_folder",
    "upload_root",
]

#: How every upload folder's name starts (only such folders are ever swept).
FOLDER_PREFIX = "import-"
#: A study's area: the first 16 hex digits of the sha256 of its name.
_AREA = re.compile(r"[0-9a-f]{16}")

_log = logging.getLogger("peerlens.web")


def upload_root(settings: WebSettings, store: Store) -> Path:
    """Where uploads are streamed to: ``upload_dir`` of the settings, by default ``.uploads``
    in the recordings folder (on the disk the recordings go to)."""
    return settings.upload_dir or store.blob_dir / ".uploads"


def upload_area(settings: WebSettings, store: Store, study: str) -> Path:
    """The folder uploads for ``study`` are streamed to: one folder per study under
    :func:`upload_root`, named by a digest of its name (never the name itself, which the browser
    chose)."""
    area = upload_root(settings, store) / hashlib.sha256(study.encode("utf-8")).hexdigest()[:16]
    area.mkdir(parents=True, exist_ok=True, mode=0o700)
    return area


@dataclass
class HeldFolder:
    """An upload's private folder, locked while its request runs."""

    path: Path
    _fd: int | None

    def remove(self) -> None:
        """Delete the folder and everything in it, then let go of the lock."""
        try:
            shutil.rmtree(self.path, ignore_errors=True)
        finally:
            if self._fd is not None:
                os.close(self._fd)  # closing the descriptor releases the flock
                self._fd = None


def claim_folder(settings: WebSettings, store: Store, study: str) -> HeldFolder:
    """A new private folder (mode 0700) in ``study``'s upload area, locked until
    :meth:`HeldFolder.remove`, so that :func:`sweep_stale` leaves it alone."""
    path = Path(tempfile.mkdtemp(dir=upload_area(settings, store, study), prefix=FOLDER_PREFIX))
    fd = None
    if fcntl is not None:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return HeldFolder(path, fd)


@asynccontextmanager
async def upload_folder(settings: WebSettings, store: Store, study: str) -> AsyncIterator[Path]:
    """A new private folder for one upload to ``study`` (:func:`claim_folder`), deleted with
    everything in it when the block ends, however it ends; the folders earlier uploads left
    behind are swept first (:func:`sweep_stale`)."""
    await run_in_threadpool(sweep_stale, upload_root(settings, store), settings.upload_max_age)
    held = await run_in_threadpool(claim_folder, settings, store, study)
    try:
        yield held.path
    finally:
        await run_in_threadpool(held.remove)


def _newest_change(folder: Path) -> float:
    """The latest modification time of ``folder`` and anything in it (seconds since the epoch)."""
    newest = folder.lstat().st_mtime
    for parent, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            try:
                newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
            except FileNotFoundError:
                continue
    return newest


def _sweep_one(folder: Path, oldest: float) -> bool:
    """Remove ``folder`` when no request holds it and nothing in it changed since ``oldest``."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW)
    except OSError:
        return False  # gone already, or not a folder
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # an upload in progress
        if _newest_change(folder) > oldest:
            return False  # recent: a folder just made, not locked yet, is never taken
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    finally:
        os.close(fd)


def sweep_stale(root: Path, max_age: dt.timedelta, *, now: float | None = None) -> list[Path]:
    """Remove the upload folders under ``root`` that were abandoned: no request holds them and
    nothing in them changed for longer than ``max_age``.

    Only ``<root>/<16 hex digits>/import-*`` folders are considered (never a symbolic link, never
    anything else in ``root``, which may be a folder the settings name).

    Parameters
    ----------
    root
        The upload root (:func:`upload_root`).
    max_age
        How long a folder must have been left unchanged to be removed.
    now
        The current time, seconds since the epoch (default: now).

    Returns
    -------
    list of Path
        The folders removed.
    """
    if not root.is_dir():
        return []
    oldest = (time.time() if now is None else now) - max_age.total_seconds()
    removed: list[Path] = []
    for area in sorted(root.iterdir()):
        if not _AREA.fullmatch(area.name) or area.is_symlink() or not area.is_dir():
            continue
        for folder in sorted(area.iterdir()):
            if not folder.name.startswith(FOLDER_PREFIX) or folder.is_symlink():
                continue
            if folder.is_dir() and _sweep_one(folder, oldest):
                removed.append(folder)
    if removed:
        _log.info("removed %d abandoned upload folder(s) under %s", len(removed), root)
    return removed
