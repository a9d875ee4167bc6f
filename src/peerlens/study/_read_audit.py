"""The audit entry of an in-memory read of study data (the API's responses, results,
recordings and beats): the same facts as a file export's entry, so that the audit log records
who took which data whatever the route."""

from __future__ import annotations

import hashlib

import pandas as pd
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study.policy import Grant


def audit_read(session: Session, grant: Grant, study: str, what: str, frame: pd.DataFrame) -> None:
    """Record an ``export`` audit entry for ``frame`` read by ``grant``'s caller.

    Parameters
    ----------
    session
        The transaction the data was read in (the entry is written there).
    grant
        What the read was allowed as: its caller, export tier and sites are recorded.
    study
        The study's name.
    what
        What was read (``responses``, ``derived:hrv``, ``beats``, ...): the entry's format.
    frame
        The rows handed to the caller: their count and a sha256 of their CSV form are recorded.
    """
    digest = hashlib.sha256(
        frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    ).hexdigest()
    record_export(
        session, grant, study, f"read:{what}", tier=grant.tier, rows=len(frame), sha256=digest
    )


def record_export(
    session: Session, grant: Grant, study: str, fmt: str, *, tier: str, rows: int, sha256: str
) -> None:
    """Record the ``export`` audit entry of data handed out as ``fmt``: who (``grant``'s
    caller), at which ``tier``, how many ``rows``, their ``sha256`` and the caller's sites (the
    one shape of that entry, for in-memory reads and analysis tables alike)."""
    audit.record(
        session,
        grant.actor,
        "export",
        "study",
        study,
        study=study,
        new={
            "format": fmt,
            "tier": tier,
            "rows": rows,
            "sha256": sha256,
            "sites": None if grant.sites is None else sorted(grant.sites),
        },
    )
