"""Seconds per named part of a piece of work, for the `seconds/<part>` metrics of a run and
the `analysis_seconds/<part>` ones of its analysis. Light: imports nothing of aevae."""

from __future__ import annotations

import contextlib
import time


class Stopwatch:
    """Adds up the seconds spent in each named part (a part entered again adds to itself)."""

    def __init__(self):
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def part(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def metrics(self, prefix: str) -> dict[str, float]:
        """`<prefix>/<part>` for every part, and `<prefix>/other`: what the parts leave of
        the time since the stopwatch started."""
        return {**{f"{prefix}/{name}": value for name, value in self.seconds.items()},
                f"{prefix}/other": max(0.0, self.elapsed() - sum(self.seconds.values()))}
