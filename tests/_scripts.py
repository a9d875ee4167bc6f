"""Loading the repository's scripts (``benchmarks/``, ``tools/``, test references) as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str | None = None) -> ModuleType:
    """Import the script at ``path`` (absolute, or relative to the repository) as a module.

    The module is registered in ``sys.modules`` under ``name`` (the file's stem by default)
    before it runs, as dataclasses and pickling look a class's module up there.
    """
    path = path if path.is_absolute() else ROOT / path
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
