"""The demo job: the main job on bundled, simulated example data (grows with each capability).

Four steps, each printing a table and writing its results to the output folder:

1. score the example two-arm study's questionnaires (missing-data rules at work);
2. psychometrics: reliability of every SCS scale at baseline, pre-post effect sizes and
   reliable change of ``scs_total`` by arm;
3. HRV around one peer-support session from a simulated portable ECG (baseline / session /
   recovery windows);
4. connection vs comparison in the PS worker's words of an example session transcript;
5. all of it stored in a study database (SQLite): participants enrolled by arm, responses
   imported per timepoint, the ECG and transcript linked to the session, derived results (scores,
   HRV per window, story labels) stored with their versions, a de-identified tidy export, and the
   audit chain verified.
"""

from __future__ import annotations

import datetime as dt
import secrets
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from peerlens._tables import read_table, write_table
from peerlens.examples import example_path
from peerlens.instruments import (
    load_spec,
    prepost_effect_sizes,
    reliability_table,
    reliable_change,
    score_higher_is_better,
    score_with_provenance,
    spec_scales,
)

#: The headline score of each instrument in the example study.
HEADLINE = {
    "scs": "scs_total",
    "fscrs": "fscrs_inadequate_self",
    "phq9": "phq9_total",
    "gad7": "gad7_total",
    "swemwbs": "swemwbs_metric",
    "qpr15": "qpr15_total",
}
MISSING_CODES = ["-9"]
PRE, POST = "baseline", "week12"
#: Speaker label of the PS worker in the bundled example transcript.
EXAMPLE_WORKER = "Sam"
EXAMPLE_TRANSCRIPT = "data/example_session_vtt.txt"
#: Who the demo acts as in the audit log.
ACTOR = "demo"


def _cell(values: pd.Series) -> str:
    v = values.dropna()
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f} ({len(v)})" if len(v) else "-"


def _ci(low: float, high: float) -> str:
    return f"[{low:.2f}, {high:.2f}]"


