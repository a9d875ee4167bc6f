"""``peerlens report``: the study report as one self-contained HTML page.

Thin: it signs the user in, reads the de-identified analysis dataset through the study API as
that caller (:func:`peerlens.study.analysis_dataset`, an audited export), builds and renders the
report (:mod:`peerlens.analysis.report`) and writes the page whole or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from peerlens._commands._common import user_errors
from peerlens._commands._signed_in import signed_in
from peerlens._commands.study import Db, StudyOpt, UserOpt


def register(root: typer.Typer) -> None:
    """Attach ``report`` to the root CLI."""
    root.command("report")(report)


def split_outcomes(values: list[str] | None) -> tuple[str, ...] | None:
    """``--outcomes a,b --outcomes c`` as ``("a", "b", "c")`` (``None`` when not given)."""
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return tuple(names) or None


Outcomes = Annotated[
    list[str] | None,
    typer.Option(
        "--outcomes",
        help="Scores to model, comma-separated or repeated (default: SCS, FSCRS, "
        "DERS-16 headline scores present).",
    ),
]
ReferenceArm = Annotated[
    str | None,
    typer.Option("--reference-arm", help="The control arm (default: control/usual care/last)."),
]


def report(
    study: StudyOpt,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    outcomes: Outcomes = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of bootstrap and imputation.")] = 0,
    reference_arm: ReferenceArm = None,
    imputations: Annotated[
        int, typer.Option("--imputations", help="Imputations per delta (sensitivity analysis).")
    ] = 20,
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Build the study report (flow, baseline, missing data, mixed models, the PS worker level,
    moderation by the worker's connection index, mediation, HRV outcomes and the GRAPH items when
    the study has recordings, change, sensitivity) as one HTML page with inline SVG figures; the
    same data, version and seed give the same bytes."""
    with user_errors():  # what can be checked before anyone is asked for a password
        from peerlens.analysis import ReportError

        if out.suffix.lower() not in (".html", ".htm"):
            raise ReportError(f"{out}: the report is an HTML page; give an --out ending in .html")
        if imputations < 2:
            raise ReportError(f"--imputations {imputations}: multiple imputation needs 2 or more")
    with signed_in(db, user) as (store, me):
        from peerlens.analysis import ReportOptions, build_report, render_html
        from peerlens.analysis._files import write_via
        from peerlens.study import analysis_dataset, hrv_table

        dataset = analysis_dataset(store, study, caller=me, purpose="report")
        hrv = hrv_table(store, study, caller=me, purpose="report")
        options = ReportOptions(
            outcomes=split_outcomes(outcomes),
            seed=seed,
            reference_arm=reference_arm,
            n_imputations=imputations,
        )
        page = render_html(build_report(dataset, options, hrv=hrv)).encode("utf-8")
        write_via(out, lambda tmp: tmp.write_bytes(page))
        typer.echo(f"{out}: report of study {study!r}, data snapshot sha256 {dataset.sha256}")
