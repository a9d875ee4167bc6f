"""benchmarks/story_finetune.py: the dev-only LoRA experiment (torch in its own venv only).

Without torch the script refuses in one line naming ``requirements-finetune.txt`` (exit 2); with
torch (the experiment's venv), its torch forward pass must reproduce peerlens's numpy encoder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from .._scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "story_finetune.py"


def _module() -> ModuleType:
    return load_script(SCRIPT)


sf = _module()


def test_without_torch_it_exits_2_naming_the_requirements_file() -> None:
    # torch hidden from the child even where it is installed (sys.modules entry None)
    code = (
        "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['story_finetune', 'check']; "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert got.returncode == 2
    assert got.stdout == ""
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "requirements-finetune.txt" in lines[0]
    assert "Traceback" not in got.stderr


def test_the_requirements_file_pins_one_cpu_torch() -> None:
    reqs = [
        line.strip()
        for line in (ROOT / "requirements-finetune.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert reqs == ["torch==2.13.0"]


def test_folds_hold_whole_source_groups_out() -> None:
    from peerlens.narrative.evaluation import loso_group

    sources = ["", "", "a", "a", "b", "c", "c", "c", "d", "cm_bpd", "cm_suicidewatch", "e", "f"]
    sources += ["g", "h", "i", "j", "k", "l"]
    data = pd.DataFrame({"source": sources})
    group = data["source"].map(loso_group)
    folds = sf.folds(data)
    assert len(folds) == sf.K_OUTER
    tested = [i for fold in folds for i in fold["test"]]
    assert sorted(tested) == [i for i, s in enumerate(sources) if s]  # each real row once
    for fold in folds:
        test, train = set(group[fold["test"]]), set(group[fold["train"]])
        assert not test & train
        assert "" in train and "" not in test  # the own corpus always trains
        assert set(fold["calib"]) | set(fold["fit"]) == set(fold["train"])
        assert not set(group[fold["calib"]]) & set(group[fold["fit"]])


def test_the_torch_forward_equals_the_numpy_encoder() -> None:
    pytest.importorskip("torch")
    from peerlens.narrative.encoder import EncoderWeightsError

    try:
        diff = sf.check(["At least you still have your job.", "I beat it, so can you!"])
    except EncoderWeightsError as exc:
        pytest.skip(f"encoder weights not installed: {exc}")
    assert diff < 1e-5
