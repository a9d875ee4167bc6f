"""Derived results: scores, HRV metrics and story labels, recomputed and never hand-edited.

Derived data are computed from what the study stores, with the version of the computation kept
beside every result:

``scores``
    Each response of a bundled instrument, scored from its stored items by
    :func:`peerlens.instruments.score_with_provenance` (spec version, spec file sha256 and
    engine version per row).
``hrv``
    Each recording, analysed by :func:`peerlens.hrv.analyze` with its stored window events:
    one ``whole`` row plus one row per window label (pipeline version and the full
    :class:`peerlens.hrv.HrvProvenance` per row). A recording that cannot be analysed becomes an
    ``error`` row saying why; the derivation carries on.
``story``
    Each transcript or story version, analysed by :func:`peerlens.narrative.analyze`: per-sentence
    label and confidence and the session's connection index with its bootstrap interval (model
    sha256 per row). Sentence text is not copied: it stays in the transcript (and goes with it on
    erasure).

A derivation (:func:`derive`) replaces all stored results of its kind for the study in one
transaction (all or nothing), records a :class:`~peerlens.study.models.Derivation` row and one
audit entry (who, when, versions, counts and the sha256 ``digest`` of the rows written). Nothing
can set a derived value: there is no API for it and database triggers make UPDATE on the derived
tables fail; rows inserted or deleted behind peerlens's back are found by :func:`verify_derived`,
which recomputes each current run's digest.

A result is *stale* when its input changed after it was derived (a response re-imported with
other items, a window added) or the versions differ from the installed peerlens; a result
that does not exist yet is *missing*. :func:`derivation_status` counts them, and the tidy export
marks every derived row ``current`` or ``stale`` (see :mod:`peerlens.study.export`).

Layout: one private module per kind (``_scores``, ``_hrv``, ``_story``), each implementing the
small :class:`~peerlens.study.derived._base.DerivedKind` interface; ``_registry`` names them,
``_runs`` keeps the run bookkeeping they share and ``_api`` holds the public functions.
"""

from peerlens.study.derived._api import derivation_status, derive, derived_frame, verify_derived
from peerlens.study.derived._hrv import hrv_job
from peerlens.study.derived._registry import WHAT
from peerlens.study.derived._runs import (
    DerivationSummary,
    DerivedCheck,
    amend_after_erasure,
    check_derived,
    intact_runs,
)

__all__ = [
    "WHAT",
    "DerivationSummary",
    "DerivedCheck",
    "amend_after_erasure",
    "check_derived",
    "derivation_status",
    "derive",
    "derived_frame",
    "hrv_job",
    "intact_runs",
    "verify_derived",
]
