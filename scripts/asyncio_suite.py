"""CPython's own asyncio tests, on pystream's event loop or on the stock one.

    python scripts/asyncio_suite.py {pystream,stock} [--results FILE] [-k PATTERN]

Loads the interpreter's ``test.test_asyncio`` modules below and, with
``pystream``, swaps pystream's loop in the way uvloop runs its suite: the
classes that make their loop with ``create_event_loop``/``new_loop`` make
pystream's (``pystream.new_event_loop()``), and the default policy, which
every ``asyncio.new_event_loop()``, ``asyncio.run`` and
``IsolatedAsyncioTestCase`` goes through, is ``pystream.EventLoopPolicy``
(also after a test resets the policy).  Only the epoll variant of each
selector test class runs, in both modes: the select/poll/kqueue copies test
other selectors, not another loop.  With --results, writes one line per
test, ``<outcome> <test id>``, for scripts/test-asyncio-suite to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import unittest

MODULES = [
    "test_events",
    "test_sock_lowlevel",
    "test_sendfile",
    "test_server",
    "test_streams",
    "test_subprocess",
]
# Variants of the epoll classes for other selectors, or other platforms.
OTHER_SELECTORS = ("SelectEventLoopTests", "PollEventLoopTests", "KqueueEventLoopTests")
# The classes whose loop comes from a method rather than the policy.
LOOP_METHODS = ("create_event_loop", "new_loop")


class Made:
    """pystream loops made, and the tests that made none."""

    loops = 0
    without: list[str] = []


def use_pystream(modules: list[object]) -> None:
    import pystream
    import pystream._eventloop

    made = pystream.new_event_loop

    def new_event_loop() -> asyncio.AbstractEventLoop:
        Made.loops += 1
        return made()

    # Counted, for the policy's loops too.
    pystream.new_event_loop = pystream._eventloop.new_event_loop = new_event_loop  # type: ignore[assignment]
    asyncio.DefaultEventLoopPolicy = pystream.EventLoopPolicy  # type: ignore[misc]
    asyncio.set_event_loop_policy(None)
    for module in modules:
        for name, cls in vars(module).items():
            if not isinstance(cls, type) or "Proactor" in name:
                continue
            for method in LOOP_METHODS:
                if method in vars(cls) or (
                    hasattr(cls, method) and issubclass(cls, unittest.TestCase)
                ):
                    setattr(cls, method, lambda self: pystream.new_event_loop())


def load(modules: list[object], pattern: str | None) -> unittest.TestSuite:
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = [pattern if "*" in pattern else f"*{pattern}*"]
    suite = unittest.TestSuite()

    def add(tests: unittest.TestSuite) -> None:
        for test in tests:
            if isinstance(test, unittest.TestSuite):
                add(test)
            elif type(test).__name__ not in OTHER_SELECTORS:
                suite.addTest(test)

    for module in modules:
        add(loader.loadTestsFromModule(module))
    return suite


class Recorder(unittest.TextTestResult):
    outcomes: dict[str, str] = {}

    def _note(self, test: unittest.TestCase, outcome: str) -> None:
        self.outcomes[test.id()] = outcome

    def startTest(self, test):  # type: ignore[no-untyped-def]
        self.loops_before = Made.loops
        super().startTest(test)

    def addSuccess(self, test):  # type: ignore[no-untyped-def]
        super().addSuccess(test)
        self._note(test, "pass")
        if Made.loops == self.loops_before:
            Made.without.append(test.id())

    def addFailure(self, test, err):  # type: ignore[no-untyped-def]
        super().addFailure(test, err)
        self._note(test, "FAIL")

    def addError(self, test, err):  # type: ignore[no-untyped-def]
        super().addError(test, err)
        self._note(test, "FAIL")

    def addSkip(self, test, reason):  # type: ignore[no-untyped-def]
        super().addSkip(test, reason)
        self._note(test, "skip")

    def addExpectedFailure(self, test, err):  # type: ignore[no-untyped-def]
        super().addExpectedFailure(test, err)
        self._note(test, "xfail")

    def addUnexpectedSuccess(self, test):  # type: ignore[no-untyped-def]
        super().addUnexpectedSuccess(test)
        self._note(test, "FAIL")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("loop", choices=["pystream", "stock"])
    parser.add_argument("--results")
    parser.add_argument("-k", dest="pattern")
    parser.add_argument("-v", action="store_true")
    args = parser.parse_args()
    modules = [importlib.import_module(f"test.test_asyncio.{m}") for m in MODULES]
    if args.loop == "pystream":
        use_pystream(modules)
    suite = load(modules, args.pattern)
    runner = unittest.TextTestRunner(
        verbosity=2 if args.v else 1, resultclass=Recorder, stream=sys.stderr
    )
    result = runner.run(suite)
    if args.loop == "pystream":
        # Which passing tests ran no loop of pystream's: those that test
        # handles, policies or mocks rather than a running loop.
        print(f"pystream event loops made: {Made.loops}", file=sys.stderr)
        print(f"passing tests that made none: {len(Made.without)}", file=sys.stderr)
        for test_id in Made.without:
            print(f"  {test_id}", file=sys.stderr)
    if args.results:
        with open(args.results, "w") as f:
            for test_id, outcome in sorted(Recorder.outcomes.items()):
                f.write(f"{outcome} {test_id}\n")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
