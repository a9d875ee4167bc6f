"""Participant flow of a trial by arm (CONSORT 2010 flow diagram: enrolment, allocation,
follow-up, analysis), counted from the study's participants and their scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = ["participant_flow"]


def participant_flow(
    participants: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    arms: Sequence[str],
    timepoints: Sequence[str],
    analysed: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Counts per arm at each stage of the CONSORT flow.

    Parameters
    ----------
    participants
        One row per enrolled participant: ``participant``, ``arm`` (``None``: not allocated)
        and ``withdrawn`` (bool).
    scores
        One row per participant and timepoint with at least one score (``participant``,
        ``timepoint``).
    arms, timepoints
        Level orders.
    analysed
        Outcome -> the rows a model used (``participant``, ``arm``); each adds a row
        ``analysed: <outcome>`` counting the participants with at least one of its values.

    Returns
    -------
    pandas.DataFrame
        Columns ``stage``, then one per arm, then ``total``. Stages: ``enrolled``,
        ``allocated``, ``assessed: <timepoint>`` (at least one score), ``withdrawn``, then the
        ``analysed`` rows.

    Notes
    -----
    Schulz, K. F., Altman, D. G., & Moher, D. (2010). CONSORT 2010 statement. BMJ, 340, c332.
    "Enrolled" counts every participant in the store, allocated or not; the arm columns count
    allocated participants only, so ``total`` of the enrolled row may exceed the sum of arms.

    Examples
    --------
    >>> people = pd.DataFrame({"participant": ["a", "b", "c"], "arm": ["PS", "UC", None],
    ...                        "withdrawn": [False, True, False]})
    >>> seen = pd.DataFrame({"participant": ["a", "b", "a"], "timepoint": ["t0", "t0", "t1"]})
    >>> flow = participant_flow(people, seen, arms=["PS", "UC"], timepoints=["t0", "t1"])
    >>> flow.to_dict("records")[2]
    {'stage': 'assessed: t0', 'PS': 1, 'UC': 1, 'total': 2}
    """
    arm_of = dict(zip(participants["participant"], participants["arm"], strict=True))
    rows: list[dict[str, object]] = []

    def count(stage: str, codes: pd.Series, total: int | None = None) -> None:
        codes = pd.Series(pd.unique(codes))
        by_arm = codes.map(arm_of)
        row: dict[str, object] = {"stage": stage}
        for a in arms:
            row[a] = int((by_arm == a).sum())
        row["total"] = int(total if total is not None else by_arm.isin(list(arms)).sum())
        rows.append(row)

    count("enrolled", participants["participant"], total=len(participants))
    count("allocated", participants.loc[participants["arm"].notna(), "participant"])
    for t in timepoints:
        count(f"assessed: {t}", scores.loc[scores["timepoint"] == t, "participant"])
    count("withdrawn", participants.loc[participants["withdrawn"].astype(bool), "participant"])
    for outcome, used in (analysed or {}).items():
        count(f"analysed: {outcome}", used["participant"])
    return pd.DataFrame(rows, columns=["stage", *arms, "total"])
