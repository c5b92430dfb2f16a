"""Runs every ``async def`` test on each available event loop, in debug
mode, under a timeout, and checks afterwards that the test left nothing
behind: no task still running, no C handle, no open file descriptor, no
error reported to the loop's exception handler."""

from __future__ import annotations

import gc
import inspect
from typing import Any

import pytest

import pystream

from helpers import (
    FUZZ_EXAMPLES,
    FUZZ_SEED,
    LOOP_KINDS,
    PATIENCE_FACTOR,
    TEST_TIMEOUT,
    open_fds,
    run_in_loop,
)


def pytest_generate_tests(metafunc: Any) -> None:
    if inspect.iscoroutinefunction(metafunc.function):
        marker = metafunc.definition.get_closest_marker("loops")
        kinds = [k for k in LOOP_KINDS if marker is None or k in marker.args]
        metafunc.fixturenames.append("loop_kind")
        metafunc.parametrize("loop_kind", kinds)


def pytest_report_header(config: Any) -> str:
    return (
        f"pystream fuzz: {FUZZ_EXAMPLES} examples per stream, seed {FUZZ_SEED} "
        f"(replay: PYSTREAM_FUZZ_SEED={FUZZ_SEED} PYSTREAM_FUZZ_EXAMPLES={FUZZ_EXAMPLES})"
    )


def pytest_sessionstart(session: Any) -> None:
    # libuv (ours, and uvloop's own copy) makes a process-wide pipe with its
    # first loop; make them now so
    # that the per-test descriptor counts compare like with like.
    async def first_loop() -> None:
        a, b = await pystream.open_stream_pair()
        await a.aclose()
        await b.aclose()

    for kind in LOOP_KINDS:
        run_in_loop(kind, first_loop())


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> Any:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kind = pyfuncitem.callspec.params["loop_kind"]
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    fds_before = open_fds()
    patience = pyfuncitem.get_closest_marker("patience")
    timeout = patience.args[0] * PATIENCE_FACTOR if patience is not None else TEST_TIMEOUT
    run_in_loop(kind, pyfuncitem.obj(**kwargs), timeout)
    gc.collect()
    counts = pystream._counters()
    assert counts["handles"] == 0, f"C handles left open: {counts}"
    assert counts["loops"] == 0, f"libuv loops left open: {counts}"
    assert open_fds() == fds_before, "file descriptors leaked"
    return True
