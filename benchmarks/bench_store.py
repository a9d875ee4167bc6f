"""Study store benchmark: a 10,000-participant x 6-timepoint x 3-instrument study, imported and
exported on SQLite and PostgreSQL side by side.

For each backend it times, through the public API (all-or-nothing validated imports, audit log,
derived scores at export):

- enrolling the participants (``add_participants``),
- importing one wide response file per timepoint (``import_responses``; PHQ-9, GAD-7, SWEMWBS =
  23 items per participant and timepoint, about 1.4 million item rows),
- re-importing one file (idempotent: nothing changes),
- deriving and storing every score (``derive(..., ["scores"])``: about 540,000 score rows),
- exporting the tidy long table with derived scores to Parquet (``export_study``),

and, as the peer, the same item rows written and read back by pandas (``DataFrame.to_sql`` with
executemany INSERTs, one file's rows right after our import of that file, then
``pandas.read_sql``): an unvalidated, unaudited bulk load, i.e. the floor a careful store is
paying for.

PostgreSQL runs when ``PEERLENS_BENCH_PG_URL`` or ``PEERLENS_TEST_PG_URL`` is set (a fresh
schema is created and dropped). Run: ``python benchmarks/bench_store.py [--participants N]
[--backend sqlite|postgresql ...]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_db import add_backend_option, backend_url, chosen_backends, drop
from peerlens.study import (
    NewParticipant,
    Store,
    add_participants,
    bootstrap_admin,
    create_study,
    derive,
    export_study,
    import_responses,
)
from peerlens.study.vault import generate_key

INSTRUMENTS = {"phq9": (9, 0, 3), "gad7": (7, 0, 3), "swemwbs": (7, 1, 5)}
TIMEPOINTS = ["baseline", "week6", "week12", "week24", "week36", "week52"]
ARMS = ["intervention", "control"]
SITES = ["leeds", "glasgow", "cardiff"]


def _config(folder: Path) -> Path:
    lines = ["title: benchmark", f"arms: [{', '.join(ARMS)}]", f"sites: [{', '.join(SITES)}]"]
    lines += ["missing_codes: [-99]", "timepoints:"]
    for i, tp in enumerate(TIMEPOINTS):
        lines += [
            f"  - name: {tp}",
            f"    offset_days: {i * 60}",
            f"    instruments: [{', '.join(INSTRUMENTS)}]",
        ]
    path = folder / "study.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _files(folder: Path, n: int, rng: np.random.Generator) -> list[Path]:
    codes = [f"P{i:05d}" for i in range(n)]
    paths = []
    for tp in TIMEPOINTS:
        cols: dict[str, object] = {"participant": codes}
        for inst, (k, lo, hi) in INSTRUMENTS.items():
            vals = rng.integers(lo, hi + 1, size=(n, k)).astype(object)
            vals[rng.random((n, k)) < 0.01] = ""  # 1% unanswered
            vals[rng.random((n, k)) < 0.005] = -99  # 0.5% coded missing
            for j in range(k):
                cols[f"{inst}_{j + 1}"] = vals[:, j]
        path = folder / f"{tp}.csv"
        pd.DataFrame(cols).to_csv(path, index=False)
        paths.append(path)
    return paths


def _long(paths: list[Path]) -> pd.DataFrame:
    frames = []
    for tp, path in zip(TIMEPOINTS, paths, strict=True):
        wide = pd.read_csv(path, dtype=str, keep_default_na=False)
        long = wide.melt(id_vars="participant", var_name="item", value_name="raw")
        long = long[long["raw"] != ""]
        long["timepoint"] = tp
        long["value"] = pd.to_numeric(long["raw"]).where(long["raw"] != "-99")
        frames.append(long.drop(columns="raw"))
    return pd.concat(frames, ignore_index=True)


def run_backend(name: str, n: int, paths: list[Path], long: pd.DataFrame, folder: Path) -> dict:
    url, cleanup = backend_url(name, folder, file="bench.db", prefix="bench")
    out: dict[str, float] = {}
    try:
        store = Store.open(url, create=True, blob_dir=folder / "blobs")
        me = bootstrap_admin(store, "bench", "benchmark password")
        create_study(store, "bench", _config(folder), caller=me)
        # Each participant has identity fields: the vault encrypts them (AES-GCM) at enrolment.
        people = [
            NewParticipant(
                f"P{i:05d}",
                arm=ARMS[i % 2],
                site=SITES[i % 3],
                identity={"name": f"Person {i}", "phone": f"07700 9{i:05d}"},
            )
            for i in range(n)
        ]
        t = time.perf_counter()
        add_participants(store, "bench", people, caller=me)
        out["enrol_s"] = time.perf_counter() - t
        # Peer: pandas bulk write of the same item rows, no validation or audit. Each file's
        # rows are written right after our import of that file, so that both see the same load
        # on a shared machine (the ratio is what the benchmark reports).
        peer = create_engine(url)
        out["import_s"] = out["peer_write_s"] = 0.0
        for tp, path in zip(TIMEPOINTS, paths, strict=True):
            t = time.perf_counter()
            import_responses(store, "bench", path, timepoint=tp, caller=me)
            out["import_s"] += time.perf_counter() - t
            part = long[long["timepoint"] == tp]
            t = time.perf_counter()
            part.to_sql("peer_items", peer, index=False, chunksize=50_000, if_exists="append")
            out["peer_write_s"] += time.perf_counter() - t
        with store.engine.connect() as conn:
            out["items"] = conn.execute(text("SELECT count(*) FROM response_item")).scalar_one()
        t = time.perf_counter()
        again = import_responses(store, "bench", paths[0], timepoint=TIMEPOINTS[0], caller=me)
        out["reimport_s"] = time.perf_counter() - t
        assert again.new == again.updated == 0
        t = time.perf_counter()
        (derived,) = derive(store, "bench", ["scores"], caller=me)
        out["derive_s"] = time.perf_counter() - t
        out["derive_rows"] = derived.rows
        t = time.perf_counter()
        res = export_study(
            store, "bench", folder / f"{name}.parquet", tier="deidentified", caller=me
        )
        out["export_s"] = time.perf_counter() - t
        out["export_rows"] = res.rows
        store.close()
        t = time.perf_counter()
        back = pd.read_sql("SELECT * FROM peer_items", peer)
        out["peer_read_s"] = time.perf_counter() - t
        assert len(back) == len(long)
        peer.dispose()
    finally:
        drop(cleanup)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    add_backend_option(parser)
    args = parser.parse_args()
    n = args.participants
    rng = np.random.default_rng(20261126)
    # A fresh vault key for the benchmark's throwaway databases (encryption is on).
    os.environ.setdefault("PEERLENS_VAULT_KEY", generate_key())
    backends = chosen_backends(parser, args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = _files(folder, n, rng)
        long = _long(paths)
        print(
            f"study: {n} participants x {len(TIMEPOINTS)} timepoints x {len(INSTRUMENTS)} "
            f"instruments = {n * len(TIMEPOINTS) * len(INSTRUMENTS)} responses, "
            f"{len(long)} item rows"
        )
        results = {}
        for b in backends:
            sub = folder / b
            sub.mkdir()
            results[b] = run_backend(b, n, paths, long, sub)
        header = f"{'backend':<11}{'step':<34}{'seconds':>9}{'rows/s':>12}{'peer rows/s':>13}"
        print(header + f"{'ratio':>8}")
        for b, r in results.items():
            items = r["items"]
            rows = [
                ("enrol participants", r["enrol_s"], n, None),
                ("import 6 files (validated, audited)", r["import_s"], items, r["peer_write_s"]),
                ("re-import 1 file (no change)", r["reimport_s"], items / 6, None),
                ("derive + store scores", r["derive_s"], r["derive_rows"], None),
                ("export tidy+scores (Parquet)", r["export_s"], r["export_rows"], r["peer_read_s"]),
            ]
            for step, secs, count, peer in rows:
                rate = count / secs
                peer_rate = len(long) / peer if peer else float("nan")
                ratio = rate / peer_rate if peer else float("nan")
                peer_txt = f"{peer_rate:>13,.0f}" if peer else f"{'-':>13}"
                ratio_txt = f"{ratio:>8.2f}" if peer else f"{'-':>8}"
                print(f"{b:<11}{step:<34}{secs:>9.2f}{rate:>12,.0f}{peer_txt}{ratio_txt}")
        print(
            "peer = pandas to_sql (executemany) / read_sql of the same item rows "
            "(no validation, no audit, no scores); ratio = our rows/s / peer rows/s"
        )


if __name__ == "__main__":
    main()
