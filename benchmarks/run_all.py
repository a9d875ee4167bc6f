"""Run every benchmark and evaluation script in this folder, one after another (``make bench``).

Each script prints its own figures beside its named peer's, measured in the same run. Scripts run
in fresh processes so that one's memory does not colour another's. Pass names to run a subset:
``python benchmarks/run_all.py bench_scoring hrv_speed``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Experiments that need their own environment and hours of CPU: run by hand, never by run_all
#: (story_finetune needs torch, from requirements-finetune.txt, in a separate venv).
BY_HAND = {"story_finetune": "needs torch in its own venv (requirements-finetune.txt)"}


def main() -> int:
    wanted = set(sys.argv[1:])
    scripts = sorted(
        p
        for p in HERE.glob("*.py")
        if not p.name.startswith("_")
        and p.name != "run_all.py"
        and (not wanted or p.stem in wanted)
    )
    failed = []
    for script in scripts:
        if script.stem in BY_HAND and script.stem not in wanted:
            print(f"\n=== {script.name}: not run ({BY_HAND[script.stem]}; name it to run it)")
            continue
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)], check=False).returncode
        print(f"--- {script.name}: exit {code}, {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
