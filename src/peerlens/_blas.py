"""Run small dense linear algebra with a single BLAS thread.

peerlens calls BLAS only for small problems: matrix products in the HRV pipeline (the R-apex
refinement, DFA) and eigen-decompositions of item correlation matrices (p <= ~50) in the
reliability estimators. With OpenBLAS's default of one thread per core, each such call wakes the
other threads, which then busy-wait and take a core away from the single-threaded numpy/scipy
work that follows: on the 2-core reference machine that made the whole 24-hour HRV pipeline
about 20 % slower (``benchmarks/hrv_speed.py``) and each omega fit ~100x slower. Parallelism
comes from running recordings in separate processes (``peerlens hrv batch``), not from BLAS
threads.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_controller: Any = None


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """A context manager limiting BLAS to one thread (threadpoolctl, which ships with
    scikit-learn; the loaded libraries are scanned once), restored on exit.

    Only a speed measure: if the thread pools cannot be inspected, nothing is limited.
    """
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except Exception:  # pragma: no cover - unusual platforms
            _controller = False
    if _controller is False:
        return contextlib.nullcontext()
    return _controller.limit(limits=1, user_api="blas")


def single_blas_thread(func: F) -> F:
    """Decorator: run ``func`` with BLAS limited to one thread (restored afterwards)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_blas_thread():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def one_blas_thread_for_this_process() -> None:
    """Limit BLAS to one thread for the rest of the process (a server's choice, not a library's).

    For ``peerlens serve``: requests run side by side in worker threads, and each story
    analysis runs the sentence encoder's matrix products.  With BLAS's own thread per core those
    threads fight the other requests for the cores; on the 2-core reference machine two
    concurrent 50-sentence analyses ran at 221-254 sentences/s with BLAS's default threads and
    389 with one (four at once: 174-184 against 329), while a single analysis alone ran at
    331-358 against 225 (``docs/web.md``, "How fast pages answer").  The limit covers the
    libraries already loaded (numpy's and scipy's OpenBLAS are loaded here first) and, through
    ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``, any loaded later or by child processes.
    """
    import os

    import numpy  # noqa: F401  (loads numpy's BLAS)
    import scipy.linalg  # noqa: F401  (loads scipy's)

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    except Exception:  # pragma: no cover - unusual platforms: only a speed measure
        pass
