"""The demo job: the main job on bundled, simulated example data (grows with each capability)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from peerlens._tables import read_table, write_table
from peerlens.examples import example_path
from peerlens.instruments import load_spec, score_with_provenance

#: The headline score of each instrument in the example study.
HEADLINE = {
    "scs": "scs_total",
    "fscrs": "fscrs_inadequate_self",
    "phq9": "phq9_total",
    "gad7": "gad7_total",
    "swemwbs": "swemwbs_metric",
    "qpr15": "qpr15_total",
}


def _cell(values: pd.Series) -> str:
    v = values.dropna()
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f} ({len(v)})" if len(v) else "-"


def run_demo(out_dir: Path = Path("demo-out")) -> None:
    """Score the bundled example study and print a summary table by arm and timepoint."""
    console = Console(width=max(Console().width, 120))
    source = example_path("responses.csv")
    console.rule("[bold]peerlens demo[/bold]: a simulated two-arm peer-support study")
    frame = read_table(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score_with_provenance(frame, None, missing_codes=["-9"], source=source.name)
    scored = result.data
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(scored, out_dir / "scored.csv")

    table = Table(
        title="Mean ± SD (n) by arm and timepoint",
        caption="↑ higher is better, ↓ lower is better",
    )
    table.add_column("score", no_wrap=True)
    groups: list[tuple[str, str]] = sorted(
        {(str(a), str(t)) for a, t in zip(scored["arm"], scored["timepoint"], strict=True)}
    )
    for arm, timepoint in groups:
        table.add_column(f"{arm}\n{timepoint}", justify="right", no_wrap=True)
    for inst, col in HEADLINE.items():
        spec = load_spec(inst)
        s = spec.score(col)
        better = getattr(s, "higher_is_better", None)
        higher = "↑" if better is True else "↓" if better is False else ""
        cells = [
            _cell(scored.loc[(scored.arm == arm) & (scored.timepoint == tp), col])
            for arm, tp in groups
        ]
        table.add_row(f"{col} {higher}", *cells)
    console.print(table)

    prorated = {
        p.instrument: int(scored[f"{p.instrument}_prorated"].sum()) for p in result.provenance
    }
    flags = int(scored["phq9_item9_flag"].fillna(False).sum())
    console.print(
        f"Responses: {len(scored)}; scored with missing-data rules (rows using fewer items): "
        + ", ".join(f"{k} {v}" for k, v in prorated.items())
    )
    console.print(f"PHQ-9 item 9 endorsed (safety follow-up needed): {flags} responses")
    for w in caught:
        console.print(f"[yellow]note:[/yellow] {w.message}")
    console.print(f"Scored table: {out_dir / 'scored.csv'}")
