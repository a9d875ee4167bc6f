"""``peerlens._commands._common.user_errors``: how errors and warnings reach the user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2] / "src")

# Run in a child process capped at 1 GiB of address space and a time limit: a warning passed on
# while ``user_errors`` still records would be recorded and passed on again without end (a
# wfdb import's pandas deprecation warning, first seen under pytest, took a refused
# ``recordings add`` past 20 GB).
_CHILD = """
import json, resource, warnings
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import typer
from peerlens import PeerlensError, PeerlensWarning
from peerlens._commands._common import user_errors

codes = []
with warnings.catch_warnings(record=True) as outer:
    warnings.simplefilter("always")
    for fails in (True, False):
        try:
            with user_errors():
                warnings.warn("from another package", DeprecationWarning)
                warnings.warn("about the input", PeerlensWarning)
                if fails:
                    raise PeerlensError("bad input")
        except typer.Exit as exc:
            codes.append(exc.exit_code)
        else:
            codes.append(0)
print(json.dumps({"codes": codes, "passed_on": [[w.category.__name__, str(w.message)]
                                               for w in outer]}))
"""


def test_other_packages_warnings_are_passed_on_once_and_peerlens_warnings_printed() -> None:
    env = {**os.environ, "PYTHONPATH": _SRC}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert got["codes"] == [2, 0]
    # each block's foreign warning exactly once, ours never re-issued (printed instead)
    assert got["passed_on"] == [["DeprecationWarning", "from another package"]] * 2
    lines = done.stderr.splitlines()
    assert lines.count("warning: about the input") == 2
    assert lines.count("error: bad input") == 1
    assert lines.index("warning: about the input") < lines.index("error: bad input")
