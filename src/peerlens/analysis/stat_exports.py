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

The R CSV also holds each participant's PS worker (``worker``) and that worker's connection
index (``connection_index``) when the study records them, and its script refits every model of
the report (:attr:`peerlens.analysis.report.Report.models`): the mixed model of each outcome,
the partially nested model and the moderation by the connection index (lme4 + lmerTest), and the
least-squares paths of the mediation model (``lm``). It writes each model's fixed effects,
variance components and REML log-likelihood, under the report's model keys and term names, to
``<name>_models.csv`` (columns ``model``, ``kind``, ``name``, ``value``).
With the study's HRV analysis table (:func:`peerlens.study.hrv_table`), the R export also
writes it beside the CSV as ``<stem>_hrv.csv`` (one row per recording window) and its script
refits the report's HRV models from it (:func:`peerlens.analysis.report_hrv.report_hrv_models`:
the same validity filters, log transform and reactivity, done in R), writing their fixed
effects, variance components and log-likelihoods to ``<stem>_hrv_models.csv``.

With the study's HRV analysis table, the SPSS and Stata exports also write it beside the
dataset as ``<stem>_hrv.sav`` / ``<stem>_hrv.dta`` (one row per recording window, the columns of
:data:`peerlens.study.HRV_TABLE_COLUMNS`): ``arm``, ``site`` and ``timepoint`` coded as in the
dataset, ``window`` coded (the report's windows first, in order) and ``valid`` as 1/0, each with
value labels; variable labels from :data:`peerlens.study.HRV_TABLE_LABELS`.

Files are written atomically: on any error nothing is left behind (the HRV file and the dataset
are written together or not at all).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from peerlens._tables import neutralise_formulas
from peerlens.analysis._files import write_all_via, write_files
from peerlens.analysis.report import DEFAULT_OUTCOMES, ReportError, arm_order

if TYPE_CHECKING:
    from peerlens.study import AnalysisDataset, HrvTable

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
    hrv: HrvTable | None = None,
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
    hrv
        The study's HRV analysis table: with any rows, written beside ``out`` as
        ``<stem>_hrv`` with the format's suffix (with ``r``, its models refitted by the script).

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
        r_table = table.copy()
        worker_models = _worker_models(dataset, r_table, chosen, arms)
        script = _r_script(path.name, chosen, arms, dataset.timepoints) + worker_models
        for col in dataset.items.columns[2:]:  # coded-missing items are NA for model fitting
            r_table[col] = (
                dataset.items.set_index(["participant", "timepoint"])[col]
                .reindex(pd.MultiIndex.from_frame(table[["participant", "timepoint"]]))
                .to_numpy()
            )
        r_table = neutralise_formulas(r_table)  # as the tidy CSV: names may start with "="
        csv = r_table.to_csv(index=False, lineterminator="\n", na_rep="NA").encode("utf-8")
        script_path = path.with_suffix(".R")
        files = {path: csv}
        if hrv is not None and len(hrv.windows):
            hrv_path, hrv_csv, hrv_script = _hrv_files(path, hrv, arms, dataset.timepoints)
            files[hrv_path] = hrv_csv
            script += hrv_script
        _refuse_foreign_script(script_path, script.splitlines()[0])
        files[script_path] = script.encode("utf-8")
        write_files(files)
        return tuple(files)
    data, labels, values = _coded(table, dataset, arms)
    parts = [(path, data, labels, values, f"peerlens {dataset.study}")]
    if hrv is not None and len(hrv.windows):
        hrv_data, hrv_labels, hrv_values = _hrv_coded(hrv, dataset, arms)
        _check_names(list(hrv_data.columns), format)
        hrv_path = path.with_name(f"{path.stem}_hrv{path.suffix}")
        parts.append((hrv_path, hrv_data, hrv_labels, hrv_values, f"peerlens {dataset.study} HRV"))
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

    letters = dict(zip(codes, string.ascii_lowercase, strict=False))
    mapping = ", ".join(f".{letter} = {code:g}" for code, letter in letters.items())

    def writer(
        frame: pd.DataFrame,
        column_labels: dict[str, str | None],
        value_labels: dict[str, dict[float, str]],
        title: str,
    ) -> Callable[[Path], None]:
        missing = coded_items if frame is data else []

        def write(tmp: Path) -> None:
            if format == "spss":
                pyreadstat.write_sav(
                    frame,
                    str(tmp),
                    column_labels=column_labels,
                    variable_value_labels=value_labels,
                    missing_ranges=spss_missing if frame is data else None,
                )
                return
            stata = frame.copy()
            for c in missing:
                column = stata[c].astype(object)
                for code, letter in letters.items():
                    column[np.isclose(stata[c].to_numpy(dtype=float), code)] = letter
                stata[c] = column
            label = f"{title}; missing codes {mapping}" if frame is data else title
            pyreadstat.write_dta(
                stata,
                str(tmp),
                file_label=label[:80],
                column_labels={k: (v or k)[:80] for k, v in column_labels.items()},
                variable_value_labels=value_labels,
                missing_user_values={c: list(letters.values()) for c in missing} or None,
            )

        return write

    write_all_via({p: writer(frame, cl, vl, title) for p, frame, cl, vl, title in parts})
    return tuple(p for p, *_ in parts)


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
    values = _code_factors(
        data, zip(_FACTORS, (arms, dataset.sites, dataset.timepoints), strict=True)
    )
    labels: dict[str, str | None] = {
        c: str(dataset.variable_labels.get(c, c)) for c in data.columns
    }
    for col, labelled in dataset.value_labels.items():
        if col in data.columns:
            values[col] = dict(labelled)
    return data, labels, values


def _code_factors(
    data: pd.DataFrame, levels: Iterable[tuple[str, Sequence[str]]]
) -> dict[str, dict[float, str]]:
    """Replace each named text column of ``data`` (in place) by the codes 1, 2, ... of its
    ``levels`` in order (anything else missing); return their value labels."""
    values: dict[str, dict[float, str]] = {}
    for name, order in levels:
        code = {level: float(k) for k, level in enumerate(order, start=1)}
        data[name] = data[name].map(code).astype(float)
        values[name] = {v: str(k) for k, v in code.items()}
    return values


def _hrv_coded(
    hrv: HrvTable, dataset: AnalysisDataset, arms: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, str | None], dict[str, dict[float, str]]]:
    """The HRV table for SPSS and Stata: ``arm``, ``site`` and ``timepoint`` coded as in the
    dataset, ``window`` coded (the report's windows first, then the others by name), ``valid``
    as 1 (valid) / 0 (not valid); variable labels of every column."""
    from peerlens.analysis.report_hrv import HRV_WINDOWS
    from peerlens.study import HRV_TABLE_LABELS

    data = hrv.windows.copy()
    others = sorted(set(data["window"].dropna()) - set(HRV_WINDOWS))
    factors = (arms, dataset.sites, dataset.timepoints, (*HRV_WINDOWS, *others))
    values = _code_factors(data, zip((*_FACTORS, "window"), factors, strict=True))
    data["valid"] = data["valid"].map({True: 1.0, False: 0.0}).astype(float)
    values["valid"] = {1.0: "valid", 0.0: "not valid"}
    labels: dict[str, str | None] = {c: HRV_TABLE_LABELS[c] for c in data.columns}
    return data, labels, values


