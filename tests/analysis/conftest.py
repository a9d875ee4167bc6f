"""Running the R reference fits of the analysis tests (R with lme4 and lmerTest: CI installs
it; locally a test skips without it, and fails when CI is set)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Rscript is not installed: .ci/run installs r-cran-lmertest")
        pytest.skip("R with lme4 and lmerTest is not installed (Debian: r-cran-lmertest)")
    return found


@pytest.fixture
def run_r() -> Callable[..., list[list[str]]]:
    """``run_r("script.R", *args)``: run a script of this folder, return its tab-separated
    output lines split into fields."""

    def run(script: str, *args: str) -> list[list[str]]:
        cmd = [_rscript(), str(HERE / script), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    return run
