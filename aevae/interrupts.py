"""How a command stops on Ctrl-C (SIGINT) or `kill` (SIGTERM): the first signal raises
`Interrupted` where the command is, so every run in progress ends KILLED through its `with`
block; signals that follow while the runs are being closed are noted and ignored, since a
second Ctrl-C 0.3 s after the first would otherwise break the closing and leave a run
RUNNING. A third signal quits at once (the next bench or tune closes what is left as
KILLED, since its process is gone).

Light: no torch, no MLflow; the CLI wraps every command in `stop_on_signals`, and bench
workers raise `Interrupted` from their own handlers (aevae.bench.runner).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
QUIT_AFTER = 3  # signals; the third one exits without closing anything
_deferring = 0  # depth of `deferred` blocks running now
_pending: list[int] = []  # a stop that came inside one, raised when the outermost ends


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal; a run it passes through ends KILLED."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number, as a shell reports a command stopped by it."""
    return getattr(exc, "exit_status", 128 + signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(command: str) -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` once; later ones are ignored (the third quits
    at once), and after the block, when a stop came, both stay ignored: the process is
    ending. Outside the main thread this does nothing."""
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:
            if _deferring:
                _pending.append(signum)
                return
            raise Interrupted(signum)
        if len(received) >= QUIT_AFTER:
            print(f"aevae {command}: stopped at once; runs still RUNNING are closed as KILLED "
                  f"by the next run of this command.", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        print(f"aevae {command}: stopping; the runs in progress are being closed as KILLED "
              f"(a third signal quits at once).", file=sys.stderr, flush=True)

    try:
        previous = {s: signal.signal(s, handler) for s in SIGNALS if _handled(s)}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        # After a stop the command is ending: a signal that comes while the interpreter winds
        # down (torch takes seconds) is ignored, since Python's own finalization would reset a
        # handler here to the default and the signal would kill the process mid-exit.
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_IGN if received else old)


def _handled(signum: int) -> bool:
    """A signal the process was started ignoring (nohup, a background job) stays ignored."""
    return signal.getsignal(signum) is not signal.SIG_IGN


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop that comes inside the block is raised when the block ends, not in the middle:
    for writes that must not be cut in half (Optuna's journal, under its file lock)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and _pending:
        raise Interrupted(_pending.pop())
