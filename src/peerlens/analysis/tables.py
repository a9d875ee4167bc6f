"""Descriptive tables of a trial by arm: the baseline table (CONSORT item 15) and missing
outcome data by arm and timepoint."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["baseline_table", "missing_table"]


def baseline_table(
    scores: pd.DataFrame,
    participants: pd.DataFrame,
    *,
    outcomes: Sequence[str],
    arms: Sequence[str],
    baseline: str,
    sites: Sequence[str] = (),
) -> pd.DataFrame:
    """Baseline characteristics by arm: mean (SD) of each outcome, n (%) of each site.

    Parameters
    ----------
    scores
        One row per participant and timepoint: ``participant``, ``timepoint`` and the outcome
        columns.
    participants
        ``participant``, ``arm`` and ``site`` of every allocated participant (the
        denominators of the percentages).
    outcomes
        Outcome columns, in the order shown.
    arms
        Arm order.
    baseline
        The baseline timepoint.
    sites
        Site order (omit to leave sites out).

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``statistic`` (``mean (SD)`` or ``n (%)``), then per arm and for
        ``total`` the columns ``<arm>`` (formatted text), ``<arm>_n`` (participants with a value),
        ``<arm>_value`` (mean or count) and ``<arm>_spread`` (SD, sample n - 1; or percent).

    Notes
    -----
    CONSORT 2010 item 15 (Moher et al. 2010): baseline data are described, not tested.

    Examples
    --------
    >>> people = pd.DataFrame({"participant": ["a", "b", "c"], "arm": ["PS", "PS", "UC"],
    ...                        "site": ["x", "y", "x"]})
    >>> s = pd.DataFrame({"participant": ["a", "b", "c"], "timepoint": "t0", "y": [1.0, 3.0, 2.0]})
    >>> t = baseline_table(s, people, outcomes=["y"], arms=["PS", "UC"], baseline="t0",
    ...                    sites=["x", "y"])
    >>> t["PS"].tolist()
    ['2.00 (1.41)', '1 (50.0%)', '1 (50.0%)']
    """
    allocated = participants[participants["arm"].isin(list(arms))]
    base = scores[scores["timepoint"] == baseline].merge(
        allocated[["participant", "arm"]], on="participant", how="inner", suffixes=("_", "")
    )
    groups = [*arms, "total"]
    rows: list[dict[str, object]] = []
    for outcome in outcomes:
        row: dict[str, object] = {"variable": outcome, "statistic": "mean (SD)"}
        for g in groups:
            values = base.loc[base["arm"] == g, outcome] if g != "total" else base[outcome]
            values = values.dropna().astype(float)
            mean = float(values.mean()) if len(values) else float("nan")
            sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            row[g] = f"{mean:.2f} ({sd:.2f})" if len(values) else "–"
            row[f"{g}_n"], row[f"{g}_value"], row[f"{g}_spread"] = len(values), mean, sd
        rows.append(row)
    for site in sites:
        row = {"variable": f"site: {site}", "statistic": "n (%)"}
        for g in groups:
            people = allocated if g == "total" else allocated[allocated["arm"] == g]
            n = int((people["site"] == site).sum())
            pct = 100.0 * n / len(people) if len(people) else float("nan")
            row[g] = f"{n} ({pct:.1f}%)" if len(people) else "–"
            row[f"{g}_n"], row[f"{g}_value"], row[f"{g}_spread"] = len(people), n, pct
        rows.append(row)
    columns = ["variable", "statistic", *groups]
    columns += [f"{g}_{k}" for g in groups for k in ("n", "value", "spread")]
    return pd.DataFrame(rows, columns=columns)


def missing_table(
    scores: pd.DataFrame,
    participants: pd.DataFrame,
    *,
    outcome: str,
    arms: Sequence[str],
    timepoints: Sequence[str],
) -> pd.DataFrame:
    """Observed and missing values of ``outcome`` by arm and timepoint, over every allocated
    participant (a participant with no row at a timepoint counts as missing there).

    Returns
    -------
    pandas.DataFrame
        ``arm``, ``timepoint``, ``allocated``, ``observed``, ``missing``, ``missing_pct``.

    Examples
    --------
    >>> people = pd.DataFrame({"participant": ["a", "b"], "arm": ["PS", "PS"]})
    >>> s = pd.DataFrame({"participant": ["a", "b", "a"], "timepoint": ["t0", "t0", "t1"],
    ...                   "y": [1.0, 2.0, None]})
    >>> table = missing_table(s, people, outcome="y", arms=["PS"], timepoints=["t0", "t1"])
    >>> table["missing"].tolist()
    [0, 2]
    """
    allocated = participants[participants["arm"].isin(list(arms))]
    seen = scores.loc[scores[outcome].notna(), ["participant", "timepoint"]]
    rows = []
    for a in arms:
        people = set(allocated.loc[allocated["arm"] == a, "participant"])
        for t in timepoints:
            observed = len(people & set(seen.loc[seen["timepoint"] == t, "participant"]))
            missing = len(people) - observed
            pct = 100.0 * missing / len(people) if people else float("nan")
            rows.append((a, t, len(people), observed, missing, pct))
    return pd.DataFrame(
        rows, columns=["arm", "timepoint", "allocated", "observed", "missing", "missing_pct"]
    )
