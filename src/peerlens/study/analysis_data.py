"""The analysis dataset of a study: what the report and the SPSS/Stata/R exports are built from.

One de-identified snapshot, read in one transaction with the caller's export rights:

- ``participants``: every service user (pseudonym, arm, site, status, whether withdrawn);
- ``scores``: one row per participant and timepoint with one column per score, derived from the
  stored items by :mod:`peerlens.instruments` (the ``deidentified`` tier of
  :func:`~peerlens.study.export.tidy_frame`);
- ``items``: the numeric item values in the same layout, with each item's missing-data code
  (``-9``, ...) kept in ``item_codes`` so that the exports can declare them;
- ``worker_stories``: the story labels of each PS worker's session transcripts (counts per
  session, no text; :func:`~peerlens.study.stories.worker_session_stories`, policy
  ``story.sessions``), from which the report takes each worker's connection index;
- variable and value labels from the instrument specs and, for a study imported from REDCap,
  the data dictionary (field labels and choices).

Reading it is an export at the ``deidentified`` tier (policy ``analysis.export``) and is
audited with the snapshot's sha256 (:attr:`AnalysisDataset.sha256`), a hash of the dataset's
canonical CSV: the same data give the same hash, whoever reads them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from peerlens.study._catalog import parse_choices
from peerlens.study._lookup import get_study
from peerlens.study._read_audit import record_export
from peerlens.study.export import tidy_frame
from peerlens.study.models import Field, Participant, PSRelationship
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store
from peerlens.study.stories import session_story_rows

__all__ = ["AnalysisDataset", "analysis_dataset"]

#: The export tier of the analysis dataset.
TIER = "deidentified"
_KEYS = ["participant", "timepoint"]


@dataclass(frozen=True)
class AnalysisDataset:
    """A de-identified snapshot of a study for analysis (see the module docstring).

    Attributes
    ----------
    study : str
        Study name.
    arms, timepoints, sites : tuple of str
        Levels in the study's order (arms as defined, timepoints by schedule position).
    participants : pandas.DataFrame
        ``participant``, ``arm``, ``site``, ``status``, ``withdrawn`` (bool), ``worker`` (the
        pseudonymous code of the participant's one PS worker; ``None`` with none or several).
    scores : pandas.DataFrame
        ``participant``, ``arm``, ``site``, ``timepoint`` and one float column per score.
    items : pandas.DataFrame
        ``participant``, ``timepoint`` and one float column per item (NaN when missing).
    item_codes : pandas.DataFrame
        Same shape as ``items``: the missing-data code (a number) where an item was coded
        missing, else NaN.
    missing_codes : tuple of float
        The study's missing-data codes.
    variable_labels : Mapping[str, str]
        Column -> label.
    value_labels : Mapping[str, Mapping[float, str]]
        Column -> {value: label} (REDCap choices).
    instruments : Mapping[str, str]
        Score or item column -> the bundled instrument it belongs to.
    worker_stories : pandas.DataFrame
        One row per PS session with an analysed transcript, columns
        :data:`~peerlens.study.stories.SESSION_STORY_COLUMNS` (``worker``, ``participant``,
        ``session``, ``status``, ``n_sentences`` and each label's count); empty when the study
        has none.
    sha256 : str
        Hash of the canonical CSV of participants, scores, items and codes.
    """

    study: str
    arms: tuple[str, ...]
    timepoints: tuple[str, ...]
    sites: tuple[str, ...]
    participants: pd.DataFrame = field(repr=False)
    scores: pd.DataFrame = field(repr=False)
    items: pd.DataFrame = field(repr=False)
    item_codes: pd.DataFrame = field(repr=False)
    missing_codes: tuple[float, ...]
    variable_labels: MappingProxyType[str, str] = field(repr=False)
    value_labels: MappingProxyType[str, MappingProxyType[float, str]] = field(repr=False)
    instruments: MappingProxyType[str, str] = field(repr=False)
    worker_stories: pd.DataFrame = field(repr=False)
    sha256: str

    @property
    def score_names(self) -> tuple[str, ...]:
        """The score columns of :attr:`scores`."""
        return tuple(c for c in self.scores.columns if c not in ("arm", "site", *_KEYS))


@guarded("analysis.export")
def analysis_dataset(
    store: Store, study_name: str, *, caller: Caller, purpose: str = "report"
) -> AnalysisDataset:
    """Read the de-identified analysis dataset of ``study_name`` (audited as an export).

    Parameters
    ----------
    store
        The open study store.
    study_name
        The study.
    caller
        Who asks; needs an export right of tier ``deidentified`` or higher
        (``analysis.export``, and ``story.sessions`` for the workers' session story labels). A
        site-scoped caller gets their sites' participants and PS workers only.
    purpose
        What the dataset is read for (``report``, ``spss``, ``stata``, ``r``), kept in the
        audit log.

    Returns
    -------
    AnalysisDataset

    Raises
    ------
    PermissionDenied
        The caller may not export at the ``deidentified`` tier.
    StudyError
        Unknown study.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "analysis.export", study, tier=TIER)
        arms = tuple(a.name for a in study.arms)
        timepoints = tuple(tp.name for tp in study.timepoints)
        sites = tuple(x.name for x in study.sites if grant.covers_site(x.name))  # theirs only
        arm_names = {a.id: a.name for a in study.arms}
        site_names = {x.id: x.name for x in study.sites}
        people = [
            (
                p.study_code,
                arm_names.get(p.arm_id) if p.arm_id else None,
                site_names.get(p.site_id) if p.site_id else None,
                p.status,
                p.status == "withdrawn" or p.withdrawn_at is not None,
            )
            for p in s.scalars(
                select(Participant)
                .where(Participant.study_id == study.id, Participant.role == "service_user")
                .order_by(Participant.study_code)
            )
            if grant.outside(study, p) is None
        ]
        participants = pd.DataFrame(
            people, columns=["participant", "arm", "site", "status", "withdrawn"]
        )
        participants["worker"] = _workers(s, study.id, participants["participant"])
        stories = session_story_rows(
            s, study, authorize(s, caller, "story.sessions", study, tier=TIER)
        )
        tidy = tidy_frame(s, study, tier=TIER, grant=grant)
        dictionary = {
            f.field_name: f
            for f in s.scalars(select(Field).where(Field.study_id == study.id))
            if not f.identifier
        }
        missing_codes = tuple(float(c) for c in json.loads(study.missing_codes_json))
        scores, items, codes, instruments = _wide(tidy, participants, timepoints)
        variable_labels, value_labels = _labels(scores, items, instruments, dictionary)
        # The session stories count only when there are some: a study without them keeps the
        # hash it had before they were part of the dataset.
        digest = _digest(participants, scores, items, codes, *([stories] if len(stories) else []))
        record_export(
            s,
            grant,
            study_name,
            f"analysis dataset ({purpose})",
            tier=TIER,
            rows=len(scores),
            sha256=digest,
        )
    return AnalysisDataset(
        study=study_name,
        arms=arms,
        timepoints=timepoints,
        sites=sites,
        participants=participants,
        scores=scores,
        items=items,
        item_codes=codes,
        missing_codes=missing_codes,
        variable_labels=MappingProxyType(variable_labels),
        value_labels=MappingProxyType({k: MappingProxyType(v) for k, v in value_labels.items()}),
        instruments=MappingProxyType(instruments),
        worker_stories=stories,
        sha256=digest,
    )


def _wide(
    tidy: pd.DataFrame, participants: pd.DataFrame, timepoints: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Scores, items and item codes, one row per participant and timepoint (service users at
    scheduled timepoints only; repeat instances beyond the first, REDCap's 1 or 0 when not
    repeating, are not part of the design)."""
    rows = tidy[
        tidy["participant"].isin(participants["participant"])
        & tidy["timepoint"].isin(timepoints)
        & tidy["repeat_instance"].fillna(0).isin([0, 1])
    ]
    instruments: dict[str, str] = {}
    score_rows = rows[rows["kind"] == "score"]
    item_rows = rows[(rows["kind"] == "item") & rows["text"].isna()]
    for frame in (score_rows, item_rows):
        pairs = frame[["name", "instrument"]].drop_duplicates("name")
        instruments.update(
            zip(pairs["name"].astype(str), pairs["instrument"].astype(str), strict=True)
        )
    order = {t: k for k, t in enumerate(timepoints)}

    def pivot(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        if not len(frame):
            return pd.DataFrame(columns=_KEYS)
        frame = frame.drop_duplicates([*_KEYS, "name"])
        wide = frame.set_index([*_KEYS, "name"])[column].unstack("name")
        wide = wide.reindex(columns=sorted(wide.columns, key=_natural)).reset_index()
        wide.columns.name = None
        wide["_tp"] = wide["timepoint"].map(order)
        wide = wide.sort_values(["participant", "_tp"], kind="stable").drop(columns="_tp")
        return wide.reset_index(drop=True)

    scores = pivot(score_rows.assign(value=score_rows["value"].astype(float)), "value")
    scores = participants[["participant", "arm", "site"]].merge(scores, on="participant")
    scores = scores[["participant", "arm", "site", "timepoint", *scores.columns[4:]]]
    codes_num = pd.to_numeric(item_rows["missing_code"], errors="coerce")
    items = pivot(item_rows.assign(value=item_rows["value"].astype(float)), "value")
    codes = pivot(item_rows.assign(value=codes_num.astype(float)), "value")
    for frame in (scores, items, codes):
        for col in frame.columns:
            if col not in ("participant", "arm", "site", "timepoint"):
                frame[col] = frame[col].astype("float64")
    return scores.reset_index(drop=True), items, codes, instruments


def _workers(s: Session, study_id: int, codes: pd.Series) -> list[str | None]:
    """Each participant's PS worker (the worker's pseudonymous code) when the participant had
    exactly one across their PS relationships; ``None`` with none or with several (a model with
    a worker level then names them rather than guess one)."""
    worker = aliased(Participant)
    user = aliased(Participant)
    pairs = s.execute(
        select(user.study_code, worker.study_code)
        .join(PSRelationship, PSRelationship.service_user_id == user.id)
        .join(worker, PSRelationship.ps_worker_id == worker.id)
        .where(PSRelationship.study_id == study_id)
    ).all()
    seen: dict[str, set[str]] = {}
    for person, their in pairs:
        seen.setdefault(person, set()).add(their)
    return [next(iter(seen[c])) if len(seen.get(c, ())) == 1 else None for c in codes.tolist()]


def _natural(name: str) -> tuple[str, int]:
    """Sort key putting ``scs_2`` before ``scs_10``."""
    stem, _, number = str(name).rpartition("_")
    return (stem, int(number)) if number.isdigit() else (str(name), -1)


def _labels(
    scores: pd.DataFrame,
    items: pd.DataFrame,
    instruments: dict[str, str],
    dictionary: dict[str, Field],
) -> tuple[dict[str, str], dict[str, dict[float, str]]]:
    """Variable labels from the instrument specs (scores: the spec's label; bundled items:
    instrument and item number) or the REDCap dictionary (field label), and value labels from
    the dictionary's choices (numeric codes only)."""
    from peerlens.instruments import UnknownInstrumentError, load_spec

    labels: dict[str, str] = {
        "participant": "Participant (pseudonymous study code)",
        "arm": "Allocated arm",
        "site": "Site",
        "timepoint": "Timepoint",
    }
    values: dict[str, dict[float, str]] = {}
    for col in [*scores.columns[4:], *items.columns[2:]]:
        name = str(col)
        f = dictionary.get(name)
        if f is not None:
            if f.field_label:
                labels[name] = " ".join(f.field_label.split())[:250]
            numeric: dict[float, str] = {}
            for code, text in parse_choices(f.choices).items():
                try:
                    numeric[float(code)] = " ".join(text.split())[:120]
                except ValueError:
                    continue
            if numeric:
                values[name] = numeric
            continue
        try:
            spec = load_spec(instruments.get(name, ""))
        except UnknownInstrumentError:
            continue
        try:
            score = spec.score(name)
        except KeyError:
            stem, _, number = name.rpartition("_")
            if stem == spec.id and number.isdigit():
                labels[name] = f"{spec.short_name} item {number}"
            elif name == f"{spec.id}_n_answered":
                labels[name] = f"{spec.short_name} items answered"
        else:
            labels[name] = f"{spec.short_name} {getattr(score, 'label', None) or name}"
    return labels, values


def _digest(*frames: pd.DataFrame) -> str:
    """sha256 of the frames' canonical CSV (``repr`` of floats: exact, platform-independent)."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(frame.to_csv(index=False, lineterminator="\n", float_format="%r").encode())
        h.update(b"\x00")
    return h.hexdigest()
