"""A throwaway database for one benchmark run: a SQLite file in the run's folder, or a fresh
PostgreSQL schema (``PEERLENS_BENCH_PG_URL``, else ``PEERLENS_TEST_PG_URL``) dropped afterwards.
Shared by ``bench_store.py``, ``bench_completion.py`` and ``bench_web.py``; so is the choice of
backends from ``--backend`` (:func:`add_backend_option`, :func:`chosen_backends`)."""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text


def backend_url(name: str, folder: Path, *, file: str, prefix: str) -> tuple[str, object]:
    """The database URL for backend ``name`` (``sqlite`` or ``postgresql``) and what
    :func:`drop` needs to remove it: the SQLite ``file`` in ``folder``, or a new PostgreSQL
    schema named ``<prefix>_<random>`` on the search path."""
    if name == "sqlite":
        return f"sqlite:///{folder / file}", None
    base = os.environ.get("PEERLENS_BENCH_PG_URL") or os.environ["PEERLENS_TEST_PG_URL"]
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}", (admin, schema)


def drop(cleanup: object) -> None:
    """Drop the PostgreSQL schema :func:`backend_url` made (nothing for SQLite)."""
    if cleanup is None:
        return
    admin, schema = cleanup  # type: ignore[misc]
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend sqlite|postgresql`` (repeatable)."""
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql"],
        action="append",
        help="run only this backend (repeatable; default: SQLite, and PostgreSQL when its URL "
        "is set)",
    )


def chosen_backends(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The backends to run: those asked for, else SQLite and PostgreSQL when its URL is set."""
    have_pg = any(os.environ.get(v) for v in ("PEERLENS_BENCH_PG_URL", "PEERLENS_TEST_PG_URL"))
    backends: list[str] = args.backend or ["sqlite", *(["postgresql"] if have_pg else [])]
    if "postgresql" in backends and not have_pg:
        parser.error("--backend postgresql needs PEERLENS_BENCH_PG_URL or PEERLENS_TEST_PG_URL")
    if not have_pg and not args.backend:
        print("PostgreSQL skipped: set PEERLENS_BENCH_PG_URL or PEERLENS_TEST_PG_URL")
    return backends
