"""The study tests use the shared database fixtures of ``tests/conftest.py``."""

from ..conftest import ACTOR, ADMIN, DATA, PASSWORD, make_user

__all__ = ["ACTOR", "ADMIN", "DATA", "PASSWORD", "make_user"]
