"""The analysis dataset for other statistics packages: SPSS ``.sav``, Stata ``.dta`` (both via
pyreadstat) and R (a CSV and a script that refits the report's mixed models with lme4/lmerTest).

One row per participant and timepoint: ``participant``, ``arm``, ``site``, ``timepoint``, every
item and every score. In SPSS and Stata, ``arm``, ``site`` and ``timepoint`` are numeric codes
(1, 2, ... in the study's order, the reference arm first) with value labels; variable labels come
from the instrument specs or the REDCap dictionary, value labels of items from the dictionary's
choices. An item answered with one of the study's missing-data codes keeps the code:

- SPSS: the code's value, declared user-missing (``MISSING VALUES``) for the item;
- Stata: an extended missing value, ``.a`` for the study's first code, ``.b`` for the second,
  ... (Stata has no user-missing numbers); the file label lists the mapping;
- R: ``NA`` (the CSV is for model fitting).

Files are written atomically: on any error nothing is left behind.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from peerlens._tables import neutralise_formulas
from peerlens.analysis._files import write_files, write_via
from peerlens.analysis.report import DEFAULT_OUTCOMES, ReportError, arm_order

if TYPE_CHECKING:
    from peerlens.study import AnalysisDataset

__all__ = ["FORMATS", "analysis_table", "write_export"]

#: Export format -> the suffix of ``--out``.
FORMATS = {"spss": ".sav", "stata": ".dta", "r": ".csv"}
_FACTORS = ("arm", "site", "timepoint")


def analysis_table(dataset: AnalysisDataset, *, reference_arm: str | None = None) -> pd.DataFrame:
    """Items and scores side by side, one row per participant and timepoint, with the codes of
    coded-missing items in place (floats; ``arm``, ``site`` and ``timepoint`` as text)."""
    items = dataset.items.copy()
    codes = dataset.item_codes.set_index(["participant", "timepoint"])
    keyed = items.set_index(["participant", "timepoint"])
    keyed = keyed.where(codes.reindex_like(keyed).isna(), codes.reindex_like(keyed))
    table = dataset.scores.merge(keyed.reset_index(), on=["participant", "timepoint"], how="outer")
    people = dataset.participants.set_index("participant")
    table["arm"] = table["participant"].map(people["arm"])
    table["site"] = table["participant"].map(people["site"])
    item_cols = [c for c in items.columns if c not in ("participant", "timepoint")]
    score_cols = list(dataset.score_names)
    rank = {t: k for k, t in enumerate(dataset.timepoints)}
    table = table.assign(_tp=table["timepoint"].map(rank)).sort_values(
        ["participant", "_tp"], kind="stable"
    )
    table = table[["participant", "arm", "site", "timepoint", *item_cols, *score_cols]]
    return table.reset_index(drop=True)


def write_export(
    dataset: AnalysisDataset,
    out: str | Path,
    *,
    format: str,
    outcomes: Sequence[str] | None = None,
    reference_arm: str | None = None,
) -> tuple[Path, ...]:
    """Write ``dataset`` as ``format`` (``spss``, ``stata`` or ``r``) to ``out``.

    Parameters
    ----------
    dataset
        From :func:`peerlens.study.analysis_dataset`.
    out
        The file (``.sav``, ``.dta``, or ``.csv`` for ``r``; the R script is written beside it
        with the suffix ``.R``).
    format
        ``spss``, ``stata`` or ``r``.
    outcomes
        The outcomes the R script models (default: the report's default outcomes present).
    reference_arm
        The control arm (default as in the report).

    Returns
    -------
    tuple of Path
        The files written.

    Raises
    ------
    ReportError
        Unknown format, wrong suffix, no data, or an unknown outcome or arm.
    """
    path = Path(out)
    if format not in FORMATS:
        raise ReportError(f"export format {format!r}: use one of {', '.join(FORMATS)}")
    if path.suffix.lower() != FORMATS[format]:
        raise ReportError(f"{path}: a {format} export is written as {FORMATS[format]}")
    if not len(dataset.scores) and (format == "r" or not len(dataset.items)):
        raise ReportError(f"study {dataset.study!r} has no questionnaire data to export")
    arms = arm_order(dataset.arms, reference_arm)
    table = analysis_table(dataset)
    if format == "r":
        chosen = _outcomes(dataset, outcomes)
        script = _r_script(path.name, chosen, arms, dataset.timepoints)
        r_table = table.copy()
        for col in dataset.items.columns[2:]:  # coded-missing items are NA for model fitting
            r_table[col] = (
                dataset.items.set_index(["participant", "timepoint"])[col]
                .reindex(pd.MultiIndex.from_frame(table[["participant", "timepoint"]]))
                .to_numpy()
            )
        r_table = neutralise_formulas(r_table)  # as the tidy CSV: names may start with "="
        csv = r_table.to_csv(index=False, lineterminator="\n", na_rep="NA").encode("utf-8")
        script_path = path.with_suffix(".R")
        _refuse_foreign_script(script_path, script.splitlines()[0])
        write_files({path: csv, script_path: script.encode("utf-8")})
        return path, script_path
    data, labels, values = _coded(table, dataset, arms)
    codes = sorted(dataset.missing_codes)
    item_cols = list(dataset.items.columns[2:])
    coded_items = [c for c in item_cols if dataset.item_codes[c].notna().any()]
    _check_names(list(data.columns), format)
    spss_missing = _spss_missing(data, coded_items, codes) if format == "spss" else None
    if format == "stata" and len(codes) > len(string.ascii_lowercase):
        raise ReportError(
            f"study {dataset.study!r} has {len(codes)} missing-data codes; Stata's extended "
            f"missing values hold {len(string.ascii_lowercase)} (.a to .z): export as spss or r"
        )
    import pyreadstat

    def write(tmp: Path) -> None:
        if format == "spss":
            pyreadstat.write_sav(
                data,
                str(tmp),
                column_labels=labels,
                variable_value_labels=values,
                missing_ranges=spss_missing,
            )
        else:
            letters = dict(zip(codes, string.ascii_lowercase, strict=False))
            stata = data.copy()
            for c in coded_items:
                column = stata[c].astype(object)
                for code, letter in letters.items():
                    column[np.isclose(stata[c].to_numpy(dtype=float), code)] = letter
                stata[c] = column
            mapping = ", ".join(f".{letter} = {code:g}" for code, letter in letters.items())
            pyreadstat.write_dta(
                stata,
                str(tmp),
                file_label=f"peerlens {dataset.study}; missing codes {mapping}"[:80],
                column_labels={k: (v or k)[:80] for k, v in labels.items()},
                variable_value_labels=values,
                missing_user_values={c: list(letters.values()) for c in coded_items} or None,
            )

    write_via(path, write)
    return (path,)


#: Names a statistics package reserves (Stata manual [U] 11.3; SPSS Syntax Reference,
#: "Reserved keywords"); compared case-insensitively for SPSS, exactly for Stata.
_RESERVED = {
    "stata": frozenset(
        [
            "_all",
            "_b",
            "byte",
            "_coef",
            "_cons",
            "double",
            "float",
            "if",
            "in",
            "int",
            "long",
            "_n",
            "_N",
            "_pi",
            "_pred",
            "_rc",
            "_skip",
            "strL",
            "using",
            "with",
        ]
    ),
    "spss": frozenset(
        ["ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"]
    ),
}
#: The longest variable name each package accepts (Stata: 32 characters; SPSS: 64 bytes).
_MAX_NAME = {"stata": 32, "spss": 64}


def _check_names(columns: Sequence[str], format: str) -> None:
    """Refuse a column name ``format`` cannot hold (length, characters, reserved word) before
    anything is written; names are never shortened, so no two columns can collide."""
    bad = []
    for name in columns:
        size = len(name.encode("utf-8")) if format == "spss" else len(name)
        reserved = name.upper() if format == "spss" else name
        if size > _MAX_NAME[format]:
            bad.append(f"{name!r} is longer than {_MAX_NAME[format]} characters")
        elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and format == "stata":
            bad.append(f"{name!r} is not a Stata name (letters, digits, _)")
        elif reserved in _RESERVED[format]:
            bad.append(f"{name!r} is a reserved word")
    if bad:
        raise ReportError(
            f"a {format} export cannot hold these variable names: {'; '.join(bad)}; rename the "
            "fields in the data dictionary or export as r (CSV)"
        )


def _spss_missing(
    data: pd.DataFrame, columns: Sequence[str], codes: Sequence[float]
) -> dict[str, list[Any]] | None:
    """SPSS user-missing declarations for ``codes``: up to three discrete values, else one
    ``lo..hi`` range (plus one discrete value) holding every code and no real answer."""
    if not codes or not columns:
        return None
    if len(codes) <= 3:
        spec: list[Any] = list(codes)
    else:
        answers = data[list(columns)].to_numpy(dtype=float).ravel()
        answers = answers[~np.isnan(answers) & ~np.isin(answers, codes)]
        spec = []
        for inside, extra in ((codes, []), (codes[1:], codes[:1]), (codes[:-1], codes[-1:])):
            lo, hi = min(inside), max(inside)
            if not ((answers >= lo) & (answers <= hi)).any():
                spec = [{"lo": lo, "hi": hi}, *extra]
                break
        if not spec:
            raise ReportError(
                f"SPSS declares at most 3 missing-data codes or one range: the codes "
                f"{', '.join(f'{c:g}' for c in codes)} enclose real answers; export as stata or r"
            )
    return {c: spec for c in columns}


def _refuse_foreign_script(path: Path, first_line: str) -> None:
    """Refuse to replace an R script at ``path`` that peerlens did not write."""
    if not path.exists():
        return
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            ours = fh.readline().rstrip("\n") == first_line
    except OSError:
        ours = False
    if not ours:
        raise ReportError(
            f"{path}: exists and was not written by peerlens; the R export writes its script "
            "there: move that file or choose another --out name"
        )


def _outcomes(dataset: AnalysisDataset, outcomes: Sequence[str] | None) -> tuple[str, ...]:
    available = dataset.score_names
    if outcomes:
        unknown = [o for o in outcomes if o not in available]
        if unknown:
            raise ReportError(
                f"unknown outcome(s) {', '.join(unknown)}; the scores are: {', '.join(available)}"
            )
        return tuple(dict.fromkeys(outcomes))
    chosen = tuple(o for o in DEFAULT_OUTCOMES if o in available)
    if not chosen:
        raise ReportError(f"none of the default outcomes; name some ({', '.join(available)})")
    return chosen


def _coded(
    table: pd.DataFrame, dataset: AnalysisDataset, arms: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, str | None], dict[str, dict[float, str]]]:
    """``arm``, ``site`` and ``timepoint`` as numeric codes with value labels; labels of every
    column."""
    data = table.copy()
    values: dict[str, dict[float, str]] = {}
    for name, levels in zip(_FACTORS, (arms, dataset.sites, dataset.timepoints), strict=True):
        code = {level: float(k) for k, level in enumerate(levels, start=1)}
        data[name] = data[name].map(code).astype(float)
        values[name] = {v: str(k) for k, v in code.items()}
    labels: dict[str, str | None] = {
        c: str(dataset.variable_labels.get(c, c)) for c in data.columns
    }
    for col, labelled in dataset.value_labels.items():
        if col in data.columns:
            values[col] = dict(labelled)
    return data, labels, values


def _r_script(
    csv_name: str, outcomes: Sequence[str], arms: Sequence[str], timepoints: Sequence[str]
) -> str:
    """An R script that reads the CSV and fits each outcome's change model as the report does,
    writing the fixed effects (with peerlens's term names) to ``<csv stem>_fixed_effects.csv``."""
    stem = Path(csv_name).stem

    def r_vector(values: Sequence[str]) -> str:
        return "c(" + ", ".join(_r_string(v) for v in values) + ")"

    lines = [
        "# Refits the peerlens report's mixed models with lme4 + lmerTest (REML, Satterthwaite).",
        "# Run from the folder holding the CSV: Rscript " + f"{stem}.R",
        "suppressPackageStartupMessages({ library(lme4); library(lmerTest) })",
        "args <- commandArgs(trailingOnly = TRUE)",
        "here <- if (length(args)) args[1] else '.'",
        f"d <- read.csv(file.path(here, {_r_string(csv_name)}), stringsAsFactors = FALSE,",
        "              na.strings = 'NA')",
        f"d$arm <- factor(d$arm, levels = {r_vector(arms)})",
        f"d$timepoint <- factor(d$timepoint, levels = {r_vector(timepoints)})",
        "d$participant <- factor(d$participant)",
        "peerlens_term <- function(name) {",
        "  parts <- strsplit(name, ':', fixed = TRUE)[[1]]",
        "  parts <- ifelse(startsWith(parts, 'arm'), paste0('arm[', substring(parts, 4), ']'),",
        "           ifelse(startsWith(parts, 'timepoint'),",
        "                  paste0('timepoint[', substring(parts, 10), ']'), parts))",
        "  paste(parts, collapse = ':')",
        "}",
        "rows <- list()",
        f"for (outcome in {r_vector(outcomes)}) {{",
        "  f <- as.formula(paste(outcome, '~ arm * timepoint + (1 | participant)'))",
        "  fit <- lmer(f, data = d, REML = TRUE,",
        "              control = lmerControl(optimizer = 'bobyqa'))",
        "  co <- summary(fit)$coefficients",
        "  rows[[outcome]] <- data.frame(outcome = outcome,",
        "    term = vapply(rownames(co), peerlens_term, ''), estimate = co[, 'Estimate'],",
        "    se = co[, 'Std. Error'], df = co[, 'df'], p = co[, 'Pr(>|t|)'])",
        "  print(summary(fit))",
        "}",
        "out <- do.call(rbind, rows)",
        f"write.csv(out, file.path(here, {_r_string(stem + '_fixed_effects.csv')}),",
        "          row.names = FALSE)",
        "",
    ]
    return "\n".join(lines)


def _r_string(text: str) -> str:
    """``text`` as an R string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
