"""Bundled example data (simulated, written by the project) for the demo, docs and tests."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["example_path"]


def example_path(name: str) -> Path:
    """Path of a bundled example file, e.g. ``example_path("responses.csv")``."""
    path = Path(str(resources.files("peerlens.examples").joinpath(name)))
    if not path.exists():
        raise FileNotFoundError(f"no bundled example file {name!r}")
    return path
