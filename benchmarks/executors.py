"""What running on many machines costs and gives, measured on this machine in one run.

1. grid: the MNIST part of the lab grid on a short budget (benchmarks/script_grids/
   executors.toml: its 4 cells ({AE, VAE} x {MLP, conv}), seed 0, 1 epoch on 10000 images
   per split, the lab's lr and batch size, analysis and artifacts on) as whole `aevae bench`
   commands: the local executor (one process, every core), local `--workers 2`, and Ray with
   2 x 1-CPU tasks on a cluster the command starts for itself. Interleaved, each in a fresh
   SQLite store.
2. tracking: one small cell (script_grids/executors_tracking.toml) trained in this process
   through `run_cell` (claim, heartbeat, params, per-epoch metrics, figures, model,
   retirement of the older run) against the embedded SQLite store and against an MLflow
   server on PostgreSQL with proxied artifacts (the stack of `make services`, started here
   in a temporary folder). Interleaved; the difference of the medians is the server's cost
   per run.
3. node death: a Ray cluster of a head and two 1-CPU nodes (Ray's cluster_utils, loopback);
   one long cell (script_grids/executors_node_death.toml); the node training it is removed;
   the seconds until the retried task has claimed the cell on the other node (its new run
   starts) and until that run's first epoch is logged.

    .venv/bin/python benchmarks/executors.py --data-dir ../shared/data
    .venv/bin/python benchmarks/executors.py --data-dir ../shared/data --only tracking --reps 5

A part's budget is its grid file's; edit the file to change it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aevae.bench.grid import load_grid
from cells import grid_cells, script_grid
from timing import Stopwatch, Timings, recorded

MODES = {"local": [], "local --workers 2": ["--workers", "2"],
         "ray 2 x 1 CPU": ["--executor", "ray", "--ray-address", "local", "--cpus-per-cell", "1"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aevae(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "aevae", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"aevae {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def grid(args, folder: Path) -> None:
    grid_file = script_grid("executors")
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    for rep in range(args.reps):
        order = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
        for mode in order:
            run = folder / f"grid-{rep}-{mode.replace(' ', '_')}"
            run.mkdir()
            with Stopwatch() as clock:
                aevae("bench", grid_file, "--tracking-uri", f"sqlite:///{run}/mlflow.db", "--data-dir",
                      args.data_dir, "--results-dir", str(run), *MODES[mode], cwd=run)
            seconds[mode].append(clock.seconds)
            print(f"  grid, {mode}: {seconds[mode][-1]:.1f} s", flush=True)
    base = Timings(tuple(seconds["local"])).median
    print(f"\n{load_grid(grid_file).description} {args.reps} interleaved rep(s), whole `aevae bench` commands:\n")
    print("| executor | wall s (median) | runs | local / this |\n|---|---|---|---|")
    for mode, values in seconds.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        median = Timings(tuple(values)).median
        print(f"| {mode} | {median:.1f} | {shown} | {base / median:.2f} |")


def mlflow_client_class():
    """MLflow's client class, for the two measurements aevae.tracking has no call for: the
    seconds spent inside the client's calls (ClientTimer wraps its public methods, since a
    cell's tracking goes through the client from several modules of the door), and the time
    a metric's first value was logged (StoreReader.metric_history drops each value's
    timestamp). The one MLflow import of benchmarks/."""
    from mlflow import MlflowClient  # see the docstring: the door offers neither measurement

    return MlflowClient


class ClientTimer:
    """Seconds this thread spends inside MlflowClient's public methods (outermost calls only):
    the tracking part of a cell, without the training around it, which load on a shared
    machine makes noisy. The heartbeat's thread is left out: it does not hold the cell up."""

    def __init__(self):
        self.call_seconds: list[float] = []  # of each outermost call, since the list was last cleared
        self._depth, self._main = 0, threading.main_thread()
        client = mlflow_client_class()
        for name in [n for n in vars(client) if not n.startswith("_")]:
            if callable(getattr(client, name)):
                setattr(client, name, self._wrap(getattr(client, name)))

    def _wrap(self, method):
        timed = recorded(method, self.call_seconds)

        @functools.wraps(method)
        def outermost(*args, **kwargs):
            if threading.current_thread() is not self._main or self._depth:
                return method(*args, **kwargs)
            self._depth += 1
            try:
                return timed(*args, **kwargs)
            finally:
                self._depth -= 1

        return outermost


