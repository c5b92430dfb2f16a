"""The checkpoint every pystream operation starts with, and its rule.

A checkpoint is a cancel point and, usually, a schedule point (API.md,
"Checkpoints"):

1. A cancellation already pending for the calling task is raised there,
   before the operation has any effect: it always yields when one is
   pending (``Task._must_cancel``, which CPython's C task and PyPy's
   Python task both expose), and the yield raises it.
2. Otherwise it yields to the event loop once, unless the calling task
   resumed from a suspension that pystream saw less than the loop's
   schedule interval ago (default 1 ms; 0 yields every time, Trio's strict
   rule).  So a task calling operations that never block still lets the
   loop run at least once per interval of its running time.  This is the
   rule Trio has planned since 2020 (trio#1757).
3. "Resumed from a suspension that pystream saw" means a yield of this
   checkpoint or a wait of a pystream operation (``note_resumed`` after
   it).  Other awaits count for nothing: when in doubt, yield.

One record, not one per task: the last task that pystream saw resume and
the deadline until which its checkpoints may skip the yield.  Another
task's resume replaces it, which only makes the first task yield sooner
(it has yielded since, or the other could not have run).  Tasks of loops in
other threads never match it.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from time import monotonic
from typing import Any, Callable, Generator, Optional

__all__ = [
    "CHECKPOINT",
    "LoopCheckpoint",
    "task_of",
    "note_resumed",
    "set_schedule_interval",
    "get_schedule_interval",
    "DEFAULT_SCHEDULE_INTERVAL",
]

DEFAULT_SCHEDULE_INTERVAL = 0.001

_current_task: Callable[[], Optional[asyncio.Task[Any]]]
task_of: Callable[[Any], Optional[asyncio.Task[Any]]]  # the task a loop runs
if sys.version_info >= (3, 12) or not hasattr(asyncio.tasks, "_current_tasks"):
    _current_task = asyncio.current_task  # in C from 3.12
    task_of = asyncio.current_task
else:
    # Before 3.12 asyncio.current_task is Python calling get_running_loop:
    # the same lookup without its checks saves a fifth of a microsecond.
    # And finding the running loop costs a getpid() system call there
    # (about 0.25 us): LoopCheckpoint, for callers that know their loop,
    # looks up its task directly.
    _running_loop = asyncio.events._get_running_loop
    _tasks_of_loops: dict[Any, asyncio.Task[Any]] = asyncio.tasks._current_tasks
    task_of = _tasks_of_loops.get

    def _current_task() -> Optional[asyncio.Task[Any]]:
        return _tasks_of_loops.get(_running_loop())


# Per event loop; weak, so that a closed loop is not kept alive.
_intervals: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = (
    weakref.WeakKeyDictionary()
)
# The last loop looked up and its interval: the lookup's fast path.
_last_loop: list[Any] = [None, DEFAULT_SCHEDULE_INTERVAL]

# (task, deadline): the task pystream last saw resume, and the monotonic
# time until which its checkpoints may skip their yield.
_resumed: tuple[Any, float] = (None, 0.0)


def set_schedule_interval(
    seconds: float, *, loop: Optional[asyncio.AbstractEventLoop] = None
) -> None:
    """Set how long after a task resumed its checkpoints may skip the
    yield, for one event loop (the running one by default).  ``0`` makes
    every call yield (Trio's strict rule); the default is 0.001.

    Raises:
        TypeError: seconds is not a number.
        ValueError: seconds is negative or not finite.
        RuntimeError: no loop given and none running.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"seconds must be finite and at least 0, not {seconds!r}")
    if loop is None:
        loop = asyncio.get_running_loop()
    _intervals[loop] = float(seconds)
    _last_loop[0] = None
    global _resumed
    _resumed = (None, 0.0)  # a shorter interval holds from now on


def get_schedule_interval(*, loop: Optional[asyncio.AbstractEventLoop] = None) -> float:
    """The schedule interval of a loop (the running one by default)."""
    if loop is None:
        loop = asyncio.get_running_loop()
    return _intervals.get(loop, DEFAULT_SCHEDULE_INTERVAL)


def _interval_of(task: Any) -> float:
    loop = task.get_loop()
    if _last_loop[0] is not loop:
        _last_loop[0] = loop  # (a strong reference to one loop at most)
        _last_loop[1] = _intervals.get(loop, DEFAULT_SCHEDULE_INTERVAL)
    interval: float = _last_loop[1]
    return interval


def note_resumed() -> None:
    """Record that the calling task has just resumed from a suspension
    (call it right after a pystream wait returns)."""
    global _resumed
    task = _current_task()
    if task is not None:
        _resumed = (task, monotonic() + _interval_of(task))


class _YieldOnce:
    """Yields once, then records the resume: the iterator of a checkpoint
    that yields (a small object, cheaper than a generator and its frame).
    A cancellation thrown in at the yield is raised at the ``await``: the
    iterator has no ``throw``, and nothing is recorded."""

    __slots__ = ("_task", "_yielded")

    def __init__(self, task: Any) -> None:
        self._task = task
        self._yielded = False

    def __iter__(self) -> _YieldOnce:
        return self

    def __next__(self) -> None:
        if not self._yielded:
            self._yielded = True
            return None  # a bare yield: the task reschedules itself
        global _resumed
        task = self._task
        if task is not None:
            _resumed = (task, monotonic() + _interval_of(task))
        raise StopIteration


# What a checkpoint that skips its yield returns: an exhausted iterator
# (one, shared: it stays exhausted), so ``await`` ends at once.
_NO_YIELD: Any = iter(())


def _checkpoint_of(task: Any) -> Generator[None, None, None]:
    """The rule for the calling task: skip the yield, or yield once."""
    resumed_task, deadline = _resumed
    if (
        resumed_task is task
        and task is not None
        and not getattr(task, "_must_cancel", True)
        and monotonic() < deadline
    ):
        return _NO_YIELD  # type: ignore[no-any-return]
    return _YieldOnce(task)  # type: ignore[return-value]


class _Checkpoint:
    """``await CHECKPOINT``: the rule in the module's notes.  One shared
    object; each await that yields makes one ``_YieldOnce``."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return _checkpoint_of(_current_task())


CHECKPOINT = _Checkpoint()


class LoopCheckpoint:
    """``CHECKPOINT`` and ``note_resumed`` for code that knows the event
    loop it runs in (the core's streams, one per bridge, after their
    loop check): the same rule, without asking asyncio which loop is
    running."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # Both methods are _checkpoint_of and note_resumed written out: they
    # run in every call of the core's streams.
    def __await__(self) -> Generator[None, None, None]:
        task = task_of(self.loop)
        resumed_task, deadline = _resumed
        if (
            resumed_task is task
            and task is not None
            and not getattr(task, "_must_cancel", True)
            and monotonic() < deadline
        ):
            return _NO_YIELD  # type: ignore[no-any-return]
        return _YieldOnce(task)  # type: ignore[return-value]

    def note_resumed(self) -> None:
        global _resumed
        loop = self.loop
        task = task_of(loop)
        if task is not None:
            interval = _last_loop[1] if _last_loop[0] is loop else _interval_of(task)
            _resumed = (task, monotonic() + interval)
