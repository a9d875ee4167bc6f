"""Study report benchmark: building ``peerlens report`` for a simulated two-arm trial of 120 and
1,200 participants (three timepoints, SCS items, dropout and withdrawals; the trial of
``tests/analysis/_trial.py``, seeded), stored through the study API on SQLite.

For each size it times, in this process:

- reading the de-identified analysis dataset (``analysis_dataset``: export at the
  ``deidentified`` tier, scores derived from the items, audited),
- building the report (``build_report``: mixed models with Satterthwaite df for every term and
  model-based mean, effect sizes with bootstrap CIs, reliable change, delta-adjusted multiple
  imputation) and rendering the page (``render_html``),

in wall-clock and in CPU time of this process (``time.process_time``: on a shared, loaded
machine the CPU time is the steadier figure), with the process's peak resident memory after the
build (``resource.getrusage``: the store, dataset and report together; the build's rise over the
peak before it is printed beside),
and, as the peer measured in the same run, the same models fitted directly with statsmodels'
``MixedLM`` from a pandas frame (``smf.mixedlm(y ~ C(arm) * C(timepoint),
groups=participant).fit(reml=True)``, one per outcome): the bare fits, so that the ratio is
the report's overhead over them.

Run: ``python benchmarks/bench_report.py [--sizes 120 1200] [--imputations 20]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analysis"))

from _trial import make_trial

from peerlens.analysis import ReportOptions, build_report, render_html
from peerlens.study import Caller, Store, analysis_dataset, bootstrap_admin
from peerlens.study.vault import generate_key

OUTCOMES = ("scs_total", "scs_common_humanity", "scs_isolation")


def _peer(scores: object) -> float:
    """Seconds to fit every outcome with statsmodels' formula MixedLM (REML), nothing else."""
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    start = time.perf_counter()
    for outcome in OUTCOMES:
        data = scores[["participant", "arm", "timepoint", outcome]].dropna()  # type: ignore[index]
        model = smf.mixedlm(
            f"{outcome} ~ C(arm, Treatment('usual_care')) * C(timepoint)",
            data,
            groups=data["participant"],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(reml=True)
    return time.perf_counter() - start


def _peak_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n: int, imputations: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp_name:
        tmp = Path(tmp_name)
        store = Store.open(f"sqlite:///{tmp / 'study.db'}", create=True, blob_dir=tmp / "blobs")
        me = Caller("bench")
        bootstrap_admin(store, me.username, "a benchmark password")
        start = time.perf_counter()
        make_trial(store, me, tmp, n=n, seed=n)
        stored = time.perf_counter() - start
        try:
            start = time.perf_counter()
            dataset = analysis_dataset(store, "trial", caller=me)
            read = time.perf_counter() - start
            options = ReportOptions(outcomes=OUTCOMES, n_imputations=imputations)
            before = _peak_mib()
            start, cpu_start = time.perf_counter(), time.process_time()
            page = render_html(build_report(dataset, options))
            built, built_cpu = time.perf_counter() - start, time.process_time() - cpu_start
            peak = _peak_mib()
            peer = _peer(dataset.scores)
        finally:
            store.close()
    print(
        f"{n:>5} participants ({len(dataset.scores)} scored visits; stored in {stored:.1f} s): "
        f"read dataset {read:.2f} s, build + render {built:.2f} s "
        f"(CPU {built_cpu:.2f} s; {len(page) / 1024:.0f} KiB page); peak RSS {peak:.0f} MiB "
        f"(+{peak - before:.0f} MiB in the build)"
    )
    print(
        f"       peer statsmodels MixedLM, {len(OUTCOMES)} bare fits: {peer:.2f} s; "
        f"ratio report / peer {(read + built) / peer:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[120, 1200])
    parser.add_argument("--imputations", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("PEERLENS_VAULT_KEY", generate_key())
    print(
        f"report of {len(OUTCOMES)} outcomes, {args.imputations} imputations per delta "
        "(3 deltas), 2,000 bootstrap resamples"
    )
    for n in args.sizes:
        run(n, args.imputations)


if __name__ == "__main__":
    main()
