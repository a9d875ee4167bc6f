"""Exporting a study: tidy long tables (CSV/Parquet) and REDCap flat records, in four tiers.

Tiers (like REDCap's export rights, see :mod:`peerlens.study.users`):

``full``
    Everything, including identity-vault fields (tidy: rows with ``kind == "identity"``;
    REDCap: the identifier fields' columns).
``remove_identifiers``
    No identity-vault fields and no dictionary field flagged as an identifier.
``deidentified``
    Also no free text (text fields without validation, notes fields) and every date moved back
    by the participant's secret date shift (0-364 days, drawn at enrolment), so that intervals
    within a participant are kept.
``none``
    No export.

Scores are derived at export time from the stored items by :mod:`peerlens.instruments`, never
stored; each score row carries ``scoring_version`` (spec version, engine version and the spec
file's sha256 prefix). Every export is audited and writes a manifest beside the file
(``<file>.manifest.json``) with the file's sha256 and the audit-chain head after the export.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens import __version__
from peerlens._private_files import private_temp
from peerlens._tables import neutralise_formulas
from peerlens.study import audit
from peerlens.study._catalog import FormSpec, builtin_form, study_forms
from peerlens.study._deid import shift_date
from peerlens.study._identity import read_many
from peerlens.study._lookup import get_study
from peerlens.study._scoring import (
    SAME_INPUT,
    response_rows,
    score_long,
    score_states,
    version_label,
)
from peerlens.study.errors import StudyError
from peerlens.study.models import (
    DerivedScore,
    Participant,
    Response,
    ResponseItem,
    Study,
    Timepoint,
)
from peerlens.study.models import Session as PSSession
from peerlens.study.policy import TIERS, Caller, Grant, authorize, guarded
from peerlens.study.redcap import records_frame
from peerlens.study.storage import Store

#: Columns of the tidy export, in order.
TIDY_COLUMNS = (
    "participant",
    "role",
    "arm",
    "site",
    "status",
    "timepoint",
    "redcap_event",
    "session",
    "instrument",
    "repeat_instance",
    "completion",
    "kind",
    "name",
    "value",
    "text",
    "missing_code",
    "scoring_version",
    "source",
    "window",
    "derivation",
)


@dataclass(frozen=True)
class ExportResult:
    """What was written: file, manifest, row count, sha256 and audit head."""

    path: Path
    manifest: Path
    rows: int
    sha256: str
    audit_head: tuple[int, str]


def _tier_flags(tier: str) -> tuple[bool, bool, bool]:
    """(identity, drop_free_text, shift_dates) for ``tier``."""
    if tier not in TIERS:
        raise StudyError(f"export tier {tier!r}: use one of {', '.join(TIERS)}")
    return tier == "full", tier == "deidentified", tier == "deidentified"


def tidy_frame(
    session: Session,
    study: Study,
    *,
    tier: str = "full",
    grant: Grant | None = None,
    dropped: dict[str, int] | None = None,
) -> pd.DataFrame:
    """The study's item values and derived scores as a tidy long table (see module docstring).

    One row per stored item (``kind == "item"``), per derived score (``kind == "score"``) and, in
    the full tier, per identity field (``kind == "identity"``). Numeric values are in ``value``;
    text answers, dates and score bands in ``text``.

    Below the full tier, items of fields the current data dictionary (or bundled instrument)
    does not define are left out, as are identifier fields and, at ``deidentified``, free text;
    ``dropped`` (when given) receives how many item rows were left out for each reason.

    Only participants inside ``grant``'s sites (:meth:`~peerlens.study.policy.Grant.outside`)
    are exported, and results of no participant only under a study-wide grant; ``None``:
    everything.
    """
    identity, drop_text, shift = _tier_flags(tier)
    forms = study_forms(session, study)
    arms = {a.id: a.name for a in study.arms}
    site_names = {x.id: x.name for x in study.sites}
    people = {
        p.id: p
        for p in session.scalars(select(Participant).where(Participant.study_id == study.id))
        if grant is None or grant.outside(study, p) is None
    }
    whole = grant is None or grant.covers_site(None)  # every participant, and rows of none
    q = response_rows(
        study,
        Participant.id,
        Participant.study_code,
        Participant.role,
        Participant.arm_id,
        Participant.site_id,
        Participant.status,
        Participant.date_shift_days,
        Timepoint.name,
        Timepoint.redcap_event,
        Timepoint.position,
        PSSession.label,
        Response.instrument,
        Response.repeat_instance,
        Response.completion,
        Response.id,
        ResponseItem.item,
        ResponseItem.value,
        ResponseItem.text,
        ResponseItem.missing_code,
    ).join(ResponseItem, ResponseItem.response_id == Response.id)
    if not whole:  # whether a participant is inside depends on their site only
        q = q.where(Participant.site_id.in_(sorted({p.site_id for p in people.values()})))
    cols = [
        "pid",
        "participant",
        "role",
        "arm_id",
        "site_id",
        "status",
        "shift",
        "timepoint",
        "redcap_event",
        "tp_pos",
        "session",
        "instrument",
        "repeat_instance",
        "completion",
        "rid",
        "name",
        "value",
        "text",
        "missing_code",
    ]
    fetched = session.connection().execute(q).fetchall()
    raw = pd.DataFrame.from_records([tuple(r) for r in fetched], columns=cols)
    raw["value"] = raw["value"].astype("float64")
    raw["kind"] = "item"
    # Which occasion a response belongs to: its timepoint, or the PS session it followed.
    raw["slot"] = (
        raw["timepoint"]
        .astype("object")
        .where(raw["timepoint"].notna(), "session:" + raw["session"].astype("object").fillna(""))
    )
    if len(raw):
        for inst in set(raw["instrument"].astype(str)) - set(forms):
            bundled = builtin_form(inst)  # e.g. a bundled instrument given after a PS session
            if bundled is not None:
                forms[inst] = bundled
        rules = {f"{f}\x00{r.name}": r for f, form in forms.items() for r in form.items}
        key = raw["instrument"].astype(str) + "\x00" + raw["name"].astype(str)

        def flag(attr: str) -> np.ndarray:
            table = {k: bool(getattr(r, attr)) for k, r in rules.items()}
            return key.map(table).fillna(False).to_numpy(dtype=bool)

        free, ident, dates = flag("free_text"), flag("identifier"), flag("is_date")
        # Below the full tier an item is exported only under a rule of the current dictionary
        # (or a bundled instrument): a field a later dictionary dropped may hold free text or
        # real dates, and nothing says how to de-identify it.
        unknown = ~key.isin(rules).to_numpy(dtype=bool) & ~np.bool_(identity)
        drop_ident = ident & ~unknown & ~np.bool_(identity)
        drop_free = free & ~unknown & ~drop_ident & np.bool_(drop_text)
        if dropped is not None:
            for why, mask in (
                ("not in the data dictionary", unknown),
                ("identifier field", drop_ident),
                ("free text", drop_free),
            ):
                if mask.any():
                    dropped[why] = int(mask.sum())
        drop = unknown | drop_ident | drop_free
        raw = raw.loc[~drop].reset_index(drop=True)
        dates = dates[~drop]
        if shift and dates.any():
            idx = np.flatnonzero(dates & raw["missing_code"].isna().to_numpy())
            shifted = [
                shift_date(str(t), int(d))
                for t, d in zip(
                    raw["text"].to_numpy()[idx], raw["shift"].to_numpy()[idx], strict=True
                )
            ]
            raw.loc[idx, "text"] = shifted
    scores = _mark_scores(session, study, _scores(raw, forms))
    by_code = {p.study_code: p for p in people.values()}
    parts = [raw, scores, _derived_rows(session, study, by_code, unlinked=whole, full=identity)]
    if identity:
        parts.append(_identity_rows(session, people))
    nonempty = [p for p in parts if len(p)]
    out = pd.concat(nonempty, ignore_index=True) if nonempty else raw
    # A study with identity rows but no answers yet still has every column of the item rows.
    out = out.reindex(columns=list(dict.fromkeys([*raw.columns, *out.columns])))
    out["arm"] = out["arm_id"].astype("Int64").map(arms).astype("object")
    out["site"] = out["site_id"].astype("Int64").map(site_names).astype("object")
    for col in ("scoring_version", "source", "window", "derivation"):
        if col not in out:
            out[col] = None
    kind_order = out["kind"].map({"identity": 0, "item": 1, "score": 2, "hrv": 3, "story": 4})
    out = (
        out.assign(_k=kind_order, _tp=out["tp_pos"].fillna(-1))
        .sort_values(
            ["participant", "_tp", "session", "_k", "instrument", "repeat_instance", "source"],
            kind="stable",
            na_position="first",
        )
        .reset_index(drop=True)
    )
    result = out.reindex(columns=list(TIDY_COLUMNS))
    result["repeat_instance"] = result["repeat_instance"].astype("Int64")
    result["completion"] = result["completion"].astype("Int64")
    result["value"] = result["value"].astype("float64")
    return result


def _scores(raw: pd.DataFrame, forms: dict[str, FormSpec]) -> pd.DataFrame:
    """Score rows for every bundled instrument in ``raw`` (recomputed from the items)."""
    out: list[pd.DataFrame] = []
    keys = ["rid", "pid", "slot", "instrument", "repeat_instance"]
    for inst, block in raw.groupby("instrument", sort=True):
        form = forms.get(str(inst))
        if form is None or not form.builtin or not len(block):
            continue
        long, prov = score_long(block, form, keys)
        long["_scored_as"] = form.scored_as
        long["kind"] = "score"
        long["scoring_version"] = version_label(prov)
        context = ["participant", "role", "arm_id", "site_id", "status", "redcap_event"]
        context += ["timepoint", "session", "tp_pos", "completion"]
        ctx = block.drop_duplicates(keys)[[*keys, *context]]
        out.append(long.merge(ctx, on=keys, how="left"))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _mark_scores(session: Session, study: Study, scores: pd.DataFrame) -> pd.DataFrame:
    """Add ``derivation`` to export-time score rows: ``current`` when the stored derived score
    was made from the same items with the same scoring versions, ``stale`` when it was not,
    ``not derived`` when there is none (see :mod:`peerlens.study.derived`)."""
    if not len(scores):
        return scores
    q = (
        select(
            DerivedScore.response_id,
            DerivedScore.name,
            DerivedScore.spec_sha256,
            DerivedScore.engine_version,
            SAME_INPUT,
        )
        .join(Response, Response.id == DerivedScore.response_id)
        .join(Participant, Participant.id == Response.participant_id)
        .where(Participant.study_id == study.id)
    )
    stored = pd.DataFrame.from_records(
        [tuple(r) for r in session.connection().execute(q).fetchall()],
        columns=["rid", "name", "_s_sha", "_s_engine", "_s_same"],
    )
    merged = scores.merge(stored, on=["rid", "name"], how="left")
    have = merged["_s_sha"].notna().to_numpy()
    states = score_states(
        merged["_scored_as"], merged["_s_same"], merged["_s_sha"], merged["_s_engine"]
    )
    merged["derivation"] = np.where(have, states, "not derived")
    return merged.drop(columns=["_s_sha", "_s_engine", "_s_same", "_scored_as"])


def _derived_rows(
    session: Session,
    study: Study,
    people: Mapping[str, Participant],
    *,
    unlinked: bool,
    full: bool,
) -> pd.DataFrame:
    """Stored HRV and story results of ``people`` (by study code) as tidy rows (numbers in
    ``value``), marked current/stale; with ``unlinked``, also results of no participant.
    Error texts are shown whole at the ``full`` tier only (:func:`_result_rows`).
    """
    from peerlens.hrv import METRIC_COLUMNS
    from peerlens.narrative import LABELS
    from peerlens.study.derived._hrv import HRV
    from peerlens.study.derived._story import STORY

    rows: list[dict[str, Any]] = []

    def context(code: Any) -> dict[str, Any] | None:
        p = people.get(code) if isinstance(code, str) else None
        if p is None:
            return {"participant": None} if unlinked else None
        return _participant_columns(p)

    hrv = HRV.frame(session, study, "hrv")
    numeric = ["n_beats", "artifact_rate", "start_s", "end_s", *METRIC_COLUMNS, "n_gaps", "gap_s"]
    for r in hrv.to_dict(orient="records"):
        ctx = context(r["participant"])
        if ctx is None:
            continue
        base = {
            **ctx,
            "session": r["session"],
            "kind": "hrv",
            "instrument": "hrv",
            "source": r["recording"],
            "window": r["label"],
            "scoring_version": f"peerlens {r['pipeline_version']}",
            "derivation": r["derivation"],
        }
        r["valid"] = float(bool(r["valid"]))  # a number, like the metrics
        rows.extend(_result_rows(base, r, ["valid", *numeric], full=full))
        if r["status"] == "ok" and r["gaps"]:  # which stretches the window was analysed around
            rows.append({**base, "name": "gaps", "text": r["gaps"]})
    story = STORY.frame(session, study, "story")
    story_measures = ["n_sentences", *(f"n_{k}" for k in LABELS), "connection_index"]
    story_measures += ["ci_low", "ci_high"]
    for r in story.to_dict(orient="records"):
        ctx = context(r["participant"])
        if ctx is None:
            continue
        base = {
            **ctx,
            "session": r["session"],
            "kind": "story",
            "instrument": "story",
            "source": f"{r['kind']} {r['transcript']} v{r['version']}",
            "scoring_version": f"model sha256:{str(r['model_sha256'])[:12]}",
            "derivation": r["derivation"],
        }
        rows.extend(_result_rows(base, r, story_measures, full=full))
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["value"] = frame["value"].astype("float64") if "value" in frame else np.nan
    return frame


def _result_rows(
    base: dict[str, Any], result: Mapping[Any, Any], measures: list[str], *, full: bool
) -> list[dict[str, Any]]:
    """The tidy rows of one stored HRV or story ``result``: one per measure (a number in
    ``value``, NaN as missing), or, for a result that could not be analysed, one ``error`` row
    whose text only the ``full`` tier sees (HRV errors may quote a file, story errors a
    speaker's name)."""
    from peerlens.study.derived._base import shown_error

    if result["status"] != "ok":
        return [{**base, "name": "error", "text": shown_error(result["error"], full=full)}]
    return [
        {**base, "name": c, "value": None if pd.isna(result[c]) else float(result[c])}
        for c in measures
    ]


def _identity_rows(session: Session, people: Mapping[int, Participant]) -> pd.DataFrame:
    """Identity-vault fields of ``people`` (by id) as tidy rows (the full tier only)."""
    rows: list[dict[str, Any]] = []
    vault = read_many(session, people)
    for pid, fields in sorted(vault.items(), key=lambda kv: people[kv[0]].study_code):
        p = people[pid]
        for name, value in sorted(fields.items()):
            rows.append(
                {**_participant_columns(p), "kind": "identity", "name": name, "text": str(value)}
            )
    return pd.DataFrame(rows)


def _participant_columns(p: Participant) -> dict[str, Any]:
    """The participant columns of a tidy row made in Python (identity, HRV and story rows)."""
    return {
        "pid": p.id,
        "participant": p.study_code,
        "role": p.role,
        "arm_id": p.arm_id,
        "site_id": p.site_id,
        "status": p.status,
    }


@guarded("export")
def export_frame(store: Store, study_name: str, *, tier: str, caller: Caller) -> pd.DataFrame:
    """The study as the tidy long table of :func:`export_study`, in memory (the same tier and
    site checks apply, and the read is audited as an ``export`` of format ``read:responses``
    with its tier, rows, sites and sha256)."""
    from peerlens.study._read_audit import audit_read

    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "export", study, tier=tier)
        frame = tidy_frame(s, study, tier=tier, grant=grant)
        audit_read(s, dataclasses.replace(grant, tier=tier), study_name, "responses", frame)
        return frame