def _score_study(console: Console, out_dir: Path) -> pd.DataFrame:
    source = example_path("responses.csv")
    frame = read_table(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score_with_provenance(frame, None, missing_codes=MISSING_CODES, source=source.name)
    scored = result.data
    write_table(scored, out_dir / "scored.csv")

    table = Table(
        title="1. Questionnaire scores: mean ± SD (n) by arm and timepoint",
        caption="↑ higher is better, ↓ lower is better",
    )
    table.add_column("score", no_wrap=True)
    groups: list[tuple[str, str]] = sorted(
        {(str(a), str(t)) for a, t in zip(scored["arm"], scored["timepoint"], strict=True)}
    )
    for arm, timepoint in groups:
        table.add_column(f"{arm}\n{timepoint}", justify="right", no_wrap=True)
    for inst, col in HEADLINE.items():
        higher = "↑" if score_higher_is_better(load_spec(inst), col) else "↓"
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
    return scored


def _psychometrics(console: Console, scored: pd.DataFrame, out_dir: Path) -> None:
    spec = load_spec("scs")
    baseline = scored[scored.timepoint == PRE].replace(MISSING_CODES, pd.NA)
    scales = spec_scales(spec)
    items = sorted({c for s in scales.values() for c in s.items})
    numeric = baseline[items].apply(pd.to_numeric)
    rel = reliability_table(numeric, scales, n_boot=200, random_state=0)
    write_table(rel, out_dir / "reliability.csv")
    table = Table(title=f"2a. Reliability of the SCS scales at {PRE} (listwise complete)")
    for col in (
        "scale",
        "items",
        "n",
        "alpha [95% CI]",
        "omega total [95% CI]",
        "min item-total r",
    ):
        table.add_column(col, justify="left" if col == "scale" else "right")
    for row in rel.to_dict(orient="records"):
        omega = float(row["omega_total"])
        table.add_row(
            str(row["scale"]),
            str(row["n_items"]),
            str(row["n"]),
            f"{row['alpha']:.2f} {_ci(row['alpha_ci_low'], row['alpha_ci_high'])}",
            "-"
            if np.isnan(omega)
            else f"{omega:.2f} {_ci(row['omega_ci_low'], row['omega_ci_high'])}",
            f"{row['min_corrected_item_total_r']:.2f}",
        )
    console.print(table)

    total = rel.loc[rel.scale == "scs_total", "alpha"].iloc[0]
    better = score_higher_is_better(spec, "scs_total")
    change = Table(
        title=f"2b. scs_total from {PRE} to {POST} by arm",
        caption=(
            f"Reliable change (Jacobson & Truax 1991) with r_xx = {PRE} alpha {total:.2f}; "
            "effect sizes per Lakens (2013), 95% CIs"
        ),
    )
    for col in ("arm", "n", "mean change", "d_z", "g_av", "improved", "no change", "worse"):
        change.add_column(col, justify="left" if col == "arm" else "right")
    rows = []
    for arm, group in scored.groupby("arm", sort=True):
        long = group[["participant", "timepoint", "scs_total"]]
        es = prepost_effect_sizes(
            long, PRE, POST, participant="participant", timepoint="timepoint", score="scs_total"
        )
        rc = reliable_change(
            long,
            PRE,
            POST,
            participant="participant",
            timepoint="timepoint",
            score="scs_total",
            reliability=float(total),
            higher_is_better=better,
        )
        counts = rc.table["reliable_change"].value_counts()
        change.add_row(
            str(arm),
            str(es.n),
            f"{es.mean_change:+.2f}",
            f"{es.d_z.value:.2f} {_ci(es.d_z.ci_low, es.d_z.ci_high)}",
            f"{es.g_av.value:.2f} {_ci(es.g_av.ci_low, es.g_av.ci_high)}",
            str(counts.get("improved", 0)),
            str(counts.get("no_reliable_change", 0)),
            str(counts.get("deteriorated", 0)),
        )
        rows.append(es.to_frame().assign(arm=arm, score="scs_total"))
    write_table(pd.concat(rows, ignore_index=True), out_dir / "effect_sizes.csv")
    console.print(change)


def _hrv(console: Console, out_dir: Path) -> None:
    from peerlens.hrv import analyze

    result = analyze(example_path("session_ecg.edf"), events=example_path("session_events.csv"))
    windows = result.windows
    write_table(windows, out_dir / "hrv_windows.csv")
    table = Table(
        title="3. HRV around one peer-support session (simulated 250 Hz portable ECG)",
        caption=(
            f"{len(result.rpeaks)} R peaks; artifacts corrected: "
            + ", ".join(f"{k} {v}" for k, v in result.artifacts.counts.items() if v)
            + " (Lipponen & Tarvainen 2019)"
        ),
    )
    for col in ("window", "beats", "artifacts", "valid", "HR bpm", "RMSSD ms", "ln HF", "LF/HF"):
        table.add_column(col, justify="left" if col == "window" else "right")
    for row in windows.to_dict(orient="records"):
        table.add_row(
            str(row["label"]),
            str(row["n_beats"]),
            f"{100 * float(row['artifact_rate']):.1f}%",
            "yes" if row["valid"] else f"no: {row['reason']}",
            f"{row['mean_hr_bpm']:.1f}",
            f"{row['rmssd_ms']:.1f}",
            f"{row['ln_hf']:.2f}",
            f"{row['lf_hf']:.2f}",
        )
    console.print(table)


def _story(console: Console, out_dir: Path) -> None:
    from peerlens.narrative import analyze, render_html

    path = resources.files("peerlens.narrative").joinpath(EXAMPLE_TRANSCRIPT)
    story = analyze(
        path.read_text(encoding="utf-8"),
        transcript=True,
        speaker=EXAMPLE_WORKER,
        source="example_session_vtt.txt",
    )
    frame = story.to_frame()
    write_table(frame, out_dir / "story_sentences.csv")
    (out_dir / "story.html").write_text(render_html(story), encoding="utf-8")
    s = story.summary
    console.rule("4. Connection vs comparison in the PS worker's words (example session)")
    console.print(
        f"{s.n_sentences} sentences by {EXAMPLE_WORKER}: "
        + ", ".join(f"{k} {s.counts[k]}" for k in s.counts)
        + f". Connection index {s.connection_index:.2f} "
        f"{_ci(s.ci_low, s.ci_high)} ({100 * s.ci_level:.0f}% CI, {s.ci_method})"
    )
    for sentence in story.sentences:
        if sentence.hint:
            console.print(f'  [bold]{sentence.label}[/bold]: "{sentence.text}"')
            console.print(f"    cues: {', '.join(sentence.cues)}; hint: {sentence.hint}")


def _study_database(console: Console, out_dir: Path) -> None:
    from peerlens.hrv import read_events
    from peerlens.study import (
        NewParticipant,
        Store,
        add_participants,
        add_recording,
        add_relationship,
        add_session,
        add_transcript,
        bootstrap_admin,
        create_study,
        derive,
        derived_frame,
        export_study,
        import_responses,
        verify_audit,
    )
    from peerlens.study.vault import generate_key, write_key_file

    db = out_dir / "study.db"
    for old in out_dir.glob("study.db*"):  # a fresh database each run
        old.unlink()
    key_file = out_dir / "study_vault.key"  # the demo's own key, beside its throwaway database
    key_file.unlink(missing_ok=True)
    write_key_file(key_file, generate_key())
    store = Store.open(
        f"sqlite:///{db}", create=True, blob_dir=out_dir / "study_recordings", key_file=key_file
    )
    # The first account is created explicitly (there is no implicit admin); its password is
    # random and written beside the demo database so the CLI can be tried on it.
    password = secrets.token_urlsafe(12)
    (out_dir / "study_admin_password.txt").write_text(password + "\n", encoding="utf-8")
    try:
        me = bootstrap_admin(store, ACTOR, password, reason="demo database")
        create_study(store, "example", example_path("study.yaml"), caller=me)
        responses = read_table(example_path("responses.csv"))
        people = responses[["participant", "arm"]].drop_duplicates()
        site = "example_site"
        enrolled = [NewParticipant(str(p), arm=str(a), site=site) for p, a in people.to_numpy()]
        enrolled.append(NewParticipant("W01", role="ps_worker", site=site))
        add_participants(store, "example", enrolled, caller=me)
        imports = []
        for timepoint, group in responses.groupby("timepoint", sort=True):
            path = out_dir / f"responses_{timepoint}.csv"
            write_table(group.drop(columns=["arm", "timepoint"]), path)
            imports.append(
                import_responses(store, "example", path, timepoint=str(timepoint), caller=me)
            )
        start = dt.datetime(2026, 1, 15, 10, 0, tzinfo=dt.UTC)
        relationship = add_relationship(
            store, "example", "W01", "P001", started_at=start - dt.timedelta(days=10), caller=me
        )
        session = add_session(
            store,
            "example",
            relationship,
            "s1",
            started_at=start,
            mode="in_person",
            duration_min=10,
            caller=me,
        )
        events = read_events(example_path("session_events.csv"))
        windows = [(str(r[0]), float(r[1]), float(r[2])) for r in events.to_numpy()]
        add_recording(
            store,
            "example",
            example_path("session_ecg.edf"),
            participant="P001",
            session="s1",
            device="simulated portable ECG",
            windows=windows,
            caller=me,
        )
        transcript = resources.files("peerlens.narrative").joinpath(EXAMPLE_TRANSCRIPT)
        add_transcript(
            store,
            "example",
            transcript.read_text(encoding="utf-8"),
            session_id=session,
            author="W01",
            speaker=EXAMPLE_WORKER,
            caller=me,
        )
        # One recording: HRV runs in-process; a study's many recordings would use Dask.
        derived = derive(store, "example", caller=me, executor="sequential")
        hrv = derived_frame(store, "example", "hrv", caller=me)
        story = derived_frame(store, "example", "story", caller=me)
        export = export_study(
            store, "example", out_dir / "study_tidy.csv", tier="deidentified", caller=me
        )
        audit = verify_audit(store, caller=me)
    finally:
        store.close()
    tidy = read_table(export.path)
    kinds = tidy["kind"].value_counts()
    console.rule("5. The study database (SQLite)")
    console.print(
        f"{db}: {len(enrolled) - 1} service users in 2 arms and 1 PS worker; "
        + "; ".join(f"{i.source.rsplit('/', 1)[-1]}: {i.new} new responses" for i in imports)
        + "; session s1 with its ECG recording (3 windows) and transcript."
    )
    console.print(
        f"De-identified tidy export {export.path.name}: {export.rows} rows ("
        + ", ".join(f"{n} {k}" for k, n in kinds.items())
        + f"), sha256 {export.sha256[:12]}..."
    )
    console.print(
        "Derived results stored with their versions (recomputed, never edited): "
        + "; ".join(str(d) for d in derived)
    )
    by_window = hrv.set_index("label")["rmssd_ms"] if len(hrv) else pd.Series(dtype=float)
    console.print(
        "  HRV RMSSD by window: "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in by_window.items())
        + f"; story connection index {float(story['connection_index'].iloc[0]):.2f}"
    )
    state = "verified" if audit.ok else f"BROKEN: {audit.problems}"
    console.print(f"Audit log: {audit.rows} hash-chained entries, {state}.")
    if audit.data_unchecked is None:
        console.print(f"Data tables: {audit.data_units} sealed units match their seals.")
    console.print(
        f"Study admin {ACTOR!r} (password in {out_dir / 'study_admin_password.txt'}): e.g. "
        f"PEERLENS_USER={ACTOR} PEERLENS_VAULT_KEY_FILE={out_dir / 'study_vault.key'} "
        f"peerlens participant list --study example --db sqlite:///{db}"
    )


def run_demo(out_dir: Path = Path("demo-out")) -> None:
    """Run the demo steps on the bundled example data and write their results to ``out_dir``."""
    console = Console(width=max(Console().width, 120))
    console.rule("[bold]peerlens demo[/bold]: a simulated two-arm peer-support study")
    out_dir.mkdir(parents=True, exist_ok=True)
    scored = _score_study(console, out_dir)
    _psychometrics(console, scored, out_dir)
    _hrv(console, out_dir)
    _story(console, out_dir)
    _study_database(console, out_dir)
    written = sorted(p.name for p in out_dir.iterdir())
    console.print(f"Results in {out_dir}/: {', '.join(written)}")
