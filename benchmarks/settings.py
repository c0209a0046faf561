"""Every fixed execution setting against the one this machine measured, per model of a grid.

For each distinct model of the grid's cells (benchmarks/lab.toml's MNIST cells unless
`--only` says otherwise) it takes the settings a run of it would take here
(aevae.training.measured: measured now, or read from this machine's cache), then times
every fixed setting one can name: contiguous or channels-last, the transposed convolution
native or as a fold (eager, each timed as aevae times its candidates, all interleaved) and,
with `--compile`, the measured layout compiled (its compile seconds and its steps). Each
timing is done `--repeats` times, so the spread between repeats is the noise a difference
must beat. The cell's estimated step seconds (its steps times the median step, plus the
compile time for a compiled setting) say what each setting would cost the cell.

A second table times the pool layouts aevae.bench.pool chooses between (one worker with
every thread, one single-thread worker per core, ...): the grid's estimated wall time for
each, `--repeats` times, and the one `--workers auto` picks.

    .venv/bin/python benchmarks/settings.py --threads 1 --compile
    ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/settings.py --threads 1

Settings measured at one thread are the ones a `--workers auto` grid of one-thread workers
uses; `--threads 2` gives those of one worker with both cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import pandas as pd
import torch

from aevae.bench.pool import cell_steps, distinct_models, layouts, makespan, measure_step_seconds, model_label
from aevae.errors import AevaeError
from aevae.machine import usable_cores
from aevae.numerics import Numerics
from aevae.training import measured
from cells import grid_cells


def settings_rows(cfg, shape, steps: int, repeats: int, compile_too: bool) -> list[dict]:
    """One row per fixed setting of one model: its step seconds in each repeat, the cell's
    estimated seconds, and whether it is what the measurement chose."""
    numerics = Numerics.of(cfg)
    choice = measured.choose(cfg, shape, numerics, max(steps, measured.MIN_MEASURED_STEPS))
    eager = [s for s in measured.candidates(cfg, shape) if not s.compile]
    timed = [measured.time_steps(cfg, shape, numerics, eager) for _ in range(repeats)]
    rows = []
    for settings in eager:
        seconds = [t[settings.name] for t in timed]
        rows.append({"setting": settings.name, "step ms": " / ".join(f"{1e3 * s:.1f}" for s in seconds),
                     "cell s (est.)": steps * statistics.median(seconds), "compile s": 0.0})
    if compile_too:
        best = dataclasses.replace(choice.settings, compile=False)
        compiled = [measured.time_compile(cfg, shape, numerics, best) for _ in range(repeats)]
        if all("step" in c for c in compiled):
            rows.append({"setting": dataclasses.replace(best, compile=True).name,
                         "step ms": " / ".join(f"{1e3 * c['step']:.1f}" for c in compiled),
                         "cell s (est.)": statistics.median(c["seconds"] + steps * c["step"] for c in compiled),
                         "compile s": statistics.median(c["seconds"] for c in compiled)})
        else:
            rows.append({"setting": "compiled", "step ms": next(c["error"] for c in compiled if "error" in c)})
    for row in rows:
        row["chosen"] = "yes" if row["setting"] == choice.settings.name else ""
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=None, metavar="KEY=VALUE",
                        help="lab cells whose models to time, as `aevae bench --only` takes them "
                             "(default: dataset=mnist)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the settings table (default: 1)")
    parser.add_argument("--repeats", type=int, default=2, help="timings of each setting (default: 2)")
    parser.add_argument("--compile", action="store_true", help="time the measured layout compiled too")
    parser.add_argument("--no-pool", action="store_true", help="leave out the pool layouts' table")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be at least 1.")
    try:
        cells = grid_cells("lab", args.only or ["dataset=mnist"], fields={"device": "cpu"})
    except AevaeError as exc:
        parser.error(str(exc))
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {usable_cores()} cores")
    torch.set_num_threads(args.threads)
    rows = []
    for label, (cfg, shape, steps) in distinct_models(cells).items():
        for row in settings_rows(cfg, shape, steps, args.repeats, args.compile):
            rows.append({"model": label, "threads": args.threads, "steps": steps, **row})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f"))
    if args.no_pool:
        return
    torch.set_num_threads(usable_cores())
    models, pool_rows = distinct_models(cells), []
    numerics = Numerics.of(cells[0].config)
    for workers, threads in layouts(usable_cores(), len(cells)):
        estimates = []
        for _ in range(args.repeats):
            seconds, _ = measure_step_seconds(models, workers, threads, numerics)
            estimates.append(makespan([cell_steps(c) * seconds[model_label(c)] for c in cells], workers))
        pool_rows.append({"workers x threads": f"{workers}x{threads}",
                          "grid steps s (est.)": " / ".join(f"{e:.0f}" for e in estimates)})
    print()
    print(pd.DataFrame(pool_rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
