"""Settings of the web app, from the environment (``PEERLENS_WEB_*``) or given directly."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["WebSettings"]

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class WebSettings:
    """How the app is served.

    Attributes
    ----------
    hsts
        Send ``Strict-Transport-Security`` (set when the app is served behind TLS, e.g. by a
        reverse proxy; browsers then refuse plain HTTP to this host).
    secret
        The key CSRF tokens are made with. A random one per process unless given
        (``PEERLENS_WEB_SECRET``): with several workers or across restarts give one, else a form
        opened before a restart is refused once (and shown again).
    upload_dir
        Where imports uploaded in the browser are streamed to while they are read
        (``PEERLENS_WEB_UPLOAD_DIR``; default ``.uploads`` in the recordings folder, on the same
        disk as the recordings they become). Each upload gets a private folder there, deleted
        when the import is done.
    max_import_bytes
        The largest import form accepted, its files together (``PEERLENS_WEB_MAX_IMPORT_MB``,
        default 1024 MB: a day of three-lead Holter ECG).
    """

    hsts: bool = False
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    upload_dir: Path | None = None
    max_import_bytes: int = 1024 * 1024 * 1024

    @classmethod
    def from_env(cls, *, hsts: bool | None = None) -> WebSettings:
        """Settings from ``PEERLENS_WEB_HSTS``, ``PEERLENS_WEB_SECRET``,
        ``PEERLENS_WEB_UPLOAD_DIR`` and ``PEERLENS_WEB_MAX_IMPORT_MB`` (``hsts`` given here wins
        over the environment)."""
        env_hsts = os.environ.get("PEERLENS_WEB_HSTS", "").strip().lower() in _TRUE
        secret = os.environ.get("PEERLENS_WEB_SECRET", "")
        kwargs: dict[str, object] = {"hsts": env_hsts if hsts is None else hsts}
        if secret:
            kwargs["secret"] = secret.encode("utf-8")
        if upload_dir := os.environ.get("PEERLENS_WEB_UPLOAD_DIR", "").strip():
            kwargs["upload_dir"] = Path(upload_dir).expanduser()
        if max_mb := os.environ.get("PEERLENS_WEB_MAX_IMPORT_MB", "").strip():
            kwargs["max_import_bytes"] = int(float(max_mb) * 1024 * 1024)
        return cls(**kwargs)  # type: ignore[arg-type]
