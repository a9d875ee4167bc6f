"""Scoring stored items with :mod:`peerlens.instruments` (shared by export and derivation).

Both the tidy export and :func:`peerlens.study.derived.derive` score through
:func:`score_long`, so a stored derived score and an export-time score are the same computation;
both tell whether a stored score is still current through :func:`score_states`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, select

from peerlens.study._catalog import FormSpec
from peerlens.study.models import DerivedScore, Participant, Response, Study, Timepoint
from peerlens.study.models import Session as PSSession

if TYPE_CHECKING:
    from peerlens.instruments.scoring import ScoringProvenance


#: True where a stored derived score was computed from its response as the response is now
#: (compared in SQL: the same column type on both sides, no per-row time parsing).
SAME_INPUT = DerivedScore.source_updated_at == Response.updated_at


def response_rows(study: Study, *columns: Any) -> Select[Any]:
    """A select of ``columns`` over ``study``'s responses, each joined to its participant and
    (outer joins: either may be missing) to its timepoint and PS session: the context every
    item and score row of a response carries. Join what the rows hold (items, stored scores)
    to ``Response``."""
    return (
        select(*columns)
        .select_from(Response)
        .join(Participant, Participant.id == Response.participant_id)
        .outerjoin(Timepoint, Timepoint.id == Response.timepoint_id)
        .outerjoin(PSSession, PSSession.id == Response.session_id)
        .where(Participant.study_id == study.id)
    )


def version_label(prov: ScoringProvenance) -> str:
    """The ``scoring_version`` text of a :class:`peerlens.instruments.ScoringProvenance`."""
    return (
        f"{prov.instrument} spec {prov.spec_version} "
        f"engine {prov.engine_version} sha256:{str(prov.spec_sha256)[:12]}"
    )


def score_long(
    block: pd.DataFrame, form: FormSpec, keys: Sequence[str]
) -> tuple[pd.DataFrame, ScoringProvenance]:
    """Score one bundled instrument's items and return tidy score rows and the provenance.

    Parameters
    ----------
    block
        Long item rows of instrument ``form.name``: the ``keys`` columns (one response per key),
        ``name`` (item) and ``value`` (numeric; NaN when unanswered or a missing code).
    form
        The bundled instrument (``form.builtin``), or a form scored as one through its
        ``item_map`` (field -> item).
    keys
        Columns identifying one response.

    Returns
    -------
    (pandas.DataFrame, ScoringProvenance)
        Rows ``keys + [name, value, text]``: numeric scores in ``value``, bands and other labels
        in ``text``; and how they were scored.
    """
    from peerlens.instruments import score_with_provenance

    keys = list(keys)
    wide = block.set_index([*keys, "name"])["value"].unstack("name")
    if form.item_map:  # a dictionary form scored through its field map: items by field
        wide = wide.reindex(columns=[field for field, _ in form.item_map])
        wide.columns = [item for _, item in form.item_map]
    else:
        wide = wide.reindex(columns=[r.name for r in form.items])
        wide.columns = [str(c) for c in wide.columns]
    with warnings.catch_warnings():
        # Caveats are documented with each instrument; a stored result does not repeat them.
        warnings.simplefilter("ignore")
        result = score_with_provenance(wide.reset_index(drop=True), form.scored_as)
    prov = result.provenance[0]
    new_cols = [c for c in result.data.columns if c not in wide.columns]
    scored = result.data[new_cols]
    numeric_cols = [
        c
        for c in new_cols
        if pd.api.types.is_numeric_dtype(scored[c]) or pd.api.types.is_bool_dtype(scored[c])
    ]
    text_cols = [c for c in new_cols if c not in numeric_cols]
    if not new_cols:
        raise ValueError(f"{form.scored_as}: the instrument gives no scores")
    # Long rows, numeric scores first, each score's rows in the wide frame's order (as a melt
    # of the numeric and then the text columns gives them), built column by column: a single
    # response (scored as it is saved through a personal link) must not pay for a reshape.
    n = len(wide)
    index = wide.index.to_frame(index=False)
    columns: dict[str, Any] = {k: np.tile(index[k].to_numpy(), len(new_cols)) for k in keys}
    columns["name"] = [c for c in numeric_cols + text_cols for _ in range(n)]
    columns["value"] = np.concatenate(
        [scored[c].astype("float64").to_numpy() for c in numeric_cols]
        + [np.full(n * len(text_cols), np.nan)]
    )
    # No band (too many items missing) is None, never NaN or the string "nan".
    columns["text"] = pd.Series(
        [None] * (n * len(numeric_cols))
        + [None if pd.isna(v) else str(v) for c in text_cols for v in scored[c].astype("object")],
        dtype=object,
    )
    return pd.DataFrame(columns), prov


def installed_versions(instruments: Iterable[Any]) -> dict[str, tuple[str, str]]:
    """(spec sha256, engine version) of each bundled instrument among ``instruments``, as
    installed now."""
    from peerlens.instruments import score_with_provenance
    from peerlens.study._catalog import builtin_form

    out: dict[str, tuple[str, str]] = {}
    for inst in instruments:
        form = builtin_form(str(inst))
        if form is None:
            continue
        empty = pd.DataFrame({r.name: pd.Series([], dtype="float64") for r in form.items})
        prov = score_with_provenance(empty, str(inst)).provenance[0]
        out[str(inst)] = (prov.spec_sha256, prov.engine_version)
    return out


def score_states(
    instrument: pd.Series,
    same_input: pd.Series,
    spec_sha256: pd.Series,
    engine_version: pd.Series,
) -> np.ndarray:
    """``"current"`` or ``"stale"`` for each stored derived score (the rule, in one place).

    A stored score is current when it was computed from its response as the response is now
    (``same_input``, from :data:`SAME_INPUT`) by the spec file (``spec_sha256``) and scoring
    engine (``engine_version``) installed now for its ``instrument``; anything else (an
    instrument no longer bundled included) is stale.
    """
    now = installed_versions(pd.unique(instrument))
    names = instrument.astype(object).map(str)
    now_sha = names.map({k: v[0] for k, v in now.items()}).to_numpy(dtype=object)
    now_engine = names.map({k: v[1] for k, v in now.items()}).to_numpy(dtype=object)
    fresh = (
        same_input.fillna(False).astype(bool).to_numpy(dtype=bool)
        & (spec_sha256.to_numpy(dtype=object) == now_sha)
        & (engine_version.to_numpy(dtype=object) == now_engine)
    )
    return np.where(fresh, "current", "stale")
