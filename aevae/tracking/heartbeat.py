"""A worker's heartbeat: while a claimed run trains, a background thread sets the run's
`heartbeat` tag to this host's clock every few seconds, so that a bench on another host can
tell a live worker from one that died with its machine (aevae.bench.claims judges the age).

The thread has a tracking client of its own (MLflow's clients are not shared across threads
here), is a daemon (a worker that is killed takes its beat with it, which is the point), and
shrugs off a failed beat: one lost beat among the several per grace period never looks like
a death, while a store that stays unreachable makes the training fail on its own.
"""

from __future__ import annotations

import threading

from aevae.tracking.runs import RunStore
from aevae.tracking.workers import beat_tags


class Heartbeat:
    """`with Heartbeat(tracking_uri, run_id, interval_s):` beats for the run until the block
    ends; the first beat is at once."""

    def __init__(self, tracking_uri: str, run_id: str, interval_s: float):
        self.tracking_uri, self.run_id, self.interval_s = tracking_uri, run_id, interval_s
        self.beats = 0  # beats that reached the store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {run_id}", daemon=True)

    def _beat(self) -> None:
        store = None
        while True:
            try:
                store = store or RunStore(self.tracking_uri)  # a store gone away fails here too
                store.set_tags(self.run_id, beat_tags())
                self.beats += 1
            except Exception:  # noqa: BLE001 - a lost beat is retried at the next interval
                pass
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        # A beat in flight against a slow server need not hold up the cell's outcome.
        self._thread.join(timeout=self.interval_s)