def _worker_models(
    dataset: AnalysisDataset, table: pd.DataFrame, outcomes: Sequence[str], arms: Sequence[str]
) -> str:
    """R lines refitting the report's PS worker models (:mod:`~.report_worker`): add to
    ``table`` (in place) the columns they need and return the script's part that fits them."""
    from peerlens.analysis.report_worker import (
        MEDIATORS,
        mediation_outcomes,
        worker_connection,
        worker_scores,
    )

    lines = ["", "# The report's PS worker models (each skipped with a message when it fails)."]
    # The timepoints the report models: those with scores (as its context keeps them).
    present = [t for t in dataset.timepoints if (dataset.scores["timepoint"] == t).any()]
    base, later = present[0], present[1:]
    if worker_scores(dataset) is not None:
        workers = dataset.participants.set_index("participant")["worker"]
        table["worker"] = table["participant"].map(workers)
        ps = sorted(dataset.participants.loc[workers.notna().to_numpy(), "arm"].dropna().unique())
        lines += [
            f"ps_arm <- {_r_vector(ps[:1])}",
            "d$d <- as.numeric(d$arm %in% ps_arm & !d$timepoint %in% "
            f"{_r_vector([base])} & !is.na(d$timepoint))",
            "d$worker <- ifelse(is.na(d$worker), 'none', d$worker)",
            f"for (outcome in {_r_vector(outcomes)}) tryCatch({{",
            "  f <- as.formula(paste(outcome,",
            "    '~ arm * timepoint + (0 + d | worker) + (1 | participant)'))",
            "  keep_lmer(paste0('nested:', outcome), lmer(f, data = d, REML = TRUE,",
            "            control = ctrl))",
            "}, error = function(e) message('nested:', outcome, ': ', conditionMessage(e)))",
        ]
        index = worker_connection(dataset, n_boot=0, seed=0)
        if index is not None:
            by_worker = index.set_index("worker")["connection_index"]
            table["connection_index"] = table["worker"].map(by_worker)
            mods = [f"mod_t{k}" for k in range(1, len(later) + 1)]
            names = {"mod_b": f"arm[{ps[0]}]:connection_c"} | {
                m: f"arm[{ps[0]}]:timepoint[{t}]:connection_c"
                for m, t in zip(mods, later, strict=True)
            }
            rename = ", ".join(f"{m} = {_r_string(n)}" for m, n in names.items())
            lines += [
                f"mod_names <- c({rename})",
                f"for (outcome in {_r_vector(outcomes)}) tryCatch({{",
                "  seen <- d$arm %in% ps_arm & !is.na(d[[outcome]]) & !is.na(d$timepoint)",
                "  first <- !duplicated(d$worker[seen])",
                "  centre <- mean(d$connection_index[seen][first])",
                "  d$mod_b <- ifelse(d$arm %in% ps_arm, d$connection_index - centre, 0)",
                *(
                    f"  d${m} <- d$mod_b * (d$timepoint %in% {_r_vector([t])})"
                    for m, t in zip(mods, later, strict=True)
                ),
                "  f <- as.formula(paste(outcome, '~ arm * timepoint +',",
                "    paste(names(mod_names), collapse = ' + '),",
                "    '+ (0 + d | worker) + (1 | participant)'))",
                "  keep_lmer(paste0('moderation:', outcome), lmer(f, data = d, REML = TRUE,",
                "            control = ctrl), mod_names)",
                "}, error = function(e) message('moderation:', outcome, ': ',",
                "                                conditionMessage(e)))",
            ]
    chosen = mediation_outcomes(outcomes, dataset.score_names)
    if len(arms) == 2 and chosen:
        lines += [
            f"mediators <- {_r_vector(MEDIATORS)}",
            f"for (outcome in {_r_vector(chosen)}) tryCatch({{",
            "  cols <- c(outcome, mediators)",
            f"  b <- d[d$timepoint %in% {_r_vector([base])} & !is.na(d$arm),",
            "         c('participant', 'arm', cols)]",
            f"  f <- d[d$timepoint %in% {_r_vector(later[-1:])}, c('participant', cols)]",
            "  w <- merge(b, f, by = 'participant', suffixes = c('_0', '_1'))",
            "  for (v in cols) w[[paste0('d_', v)]] <- w[[paste0(v, '_1')]] - w[[paste0(v, '_0')]]",
            f"  w$ps <- as.numeric(w$arm == {_r_string(arms[1])})",
            "  w <- w[complete.cases(w[, c(paste0('d_', cols), paste0(cols, '_0'))]), ]",
            "  base <- paste(paste0(cols, '_0'), collapse = ' + ')",
            "  for (m in mediators) keep_lm(sprintf('mediation:%s:a[%s]', outcome, m),",
            "    lm(as.formula(paste0('d_', m, ' ~ ps + ', base)), data = w))",
            "  keep_lm(sprintf('mediation:%s:b', outcome), lm(as.formula(paste0('d_', outcome,",
            "    ' ~ ps + ', paste0('d_', mediators, collapse = ' + '), ' + ', base)), data = w))",
            "  keep_lm(sprintf('mediation:%s:total', outcome),",
            "    lm(as.formula(paste0('d_', outcome, ' ~ ps + ', base)), data = w))",
            "}, error = function(e) message('mediation:', outcome, ': ', conditionMessage(e)))",
        ]
    return "\n".join([*lines, *_R_MODELS_OUT, ""])