@guarded("export")
def export_study(
    store: Store,
    study_name: str,
    out: str | Path,
    *,
    format: str = "tidy",
    tier: str = "deidentified",
    raw_values: bool = False,
    caller: Caller,
    reason: str | None = None,
) -> ExportResult:
    """Write the study to ``out`` in ``format`` (``tidy``: ``.csv``, ``.parquet`` or ``.xlsx``
    by the suffix of ``out``; ``redcap``: flat record ``.csv``) at ``tier``, checked against the
    caller's export right; another suffix is refused.

    Text cells of a CSV export that a spreadsheet would run as a formula (starting with ``=``,
    ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'`` (OWASP's advice on CSV
    injection) unless ``raw_values`` is true; Parquet keeps values as they are.

    Raises
    ------
    PermissionDenied
        ``tier`` is beyond the caller's export right.
    StudyError
        Unknown format or tier, or ``tier == "none"``.
    """
    if format not in ("tidy", "redcap"):
        raise StudyError(f"export format {format!r}: use tidy or redcap")
    path = Path(out)
    _refuse_store_paths(store, path)
    suffixes = _SUFFIXES[format]
    if path.suffix.lower() not in suffixes:
        raise StudyError(
            f"{path}: a {format} export is written as {' or '.join(suffixes)}; "
            f"give an --out path ending in one of them"
        )
    identity, drop_text, shift = _tier_flags(tier)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "export", study, tier=tier)
        rights = grant
        dropped: dict[str, int] = {}
        if format == "tidy":
            frame = tidy_frame(s, study, tier=tier, grant=rights, dropped=dropped)
        else:
            frame = records_frame(
                s,
                study,
                identity=identity,
                drop_free_text=drop_text,
                shift_dates=shift,
                sites=rights.sites,
            )
        data = _encode(frame, path, raw_values=raw_values)
        digest = hashlib.sha256(data).hexdigest()
        audit.record(
            s,
            rights.actor,
            "export",
            "study",
            study_name,
            study=study_name,
            new={
                "format": format,
                "tier": tier,
                "rows": len(frame),
                "sha256": digest,
                "sites": None if rights.sites is None else sorted(rights.sites),
                "items_left_out": dropped,
            },
            reason=reason,
        )
        head = audit.current_head(s)
        _write_private(path, data)
    manifest = path.with_name(path.name + ".manifest.json")
    # As the data: through a private temporary file, never following a planted symlink.
    _write_private(
        manifest,
        (
            json.dumps(
                {
                    "study": study_name,
                    "format": format,
                    "tier": tier,
                    "rows": len(frame),
                    "sha256": digest,
                    "exported_by": rights.actor,
                    # How many stored item values this tier left out, and why (counts only).
                    "items_left_out": dropped,
                    "peerlens_version": __version__,
                    "audit_head": {"seq": head[0], "hash": head[1]},
                },
                indent=2,
            )
            + "\n"
        ).encode("utf-8"),
    )
    return ExportResult(path, manifest, len(frame), digest, head)


