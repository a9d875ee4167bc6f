"""Form completion benchmark: what one participant's completing a form through a personal link
costs, against the size of the study's scores run, on SQLite and PostgreSQL.

A form completed through a personal link is scored at once into the study's current scores run:
its rows are replaced and the run's new additive digest recorded (``derive.amend``) without
reading the rest of the run, and each score row is a seal unit of its own (seal scheme 2), so a
completion should cost the same in a study of 200 scored responses as in one of 3,000
(docs/study.md). For each backend and run size N, a study with the SCS at baseline (26 items on
3 pages, a consent text) gets N responses imported from a file and scored by a derivation run;
then ``--completions`` more participants each open their link, agree to the consent text and
save pages 1 and 2 (not timed), and the save of page 3, which completes the form and scores it
into the run, is timed, one completion in each study in turn (the sizes see the same state of
the database server) (``save_page`` through the public API: validation, the audit chain, the
row seals and scoring all included). Afterwards every completion must have been scored into the
same run and ``verify_derived`` and ``verify_audit`` must pass.

Peer, measured in the same run right after each completion: the same page's item rows written to
the same database by pandas (``DataFrame.to_sql``, one INSERT and commit; no validation, scoring,
audit or seals): the floor of a write of one page. The figures to read are the ratio to the peer
at each size and the completion time at the largest size over the smallest (1.0: independent of
the study's size).

PostgreSQL runs when ``PEERLENS_BENCH_PG_URL`` or ``PEERLENS_TEST_PG_URL`` is set (a fresh
schema is created and dropped). Run: ``python benchmarks/bench_completion.py [--sizes 200,3000]
[--completions 20] [--backend sqlite|postgresql ...]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_db import add_backend_option, backend_url, chosen_backends, drop
from peerlens.study import (
    LinkHolder,
    NewParticipant,
    Store,
    add_participants,
    agree_to_consent,
    bootstrap_admin,
    create_study,
    derive,
    import_responses,
    issue_link,
    open_visit,
    save_page,
    verify_audit,
    verify_derived,
)
from peerlens.study.policy import Caller
from peerlens.study.vault import generate_key

CONFIG = """title: Completion benchmark
sites: [leeds, glasgow]
missing_codes: [-99]
consent:
  version: v1
  text: I agree to take part.
timepoints:
  - name: baseline
    instruments: [scs]
"""
N_ITEMS = 26  # the SCS: items 1..26, answers 1..5


def _scored_study(
    url: str, folder: Path, n: int, extra: int, rng: np.random.Generator
) -> tuple[Store, Caller]:
    """A study whose scores run holds ``n`` scored SCS responses, with ``extra`` more
    participants not yet answered; returns the open store and its admin."""
    store = Store.open(url, create=True, blob_dir=folder / "blobs")
    me = bootstrap_admin(store, "bench", "benchmark password")
    config = folder / "study.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    create_study(store, "bench", config, caller=me)
    codes = [f"C{i:05d}" for i in range(n + extra)]
    people = [NewParticipant(c, site=("leeds", "glasgow")[i % 2]) for i, c in enumerate(codes)]
    add_participants(store, "bench", people, caller=me)
    answers = rng.integers(1, 6, size=(n, N_ITEMS))
    wide = pd.DataFrame(answers, columns=[f"scs_{j + 1}" for j in range(N_ITEMS)])
    wide.insert(0, "participant", codes[:n])
    path = folder / "scs.csv"
    wide.to_csv(path, index=False)
    import_responses(store, "bench", path, timepoint="baseline", caller=me)
    (run,) = derive(store, "bench", ["scores"], caller=me)
    assert run.inputs == n, run
    return store, me


@dataclass
class Study:
    """One benchmark study: its store, admin, peer engine and what was timed in it."""

    n: int
    store: Store
    me: Caller
    peer: Engine
    rng: np.random.Generator
    runs: int
    ours: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)


def _complete_one(study: Study, i: int, *, timed: bool) -> None:
    """Participant ``i`` of the not-yet-answered ones completes the SCS; the save of the last
    page is timed, then the peer's write of the same items."""
    code = f"C{study.n + i:05d}"
    link = issue_link(study.store, "bench", code, timepoint="baseline", caller=study.me)
    who = LinkHolder(code, link.token)
    agree_to_consent(study.store, "v1", caller=who)
    pages = open_visit(study.store, caller=who).pages
    for number in (1, 2):
        answers = {
            q.item: str(study.rng.integers(1, 6)) for q in pages[number - 1].layout.questions
        }
        assert save_page(study.store, number, answers, caller=who).problems == {}
    last = {q.item: str(study.rng.integers(1, 6)) for q in pages[2].layout.questions}
    t = time.perf_counter()
    saved = save_page(study.store, 3, last, caller=who)
    took = time.perf_counter() - t
    assert saved.completed == ("scs",), saved
    items = list(last)
    rows = pd.DataFrame(
        {"participant": code, "item": items, "value": [float(last[k]) for k in items]}
    )
    t = time.perf_counter()
    rows.to_sql("peer_items", study.peer, index=False, if_exists="append")
    if timed:
        study.floor.append(time.perf_counter() - t)
        study.ours.append(took)


