"""Settings of the web app, from the environment (``PEERLENS_WEB_*``) or given directly."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

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
    """

    hsts: bool = False
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def from_env(cls, *, hsts: bool | None = None) -> WebSettings:
        """Settings from ``PEERLENS_WEB_HSTS`` and ``PEERLENS_WEB_SECRET`` (``hsts`` given here
        wins over the environment)."""
        env_hsts = os.environ.get("PEERLENS_WEB_HSTS", "").strip().lower() in _TRUE
        secret = os.environ.get("PEERLENS_WEB_SECRET", "")
        kwargs: dict[str, object] = {"hsts": env_hsts if hsts is None else hsts}
        if secret:
            kwargs["secret"] = secret.encode("utf-8")
        return cls(**kwargs)  # type: ignore[arg-type]
