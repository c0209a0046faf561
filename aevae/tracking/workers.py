"""Who runs a run, and whether that process still lives.

A run left RUNNING (a grid cell, an Optuna trial) names its process as `<host>:<pid>` and
the process's start time. A process of this host that no longer exists, or whose pid now
belongs to a process started at another time (pids are reused), will never end that run, so
the bench and the tuner end it for it. A process on another host cannot be looked at; it
beats instead (aevae.tracking.heartbeat sets the run's `heartbeat` tag every
`grace / BEATS_PER_GRACE` seconds), and a beat older than the grace period says it died.
"""

from __future__ import annotations

import math
import os
import socket
import time

import psutil

from aevae.tracking import names

SAME_START_S = 1.0  # start times are read to a few ms; a reused pid starts seconds apart or more
DEFAULT_GRACE_S = 180  # a worker on another host silent this long is taken for dead
BEATS_PER_GRACE = 6  # beats per grace period: a few lost beats never look like a death


def this_worker() -> str:
    """`<host>:<pid>` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def this_process_started() -> float:
    """This process's start time, seconds since the epoch."""
    return psutil.Process().create_time()


def worker_tags() -> dict[str, str]:
    """The tags that name this process as a run's worker."""
    return {names.WORKER: this_worker(), names.WORKER_STARTED: f"{this_process_started():.3f}"}


def process_gone(host: str, pid: object, started: object = None) -> bool:
    """Whether process `pid` of `host`, started at `started` (seconds since the epoch; None
    or unparsable when not recorded: the pid alone decides), no longer runs. False for other
    hosts, for a pid that is no number, and for processes this user may not inspect."""
    if host != socket.gethostname():
        return False
    try:
        process = psutil.Process(int(pid))
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        when = float(started) if started is not None else math.nan
        return not math.isnan(when) and abs(process.create_time() - when) > SAME_START_S
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, TypeError, ValueError):
        return False


def worker_gone(tags: dict[str, str]) -> bool:
    """Whether the worker a run's tags name was a process of this host that no longer runs."""
    host, _, pid = tags.get(names.WORKER, "").rpartition(":")
    if not pid.isdigit():
        return False
    return process_gone(host, pid, tags.get(names.WORKER_STARTED))


def on_this_host(tags: dict[str, str]) -> bool:
    """Whether the run's worker is a process of this host (its pid can be looked at)."""
    return tags.get(names.WORKER, "").rpartition(":")[0] == socket.gethostname()


def beat_interval(grace_s: float) -> float:
    """Seconds between two beats of a worker judged with `grace_s`."""
    return grace_s / BEATS_PER_GRACE


def beat_tags(now: float | None = None) -> dict[str, str]:
    """The tag of one beat: this host's clock, seconds since the epoch."""
    return {names.HEARTBEAT: f"{time.time() if now is None else now:.3f}"}


def beat_age(tags: dict[str, str], now: float | None = None) -> float | None:
    """Seconds since the run's latest beat, by this host's clock; None for a run that never
    beat (runs of older versions: their pid alone decides)."""
    try:
        beat = float(tags[names.HEARTBEAT])
    except (KeyError, ValueError):
        return None
    return (time.time() if now is None else now) - beat
