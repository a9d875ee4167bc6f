"""Settings of the web app, from the environment (``PEERLENS_WEB_*``) or given directly."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from peerlens import PeerlensError
from peerlens.study import SignInLimits

__all__ = ["WebSettings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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
    upload_max_age
        How long a folder an upload left behind (the server stopped mid-upload) is kept: folders
        no request holds and unchanged for longer are removed when the app starts and before
        every upload (``PEERLENS_WEB_UPLOAD_MAX_AGE_HOURS``, default 24).
    max_import_bytes
        The largest import form accepted, its files together (``PEERLENS_WEB_MAX_IMPORT_MB``,
        default 1024 MB: a day of three-lead Holter ECG).
    sign_in
        The rate limit and lockout of staff sign-in: failures counted per user name and per
        client address over a window (``PEERLENS_WEB_LOCKOUT_MINUTES``, default 15), and how
        many lock the name (``PEERLENS_WEB_LOCKOUT_PER_USER``, default 5) or the address
        (``PEERLENS_WEB_LOCKOUT_PER_ADDRESS``, default 20) until the window has passed.
    api_schema
        Serve the API's OpenAPI schema (``/api/v1/openapi.json``), to callers with a valid
        access token or a signed-in staff session only (``PEERLENS_WEB_API_SCHEMA``, default
        on; ``off``: the schema is not served at all, to anyone). It is never public: it names
        every endpoint and the peerlens version.
    threads
        How many requests run their database work at once (``PEERLENS_WEB_THREADS``, default
        8): the size of the worker thread pool, and of the database connection pool
        ``peerlens serve`` opens, so that a request given a thread never waits for a
        connection. The same on both backends: at ``bench_web.py``'s workload (200
        participants, 20 s a page) 8 and 40 threads gave p95 28.0 and 26.7 ms on SQLite and
        51.6 and 46.0 ms on PostgreSQL on a quiet machine, within the spread between runs of
        one setting; 8 holds fewer PostgreSQL connections, and when the server is short of
        CPU fewer threads share the interpreter lock with a request holding the write lock
        (60 participants on a loaded machine: p95 307 ms on SQLite and 807 ms on PostgreSQL
        with 8 threads, 1.4 s and 3.3 s with 40; see docs/web.md).
    """

    hsts: bool = False
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    upload_dir: Path | None = None
    upload_max_age: dt.timedelta = dt.timedelta(hours=24)
    max_import_bytes: int = 1024 * 1024 * 1024
    sign_in: SignInLimits = field(default_factory=SignInLimits)
    api_schema: bool = True
    threads: int = 8

    @classmethod
    def from_env(cls, *, hsts: bool | None = None) -> WebSettings:
        """Settings from ``PEERLENS_WEB_HSTS``, ``PEERLENS_WEB_SECRET``,
        ``PEERLENS_WEB_UPLOAD_DIR``, ``PEERLENS_WEB_UPLOAD_MAX_AGE_HOURS``,
        ``PEERLENS_WEB_MAX_IMPORT_MB``, ``PEERLENS_WEB_API_SCHEMA``, ``PEERLENS_WEB_THREADS``
        and the ``PEERLENS_WEB_LOCKOUT_*`` variables (``hsts`` given here wins over the
        environment).

        Raises
        ------
        PeerlensError
            A lockout, thread-count, upload-size or upload-age variable that is not a whole
            number from 1 up; an API schema setting that is neither on nor off.
        """
        env_hsts = os.environ.get("PEERLENS_WEB_HSTS", "").strip().lower() in _TRUE
        secret = os.environ.get("PEERLENS_WEB_SECRET", "")
        kwargs: dict[str, object] = {"hsts": env_hsts if hsts is None else hsts}
        if secret:
            kwargs["secret"] = secret.encode("utf-8")
        if upload_dir := os.environ.get("PEERLENS_WEB_UPLOAD_DIR", "").strip():
            kwargs["upload_dir"] = Path(upload_dir).expanduser()
        kwargs["upload_max_age"] = dt.timedelta(
            hours=_whole("PEERLENS_WEB_UPLOAD_MAX_AGE_HOURS", 24)
        )
        max_mb = _whole("PEERLENS_WEB_MAX_IMPORT_MB", 1024)
        kwargs["max_import_bytes"] = max_mb * 1024 * 1024
        default = SignInLimits()
        minutes = _whole("PEERLENS_WEB_LOCKOUT_MINUTES", int(default.window.total_seconds() // 60))
        kwargs["sign_in"] = SignInLimits(
            window=dt.timedelta(minutes=minutes),
            max_per_user=_whole("PEERLENS_WEB_LOCKOUT_PER_USER", default.max_per_user),
            max_per_address=_whole("PEERLENS_WEB_LOCKOUT_PER_ADDRESS", default.max_per_address),
        )
        kwargs["api_schema"] = _switch("PEERLENS_WEB_API_SCHEMA", True)
        kwargs["threads"] = _whole("PEERLENS_WEB_THREADS", cls.threads)
        return cls(**kwargs)  # type: ignore[arg-type]


def _switch(name: str, default: bool) -> bool:
    """On or off, from environment variable ``name`` (``default`` when unset)."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise PeerlensError(f"{name}={raw!r}: give on or off (default {'on' if default else 'off'})")


def _whole(name: str, default: int) -> int:
    """The whole number from 1 up in environment variable ``name`` (``default`` when unset)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise PeerlensError(f"{name}={raw!r}: give a whole number from 1 up (default {default})")
    return int(raw)
