"""What running on many machines costs and gives, measured on this machine in one run.

1. grid: a fixed subset of the MNIST part of the lab grid -- its 4 cells ({AE, VAE} x {MLP,
   conv}), seed 0, EPOCHS epochs on SUBSET images per split, the lab's lr and batch size,
   analysis and artifacts on -- as whole `aevae bench` commands: the local executor (one
   process, every core), local `--workers 2`, and Ray with 2 x 1-CPU tasks on a cluster the
   command starts for itself. Interleaved, each in a fresh SQLite store.
2. tracking: the same small cell trained in this process through `run_cell` (claim,
   heartbeat, params, per-epoch metrics, figures, model, retirement of the older run) against
   the embedded SQLite store and against an MLflow server on PostgreSQL with proxied
   artifacts (the stack of `make services`, started here in a temporary folder). Interleaved;
   the difference of the medians is the server's cost per run.
3. node death: a Ray cluster of a head and two 1-CPU nodes (Ray's cluster_utils, loopback);
   one long cell; the node training it is removed; the seconds until the retried task has
   claimed the cell on the other node (its new run starts) and until that run's first epoch
   is logged.

    .venv/bin/python benchmarks/executors.py --data-dir ../shared/data
    .venv/bin/python benchmarks/executors.py --data-dir ../shared/data --only tracking --reps 5
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = """
description = "The MNIST part of the lab grid, seed 0, {epochs} epochs on {subset} images: executor timing."
seeds = [0]
[base]
dataset = "mnist"
lr = 1e-3
batch_size = 128
epochs = {epochs}
subset = {subset}
[axes]
model = ["ae", "vae"]
arch = ["mlp", "conv"]
"""
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
    grid_file = folder / "labmnist.toml"
    grid_file.write_text(GRID.format(epochs=args.epochs, subset=args.subset))
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    for rep in range(args.reps):
        order = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
        for mode in order:
            run = folder / f"grid-{rep}-{mode.replace(' ', '_')}"
            run.mkdir()
            started = time.perf_counter()
            aevae("bench", str(grid_file), "--tracking-uri", f"sqlite:///{run}/mlflow.db", "--data-dir",
                  args.data_dir, "--results-dir", str(run), *MODES[mode], cwd=run)
            seconds[mode].append(time.perf_counter() - started)
            print(f"  grid, {mode}: {seconds[mode][-1]:.1f} s", flush=True)
    base = statistics.median(seconds["local"])
    print(f"\n4 MNIST cells of the lab grid, seed 0, {args.epochs} epoch(s) on {args.subset} images, "
          f"{args.reps} interleaved rep(s), whole `aevae bench` commands:\n")
    print("| executor | wall s (median) | runs | local / this |\n|---|---|---|---|")
    for mode, values in seconds.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {mode} | {statistics.median(values):.1f} | {shown} | {base / statistics.median(values):.2f} |")


class ClientTimer:
    """Seconds this thread spends inside MlflowClient's public methods (outermost calls only):
    the tracking part of a cell, without the training around it, which load on a shared
    machine makes noisy. The heartbeat's thread is left out: it does not hold the cell up."""

    def __init__(self):
        import threading

        from mlflow import MlflowClient

        self.seconds, self.calls, self._depth, self._main = 0.0, 0, 0, threading.main_thread()
        for name in [n for n in vars(MlflowClient) if not n.startswith("_")]:
            if callable(getattr(MlflowClient, name)):
                setattr(MlflowClient, name, self._wrap(getattr(MlflowClient, name)))

    def _wrap(self, method):
        import functools
        import threading

        @functools.wraps(method)
        def timed(*args, **kwargs):
            if threading.current_thread() is not self._main or self._depth:
                return method(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
                self._depth -= 1

        return timed


def tracking(args, folder: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
    import services  # deploy/services.py: the stack of `make services`, no module of the package
    from aevae.bench.grid import expand, load_grid
    from aevae.bench.runner import BenchContext, run_cell
    from aevae.data.cache import DataCache
    from aevae.tracking.runs import RunStore

    (folder / "one.toml").write_text("[axes]\nmodel = [\"vae\"]\n[base]\narch = \"mlp\"\nepochs = 2\nsubset = 2000\n"
                                     "val_size = 500\nhidden_dim = 64\n")
    (cell,) = expand(load_grid(str(folder / "one.toml")))
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
            store = RunStore(uri)
            experiment_id = store.experiment("bench/one")
            contexts[name] = BenchContext("bench/one", experiment_id, uri, args.data_dir, True, 0)
        cache = DataCache()
        cell_s, tracking_s, calls = ({name: [] for name in stores} for _ in range(3))
        run_cell(cell, contexts["SQLite"], cache)  # warm-up: imports, the reference classifier, the data
        for rep in range(args.reps):
            for name in (list(stores) if rep % 2 == 0 else list(reversed(stores))):
                # earlier runs do not count: the cell trains again
                ctx = dataclasses.replace(contexts[name], since_ms=int(time.time() * 1000))
                timer.seconds, timer.calls, started = 0.0, 0, time.perf_counter()
                outcome = run_cell(cell, ctx, cache)
                assert outcome.status == "done", outcome.reason
                cell_s[name].append(time.perf_counter() - started)
                tracking_s[name].append(timer.seconds)
                calls[name].append(timer.calls)
                print(f"  tracking, {name}: cell {cell_s[name][-1]:.2f} s, in MlflowClient {timer.seconds:.2f} s "
                      f"({timer.calls} calls)", flush=True)
    finally:
        services.down(stack)
    med = {name: (statistics.median(cell_s[name]), statistics.median(tracking_s[name])) for name in stores}
    print(f"\nOne bench cell (VAE, MLP, 2 epochs on 2000 MNIST images; claim, params, metrics, analysis, "
          f"figures, model), {args.reps} interleaved reps, medians:\n")
    print("| store | s per cell | s in MlflowClient calls | calls |\n|---|---|---|---|")
    for name, shown in (("SQLite", "SQLite (embedded)"), ("server", "MLflow server on PostgreSQL, proxied artifacts")):
        print(f"| {shown} | {med[name][0]:.2f} | {med[name][1]:.2f} | {statistics.median(calls[name]):.0f} |")
    print(f"\nserver cost per run: {med['server'][1] - med['SQLite'][1]:+.2f} s in tracking calls "
          f"({med['server'][1] / med['SQLite'][1]:.2f} x SQLite's); whole cell {med['server'][0] - med['SQLite'][0]:+.2f} s")


def node_death(args, folder: Path) -> None:
    token = folder / "ray-token"
    token.write_text(secrets.token_hex(32))
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    import mlflow
    import psutil
    from ray.cluster_utils import Cluster

    (folder / "long.toml").write_text("[axes]\nmodel = [\"ae\"]\n[base]\narch = \"mlp\"\nepochs = 60\nsubset = 4000\n"
                                      "val_size = 500\nanalysis = false\n")
    node_args = {"num_cpus": 1, "object_store_memory": 150 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node_args, "num_cpus": 0, "include_dashboard": False})
    rows = []
    try:
        for rep in range(args.reps):
            nodes = [cluster.add_node(**node_args) for _ in range(2 - len(cluster.worker_nodes))]
            store = f"sqlite:///{folder}/death-{rep}.db"
            driver = subprocess.Popen([sys.executable, "-m", "aevae", "bench", str(folder / "long.toml"), "--executor",
                                       "ray", "--ray-address", cluster.address, "--tracking-uri", store,
                                       "--data-dir", args.data_dir, "--no-artifacts", "--results-dir", str(folder)],
                                      cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = mlflow.MlflowClient(store)
            victim = None
            while victim is None:
                time.sleep(0.2)
                experiment = client.get_experiment_by_name("bench/long")
                found = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'") if experiment else []
                victim = next((r for r in found if "train/loss" in r.data.metrics), None)
            pid = int(victim.data.tags["worker"].rpartition(":")[2])
            ancestors = {p.pid for p in psutil.Process(pid).parents()}
            node = next(n for n in cluster.worker_nodes if n.all_processes["raylet"][0].process.pid in ancestors)
            died = time.time()
            cluster.remove_node(node, allow_graceful=False)
            again = None
            while again is None or "train/loss" not in again.data.metrics:
                time.sleep(0.2)
                found = client.search_runs([experiment.experiment_id])
                again = next((r for r in found if r.info.run_id != victim.info.run_id), None)
            first_epoch = min(m.timestamp for m in client.get_metric_history(again.info.run_id, "train/loss"))
            rows.append((again.info.start_time / 1000 - died, first_epoch / 1000 - died))
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
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each grid cell (lab: AE 10, VAE 15)")
    parser.add_argument("--subset", type=int, default=10000, help="images per split of each grid cell")
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
