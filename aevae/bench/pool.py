"""How many worker processes a grid's cells run in on this machine, and how many torch
threads each has: measured, not assumed (`--workers auto`, which `make bench` passes).

These small models use a second thread poorly on some CPUs and well on others, and two
processes on two cores slow each other down by how much memory traffic they share, so both
layouts are timed on the grid's own models: every distinct model of the grid takes its
training steps (at its measured settings, aevae.training.measured) in W processes at once
with T/W threads each, for each candidate W. The grid's wall time at W is then estimated
as the pool would run it, longest cells first (each cell's steps times its measured step
seconds, the cells dealt to the least-loaded worker). The smallest estimate wins unless a
layout with more workers is within POOL_TIE of it: estimates closer than that are a tie
(measured on a 2-core VM: two repeats of one estimate differed by 4-5%, and the one-worker
estimate was 12% under the steps the grid then took), and more workers is the safer side of
a tie, since a run's own work in them does not depend on how well it uses a second thread.

The timings are cached with the settings' (same file, same machine fingerprint), so a grid
measures them once per machine; the estimates and the choice are printed in the bench's
header. The estimate leaves out what a run does besides its steps (evaluation, the analysis,
logging: 6-14% of the lab grid's runs, benchmarks/parts.py).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from dataclasses import dataclass

import torch

from aevae.bench.grid import Cell
from aevae.machine import AUTO_MAX_WORKERS, auto_workers, usable_cores
from aevae.numerics import Numerics
from aevae.resolve import dataset_info
from aevae.training import measured

BARRIER_TIMEOUT_S = 600  # a worker that has not reached the barrier by then has failed
MEASURING_SHARE = 0.05  # measuring may cost at most this share of a grid's training steps
POOL_TIE = 0.10  # estimates within this share of the smallest are a tie, which more workers win


@dataclass(frozen=True)
class PoolChoice:
    """The pool's workers and threads each, the estimated seconds of the grid's steps for
    each candidate ('2x1': two workers of one thread), the settings each model trains with
    at the chosen threads, and how the choice was made: 'measured' (now), 'cached'
    (measured earlier on this machine) or 'default' (a grid too short to pay for measuring:
    one single-thread worker per core, aevae.machine.auto_workers)."""

    workers: int
    threads: int
    estimates: dict[str, float]
    settings: dict[str, str]  # model label -> settings name (source)
    source: str
    seconds: float = 0.0  # spent measuring now

    def lines(self) -> list[str]:
        """The bench header's account of the choice."""
        if self.source == "default":
            return [f"workers: {self.workers} x {self.threads} thread(s) (not measured: the grid's training steps "
                    f"are too few to pay for measuring; one worker per core)"]
        shown = ", ".join(f"{name} about {seconds:.0f} s" for name, seconds in self.estimates.items())
        how = (f"measured now, in {self.seconds:.0f} s" if self.source == "measured"
               else "measured earlier on this machine")
        lines = [f"workers: {self.workers} x {self.threads} thread(s) ({how}; the grid's training steps: {shown})"]
        lines += [f"settings of {label}: {text}" for label, text in self.settings.items()]
        return lines