def tracking(args, folder: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
    import services  # deploy/services.py: the stack of `make services`, no module of the package
    from aevae.bench.runner import BenchContext, run_cell
    from aevae.data.cache import DataCache
    from aevae.tracking.runs import RunStore

    (cell,) = grid_cells(script_grid("executors_tracking"))
    experiment = f"bench/{cell.grid}"
    stack = services.Stack(folder / "services", "127.0.0.1", free_port(), free_port(), free_port())
    stack.folder.mkdir()
    stack.folder.chmod(0o755)
    services.postgres_up(stack)
    services.mlflow_up(stack)
    timer = ClientTimer()
    try:
        stores = {"SQLite": f"sqlite:///{folder}/tracking.db", "server": stack.mlflow_url}
        contexts = {}
        for name, uri in stores.items():
            experiment_id = RunStore(uri).experiment(experiment)
            contexts[name] = BenchContext(experiment, experiment_id, uri, args.data_dir, True, 0)
        cache = DataCache()
        cell_s, tracking_s, calls = ({name: [] for name in stores} for _ in range(3))
        run_cell(cell, contexts["SQLite"], cache)  # warm-up: imports, the reference classifier, the data
        for rep in range(args.reps):
            for name in (list(stores) if rep % 2 == 0 else list(reversed(stores))):
                # earlier runs do not count: the cell trains again
                ctx = dataclasses.replace(contexts[name], since_ms=int(time.time() * 1000))
                timer.call_seconds.clear()
                with Stopwatch() as clock:
                    outcome = run_cell(cell, ctx, cache)
                assert outcome.status == "done", outcome.reason
                cell_s[name].append(clock.seconds)
                tracking_s[name].append(sum(timer.call_seconds))
                calls[name].append(len(timer.call_seconds))
                print(f"  tracking, {name}: cell {cell_s[name][-1]:.2f} s, in MlflowClient "
                      f"{tracking_s[name][-1]:.2f} s ({calls[name][-1]} calls)", flush=True)
    finally:
        services.down(stack)
    med = {name: (Timings(tuple(cell_s[name])).median, Timings(tuple(tracking_s[name])).median) for name in stores}
    print(f"\n{load_grid(script_grid('executors_tracking')).description} Claim, params, metrics, analysis, "
          f"figures, model; {args.reps} interleaved reps, medians:\n")
    print("| store | s per cell | s in MlflowClient calls | calls |\n|---|---|---|---|")
    for name, shown in (("SQLite", "SQLite (embedded)"), ("server", "MLflow server on PostgreSQL, proxied artifacts")):
        print(f"| {shown} | {med[name][0]:.2f} | {med[name][1]:.2f} | {statistics.median(calls[name]):.0f} |")
    print(f"\nserver cost per run: {med['server'][1] - med['SQLite'][1]:+.2f} s in tracking calls "
          f"({med['server'][1] / med['SQLite'][1]:.2f} x SQLite's); whole cell {med['server'][0] - med['SQLite'][0]:+.2f} s")


def node_death(args, folder: Path) -> None:
    token = folder / "ray-token"
    token.write_text(secrets.token_hex(32))
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    import psutil
    from ray.cluster_utils import Cluster

    from aevae.tracking.runs import RunStore

    grid_file = script_grid("executors_node_death")
    node_args = {"num_cpus": 1, "object_store_memory": 150 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node_args, "num_cpus": 0, "include_dashboard": False})
    rows = []
    try:
        for rep in range(args.reps):
            for _ in range(2 - len(cluster.worker_nodes)):
                cluster.add_node(**node_args)
            store = f"sqlite:///{folder}/death-{rep}.db"
            # The store and the experiment exist before the driver starts, so the polling below
            # needs no wait for either; the driver finds and uses both.
            runs = RunStore(store)
            experiment_id = runs.experiment(f"bench/{Path(grid_file).stem}")
            driver = subprocess.Popen([sys.executable, "-m", "aevae", "bench", grid_file, "--executor",
                                       "ray", "--ray-address", cluster.address, "--tracking-uri", store,
                                       "--data-dir", args.data_dir, "--no-artifacts", "--results-dir", str(folder)],
                                      cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            victim = None
            while victim is None:
                time.sleep(0.2)
                running = runs.find(experiment_id, status="RUNNING")
                victim = next((r for r in running if "train/loss" in r.metrics), None)
            pid = int(victim.tags["worker"].rpartition(":")[2])
            ancestors = {p.pid for p in psutil.Process(pid).parents()}
            node = next(n for n in cluster.worker_nodes if n.all_processes["raylet"][0].process.pid in ancestors)
            died = time.time()
            cluster.remove_node(node, allow_graceful=False)
            again = None
            while again is None or "train/loss" not in again.metrics:
                time.sleep(0.2)
                again = next((r for r in runs.find(experiment_id) if r.run_id != victim.run_id), None)
            history = mlflow_client_class()(store).get_metric_history(again.run_id, "train/loss")
            first_epoch = min(m.timestamp for m in history)
            rows.append((again.start_time / 1000 - died, first_epoch / 1000 - died))
            print(f"  node death {rep}: claimed again after {rows[-1][0]:.1f} s, first epoch logged after "
                  f"{rows[-1][1]:.1f} s", flush=True)
            driver.wait()
    finally:
        cluster.shutdown()
    print("\nA node removed mid-cell (Ray's default node health checks), seconds after its death:\n")
    print("| rep | new run claimed on the other node | its first epoch logged |\n|---|---|---|")
    for i, (claimed, epoch) in enumerate(rows):
        print(f"| {i} | {claimed:.1f} | {epoch:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("AEVAE_DATA_DIR", "data"))
    parser.add_argument("--only", choices=("grid", "tracking", "node-death"), action="append")
    parser.add_argument("--reps", type=int, default=2, help="interleaved repetitions of each measurement")
    args = parser.parse_args()
    args.data_dir = os.path.abspath(args.data_dir)
    parts = {"grid": grid, "tracking": tracking, "node-death": node_death}
    folder = Path(tempfile.mkdtemp(prefix="aevae-executors-"))
    folder.chmod(0o755)  # PostgreSQL's own user reads it when this runs as root
    try:
        for name in args.only or parts:
            print(f"== {name}", flush=True)
            parts[name](args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
