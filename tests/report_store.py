"""Small MLflow stores in the shape `aevae bench` writes, with known numbers, for the report's
tests: real MLflow (SQLite in a temporary folder), runs made with the client's batch calls."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402

from aevae.tracking import names  # noqa: E402

FIGURE_NAMES = ("reconstructions", "prior_samples", "latent", "curves")


class Store:
    """One experiment of a tracking store, and helpers to fill it."""

    def __init__(self, uri: str, experiment: str = "bench/lab"):
        self.uri = uri
        self.client = MlflowClient(uri)
        root = Path(uri.removeprefix("sqlite:///")).parent
        self.figures = root / "figure-source" / "figures"
        self.experiment_id = self.client.create_experiment(
            experiment, artifact_location=(root / "artifacts").resolve().as_uri())

    def expect(self, cells: list[tuple[str, int, str]], axes: dict | None = None, version: str = "") -> None:
        """Set the grid's `grid_cells` (cell, seed, config_hash) and `grid_axes` tags, of
        version `version` ('' the unlabelled one) as `aevae bench` names them."""
        suffix = f"/{version}" if version else ""
        rows = [{"cell": c, "seed": s, "config_hash": h} for c, s, h in cells]
        self.client.set_experiment_tag(self.experiment_id, f"grid_cells{suffix}", json.dumps(rows))
        if axes is not None:
            self.client.set_experiment_tag(self.experiment_id, f"grid_axes{suffix}", json.dumps(axes))

    def run(self, cell: str | None, seed: int, status: str = "FINISHED", test: dict | None = None,
            history: dict[str, list[float]] | None = None, params: dict | None = None,
            tags: dict | None = None, logged: dict | None = None, figures: bool = False,
            config_hash: str = "h",
            start: int = 1_700_000_000_000) -> str:
        """A run of `cell` (None: no cell tag, as `aevae train` logs) with the given `test/*`
        values, other `logged` metrics as named, per-epoch `history`, params and tags."""
        model, arch, dataset = cell.split("/")[:3] if cell else (params["model"], params["arch"], params["dataset"])
        all_tags = {"model": model, "arch": arch, "dataset": dataset, "seed": str(seed),
                    "config_hash": config_hash, "git_commit": "abc123def4567", "git_dirty": "false",
                    "device": "cpu (x86_64)", "precision": "fp32", "torch_version": "2.13.0"}
        if cell:
            all_tags.update({"cell": cell, "grid": "lab"})
        all_tags.update(tags or {})
        run_id = self.client.create_run(self.experiment_id, start_time=start, tags=all_tags).info.run_id
        metrics = [Metric(f"test/{k}", float(v), start, 0) for k, v in (test or {}).items()]
        metrics += [Metric(k, float(v), start, 0) for k, v in (logged or {}).items()]
        for key, values in (history or {}).items():
            metrics += [Metric(key, float(v), start + e, e) for e, v in enumerate(values, start=1)]
        params = {"model": model, "arch": arch, "dataset": dataset, "seed": seed, **(params or {})}
        self.client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
        if figures:
            self.client.log_artifacts(run_id, str(self.figure_folder()), "figures")
        if status != "RUNNING":
            self.client.set_terminated(run_id, status)
        return run_id

    def figure_folder(self) -> Path:
        if not self.figures.is_dir():
            self.figures.mkdir(parents=True)
            for name in FIGURE_NAMES:
                fig, ax = plt.subplots(figsize=(1, 1))
                ax.plot([0, 1], [0, 1])
                fig.savefig(self.figures / f"{name}.png", dpi=40)
                plt.close(fig)
        return self.figures


def identity(model_title: str | None = None, code: str | None = None, not_applicable: dict | None = None,
             arch_title: str | None = None, dataset_title: str | None = None) -> dict[str, str]:
    """The tags a run of a plug-in carries for the read side, for `Store.run(tags=...)`: its
    titles, its model's code and the metrics that do not apply to it with their reasons."""
    tags = {names.MODEL_TITLE: model_title, names.ARCH_TITLE: arch_title, names.DATASET_TITLE: dataset_title,
            names.MODEL_CODE: code,
            names.NOT_APPLICABLE: json.dumps(not_applicable) if not_applicable is not None else None}
    return {tag: value for tag, value in tags.items() if value is not None}


def finished_metrics(mse: float, kl: float = 0.0, variational: bool = False) -> dict[str, float]:
    """Every test metric a finished run of this version logs, from its MSE and KL."""
    metrics = {"loss": 50 + kl, "recon_mse": mse, "recon_bce": 50.0, "kl": kl, "pixel_acc": 0.9,
               "recon_acc_1mse": 100 * (1 - mse), "active_units": 4.0}
    if variational:
        metrics["elbo"] = -(50 + kl)
    return metrics


def discrete_metrics(mse: float) -> dict[str, float]:
    """What a finished run of a discrete-code model (a VQ-VAE) logs: no KL, no ELBO."""
    return {k: v for k, v in finished_metrics(mse).items() if k != "kl"}
