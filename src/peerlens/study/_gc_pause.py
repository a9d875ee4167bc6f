"""Pausing Python's cyclic garbage collector around bulk work: parsing a file's cells, a bulk
insert, resealing what a transaction wrote.

Those steps allocate hundreds of thousands of small tuples (rows, canonical rows, seal
contents). Each allocation burst lets the collector run, and its full collections walk every
object the process holds, so they cost more the bigger the study: measured on the store
benchmark, most of the time spent building canonical rows went to the collector. Reference
counting still frees everything that is not part of a cycle; cycles made meanwhile are collected
when the last paused block ends. Only bulk steps are paused (not whole transactions), so that a
server running many small transactions at once never keeps the collector off for long.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (nested and concurrent blocks allowed: it is
    switched back on, if it was on, when the last one ends)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
