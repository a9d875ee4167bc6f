"""``peerlens story`` commands: analyse a story or transcript, classify sentences, train."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from peerlens._commands._common import user_errors

app = typer.Typer(
    help="Story analysis: does a PS worker's sharing connect or compare?", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    """Attach the ``story`` command group to the root CLI."""
    root.add_typer(app, name="story")


@app.command("analyze")
def analyze_cmd(
    file: Annotated[Path, typer.Argument(help="Story (plain text) or transcript file.")],
    transcript: Annotated[
        bool, typer.Option("--transcript", help="Parse as a transcript (Name: text, WebVTT, SRT).")
    ] = False,
    speaker: Annotated[
        str | None, typer.Option("--speaker", help="The PS worker's name in the transcript.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full result as JSON here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the connection-index bootstrap.")] = 0,
) -> None:
    """Label each sentence and report session shares and the connection index."""
    from rich.console import Console
    from rich.table import Table

    from peerlens.narrative import analyze, read_text, render_html
    from peerlens.narrative.transcripts import parse_transcript, speakers

    with user_errors():
        text = read_text(file)
        if transcript and speaker is None:
            names = speakers(parse_transcript(text, str(file)))
            if len(names) > 1 and sys.stdin.isatty():
                speaker = typer.prompt(f"Which speaker is the PS worker? ({', '.join(names)})")
        result = analyze(text, transcript=transcript, speaker=speaker, source=str(file), seed=seed)
        if json_out is not None:
            json_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        if html_out is not None:
            html_out.write_text(render_html(result), encoding="utf-8")
    console = Console(highlight=False, soft_wrap=True)
    s = result.summary
    method = {"bootstrap": "bootstrap", "wilson": "Wilson, few sentences"}.get(s.ci_method, "")
    ci = (
        ""
        if s.ci_low != s.ci_low
        else f" ({s.ci_level:.0%} CI {s.ci_low:.2f} to {s.ci_high:.2f}, {method})"
    )
    index = "n/a" if s.connection_index != s.connection_index else f"{s.connection_index:.2f}"
    who = f", speaker {result.speaker}" if result.speaker else ""
    console.print(f"{file.name}: {s.n_sentences} sentences{who}; model {result.model_version}")
    console.print(f"connection index {index}{ci}")
    table = Table("label", "sentences", "share")
    for label in ("connection", "upward", "downward", "neutral"):
        table.add_row(label, str(s.counts[label]), f"{s.shares[label]:.0%}")
    console.print(table)
    if result.unsupported:
        langs = sorted({u.language for u in result.unsupported})
        console.print(
            f"{len(result.unsupported)} sentence(s) not analysed: not English "
            f"({', '.join(langs)}); story analysis supports English only",
            markup=False,
        )
    for sent in result.sentences:
        if sent.label in ("upward", "downward"):
            console.print(f"[{sent.label}] {sent.text}", markup=False)
            console.print(f"    hint: {sent.hint}", markup=False)


@app.command("classify")
def classify_cmd(
    file: Annotated[
        str, typer.Argument(help="One sentence per line; '-' (default) reads standard input.")
    ] = "-",
) -> None:
    """Label sentences, one per input line; print one JSON object per line.

    A line in another language gets ``"label": null`` and ``"unsupported": "<language>"``.
    """
    from peerlens.narrative import classify, detect_language
    from peerlens.narrative._errors import EmptyInputError
    from peerlens.narrative._io import decode_bytes, read_text
    from peerlens.narrative.language import ensure_english

    with user_errors():
        text = decode_bytes(sys.stdin.buffer.read(), "<stdin>") if file == "-" else read_text(file)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise EmptyInputError(f"{file}: no sentences")
        ensure_english(" ".join(lines), file)
        # a line in another language is reported on its own line, not labelled
        languages = [detect_language(line) for line in lines]
        english = [line for line, g in zip(lines, languages, strict=True) if g.supported]
        labelled = iter(classify(english, check_language=False))
    for line, guess in zip(lines, languages, strict=True):
        record: dict[str, Any]
        if not guess.supported:
            record = {
                "text": line,
                "label": None,
                "confidence": None,
                "probabilities": None,
                "cues": [],
                "hint": None,
                "mixed": False,
                "unsupported": guess.name,
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
            continue
        d = next(labelled).to_dict()
        record = {k: d[k] for k in ("text", "label", "confidence", "probabilities", "cues")}
        record["hint"] = d["hint"]
        record["mixed"] = d["mixed"]
        typer.echo(json.dumps(record, ensure_ascii=False))


@app.command("train")
def train_cmd(
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for model.npz/model.json (default: the packaged model)."),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="Checkout holding benchmarks/story_data/real and the rebuilt texts in "
            "benchmarks/out/real_corpus (default: the current directory)."
        ),
    ] = None,
) -> None:
    """Retrain the packaged sentence model: own corpus + real sentences, calibrated threshold.

    The real sentences are those of the labelled batches named in
    ``peerlens.narrative.release.RELEASE_BATCHES``; their texts must be rebuilt locally
    (``tools/build_real_corpus.py build``); they are never committed.
    """
    from peerlens.narrative.model import model_dir
    from peerlens.narrative.release import RELEASE_BATCHES, default_dev_paths, train_release

    with user_errors():
        model = train_release(default_dev_paths(root))
        target = out or model_dir()
        model.save(target)
    shown = ", ".join(
        f"{cls} {'never (abstains)' if t is None else f'{t:.3f}'}"
        for cls, t in model.thresholds.items()
    )
    typer.echo(
        f"trained on {model.meta['n_train']} sentences ({model.meta['n_real']} real, "
        f"batches {', '.join(str(b) for b in RELEASE_BATCHES)}); "
        f"{model.n_features} features; comparison thresholds {shown}; "
        f"wrote {target / 'model.npz'} and model.json"
    )
