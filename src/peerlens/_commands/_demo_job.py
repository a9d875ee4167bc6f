"""The demo job: a small simulated peer-support trial, imported and analysed like a real one.

1. simulate the trial (:mod:`peerlens.analysis.simulation`: two arms, three sites, three
   timepoints, 120 participants, eight PS workers with different connection indices, dropout,
   lab ECGs, session transcripts) and write it as a study team's files;
2. import those files through the study API as a researcher would (study config, sites, arms,
   pseudonymised participants, PS worker assignment, responses per timepoint, sessions with
   transcripts, ECG recordings with their windows);
3. derive scores, HRV per window and the story labels of every transcript;
4. check the analyses against the truth the simulation used: the arm x time effect of each
   headline score (mixed model), HRV task reactivity, each worker's connection index, dropout;
5. set up demo accounts (a researcher and a PS worker) and a participant's personal link, and
   serve the study on 127.0.0.1 (unless ``serve`` is false).

:func:`build_demo_study` (steps 1-3) returns where the study is (:class:`DemoStudy`), for
anything that builds on it (a report, the web app).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from peerlens.analysis.simulation import SimulatedTrial
    from peerlens.study import Store

#: The study's name in the demo database.
STUDY = "trial"
#: Who the demo acts as in the audit log, and the demo accounts.
ACTOR = "demo"
RESEARCHER = "researcher"
WORKER_ACCOUNT = "worker"
#: The PS worker whose story studio the demo worker account opens.
DEMO_WORKER = "W08"
SEED = 20261201


@dataclass(frozen=True)
class DemoStudy:
    """Where the demo study is and how to open it.

    Attributes
    ----------
    db_url
        The SQLite database (``sqlite:///...``).
    study
        The study's name in it.
    key_file, blob_dir
        The identity-vault key and the recordings folder of that database.
    trial_dir
        The simulated files the study was imported from, with ``truth.json``.
    admin, password
        The demo's first admin account.
    """

    db_url: str
    study: str
    key_file: Path
    blob_dir: Path
    trial_dir: Path
    admin: str
    password: str = ""

    def open(self) -> Store:
        """Open the study database."""
        from peerlens.study import Store

        return Store.open(self.db_url, blob_dir=self.blob_dir, key_file=self.key_file)


def _ci(low: float, high: float, digits: int = 2) -> str:
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


@dataclass(frozen=True)
class _Imported:
    """What the demo imported, to set the stored results beside the simulation's truth."""

    trial: SimulatedTrial
    #: Recording sha256 -> timepoint of the lab visit.
    timepoint_of: dict[str, str]
    #: Transcript id -> the PS worker who spoke in it.
    worker_of: dict[int, str]


def build_demo_study(out_dir: Path, console: Console) -> tuple[DemoStudy, _Imported]:
    """Simulate the trial, import it through the study API and derive its results.

    Returns the study's location and what the demo imported (for the summary).
    """
    from peerlens._tables import read_table
    from peerlens.analysis.simulation import simulate_trial
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
        import_responses,
    )
    from peerlens.study.vault import generate_key, write_key_file

    out_dir.mkdir(parents=True, exist_ok=True)
    trial = simulate_trial(seed=SEED)
    trial_dir = trial.write(out_dir / "trial")
    cfg = trial.config
    console.print(
        f"1. Simulated trial (seed {SEED}) written to {trial_dir}/: {cfg.n_participants} "
        f"participants, arms {' / '.join(cfg.arms)}, sites {', '.join(cfg.sites)}, timepoints "
        f"{', '.join(cfg.timepoints)}, {len(cfg.workers)} PS workers, "
        f"{len(trial.sessions)} session transcripts, {len(trial.recordings)} lab ECGs; "
        "the truth is in truth.json."
    )

    db = out_dir / "study.db"
    for old in out_dir.glob("study.db*"):  # a fresh database each run
        old.unlink()
    blob_dir = out_dir / "study_recordings"
    key_file = out_dir / "study_vault.key"  # the demo's own key, beside its throwaway database
    key_file.unlink(missing_ok=True)
    write_key_file(key_file, generate_key())
    password = secrets.token_urlsafe(12)
    (out_dir / "study_admin_password.txt").write_text(password + "\n", encoding="utf-8")
    url = f"sqlite:///{db}"
    store = Store.open(url, create=True, blob_dir=blob_dir, key_file=key_file)
    try:
        me = bootstrap_admin(store, ACTOR, password, reason="demo database")
        create_study(store, STUDY, trial_dir / "study.yaml", caller=me)
        people = read_table(trial_dir / "participants.csv")
        workers = read_table(trial_dir / "workers.csv")
        enrolled = [
            NewParticipant(str(r.participant), arm=str(r.arm), site=str(r.site))
            for r in people.itertuples()
        ]
        enrolled += [
            NewParticipant(str(r.worker), role="ps_worker", site=str(r.site))
            for r in workers.itertuples()
        ]
        add_participants(store, STUDY, enrolled, caller=me)
        imported = {
            tp: import_responses(
                store, STUDY, trial_dir / f"responses_{tp}.csv", timepoint=tp, caller=me
            ).new
            for tp in cfg.timepoints
        }
        start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
        relationships = {
            str(r.participant): add_relationship(
                store, STUDY, str(r.worker), str(r.participant), started_at=start, caller=me
            )
            for r in people.itertuples()
            if isinstance(r.worker, str) and r.worker
        }
        sessions = read_table(trial_dir / "sessions.csv")
        worker_of: dict[int, str] = {}
        for r in sessions.itertuples():
            session_id = add_session(
                store,
                STUDY,
                relationships[str(r.participant)],
                str(r.session),
                started_at=dt.datetime.fromisoformat(str(r.started_at)),
                mode="in_person",
                duration_min=50,
                caller=me,
            )
            transcript_id = add_transcript(
                store,
                STUDY,
                (trial_dir / str(r.transcript)).read_text(encoding="utf-8"),
                session_id=session_id,
                author=str(r.worker),
                speaker=str(r.worker),
                caller=me,
            )
            worker_of[transcript_id] = str(r.worker)
        windows_table = read_table(trial_dir / "ecg_windows.csv")
        windows = [
            (str(label), float(start), float(end))
            for label, start, end in windows_table[["label", "start", "end"]].to_numpy()
        ]
        recordings = read_table(trial_dir / "recordings.csv")
        timepoint_of: dict[str, str] = {}
        for r in recordings.itertuples():
            _rid, sha = add_recording(
                store,
                STUDY,
                trial_dir / "ecg" / str(r.recording),
                participant=str(r.participant),
                device="simulated lab ECG, 250 Hz",
                windows=windows,
                timepoint=str(r.timepoint),
                caller=me,
            )
            timepoint_of[sha] = str(r.timepoint)
        console.print(
            f"2. Imported through the study API into {db}: {len(people)} participants and "
            f"{len(workers)} PS workers at {len(cfg.sites)} sites; responses "
            + ", ".join(f"{tp} {n}" for tp, n in imported.items())
            + f"; {len(relationships)} PS assignments; {len(sessions)} sessions with "
            f"transcripts; {len(recordings)} ECG recordings with {len(windows)} windows each."
        )
        derived = derive(store, STUDY, caller=me, executor="sequential")
        console.print(
            "3. Derived and stored with their versions: " + "; ".join(str(d) for d in derived)
        )
    finally:
        store.close()
    study = DemoStudy(url, STUDY, key_file, blob_dir, trial_dir, ACTOR, password)
    return study, _Imported(trial, timepoint_of, worker_of)


