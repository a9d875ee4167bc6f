"""Run HRV computations with a single BLAS thread.

The HRV pipeline calls BLAS only for small matrix products (the R-apex refinement, DFA). With
OpenBLAS's default of one thread per core, each such call wakes the other threads, which then
busy-wait and take a core away from the single-threaded numpy/scipy work that follows; on the
2-core reference machine that made the whole 24-hour pipeline about 20 % slower
(``benchmarks/hrv_speed.py``). Parallelism across recordings comes from ``peerlens hrv batch``
(one process per recording), not from BLAS threads.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_controller: Any = None


def _limiter() -> Any:
    """A context manager limiting BLAS to one thread (threadpoolctl; scanned once).

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
        with _limiter():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
