"""``peerlens score`` and ``peerlens instruments`` commands."""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from peerlens._commands._common import err_console, fail, user_errors

app = typer.Typer(
    help="Questionnaire instruments: list, show, document, load item wording.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    """Attach ``score`` and ``instruments`` to the root CLI."""
    root.command("score")(score)
    root.add_typer(app, name="instruments")


def score(
    input_path: Annotated[
        Path,
        typer.Argument(metavar="INPUT", help="CSV, TSV, XLSX or Parquet, one row per response."),
    ],
    instrument: Annotated[
        list[str] | None,
        typer.Option("--instrument", "-i", help="Instrument id to score; repeat for several."),
    ] = None,
    all_instruments: Annotated[
        bool, typer.Option("--all", help="Score every instrument whose item columns are present.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output file (.csv, .tsv, .xlsx, .parquet); default: CSV to stdout."
        ),
    ] = None,
    missing_codes: Annotated[
        str,
        typer.Option(
            "--missing-codes", help="Comma-separated codes meaning 'not answered', e.g. -9,-99."
        ),
    ] = "",
    scores_only: Annotated[
        bool, typer.Option("--scores-only", help="Drop the item columns from the output.")
    ] = False,
    replace_existing: Annotated[
        bool,
        typer.Option("--replace-existing", help="Overwrite score columns the input already has."),
    ] = False,
    column_map: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="Column map file (CSV: column,instrument,item) naming which column holds "
            "which item, for exports whose columns are not <id>_<n>.",
        ),
    ] = None,
    items: Annotated[
        list[str] | None,
        typer.Option(
            "--items",
            help="Item columns by pattern, ID=TEMPLATE with {n} for the item number, e.g. "
            "scs=Q12_{n} or fscrs=fs{n:02d}; repeat for several instruments.",
        ),
    ] = None,
    raw_values: Annotated[
        bool,
        typer.Option(
            "--raw-values",
            help="Write text cells as they are. By default a text cell beginning with =, +, -, "
            "@, tab or CR (not a plain number) gets a leading ' so spreadsheets do not run it "
            "as a formula.",
        ),
    ] = False,
) -> None:
    """Score questionnaire items: keeps every other column and appends the score columns.

    Item columns are named <instrument>_<n> (scs_1 ... scs_26), or mapped with --map / --items
    (which also say what to score unless --instrument or --all is given).
    The wording and ImportId rows under a Qualtrics export's header are skipped. The input is
    read exactly or refused: a row with more or fewer cells than the header, an empty or
    repeated column name, or an undecodable file stops with its line. Any invalid value stops
    scoring with its row, column and value. Refusals exit with code 2 and write no output.
    """
    from peerlens._tables import read_table, write_table
    from peerlens.instruments import load_spec, score_with_provenance
    from peerlens.instruments.columns import (
        apply_column_map,
        column_map_from,
        drop_qualtrics_rows,
    )

    if not instrument and not all_instruments and column_map is None and not items:
        fail("say which instruments to score: --instrument ID (repeatable) or --all")
    if instrument and all_instruments:
        fail("use either --instrument or --all, not both")
    codes = [c for c in missing_codes.split(",") if c.strip()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with user_errors():
                mapping = column_map_from(column_map, items or [])
                frame, skipped = drop_qualtrics_rows(read_table(input_path))
                if skipped:
                    err_console.print(
                        f"note: skipped {skipped} Qualtrics header row(s) under the column "
                        f"names; responses start on data row {skipped + 1}"
                    )
                if mapping:
                    frame = apply_column_map(frame, mapping, str(input_path))
                    if not instrument and not all_instruments:  # score what the map names
                        instrument = sorted({t.rsplit("_", 1)[0] for t in mapping.values()})
                result = score_with_provenance(
                    frame,
                    None if all_instruments else instrument,
                    missing_codes=codes,
                    source=str(input_path),
                    replace_existing=replace_existing,
                )
                data = result.data
                if scores_only:
                    items = [
                        c for p in result.provenance for c in load_spec(p.instrument).item_columns
                    ]
                    lowered = {c.lower() for c in items}
                    data = data[[c for c in data.columns if str(c).lower() not in lowered]]
                if out is None:  # rendered whole first: a failure leaves no partial output
                    buffer = io.BytesIO()
                    neutralised = write_table(data, buffer, raw=raw_values)
                    sys.stdout.flush()
                    sys.stdout.buffer.write(buffer.getvalue())  # UTF-8 CSV whatever the console
                    sys.stdout.buffer.flush()
                else:
                    neutralised = write_table(data, out, raw=raw_values)
        finally:  # notes about the input help read an error too
            for w in caught:
                err_console.print(f"[yellow]warning:[/yellow] {w.message}")
    if neutralised:
        err_console.print(
            f"note: {neutralised} text cell(s) beginning with =, +, -, @, tab or CR were "
            "written with a leading ' so spreadsheets show them as text, not formulas; "
            "--raw-values writes them as they are"
        )
    if out is not None:
        scored = ", ".join(p.instrument for p in result.provenance)
        err_console.print(f"scored {len(data)} rows ({scored}) -> {out}")


@app.command("list")
def list_instruments() -> None:
    """List the bundled instruments."""
    from rich.console import Console
    from rich.table import Table

    from peerlens.instruments import list_specs

    table = Table(title="peerlens instruments")
    for col in ("id", "instrument", "items", "answers", "scores"):
        table.add_column(col)
    for s in list_specs():
        table.add_row(
            s.id,
            f"{s.name} ({s.short_name})",
            str(s.n_items),
            f"{s.response_min}-{s.response_max}",
            ", ".join(x.name for x in s.scores),
        )
    Console().print(table)


@app.command("show")
def show(
    instrument_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full spec as JSON.")] = False,
) -> None:
    """Show how an instrument is scored (generated from its spec)."""
    from rich.console import Console
    from rich.markdown import Markdown

    from peerlens.instruments import load_spec
    from peerlens.instruments.docs import spec_markdown

    with user_errors():
        spec = load_spec(instrument_id)
    if as_json:
        print(json.dumps(spec.model_dump(mode="json"), indent=2))
    else:
        Console().print(Markdown(spec_markdown(spec)))


@app.command("docs")
def docs(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the Markdown documentation of every instrument (docs/instruments.md)."""
    from peerlens.instruments.docs import instruments_markdown

    text = instruments_markdown()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


@app.command("load-text")
def load_text(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="CSV (instrument,item,text) or a REDCap data dictionary."
        ),
    ],
) -> None:
    """Load licensed item wording you have permission to use (validated against the specs)."""
    from peerlens.instruments.wording import install_wording, parse_wording

    with user_errors():
        wording = parse_wording(file)
        written = install_wording(wording)
    for instrument, path in zip(wording, written, strict=True):
        err_console.print(f"{instrument}: {len(wording[instrument])} items -> {path}")