def _refuse_store_paths(store: Store, path: Path) -> None:
    """An export never overwrites the database, its journal files or stored recordings."""
    target = path.expanduser().resolve()
    db = store.engine.url.database if store.dialect == "sqlite" else None
    if db and db != ":memory:":
        base = Path(db).expanduser().resolve()
        if target in {base, *(base.with_name(base.name + x) for x in ("-wal", "-shm", "-journal"))}:
            raise StudyError(f"{path}: that is the study database; export to another file")
    if target == store.blob_dir or store.blob_dir in target.parents:
        raise StudyError(f"{path}: that is inside the recordings folder; export elsewhere")
    if target.is_dir():
        raise StudyError(f"{path}: is a folder; give a file name")


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (exports hold study
    data); nothing is left behind when writing fails."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = private_temp(path)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        tmp.replace(path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        raise StudyError(f"{path}: cannot write the export ({exc.strerror})") from None


#: The file types each export format is written as (by the suffix of ``--out``).
_SUFFIXES = {"tidy": (".csv", ".parquet", ".xlsx"), "redcap": (".csv",)}


def _encode(frame: pd.DataFrame, path: Path, *, raw_values: bool) -> bytes:
    import io
    import tempfile

    if path.suffix.lower() == ".parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    if path.suffix.lower() == ".xlsx":
        from peerlens._tables import write_table

        # openpyxl writes to a file: a private temporary folder, removed at once.
        with tempfile.TemporaryDirectory(prefix="peerlens-export-") as tmp:
            book = Path(tmp) / "export.xlsx"
            write_table(frame, book, raw=raw_values)
            return book.read_bytes()
    if not raw_values:
        frame = neutralise_formulas(frame)
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