#: The end of the R script: every model kept, as one long table.
_R_MODELS_OUT = (
    "",
    "write.csv(do.call(rbind, results), file.path(here, models_csv), row.names = FALSE)",
)


def _r_vector(values: Sequence[str]) -> str:
    """``values`` as an R character vector."""
    return "c(" + ", ".join(_r_string(v) for v in values) + ")"


def _r_script(
    csv_name: str, outcomes: Sequence[str], arms: Sequence[str], timepoints: Sequence[str]
) -> str:
    """An R script that reads the CSV and fits each outcome's change model as the report does,
    writing the fixed effects (with peerlens's term names) to ``<csv stem>_fixed_effects.csv``."""
    stem = Path(csv_name).stem
    r_vector = _r_vector
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
        "ctrl <- lmerControl(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e6),",
        "                    check.conv.grad = .makeCC('ignore', tol = 1e-3))",
        f"models_csv <- {_r_string(stem + '_models.csv')}",
        "results <- list()",
        "add_rows <- function(key, kind, name, value) {",
        "  results[[length(results) + 1]] <<- data.frame(model = key, kind = kind, name = name,",
        "                                                value = value)",
        "}",
        "vc_names <- c(participant = 'participant_intercept', worker = 'worker',",
        "              Residual = 'residual')",
        "keep_lmer <- function(key, fit, rename = character()) {",
        "  co <- fixef(fit)",
        "  add_rows(key, 'fixed', vapply(names(co), function(n)",
        "    if (n %in% names(rename)) rename[[n]] else peerlens_term(n), ''), unname(co))",
        "  vc <- as.data.frame(VarCorr(fit))",
        "  add_rows(key, 'variance', unname(vc_names[vc$grp]), vc$vcov)",
        "  add_rows(key, 'loglik', 'loglik', as.numeric(logLik(fit)))",
        "}",
        "keep_lm <- function(key, fit) {",
        "  co <- coef(fit)",
        "  add_rows(key, 'fixed', names(co), unname(co))",
        "}",
        "rows <- list()",
        f"for (outcome in {r_vector(outcomes)}) {{",
        "  f <- as.formula(paste(outcome, '~ arm * timepoint + (1 | participant)'))",
        "  fit <- lmer(f, data = d, REML = TRUE, control = ctrl)",
        "  keep_lmer(paste0('mixed:', outcome), fit)",
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


