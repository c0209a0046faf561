"""`train`: the one function that trains. A single run, every grid cell and every Optuna
trial go through it."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from aevae.analysis import analyse
from aevae.analysis.codes import encode
from aevae.training import frames, memory, run_figures
from aevae.config import TrainConfig, config_hash, frame_epochs, resolve, to_dict
from aevae.data import Splits
from aevae.errors import ConfigError, TrainingFailed
from aevae.training.evaluate import evaluate
from aevae.models import build
from aevae.machine import pick_device, uses_bf16, uses_channels_last
from aevae.training.runtime import autocast, environment_tags
from aevae.tracking import Tracker, names
from aevae.tracking.records import InputDataset

EpochHook = Callable[[int, dict[str, float]], None]


@dataclass
class Result:
    """What a finished run returns; the same numbers are in the tracker."""

    run_id: str
    config: TrainConfig
    history: list[dict[str, float]] = field(default_factory=list)
    test: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def run_tags(cfg: TrainConfig) -> dict[str, str]:
    """Tags that find a run by what it is (cfg must be resolved)."""
    return {
        names.MODEL: cfg.model,
        names.ARCH: cfg.arch,
        names.DATASET: cfg.dataset,
        names.SEED: str(cfg.seed),
        names.CONFIG_HASH: config_hash(cfg),
    }


def input_datasets(data: Splits) -> list[InputDataset]:
    """The splits a run reads, as the tracker's dataset inputs (a trial has no test split)."""
    parts = [(names.TRAIN_CONTEXT, data.train), (names.VALIDATION_CONTEXT, data.val),
             (names.TEST_CONTEXT, data.test)]
    return [InputDataset(data.spec.name, context, part.digest, data.source, part.images.cpu().numpy(),
                         part.labels.cpu().numpy()) for context, part in parts if part is not None]


@dataclass
class Setup:
    """What a run trains with: its device, numerics, model and optimiser."""

    device: torch.device
    bf16: bool
    channels_last: bool
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer

    @property
    def precision(self):
        """The autocast context for a forward pass (a fresh one each time it is read)."""
        return autocast(self.device, self.bf16)


def setup(cfg: TrainConfig, shape: tuple[int, int, int]) -> Setup:
    """The device, numerics, seeded model and optimiser of a run of the resolved `cfg` on
    images of `shape`; the benchmarks that time a step build it here too, so they time
    what a run trains."""
    device = pick_device(cfg.device)
    memory.check_fits(cfg, shape, device)  # a run far beyond the machine: one sentence, not a crash
    bf16 = uses_bf16(cfg.precision, device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # subnormal Adam moments slow fp32 CPU steps measurably
    torch.manual_seed(cfg.seed)
    channels_last = uses_channels_last(cfg.memory_format, cfg.arch, device)
    model = build(cfg, shape).to(device)
    if channels_last:  # inputs follow the weights' format inside each convolution
        model = model.to(memory_format=torch.channels_last)
    # Fused Adam on CUDA: one kernel for the whole step; an H100 trained every MNIST cell
    # 1.08-1.14x faster per epoch with it (torch.compile gained nothing there).
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 fused=device.type == "cuda")
    return Setup(device, bf16, channels_last, model, optimizer)


