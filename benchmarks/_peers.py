"""Peer environments for benchmarks whose peers cannot share peerlens's pinned stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peer_python(name: str) -> Path:
    """The Python of ``.venv-peer-<name>``, created from ``peers/<name>-requirements.txt``."""
    venv = ROOT / f".venv-peer-{name}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    requirements = ROOT / "benchmarks" / "peers" / f"{name}-requirements.txt"
    if not stamp.exists():
        print(f"setting up the {name} peer environment in {venv} (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True
        )
        stamp.touch()
    return python
