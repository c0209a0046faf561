"""How the benchmark scripts time things: a stopwatch, repeated calls, and their summaries.

Every script in benchmarks/ that times something uses this module, so a number means the
same in each of their tables: wall seconds by `time.perf_counter` (monotonic, the finest
clock Python has), CPU seconds where asked by `time.process_time` (every thread of this
process, to the microsecond), warm-up calls that never count, and the statistic named where
it is read: `median` for what a call costs on a machine that others share, `fastest` for a
ceiling that a neighbour's load should not lower.

    with Stopwatch() as clock:            # a whole run; clock.seconds reads it while it runs
        train(...)
    step = repeat(step_fn, 60, warmup=3)  # 60 timed calls after 3 untimed ones
    step.median, step.fastest
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

Function = TypeVar("Function", bound=Callable)


class Stopwatch:
    """Wall and CPU seconds since it was made; a `with` block stops it at the block's end.

    Inside the block `seconds` reads the running clock (the time axis of a training curve);
    after it, the stopped one."""

    def __init__(self) -> None:
        self._started = (time.perf_counter(), time.process_time())
        self._stopped: tuple[float, float] | None = None

    def __enter__(self) -> Stopwatch:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stopped is None:
            self._stopped = (time.perf_counter(), time.process_time())

    @property
    def seconds(self) -> float:
        """Wall seconds."""
        return (self._stopped[0] if self._stopped else time.perf_counter()) - self._started[0]

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of this process, all its threads."""
        return (self._stopped[1] if self._stopped else time.process_time()) - self._started[1]


@dataclass(frozen=True)
class Timings:
    """Seconds of repeated measurements of one thing, in the order taken, warm-ups left out."""

    seconds: tuple[float, ...]

    @classmethod
    def after_warmup(cls, seconds: Iterable[float], warmup: int = 1) -> Timings:
        """The measurements after the first `warmup` of them, or all of them when there are
        no more (a one-epoch run is its own warm-up)."""
        taken = tuple(seconds)
        return cls(taken[warmup:] or taken)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def fastest(self) -> float:
        return min(self.seconds)


def repeat(call: Callable[[], object], repeats: int, warmup: int = 1) -> Timings:
    """The seconds of each of `repeats` calls of `call`, after `warmup` calls that are not
    timed (a first call pays for allocation, kernel choice and lazy imports)."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return Timings(tuple(seconds))


def recorded(function: Function, seconds: list[float]) -> Function:
    """`function`, appending the wall seconds of each of its calls (one that raises too) to
    `seconds`: a part's cost timed inside the larger run that calls it."""

    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    return timed  # type: ignore[return-value]