def layouts(cores: int, cells: int) -> list[tuple[int, int]]:
    """(workers, threads each) to try: one worker with every core, one worker per core, and
    the halves between, never more workers than cells or AUTO_MAX_WORKERS."""
    found, workers = [], 1
    while workers <= min(cores, cells, AUTO_MAX_WORKERS):
        found.append((workers, cores // workers))
        workers *= 2
    top = min(cores, cells, AUTO_MAX_WORKERS)
    if (top, cores // top) not in found:
        found.append((top, cores // top))
    return found


def choose_pool(cells: list[Cell]) -> PoolChoice:
    """The pool layout whose estimated wall time for `cells` is smallest on this machine;
    one worker per core, unmeasured, for a grid whose steps would not pay for measuring."""
    started = time.perf_counter()
    cores = usable_cores()
    models = distinct_models(cells)
    numerics = Numerics.of(cells[0].config)  # the driver's: its fingerprint keys the pool timings
    candidates = layouts(cores, len(cells))
    cached = {layout: cached_step_seconds(models, *layout, numerics) for layout in candidates}
    if any(found is None for found in cached.values()) and not worth_measuring(cells, len(models), candidates):
        workers = min(auto_workers(), len(cells))
        return PoolChoice(workers, max(1, cores // workers), {}, {}, "default")
    timings, settings = {}, {}
    for layout in candidates:
        timings[layout], settings[layout] = cached[layout] or measure_step_seconds(models, *layout, numerics)
    estimates = {(w, t): makespan([cell_steps(c) * timings[w, t][model_label(c)] for c in cells], w)
                 for w, t in candidates}
    workers, threads = pick_layout(estimates)
    fresh = not all(cached.values())
    return PoolChoice(workers, threads, {f"{w}x{t}": s for (w, t), s in estimates.items()},
                      settings[workers, threads], "measured" if fresh else "cached",
                      time.perf_counter() - started if fresh else 0.0)


def pick_layout(estimates: dict[tuple[int, int], float]) -> tuple[int, int]:
    """The (workers, threads) of the smallest estimate, or of the most workers among the
    layouts within POOL_TIE of it."""
    best = min(estimates.values())
    return max((layout for layout, seconds in estimates.items() if seconds <= best * (1 + POOL_TIE)),
               key=lambda layout: layout[0])


def worth_measuring(cells: list[Cell], models: int, candidates: list) -> bool:
    """Whether the grid's steps are at least MEASURING_SHARE^-1 times the steps measuring
    takes: every model's settings (up to four eager candidates) and every pool layout."""
    per_candidate = measured.WARMUP_STEPS + measured.ROUNDS * measured.TIMED_STEPS
    return sum(cell_steps(c) for c in cells) * MEASURING_SHARE >= models * (4 + len(candidates)) * per_candidate


def model_label(cell: Cell) -> str:
    """The model a cell trains, as the header names it (cells of one shape share it)."""
    cfg = cell.config
    return f"{cfg.model}/{cfg.arch}/{'x'.join(map(str, dataset_info(cfg).shape))}"


def distinct_models(cells: list[Cell]) -> dict[str, tuple]:
    """One (config, shape, steps) per model label: the grid's distinct models to time."""
    found = {}
    for cell in cells:
        found.setdefault(model_label(cell), (cell.config, dataset_info(cell.config).shape, cell_steps(cell)))
    return found


def cell_steps(cell: Cell) -> int:
    cfg = cell.config
    images = max(1, dataset_info(cfg).train_images - cfg.val_size) if dataset_info(cfg).train_images else 50_000
    return measured.run_steps(cfg, min(images, cfg.subset) if cfg.subset else images)


def makespan(costs: list[float], workers: int) -> float:
    """The pool's wall time for jobs of `costs`, dealt longest first to the least-loaded
    of `workers` (the order aevae.bench.run gives a pool)."""
    loads = [0.0] * workers
    for cost in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += cost
    return max(loads)


def cached_step_seconds(models: dict[str, tuple], workers: int, threads: int, numerics: Numerics
                        ) -> tuple[dict[str, float], dict[str, str]] | None:
    """What `measure_step_seconds` found before on this machine, or None."""
    with measured.SettingsCache.for_machine(numerics) as cache:
        known = {label: cache.get(_key(cfg, shape, numerics, workers, threads)).get("pool")
                 for label, (cfg, shape, _) in models.items()}
    if any(entry is None for entry in known.values()):
        return None
    return {label: e["step"] for label, e in known.items()}, {label: e["settings"] for label, e in known.items()}


def measure_step_seconds(models: dict[str, tuple], workers: int, threads: int, numerics: Numerics
                         ) -> tuple[dict[str, float], dict[str, str]]:
    """Seconds a step of each model takes while `workers` processes of `threads` threads
    each train at once, and the settings each model takes at `threads` threads; cached."""
    jobs = [(cfg, shape, steps) for cfg, shape, steps in models.values()]
    if workers == 1:
        results = [_time_models(jobs, threads, False)]
    else:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(workers)
        with context.Pool(workers, initializer=_hold_barrier, initargs=(barrier,)) as pool:
            results = pool.starmap(_time_models, [(jobs, threads, True)] * workers)
    found, chosen = {}, {}
    with measured.SettingsCache.for_machine(numerics) as cache:
        for i, (label, (cfg, shape, _)) in enumerate(models.items()):
            found[label] = max(result[i][0] for result in results)  # the slowest worker sets the pace
            chosen[label] = results[0][i][1]
            key = _key(cfg, shape, numerics, workers, threads)
            cache.put(key, {**cache.get(key), "pool": {"step": found[label], "settings": chosen[label]}})
    return found, chosen


def _key(cfg, shape, numerics: Numerics, workers: int, threads: int) -> str:
    return f"pool:{measured.shape_key(cfg, shape, numerics)}:{workers}x{threads}"


_barrier = None  # in a measuring process: where the processes wait for each other


def _hold_barrier(barrier) -> None:
    global _barrier
    _barrier = barrier  # a Barrier reaches a process only as it starts (multiprocessing's rule)


def _time_models(jobs: list[tuple], threads: int, together: bool) -> list[tuple[float, str]]:
    """In one of the measuring processes: each model's settings (measured at `threads`
    threads, once, whichever process gets there first), then, with every process at the
    barrier when `together`, its step seconds at those settings."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        found = []
        for cfg, shape, steps in jobs:
            numerics = Numerics.of(cfg)
            choice = measured.choose(cfg, shape, numerics, max(steps, measured.MIN_MEASURED_STEPS))
            if together:
                _barrier.wait(BARRIER_TIMEOUT_S)
            timed = measured.time_steps(cfg, shape, choice.applied(numerics), [_eager(choice.settings)])
            found.append((next(iter(timed.values())), choice.label))
        return found
    finally:
        torch.set_num_threads(previous)


def _eager(settings: measured.Settings) -> measured.Settings:
    """A compiled model's steps are timed eager here: its compile time is the run's own
    choice (aevae.training.measured), made per run from the run's length."""
    return dataclasses.replace(settings, compile=False)