def _check_against_truth(study: DemoStudy, built: _Imported, console: Console) -> None:
    from peerlens.analysis import fit_mixed_model
    from peerlens.analysis.simulation import HEADLINE_SCORES
    from peerlens.study import Store, authenticate, derived_frame, list_participants

    trial, timepoint_of = built.trial, built.timepoint_of
    cfg, truth = trial.config, trial.truth
    store = Store.open(study.db_url, blob_dir=study.blob_dir, key_file=study.key_file)
    try:
        me = authenticate(store, study.admin, study.password)
        scores = derived_frame(store, study.study, "scores", caller=me)
        hrv = derived_frame(store, study.study, "hrv", caller=me)
        story = derived_frame(store, study.study, "story", caller=me)
        people = list_participants(store, study.study, caller=me)
    finally:
        store.close()
    arm_of = people.set_index("participant")["arm"]
    wide = scores.pivot_table(
        index=["participant", "timepoint"], columns="name", values="value", aggfunc="first"
    ).reset_index()
    wide["arm"] = wide["participant"].map(arm_of)
    last = cfg.timepoints[-1]
    table = Table(
        title=f"4a. Peer support vs usual care: change from {cfg.timepoints[0]} (arm x time, "
        "REML mixed model, Satterthwaite 95% CI) against the simulation's truth"
    )
    for col in ("score", "timepoint", "estimate [95% CI]", "truth", "covered"):
        table.add_column(col, justify="left" if col in ("score", "timepoint") else "right")
    for name in HEADLINE_SCORES:
        fit = fit_mixed_model(wide, name, arms=list(cfg.arms), timepoints=list(cfg.timepoints))
        for tp in cfg.timepoints[1:]:
            e = fit.effect(f"arm[{cfg.arms[1]}]:timepoint[{tp}]")
            true = truth.arm_effects[name][tp]
            table.add_row(
                name,
                tp,
                f"{e.estimate:+.2f} {_ci(e.ci_low, e.ci_high)}",
                f"{true:+.2f}",
                "yes" if e.ci_low <= true <= e.ci_high else "no",
            )
    console.print(table)
    attended = {
        (str(a), str(t)): int(((wide["arm"] == a) & (wide["timepoint"] == t)).sum())
        for a in cfg.arms
        for t in cfg.timepoints
    }
    console.print(
        "Dropout (share missing) by arm at "
        + last
        + ": "
        + ", ".join(
            f"{arm} {1 - attended[arm, last] / attended[arm, cfg.timepoints[0]]:.0%}"
            f" (set {truth.dropout[arm][last]:.0%})"
            for arm in cfg.arms
        )
        + "; missing at random given the observed baseline scs_total."
    )

    # HRV: vagal withdrawal in the task, ln RMSSD task minus rest, per recording.
    hrv = hrv[hrv["label"] != "whole"]
    hrv = hrv.assign(timepoint=hrv["recording"].map(timepoint_of), ln_rmssd=np.log(hrv["rmssd_ms"]))
    ln = hrv.pivot_table(
        index=["participant", "timepoint"], columns="label", values="ln_rmssd", aggfunc="first"
    ).reset_index()
    ln["reactivity"] = ln["session"] - ln["baseline"]
    ln["arm"] = ln["participant"].map(arm_of)
    ecg_tps = list(cfg.ecg_timepoints)
    fit = fit_mixed_model(ln, "reactivity", arms=list(cfg.arms), timepoints=ecg_tps)
    e = fit.effect(f"arm[{cfg.arms[1]}]:timepoint[{ecg_tps[-1]}]")
    base = fit.effect("(Intercept)")
    console.print(
        f"4b. HRV ({len(timepoint_of)} lab ECGs, {len(hrv)} windows, {int(hrv['valid'].sum())} "
        "valid): task reactivity ln RMSSD session - baseline window in usual care at "
        f"{ecg_tps[0]} {base.estimate:+.2f} "
        f"{_ci(base.ci_low, base.ci_high)} (truth {truth.task_reactivity:+.2f}); peer "
        f"support's effect on it at {ecg_tps[-1]} "
        f"{e.estimate:+.2f} {_ci(e.ci_low, e.ci_high)} (truth {truth.reactivity_arm_effect:+.2f})."
    )

    # Story: each worker's connection index over their transcripts.
    story = story.assign(worker=story["transcript"].map(built.worker_of))
    labelled = story.groupby("worker")[["n_connection", "n_upward", "n_downward"]].sum()
    index = labelled["n_connection"] / labelled.sum(axis=1)
    table = Table(title="4c. Connection index of each PS worker's session language (story model)")
    for col in ("worker", "transcripts", "connection index", "truth"):
        table.add_column(col, justify="left" if col == "worker" else "right")
    counts = story.groupby("worker").size()
    for worker, value in index.sort_values().items():
        table.add_row(
            str(worker),
            str(counts.get(worker, 0)),
            f"{value:.2f}",
            f"{truth.worker_connection[str(worker)]:.2f}",
        )
    console.print(table)