def _checked(study: Study, completions: int) -> None:
    """Every completion was scored into the study's run in place, and everything verifies."""
    with study.store.engine.connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM derivation")).scalar_one()
        amended = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'derive.amend'")
        ).scalar_one()
    assert runs == study.runs, "a completion derived a new run instead"
    assert amended >= completions, amended
    assert verify_derived(study.store, "bench", caller=study.me).ok
    assert verify_audit(study.store, caller=study.me).ok


def run_backend(name: str, sizes: list[int], completions: int, folder: Path) -> list[Study]:
    """Time ``completions`` form completions into runs of each of ``sizes`` scored responses.

    The studies are set up first, then completed in turn (one in each, the order alternating),
    so that every size sees the same state of the database server (on PostgreSQL a checkpoint
    after the largest setup slowed every commit threefold for a while, the peer's too)."""
    studies, cleanups = [], []
    try:
        for n in sizes:
            sub = folder / f"n{n}"
            sub.mkdir()
            url, cleanup = backend_url(name, sub, file="bench.db", prefix="bench_done")
            cleanups.append(cleanup)
            rng = np.random.default_rng(20261202 + n)
            # One more participant than timed: the first completion warms the caches (the
            # study's catalog, prepared statements) and creates the peer's table.
            store, me = _scored_study(url, sub, n, completions + 1, rng)
            with store.engine.connect() as conn:
                runs = conn.execute(text("SELECT count(*) FROM derivation")).scalar_one()
            studies.append(Study(n, store, me, create_engine(url), rng, runs))
        for study in studies:
            _complete_one(study, 0, timed=False)
        for i in range(1, completions + 1):
            for study in studies if i % 2 else studies[::-1]:
                _complete_one(study, i, timed=True)
        for study in studies:
            _checked(study, completions + 1)
    finally:
        for study in studies:
            study.peer.dispose()
            study.store.close()
        for cleanup in cleanups:
            drop(cleanup)
    return studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,3000", help="scored responses in the run")
    parser.add_argument("--completions", type=int, default=20, help="timed per size")
    add_backend_option(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("PEERLENS_VAULT_KEY", generate_key())
    backends = chosen_backends(parser, args)
    print(
        f"{'backend':<11}{'scored':>8}{'completion ms':>15}{'p90 ms':>8}{'peer ms':>9}{'ratio':>8}"
    )
    for b in backends:
        with tempfile.TemporaryDirectory() as tmp:
            studies = run_backend(b, sizes, args.completions, Path(tmp))
        medians = {}
        for study in studies:
            mid = statistics.median(study.ours) * 1000
            p90 = float(np.percentile(study.ours, 90)) * 1000
            floor = statistics.median(study.floor) * 1000
            medians[study.n] = mid
            print(f"{b:<11}{study.n:>8,}{mid:>15.1f}{p90:>8.1f}{floor:>9.1f}{mid / floor:>8.1f}")
        small, large = min(sizes), max(sizes)
        print(
            f"{b:<11}completion at {large:,} / at {small:,} scored responses: "
            f"{medians[large] / medians[small]:.2f}"
        )
    print(
        "completion = save_page of the page that completes the SCS (validated, audited, sealed, "
        "scored into the run), median of the timed completions; peer = pandas to_sql of the "
        "same page's item rows (one INSERT and commit, nothing else), median; ratio = ours / peer"
    )


if __name__ == "__main__":
    main()
