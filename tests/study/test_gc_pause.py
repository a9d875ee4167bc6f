"""The cyclic collector is off inside paused blocks and back as it was after the last one."""

from __future__ import annotations

import gc
import threading

import pytest

from peerlens.study._gc_pause import collection_paused


def test_nested_blocks_switch_it_back_on_after_the_last() -> None:
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_is_switched_back_on_after_an_error() -> None:
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_concurrent_blocks_in_threads() -> None:
    inside, release = threading.Barrier(3), threading.Event()

    def work() -> None:
        with collection_paused():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert not gc.isenabled()
    release.set()
    for t in threads:
        t.join()
    assert gc.isenabled()
