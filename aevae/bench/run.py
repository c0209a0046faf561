"""`aevae bench`: every cell of a grid through `train`, resumable and fault-isolated.

One MLflow experiment per grid (`bench/<grid>`). A cell whose FINISHED run (same grid, same
config hash, same version label: see aevae.bench.versions) exists is skipped, so a grid that
was interrupted, by Ctrl-C, kill -9 or a restart, is finished by running it again, and a
grid run for changed code is a new version beside the old one. Cells are claimed in MLflow
before they train (see aevae.bench.claims), so workers, in one command or several, never
train a cell twice. A cell that fails (a diverging loss, no memory, a dataset that cannot be
had) ends its run FAILED with the reason and the grid goes on; the exit status says whether
any failed. Where the cells run is the executor's business (aevae.executors): this process,
worker processes, or Ray tasks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from aevae.bench import claims, versions
from aevae.bench.defaults import RESULTS_DIR
from aevae.bench.grid import Cell, Grid, TunedLookup, expand, select
from aevae.bench.outcomes import GridSummary, Outcome
from aevae.bench.runner import BenchContext, CellJob, run_job
from aevae.data import data_root
from aevae.resolve import dataset_info
from aevae.errors import ConfigError, DataError
from aevae.executors import Executor, ExecutorOptions, Job, Lost, NotRun, Stopped, open_executor
from aevae.plugins import plugin_files
from aevae.folders import FolderError
from aevae.redact import redact
from aevae.tracking import absolute_uri, failure_reason, links, names
from aevae.tracking.checks import StoreLost
from aevae.tracking.runs import EXPERIMENT_TAG_CHARS, RunStore
from aevae.tracking.workers import DEFAULT_GRACE_S, this_worker


@dataclass(frozen=True)
class BenchRequest:
    """What `aevae bench` asks of a grid: which cells (`only`, `seeds` instead of the file's),
    as which version (`label`; None: the checkout's), whether to train finished cells again
    (`force`) and with which study's parameters (`tuned`), where data and runs are, and what
    each run logs. The caller checks the grid, the folders and the store first."""

    grid: Grid
    only: tuple[str, ...] = ()
    seeds: tuple[int, ...] | None = None
    label: str | None = None
    force: bool = False
    tuned: TunedLookup | None = None
    data_dir: str | None = None
    tracking_uri: str | None = None
    results_dir: str = RESULTS_DIR
    log_artifacts: bool = True
    system_metrics: bool = True
    grace_s: float = DEFAULT_GRACE_S
    remeasure: bool = False  # forget this machine's measured settings first (aevae.training.measured)


class Progress:
    """The grid bar (cells done / total, ETA) with one log line per cell above it."""

    def __init__(self, total: int, finished: int, grid: str):
        self.bar = tqdm(total=total, initial=finished, desc=f"grid {grid}", unit="cell",
                        position=0, disable=None, smoothing=0.1)
        self.reasons: set[str] = set()
        self.outcomes: list[Outcome] = []

    def __call__(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == "not run":  # queued when the grid stopped: the table lists them
            return
        self.bar.write(outcome.line(reason_seen=outcome.reason in self.reasons))
        if outcome.detail and outcome.reason not in self.reasons:
            self.bar.write(outcome.detail.rstrip())
        self.reasons.add(outcome.reason)
        self.bar.update(1)


def grid_tags(grid: Grid, cells: list[Cell], version: str) -> dict[str, str]:
    """Experiment tags that tell the report which cells the version expects and what the
    axes are; checked before the experiment is created."""
    expected = json.dumps([{"cell": c.key, "seed": c.seed, "config_hash": c.config_hash} for c in cells])
    if len(expected) > EXPERIMENT_TAG_CHARS:
        raise ConfigError(f"{grid.path}: the grid has {len(cells)} cells, too many to list in one "
                          f"MLflow experiment tag: split it into smaller grid files.")
    tags = {names.versioned(names.GRID_CELLS, version): expected,
            names.versioned(names.GRID_AXES, version): json.dumps(grid.axes_json())}
    if grid.description:
        tags[names.NOTE] = grid.description
    return tags


def check_plugins(cells: list[Cell]) -> None:
    """Hold each plug-in model of the grid to its protocol on one batch of its cells' shape
    (aevae.models.check), once per config: a broken one is one sentence, before any cell
    trains or any run is claimed. Built-in models are left alone: their tests hold them."""
    from aevae.models import check

    configs = {dataclasses.replace(c.config, seed=0) for c in cells
               if any(kind in ("model", "arch") for kind, _, _ in c.config.plugins)}
    for cfg in configs:
        check(cfg, dataset_info(cfg).shape)


def run_grid(request: BenchRequest, executor: ExecutorOptions = ExecutorOptions()) -> GridSummary:
    """Run the request's cells, skipping the version's finished ones unless forced; print a
    line per cell and the summary; write the summary CSV; return the summary. A stop
    (Ctrl-C, kill, a lost store) still prints the table, with each cell's run as it ended."""
    started = time.perf_counter()
    version = versions.check_label(versions.default_label() if request.label is None else request.label)
    grid = request.grid if request.seeds is None else dataclasses.replace(request.grid, seeds=check_seeds(request.seeds))
    cells = expand(grid, request.tuned)
    selected = select(cells, list(request.only))
    tags = grid_tags(grid, cells, version)
    store = RunStore(request.tracking_uri)
    with open_executor(executor, code=plugin_files(p for c in selected for p in c.config.plugins)) as running:
        running.require_shared("MLflow store", store.tracking_uri)
        # every worker reads the same absolute paths, whatever its working folder
        store = RunStore(absolute_uri(store.tracking_uri))
        ctx = open_experiment(store, grid, tags, request, version)
        measure = executor.executor == "local" and executor.workers == "auto"
        return _run(grid, cells, selected, ctx, store, running, started, request, measure)


def _run(grid: Grid, cells: list[Cell], selected: list[Cell], ctx: BenchContext, store: RunStore,
         executor: Executor, started: float, request: BenchRequest, measure_pool: bool = False) -> GridSummary:
    done = claims.finished_runs(store, ctx.experiment_id, grid.name, ctx.version)
    check_data_unchanged(grid, cells, done)
    finished = {} if request.force else done
    skipped = [Outcome.from_run(c, "skipped", finished[c.config_hash])
               for c in selected if c.config_hash in finished]
    todo = [c for c in selected if c.config_hash not in finished]
    print(f"grid {grid.name}, version {ctx.version or '(unlabelled)'}: {len(selected)} of {len(cells)} cells "
          f"selected, {len(skipped)} finished earlier, {len(todo)} to run; MLflow experiment "
          f"'{ctx.experiment}' at {redact(store.tracking_uri)}")
    if request.tuned is not None:
        for name in dict.fromkeys("/".join((c.config.model, c.config.arch, c.config.dataset))
                                  for c in selected if c.tuned_from is None):
            print(f"no tuned study for {name}: its cells use the grid's settings")
    if request.remeasure:
        forget_settings(selected)
    if measure_pool and len(todo) > 1:
        from aevae.bench.pool import choose_pool

        choice = choose_pool(todo)
        executor.workers = choice.workers  # the local executor's pool is made when the cells are handed over
        for line in choice.lines():
            print(line)
    progress = Progress(len(selected), len(skipped), grid.name)
    csv_path = Path(request.results_dir) / grid.name / "summary.csv"
    try:
        run_cells(todo, ctx, executor, reporter(store, ctx, progress))
    except (KeyboardInterrupt, StoreLost) as exc:
        progress.bar.close()
        outcomes = skipped + progress.outcomes
        if not isinstance(exc, StoreLost):  # a lost store can no longer be asked
            outcomes = settle(store, ctx, selected, outcomes, failure_reason(exc))
        summary = summarize(grid, selected, outcomes, started)
        with contextlib.suppress(FolderError):  # the stop is what the command reports
            save(summary, csv_path)
        raise
    progress.bar.close()
    claims.reap(store, ctx.experiment_id, ctx.grace_s)  # a worker process that died mid-cell
    summary = save(summarize(grid, selected, skipped + progress.outcomes, started), csv_path)
    print(runs_line(store.tracking_uri, ctx.experiment_id))
    return summary


def check_data_unchanged(grid: Grid, cells: list[Cell], finished: dict) -> None:
    """Stop before anything trains when a dataset file of the user's changed since finished
    runs of this version recorded its sha256: the version's cells would not share their data,
    and its report would mix them."""
    for cell in cells:
        run = finished.get(cell.config_hash)
        recorded = run.tags.get(names.DATASET_DIGEST) if run is not None else None
        if not recorded:
            continue
        info = dataset_info(cell.config)  # read once per process, and again only once the file changes
        now = getattr(info, "digest", None)
        if now and now != recorded:
            where = getattr(info, "path", info.name)
            raise DataError(f"{where} changed since this version of grid {grid.name} trained on it (sha256 "
                            f"{recorded[:12]} then, {now[:12]} now): restore the file, or run the grid as a new "
                            f"version with --label (e.g. --label data-{now[:7]}).")


def forget_settings(cells: list[Cell]) -> None:
    """`--remeasure`: this machine's measured settings and pool timings are forgotten, so the
    grid measures them again (a Ray cluster's other machines keep theirs)."""
    from aevae.numerics import Numerics
    from aevae.training.measured import remeasure

    if cells:
        remeasure(Numerics.of(cells[0].config))


def runs_line(tracking_uri: str, experiment_id: str) -> str:
    """Where a person sees the runs: the experiment's runs table in MLflow's UI, in its
    model-training view (MLflow 3 starts on GenAI traces; see aevae.tracking.links)."""
    ui = links.ui_base(tracking_uri)
    if ui is None:
        return f"runs in the MLflow UI: make ui, then {links.experiment_url(links.LOCAL_UI, experiment_id)}"
    return f"runs in the MLflow UI: {links.experiment_url(ui, experiment_id)}"


def run_cells(todo: list[Cell], ctx: BenchContext, executor: Executor, report) -> None:
    """Every cell as a job of the executor; `report(outcome)` as each ends. Several at once
    take the longest first, so the grid does not end on one long cell."""
    if not todo:
        return
    described = executor.describe()
    if described:
        tqdm.write(described)
    order = todo if executor.workers == 1 else longest_first(todo)
    jobs = [Job(CellJob(cell, ctx), cell.config.dataset, ctx.data_dir, cell.config.plugins) for cell in order]
    executor.map(run_job, jobs, lambda job, result: report(as_outcome(job.payload.cell, result)))


def as_outcome(cell: Cell, result) -> Outcome:
    """A cell's outcome from what its job returned, or from how the job ended."""
    if isinstance(result, Outcome):
        return result
    if isinstance(result, Lost):
        return Outcome(cell, "failed", reason=result.reason, lost_task=result.task)
    if isinstance(result, Stopped):
        return Outcome(cell, "interrupted", reason=result.reason)
    if isinstance(result, NotRun):
        return Outcome(cell, "not run")
    raise TypeError(f"a cell's job returned {result!r}")


def longest_first(cells: list[Cell]) -> list[Cell]:
    """The pool's order: conv cells before MLP cells, then the most epochs times pixels first,
    so the grid does not end with one worker on a long cell while the others idle (on a
    2-core CPU the lab grid's MNIST conv VAE took 1.3x the conv AE and 4x the MLP VAE)."""
    def size(cell: Cell) -> tuple[bool, int]:
        return cell.config.arch == "conv", cell.config.epochs * math.prod(dataset_info(cell.config).shape)
    return sorted(cells, key=size, reverse=True)


def reporter(store: RunStore, ctx: BenchContext, progress: Progress):
    """The per-cell report: the cell's line, the runs a lost task left RUNNING closed, and a
    failed cell whose store has gone away stops the grid (every later cell would fail the
    same way), with one sentence instead of a cascade."""

    def report(outcome: Outcome) -> None:
        if outcome.lost_task:  # every attempt of the task died: its last run is still RUNNING
            with contextlib.suppress(Exception):  # a store that went away: said below
                claims.close_task_runs(store, ctx.experiment_id, {outcome.lost_task})
        why = store.lost() if outcome.status == "failed" else None
        if why is None:
            progress(outcome)
            return
        progress(dataclasses.replace(outcome, detail="", reason=f"StoreLost: {why}"))
        raise StoreLost(f"the MLflow store {redact(store.tracking_uri)} went away during the grid "
                        f"({why}), so the grid stopped: bring the store back, or point --tracking-uri "
                        f"at another, and run the grid again to resume it.")

    return report


def settle(store: RunStore, ctx: BenchContext, selected: list[Cell], outcomes: list[Outcome],
           reason: str) -> list[Outcome]:
    """After a stop: close as KILLED the runs this process claimed and those of its workers
    that died, then give each cell this bench touched the state its run ended in, so the
    table says KILLED (interrupted), FAILED or FINISHED, never "not run" for a run that began."""
    claims.close_mine(store, ctx.experiment_id, reason)
    claims.reap(store, ctx.experiment_id, ctx.grace_s)
    ours = {run.tags.get(names.CONFIG_HASH): run
            for run in store.find(ctx.experiment_id, tags={names.BENCH_INVOCATION: ctx.invocation})}
    by_cell = {o.cell: o for o in outcomes}
    for cell in selected:
        run, known = ours.get(cell.config_hash), by_cell.get(cell)
        if run is None or (known is not None and known.status in ("done", "skipped", "busy")):
            continue
        if known is not None and known.status == "failed" and run.status == "FAILED":
            continue  # the worker's own account, with its detail
        by_cell[cell] = as_ended(cell, run)
    return list(by_cell.values())


def as_ended(cell: Cell, run) -> Outcome:
    """A cell's outcome read from its run's final state."""
    if run.status == "FINISHED":
        return Outcome.from_run(cell, "done", run)
    status = "failed" if run.status == "FAILED" else "interrupted"
    return Outcome(cell, status, run_id=run.run_id, reason=run.tags.get(names.FAILURE_REASON, run.status))


def check_seeds(seeds: tuple[int, ...]) -> tuple[int, ...]:
    if not seeds or len(set(seeds)) < len(seeds):
        raise ConfigError("--seeds must list one or more distinct integers, e.g. --seeds 0,1,2.")
    return tuple(seeds)


def open_experiment(store: RunStore, grid: Grid, tags: dict[str, str], request: BenchRequest,
                    version: str) -> BenchContext:
    """The grid's experiment, described by `tags`, with the runs of dead workers closed."""
    experiment = names.bench_experiment(grid.name)
    experiment_id = store.experiment(experiment)
    store.set_experiment_tags(experiment_id, tags)
    closed = claims.reap(store, experiment_id, request.grace_s)
    if closed:
        print(f"closed {len(closed)} run(s) left RUNNING by dead workers: "
              + ", ".join(r.name for r in closed))
    # with --force, only runs finished from now on count as done
    now_ms = int(time.time() * 1000)
    return BenchContext(experiment, experiment_id, store.tracking_uri, os.path.abspath(data_root(request.data_dir)),
                        request.log_artifacts, now_ms if request.force else 0, version, request.grace_s,
                        request.system_metrics, f"{this_worker()}:{now_ms}")


def summarize(grid: Grid, selected: list[Cell], outcomes: list[Outcome], started: float) -> GridSummary:
    """The summary, in the grid's cell order, and printed: the table first, so a CSV that
    cannot be written never takes the record of the runs with it."""
    by_cell = {o.cell: o for o in outcomes}
    ordered = [by_cell.get(c) or Outcome(c, "not run") for c in selected]
    summary = GridSummary(grid.name, ordered, time.perf_counter() - started)
    print()
    print(summary.table())
    for line in summary.failures():
        print(line)
    print(summary.footer())
    return summary


def save(summary: GridSummary, path: Path) -> GridSummary:
    """Write the summary's CSV; a folder that went away or filled up is one sentence."""
    try:
        summary.write_csv(path)
    except OSError as exc:
        raise FolderError(f"cannot write {path} ({exc.strerror or type(exc).__name__}); the table above "
                          f"and the runs in MLflow hold the results (`aevae report {summary.grid}` reads "
                          f"them): free the folder or give another with --results-dir.") from None
    print(f"table written to {path}")
    return summary