@dataclass(frozen=True)
class DemoAccess:
    """The demo's ways in: two staff accounts and one participant's personal link."""

    researcher_password: str
    worker_password: str
    participant: str
    timepoint: str
    token: str


def _build_report(study: DemoStudy, out: Path) -> Path:
    """Build the study report of the demo trial (as ``peerlens report`` does) into ``out``."""
    from peerlens.analysis import ReportOptions, build_report, render_html
    from peerlens.analysis._files import write_via
    from peerlens.study import analysis_dataset, authenticate, hrv_table

    store = study.open()
    try:
        me = authenticate(store, study.admin, study.password)
        dataset = analysis_dataset(store, study.study, caller=me, purpose="report")
        hrv = hrv_table(store, study.study, caller=me, purpose="report")
        report = build_report(dataset, ReportOptions(seed=SEED), hrv=hrv)
        page = render_html(report).encode("utf-8")
    finally:
        store.close()
    write_via(out, lambda tmp: tmp.write_bytes(page))
    return out


def _demo_access(study: DemoStudy, trial_dir: Path) -> DemoAccess:
    """A researcher account, a PS worker account tied to :data:`DEMO_WORKER`'s story studio, and
    a personal link for a participant who has not answered the last timepoint yet."""
    from peerlens._tables import read_table
    from peerlens.study import (
        Store,
        add_consent,
        authenticate,
        create_user,
        grant_role,
        grant_studio_access,
        issue_link,
    )

    people = read_table(trial_dir / "participants.csv")["participant"]
    last = _last_timepoint(trial_dir)
    answered = set(read_table(trial_dir / f"responses_{last}.csv")["participant"])
    # Someone who has not answered the last timepoint, so the link opens its questionnaires.
    code = str(next((p for p in people if p not in answered), people.iloc[0]))
    researcher_pw, worker_pw = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
    store = Store.open(study.db_url, blob_dir=study.blob_dir, key_file=study.key_file)
    try:
        me = authenticate(store, study.admin, study.password)
        create_user(store, RESEARCHER, researcher_pw, caller=me, reason="demo")
        grant_role(store, RESEARCHER, "researcher", study=study.study, caller=me, reason="demo")
        create_user(store, WORKER_ACCOUNT, worker_pw, caller=me, reason="demo")
        worker_site = (
            read_table(trial_dir / "workers.csv").set_index("worker").loc[DEMO_WORKER, "site"]
        )
        grant_role(
            store,
            WORKER_ACCOUNT,
            "ps_worker",
            study=study.study,
            site=str(worker_site),
            caller=me,
            reason="demo",
        )
        grant_studio_access(
            store,
            study.study,
            DEMO_WORKER,
            WORKER_ACCOUNT,
            relation="worker",
            caller=me,
            reason="demo",
        )
        # Consent was taken at enrolment (on paper, say); the study team records it.
        add_consent(
            store,
            study.study,
            code,
            version="demo-1",
            consented_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
            caller=me,
            reason="demo",
        )
        link = issue_link(store, study.study, code, timepoint=last, caller=me, reason="demo")
    finally:
        store.close()
    return DemoAccess(researcher_pw, worker_pw, code, link.timepoint, link.token)


