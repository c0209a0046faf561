"""What happened to each cell of a bench, told line by line as it happens and as a table
(printed, and written as CSV) at the end."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from aevae.bench.grid import Cell
from aevae.tracking import names
from aevae.tracking.records import RunRecord

# done: trained now; skipped: a finished run existed; failed: its run ended FAILED (or never
# started training); busy: another worker holds it; interrupted: Ctrl-C; not run: never started
STATUSES = ("done", "skipped", "failed", "busy", "interrupted", "not run")
TABLE_METRICS = (names.TEST_LOSS, names.TEST_RECON_MSE, names.TEST_KL, names.TEST_PIXEL_ACC)


@dataclass
class Outcome:
    cell: Cell
    status: str
    seconds: float | None = None  # the run's train_seconds
    run_id: str = ""
    reason: str = ""  # one line, for failed and busy cells
    detail: str = ""  # the traceback of a failure that looks like a bug
    metrics: dict[str, float] = field(default_factory=dict)  # the run's test/* metrics
    lost_task: str | None = None  # the executor's task whose every attempt died (its run is still open)

    @classmethod
    def from_run(cls, cell: Cell, status: str, run: RunRecord) -> "Outcome":
        metrics = run.metrics
        return cls(cell, status, metrics.get(names.TRAIN_SECONDS), run.run_id,
                   metrics={k: v for k, v in metrics.items() if k.startswith(names.TEST_PREFIX)})

    def line(self, reason_seen: bool) -> str:
        """One line for the log; a failure's reason only the first time it is seen."""
        head = f"{self.status:<11} {self.cell.run_name}"
        if self.status in ("done", "skipped") and self.seconds is not None:
            loss = self.metrics.get(TABLE_METRICS[0])
            return f"{head}  {self.seconds:.1f} s" + (f"  test/loss {loss:.4g}" if loss is not None else "")
        if self.reason:
            kind = self.reason.split(":")[0]
            return f"{head}  ({kind}, as above)" if reason_seen else f"{head}  {self.reason}"
        return head


def duration(seconds: float) -> str:
    """3725.0 -> '1 h 02 min 05 s'."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


@dataclass
class GridSummary:
    grid: str
    outcomes: list[Outcome]
    wall_seconds: float

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_status(self) -> int:
        """Non-zero when a cell failed (a busy cell is another worker's, not a failure)."""
        return 1 if self.count("failed") else 0

    def slowest(self) -> Outcome | None:
        timed = [o for o in self.outcomes if o.seconds is not None]
        return max(timed, key=lambda o: o.seconds) if timed else None

    def table(self) -> str:
        headers = ["cell", "seed", "status", "train s", *TABLE_METRICS]
        rows = [[o.cell.key, o.cell.seed, o.status, o.seconds,
                 *(o.metrics.get(m) for m in TABLE_METRICS)] for o in self.outcomes]
        return tabulate(rows, headers, floatfmt=("", "", "", ".1f", *[".4g"] * len(TABLE_METRICS)),
                        missingval="")

    def failures(self) -> list[str]:
        """Each distinct reason a cell failed or was busy, once, with the cells it stopped."""
        by_reason: dict[tuple[str, str], list[str]] = {}
        for o in self.outcomes:
            if o.status in ("failed", "busy"):
                by_reason.setdefault((o.status, o.reason), []).append(o.cell.run_name)
        lines = []
        for (status, reason), cells in by_reason.items():
            shown = ", ".join(cells[:4]) + (f" and {len(cells) - 4} more" if len(cells) > 4 else "")
            lines.append(f"{status}: {len(cells)} cell{'s' * (len(cells) > 1)} ({shown}): {reason}")
        return lines

    def footer(self) -> str:
        shown = [s for s in STATUSES if self.count(s) or s in ("done", "failed")]
        counts = ", ".join(f"{self.count(s)} {s}" for s in shown)
        text = f"grid {self.grid}: {len(self.outcomes)} cells: {counts}; wall time {duration(self.wall_seconds)}"
        slowest = self.slowest()
        if slowest is not None:
            text += f"; slowest cell {slowest.cell.run_name} ({duration(slowest.seconds)})"
        return text + "."

    def write_csv(self, path: Path) -> None:
        """One row per cell: what the table shows, plus every test metric and the run id."""
        metrics = sorted({m for o in self.outcomes for m in o.metrics})
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["cell", "seed", "config_hash", "status", "train_seconds", "run_id",
                             "reason", "tuned_from", *metrics])
            for o in self.outcomes:
                writer.writerow([o.cell.key, o.cell.seed, o.cell.config_hash, o.status, o.seconds,
                                 o.run_id, o.reason, o.cell.tuned_from or "",
                                 *(o.metrics.get(m, "") for m in metrics)])
