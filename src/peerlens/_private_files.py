"""Private temporary files beside an output (exports, reports), safe in a shared folder."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_temp(path: Path) -> tuple[int, Path]:
    """Create a new temporary file beside ``path``, readable by the owner only.

    Its name is random (``.<name>.<random>.part``) and it is created with ``O_EXCL`` and
    ``O_NOFOLLOW``: a file or symlink planted under a predictable name by someone else who can
    write the folder is never opened, so the data cannot be sent to a file of their choosing.

    Returns
    -------
    tuple of (int, pathlib.Path)
        The open file descriptor (write-only) and the temporary file's path.

    Raises
    ------
    OSError
        The folder cannot be written.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.part")
    return os.open(tmp, flags | getattr(os, "O_CLOEXEC", 0), 0o600), tmp