def _last_timepoint(trial_dir: Path) -> str:
    import yaml

    config = yaml.safe_load((trial_dir / "study.yaml").read_text(encoding="utf-8"))
    return str(config["timepoints"][-1]["name"])


def _free_port(host: str) -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _serve(study: DemoStudy, access: DemoAccess, console: Console) -> None:
    """Serve the demo study with ``peerlens serve`` on 127.0.0.1 until Ctrl+C."""
    from peerlens._commands.web import serve

    host = "127.0.0.1"
    port = _free_port(host)
    base = f"http://{host}:{port}"
    console.rule("[bold]5. The demo study in the browser[/bold]")
    console.print(
        f"Participant {access.participant} (personal link, {access.timepoint} questionnaires):\n"
        f"  {base}/p/{access.participant}/{access.token}"
    )
    console.print(
        f"PS worker {DEMO_WORKER} (story studio): {base}/login?next=/studio/{study.study}\n"
        f"  user {WORKER_ACCOUNT!r}, password {access.worker_password!r}"
    )
    console.print(
        f"Researcher (study dashboard): {base}/login?next=/studies/{study.study}\n"
        f"  user {RESEARCHER!r}, password {access.researcher_password!r}"
    )
    console.print("Demo accounts and link live only in this throwaway database. Ctrl+C stops.")
    # The store the server opens finds this database's vault key through the environment: the
    # demo's key file, never a key the shell already holds for another database (it would win).
    os.environ.pop("PEERLENS_VAULT_KEY", None)
    os.environ["PEERLENS_VAULT_KEY_FILE"] = str(study.key_file)
    serve(db=study.db_url, host=host, port=port)


def run_demo(out_dir: Path = Path("demo-out"), *, serve: bool = True) -> DemoStudy:
    """Build, analyse and (with ``serve``) serve the simulated demo trial in ``out_dir``.

    Returns where the study is, for anything that builds on it (e.g. a report).
    """
    console = Console(width=max(Console().width, 120))
    console.rule("[bold]peerlens demo[/bold]: a simulated peer-support trial with a known truth")
    started = time.perf_counter()
    study, built = build_demo_study(out_dir, console)
    _check_against_truth(study, built, console)
    access = _demo_access(study, study.trial_dir)
    (out_dir / "demo_accounts.txt").write_text(
        f"{RESEARCHER} {access.researcher_password}\n{WORKER_ACCOUNT} {access.worker_password}\n",
        encoding="utf-8",
    )
    console.print(
        f"Results in {out_dir}/: the study database {Path(study.db_url.removeprefix('sqlite:///')).name}"
        f" (admin {study.admin!r}, password in study_admin_password.txt), the simulated files and"
        " truth in trial/, demo accounts in demo_accounts.txt."
    )
    console.print(f"Built, analysed and checked in {time.perf_counter() - started:.0f} s.")
    report = _build_report(study, out_dir / "report.html")
    console.print(f"Study report: {report.resolve()}")
    if serve:
        _serve(study, access, console)
    return study