def _hrv_files(
    path: Path, hrv: HrvTable, arms: Sequence[str], timepoints: Sequence[str]
) -> tuple[Path, bytes, str]:
    """The HRV table's CSV beside ``path`` and the R code refitting the report's HRV models."""
    from peerlens.analysis.report_hrv import HRV_WINDOWS, hrv_timepoints

    windows = hrv.windows
    hrv_path = path.with_name(f"{path.stem}_hrv.csv")
    csv = windows.to_csv(index=False, lineterminator="\n", na_rep="NA", float_format="%.17g")
    present = set(windows["arm"].dropna())
    script = _r_hrv_script(
        hrv_path.name,
        f"{path.stem}_hrv_models.csv",
        [a for a in arms if a in present],
        hrv_timepoints(windows, timepoints),
        HRV_WINDOWS,
    )
    return hrv_path, csv.encode("utf-8"), script


def _r_hrv_script(
    csv_name: str,
    out_name: str,
    arms: Sequence[str],
    timepoints: Sequence[str],
    windows: Sequence[str],
) -> str:
    """R code (appended to the export's script, after ``peerlens_term``) refitting the report's
    HRV models from the HRV table: windows kept when analysed (``status`` ok), valid, not stale,
    at a modelled timepoint and with a positive value; ln RMSSD and ln HF per window and the
    reactivity ln(session) - ln(baseline), each ``y ~ arm * timepoint + (1 | participant)``
    (REML). Writes ``model``, ``kind`` (fixed, variance, loglik), ``term``, ``estimate``,
    ``se``, ``df`` (for loglik: the number of observations)."""

    def r_vector(values: Sequence[str]) -> str:
        return "c(" + ", ".join(_r_string(v) for v in values) + ")"

    task, rest = windows[1], windows[0]
    lines = [
        "",
        "# The report's HRV models (section 'HRV outcomes'), from the HRV analysis table.",
        f"h <- read.csv(file.path(here, {_r_string(csv_name)}), stringsAsFactors = FALSE,",
        "              na.strings = 'NA')",
        f"h <- h[h$timepoint %in% {r_vector(timepoints)} & h$window %in% {r_vector(windows)}, ]",
        "h <- h[h$status == 'ok' & as.character(h$valid) %in% c('TRUE', 'True', 'true') &",
        "       h$derivation != 'stale', ]",
        f"h$arm <- factor(h$arm, levels = {r_vector(arms)})",
        f"h$timepoint <- factor(h$timepoint, levels = {r_vector(timepoints)})",
        "hrv_control <- lmerControl(optimizer = 'bobyqa',",
        "  optCtrl = list(rhoend = 1e-12, maxfun = 1e6),",
        "  check.conv.grad = .makeCC('ignore', tol = 1e-3))",
        "hrv_fit <- function(d, key) {",
        "  d$participant <- factor(d$participant)",
        "  fit <- lmer(y ~ arm * timepoint + (1 | participant), data = d, REML = TRUE,",
        "              control = hrv_control)",
        "  co <- summary(fit)$coefficients",
        "  vc <- as.data.frame(VarCorr(fit))",
        "  rbind(",
        "    data.frame(model = key, kind = 'fixed',",
        "      term = vapply(rownames(co), peerlens_term, ''),",
        "      estimate = co[, 'Estimate'], se = co[, 'Std. Error'], df = co[, 'df']),",
        "    data.frame(model = key, kind = 'variance',",
        "      term = ifelse(vc$grp == 'participant', 'participant_intercept', 'residual'),",
        "      estimate = vc$vcov, se = NA, df = NA),",
        "    data.frame(model = key, kind = 'loglik', term = 'REML',",
        "      estimate = as.numeric(logLik(fit)), se = NA, df = nobs(fit)))",
        "}",
        "hrv_rows <- list()",
        "for (out in c('ln_rmssd', 'ln_hf')) {",
        "  metric <- c(ln_rmssd = 'rmssd_ms', ln_hf = 'hf_ms2')[[out]]",
        "  d <- h[!is.na(h[[metric]]) & h[[metric]] > 0, ]",
        "  d$y <- log(d[[metric]])",
        f"  for (w in {r_vector(windows)}) {{",
        "    part <- d[d$window == w, ]",
        "    if (nrow(part)) hrv_rows[[paste0(out, '@', w)]] <- hrv_fit(part, paste0(out, '@', w))",
        "  }",
        f"  s <- d[d$window == {_r_string(task)}, c('participant', 'arm', 'timepoint', 'y')]",
        f"  b <- d[d$window == {_r_string(rest)}, c('participant', 'timepoint', 'y')]",
        "  r <- merge(s, b, by = c('participant', 'timepoint'), suffixes = c('_s', '_b'))",
        "  r$y <- r$y_s - r$y_b",
        "  key <- paste0('reactivity_', out)",
        "  if (nrow(r)) hrv_rows[[key]] <- hrv_fit(r, key)",
        "}",
        f"write.csv(do.call(rbind, hrv_rows), file.path(here, {_r_string(out_name)}),",
        "          row.names = FALSE)",
        "",
    ]
    return "\n".join(lines)


def _r_string(text: str) -> str:
    """``text`` as an R string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
