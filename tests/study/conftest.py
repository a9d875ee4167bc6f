"""The study tests use the shared database fixtures of ``tests/conftest.py``."""

from ..conftest import (
    ACTOR,
    ADMIN,
    DATA,
    PASSWORD,
    REAL_REDCAP,
    drop_audit_guards,
    make_user,
    needs_real_redcap,
)

__all__ = [
    "ACTOR",
    "ADMIN",
    "DATA",
    "PASSWORD",
    "REAL_REDCAP",
    "drop_audit_guards",
    "make_user",
    "needs_real_redcap",
]
