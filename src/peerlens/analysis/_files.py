"""Writing output files whole or not at all (the report page, the statistics-package exports)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from peerlens import PeerlensError
from peerlens._private_files import private_temp


class OutputError(PeerlensError):
    """An output file cannot be written (the path and the reason are named)."""


def write_via(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a new temporary file beside ``path`` (readable by the owner only:
    the outputs hold study data; see :func:`peerlens._private_files.private_temp`), then move it
    into place; on any failure the temporary file is
    removed and ``path`` is left as it was."""
    write_all_via({path: write})


def write_all_via(writers: Mapping[Path, Callable[[Path], object]]) -> None:
    """:func:`write_via` for several files, all or none: each ``write(tmp)`` fills its own
    temporary file, and only when every one is written are they moved into place (on any
    failure every temporary file is removed and the files already there are kept)."""
    temps: list[tuple[Path, Path]] = []
    path: Path | None = None
    try:
        for path, write in writers.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = private_temp(path)
            os.close(fd)
            temps.append((tmp, path))
            write(tmp)
        for tmp, path in temps:
            if stat.S_ISLNK(os.lstat(tmp).st_mode):  # swapped for a link while being written
                raise OutputError(f"{path}: its temporary file was replaced by a link; not written")
            if path.is_dir():  # found before any file is moved into place
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
            os.chmod(tmp, 0o600)
        for tmp, path in temps:
            tmp.replace(path)
    except OSError as exc:
        _remove(temps)
        raise OutputError(f"{path}: cannot write it ({exc.strerror})") from None
    except BaseException:
        _remove(temps)
        raise


def _remove(temps: list[tuple[Path, Path]]) -> None:
    for tmp, _ in temps:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_files(files: Mapping[Path, bytes]) -> None:
    """Write every file or none: each is written to its temporary file first, and only when all
    are written are they moved into place (a file that was there before is kept otherwise)."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = private_temp(path)
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        for _, path in temps:
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        for tmp, path in temps:
            tmp.replace(path)
    except OSError as exc:
        _remove(temps)
        where = exc.filename or next(iter(files), "")
        raise OutputError(f"{where}: cannot write it ({exc.strerror})") from None