def train(cfg: TrainConfig, data: Splits, tracker: Tracker, on_epoch: EpochHook | None = None,
          *, tags: dict[str, str] | None = None, run_name: str | None = None,
          log_artifacts: bool = True) -> Result:
    """Train `cfg` on `data`, evaluate on validation each epoch, end the run with `finish`,
    and log it all to `tracker`. `on_epoch(epoch, metrics)` may raise to stop the run
    (pruning). An Optuna trial passes `data.without_test()`: what it cannot read, it cannot
    be tuned on. `log_artifacts=False` logs no file (figures, model) and every metric."""
    cfg = resolve(cfg)
    if data.spec.name != cfg.dataset:
        raise ConfigError(f"the config asks for '{cfg.dataset}' but the data given is '{data.spec.name}'.")
    with out_of_memory_said(cfg, data.spec.shape, pick_device(cfg.device)):
        built = setup(cfg, data.spec.shape)
    device, model, optimizer = built.device, built.model, built.optimizer
    precision = built.precision  # one context, entered for every forward pass
    splits = data.to(device)
    order_generator = torch.Generator().manual_seed(cfg.seed)
    all_tags = {**run_tags(cfg), **environment_tags(device, built.bf16, built.channels_last), **(tags or {})}
    name = run_name or f"{cfg.model}-{cfg.arch}-{cfg.dataset}-s{cfg.seed}"
    result = Result(run_id="", config=cfg)
    # Frames are images, so a run that logs no files logs none either.
    frame_at = set(frame_epochs(cfg.epochs, cfg.image_every)) if log_artifacts else set()
    frame_inputs = frames.frame_inputs(cfg, splits, device) if frame_at else None
    started = time.perf_counter()

    with tracker.run(name, to_dict(cfg), all_tags) as run_id, out_of_memory_said(cfg, data.spec.shape, device):
        result.run_id = run_id
        tracker.log_dict(to_dict(cfg), "config.json")
        tracker.log_inputs(input_datasets(data))
        for epoch in range(1, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            row = train_epoch(model, optimizer, splits, cfg, order_generator, precision, epoch)
            row["epoch_seconds"] = time.perf_counter() - epoch_start
            row["images_per_sec"] = len(splits.train) / row["epoch_seconds"]
            val = evaluate(model, splits.val, binarize=cfg.binarize, pixel_tol=cfg.pixel_tol,
                           autocast=precision)
            row.update({f"{names.VAL_PREFIX}{k}": v for k, v in val.items()})
            bad = [k for k, v in row.items() if not math.isfinite(v)]
            if bad:
                raise TrainingFailed(
                    f"{bad[0]} became {row[bad[0]]} in epoch {epoch}: the run diverged; "
                    f"try a lower lr (now {cfg.lr}) or beta (now {cfg.beta})."
                )
            tracker.log_metrics(row, step=epoch)
            if epoch in frame_at:
                frames.log_frames(model, frame_inputs, tracker, epoch, precision)
            result.history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, row)
        finish(model, splits, result, tracker, precision, log_artifacts, started)
    return result


@contextlib.contextmanager
def out_of_memory_said(cfg: TrainConfig, shape: tuple[int, int, int], device: torch.device):
    """An allocation that fails while the run trains ends it with the sentence that says
    which setting to lower (aevae.training.memory), not a trace of torch's allocator."""
    try:
        yield
    except Exception as exc:
        if memory.is_out_of_memory(exc):
            raise memory.out_of_memory(cfg, shape, device) from None
        raise


def finish(model, splits: Splits, result: Result, tracker: Tracker, precision, log_artifacts: bool,
           started: float) -> None:
    """The end of every run, decided by the data: with a test split, the test metrics, the
    run's figures, the analysis and the model; without one (a trial), the curves and
    reconstructions of validation images. The test split is encoded once, for the latent
    map and the analysis both."""
    cfg = result.config
    if splits.test is not None:
        result.test = evaluate(model, splits.test, binarize=cfg.binarize, pixel_tol=cfg.pixel_tol,
                               autocast=precision)
    result.seconds = time.perf_counter() - started
    tracker.log_metrics({**{f"{names.TEST_PREFIX}{k}": v for k, v in result.test.items()},
                         names.TRAIN_SECONDS: result.seconds})
    if splits.test is None:
        if log_artifacts:
            run_figures.log_trial_artifacts(model, splits.val, result.history, tracker, cfg, precision)
        return
    if not (log_artifacts or cfg.analysis):
        return
    # The analysis reads every test code; the latent map only the first few thousand.
    codes = encode(model, splits.test, cfg.binarize, precision,
                   limit=0 if cfg.analysis else run_figures.LATENT_POINTS)
    if log_artifacts:
        run_figures.log_run_artifacts(model, splits, result.history, tracker, cfg, precision, codes)
    result.test.update(analyse(model, splits, codes, cfg, tracker, precision, log_figures=log_artifacts))
    if log_artifacts:
        # two test images: the model's input example, and the signature MLflow infers from it
        tracker.log_model(model.cpu(), input_example=splits.test.floats(slice(0, 2)).cpu().numpy())


def train_epoch(model, optimizer, splits: Splits, cfg: TrainConfig, generator: torch.Generator,
                precision, epoch: int) -> dict[str, float]:
    """One pass over the training split in a seeded random order; returns mean losses."""
    model.train()
    images = splits.train
    order = torch.randperm(len(images), generator=generator).to(images.images.device)
    sums = torch.zeros(3, device=images.images.device)
    batches = range(0, len(images), cfg.batch_size)
    for start in tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, unit="batch",
                      disable=None):
        x = images.floats(order[start:start + cfg.batch_size])
        if cfg.binarize:
            x = torch.bernoulli(x)
        with precision:
            parts = model.loss(x)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        # Weighted by batch size so the epoch mean is per image; read once, after the loop.
        sums += torch.stack(parts).detach() * len(x)
    loss, recon, kl = (sums / len(images)).tolist()
    prefix = names.TRAIN_PREFIX
    return {f"{prefix}loss": loss, f"{prefix}recon": recon, f"{prefix}kl": kl}
