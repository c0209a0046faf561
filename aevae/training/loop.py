"""`train`: the one function that trains. A single run, every grid cell and every Optuna
trial go through it."""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from aevae.analysis import analyse
from aevae.analysis.codes import encode
from aevae.config import TrainConfig, config_hash, frame_epochs, params, plugin_code, to_dict
from aevae.resolve import resolve
from aevae.data import Splits
from aevae.errors import ConfigError, TrainingFailed
from aevae.metrics import evaluate, not_applicable
from aevae.models import Traits, build, inspect_model
from aevae.models.fold import unfold_transposed_convolutions
from aevae.numerics import Numerics
from aevae.plugins import plugin_files
from aevae.tracking import Tracker, names
from aevae.tracking.records import InputDataset
from aevae.training import frames, measured, memory, run_figures
from aevae.training.measured import Choice
from aevae.training.runtime import environment_tags
from aevae.stopwatch import Stopwatch

EpochHook = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Result:
    """What a finished run returns; the same numbers are in the tracker."""

    run_id: str
    config: TrainConfig
    history: tuple[dict[str, float], ...]
    test: dict[str, float]
    seconds: float
    settings: str = ""  # how it computed, and how that was chosen: "contiguous/fold/eager (measured)"


@dataclass(frozen=True)
class RunOptions:
    """How a run is named and what it logs: its name (default `<model>-<arch>-<dataset>-s<seed>`),
    tags beside the ones every run gets, and whether it logs files (figures, frames, the
    model); without files every metric is still logged."""

    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: bool = True


def run_tags(cfg: TrainConfig) -> dict[str, str]:
    """Tags that find a run by what it is (cfg must be resolved)."""
    code = plugin_code(cfg)
    return {
        names.MODEL: cfg.model,
        names.ARCH: cfg.arch,
        names.DATASET: cfg.dataset,
        names.SEED: str(cfg.seed),
        names.CONFIG_HASH: config_hash(cfg),
        **({names.PLUGIN_CODE: code} if code else {}),
    }


def reader_tags(cfg: TrainConfig, traits: Traits, data: Splits) -> dict[str, str]:
    """What the report and compare read instead of importing a plug-in: titles, what the
    model's code is, the metrics that do not apply to it and why, a dataset file's digest."""
    reasons = not_applicable(traits.code, traits.title, cfg.recon_loss)
    tags = {names.MODEL_TITLE: traits.title, names.ARCH_TITLE: traits.arch_title,
            names.DATASET_TITLE: data.spec.title, names.MODEL_CODE: traits.code}
    if reasons:
        tags[names.NOT_APPLICABLE] = json.dumps(reasons, sort_keys=True)
    if data.spec.digest:
        tags[names.DATASET_DIGEST] = data.spec.digest
    return tags


def input_datasets(data: Splits) -> list[InputDataset]:
    """The splits a run reads, as the tracker's dataset inputs (a trial has no test split)."""
    parts = [(names.TRAIN_CONTEXT, data.train), (names.VALIDATION_CONTEXT, data.val),
             (names.TEST_CONTEXT, data.test)]
    return [InputDataset(data.spec.name, context, part.digest, data.source, part.images.cpu().numpy(),
                         part.labels.cpu().numpy()) for context, part in parts if part is not None]


@dataclass(frozen=True)
class Setup:
    """What a run trains with: its numerics, its seeded model, its optimiser and the loss
    function its steps call (the model's `loss`, compiled where the run compiles)."""

    numerics: Numerics
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    traits: Traits  # the model's and arch's titles and what its code is, from the model held to its protocol
    loss: Callable
    settings: Choice  # how the measured settings were chosen (aevae.training.measured)


def setup(cfg: TrainConfig, shape: tuple[int, int, int], steps: int = 0) -> Setup:
    """The numerics, seeded model and optimiser of a run of the resolved `cfg` on images of
    `shape` for `steps` optimiser steps (which decide whether measuring settings pays: 0
    measures none, and takes what this machine measured before); the benchmarks that time a
    step build it here too, so they time what a run trains. A run far beyond the machine's
    memory stops here, in one sentence."""
    numerics = Numerics.of(cfg)
    memory.check_fits(cfg, shape, numerics.device)
    if numerics.device.type == "cpu":
        torch.set_flush_denormal(True)  # subnormal Adam moments slow fp32 CPU steps measurably
    choice = measured.choose(cfg, shape, numerics, steps)
    numerics = choice.applied(numerics)
    torch.manual_seed(cfg.seed)
    with out_of_memory_said(cfg, shape, numerics.device):
        model = numerics.place(build(cfg, shape))
    traits = inspect_model(model, cfg, shape, numerics.device)
    # Fused Adam on CUDA: one kernel for the whole step; an H100 trained every MNIST cell
    # 1.08-1.14x faster per epoch with it (torch.compile gained nothing there).
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 fused=numerics.device.type == "cuda")
    return Setup(numerics, model, optimizer, traits, numerics.loss_of(model), choice)


def train(cfg: TrainConfig, data: Splits, tracker: Tracker, on_epoch: EpochHook | None = None,
          options: RunOptions = RunOptions()) -> Result:
    """Train `cfg` on `data`, evaluate on validation each epoch, end the run with `finish`,
    and log it all to `tracker`. `on_epoch(epoch, metrics)` may raise to stop the run
    (pruning). An Optuna trial passes `data.without_test()`: what it cannot read, it cannot
    be tuned on."""
    cfg = resolve(cfg)
    if data.spec.name != cfg.dataset:
        raise ConfigError(f"the config asks for '{cfg.dataset}' but the data given is '{data.spec.name}'.")
    clock = Stopwatch()
    with clock.part(names.PART_SETUP):
        built = setup(cfg, data.spec.shape, measured.run_steps(cfg, len(data.train)))
    # setup() measured the settings where that pays: their seconds are a part of their own
    clock.add(names.PART_MEASURE, built.settings.seconds)
    clock.add(names.PART_SETUP, -built.settings.seconds)
    numerics, model, optimizer = built.numerics, built.model, built.optimizer
    splits = data.to(numerics.device)
    order_generator = torch.Generator().manual_seed(cfg.seed)
    tags = {**run_tags(cfg), **reader_tags(cfg, built.traits, data), **environment_tags(numerics),
            **settings_tags(built.settings), **options.tags}
    name = options.name or f"{cfg.model}-{cfg.arch}-{cfg.dataset}-s{cfg.seed}"
    # Frames are images, so a run that logs no files logs none either.
    frame_at = set(frame_epochs(cfg.epochs, cfg.image_every)) if options.artifacts else set()
    frame_inputs = frames.frame_inputs(cfg, splits, numerics.device, built.traits) if frame_at else None
    history: list[dict[str, float]] = []
    started = time.perf_counter()

    with tracker.run(name, params(cfg), tags) as run_id, out_of_memory_said(cfg, data.spec.shape, numerics.device):
        with clock.part(names.PART_INPUTS):
            tracker.log_dict(to_dict(cfg), "config.json")
            tracker.log_inputs(input_datasets(data))
        for epoch in range(1, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            with clock.part(names.PART_TRAIN):
                row = train_epoch(built.loss, model, optimizer, splits, cfg, order_generator, numerics, epoch)
            if built.traits.code == "discrete":  # its loss's third part is no KL
                del row[names.TRAIN_KL]
            row[names.EPOCH_SECONDS] = time.perf_counter() - epoch_start
            row[names.IMAGES_PER_SEC] = len(splits.train) / row[names.EPOCH_SECONDS]
            with clock.part(names.PART_VALIDATION):
                val = evaluate(model, splits.val, numerics, binarize=cfg.binarize, pixel_tol=cfg.pixel_tol,
                               code=built.traits.code)
            row.update({f"{names.VAL_PREFIX}{k}": v for k, v in val.items()})
            bad = [k for k, v in row.items() if not math.isfinite(v)]
            if bad:
                raise TrainingFailed(
                    f"{bad[0]} became {row[bad[0]]} in epoch {epoch}: the run diverged; "
                    f"try a lower lr (now {cfg.lr}) or beta (now {cfg.beta})."
                )
            with clock.part(names.PART_LOGGING):
                tracker.log_metrics(row, step=epoch)
            if epoch in frame_at:
                with clock.part(names.PART_FRAMES):
                    frames.log_frames(model, frame_inputs, tracker, epoch, numerics)
            history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, row)
        test, seconds = finish(model, splits, cfg, built.traits, history, tracker, numerics, options.artifacts,
                               started, clock)
        tracker.log_metrics(clock.metrics(names.PART_SECONDS))
    return Result(run_id, cfg, tuple(history), test, seconds, built.settings.label)


def settings_tags(choice: Choice) -> dict[str, str]:
    """How the run's measured settings were chosen, and what each candidate measured."""
    tags = {names.SETTINGS: choice.settings.name, names.SETTINGS_SOURCE: choice.source}
    if choice.step_seconds:
        tags[names.SETTINGS_TIMINGS] = json.dumps({k: round(v, 6) for k, v in choice.step_seconds.items()},
                                                  sort_keys=True)
    return tags


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


def finish(model, splits: Splits, cfg: TrainConfig, traits: Traits, history: list[dict[str, float]],
           tracker: Tracker, numerics: Numerics, artifacts: bool, started: float,
           clock: Stopwatch | None = None) -> tuple[dict[str, float], float]:
    """The end of every run, decided by the data; returns the test metrics (the analysis's
    among them) and the run's seconds. With a test split: the test metrics, the run's
    figures, the analysis and the model; without one (a trial), the curves and
    reconstructions of validation images. The test split is encoded once, for the latent
    map and the analysis both. `clock` adds up the seconds of each part."""
    clock = clock or Stopwatch()
    test = {}
    if splits.test is not None:
        with clock.part(names.PART_TEST):
            test = evaluate(model, splits.test, numerics, binarize=cfg.binarize, pixel_tol=cfg.pixel_tol,
                            code=traits.code)
    seconds = time.perf_counter() - started
    tracker.log_metrics({**{f"{names.TEST_PREFIX}{k}": v for k, v in test.items()}, names.TRAIN_SECONDS: seconds})
    if splits.test is None:
        if artifacts:
            with clock.part(names.PART_FIGURES):
                run_figures.log_trial_artifacts(model, splits.val, history, tracker, cfg, numerics)
        return test, seconds
    if not (artifacts or cfg.analysis):
        return test, seconds
    # The analysis reads every test code; the latent map only the first few thousand.
    with clock.part(names.PART_ENCODE):
        codes = encode(model, splits.test, cfg.binarize, numerics,
                       limit=0 if cfg.analysis else run_figures.LATENT_MAP_POINTS)
    if artifacts:
        with clock.part(names.PART_FIGURES):
            run_figures.log_run_artifacts(model, splits, history, tracker, cfg, numerics, codes, traits)
    with clock.part(names.PART_ANALYSIS):
        test = {**test, **analyse(model, splits, codes, cfg, tracker, numerics, log_figures=artifacts)}
    if artifacts:
        with clock.part(names.PART_MODEL):
            # the reference formulation: the logged model needs nothing of aevae's to load
            unfold_transposed_convolutions(model)
            # two test images: the model's input example, and the signature MLflow infers from it;
            # the plug-ins' code goes with it, so it loads back where they are not installed
            tracker.log_model(model.cpu(), input_example=splits.test.floats(slice(0, 2)).cpu().numpy(),
                              code_paths=plugin_files(cfg.plugins))
    return test, seconds


def train_epoch(loss: Callable, model, optimizer, splits: Splits, cfg: TrainConfig, generator: torch.Generator,
                numerics: Numerics, epoch: int) -> dict[str, float]:
    """One pass over the training split in a seeded random order, `loss(x)` giving each
    batch's loss parts (the model's `loss`, or it compiled); returns mean losses."""
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
        with numerics.autocast():
            parts = loss(x)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        # Weighted by batch size so the epoch mean is per image; read once, after the loop.
        sums += torch.stack(parts).detach() * len(x)
    loss, recon, kl = (sums / len(images)).tolist()
    return {names.TRAIN_LOSS: loss, names.TRAIN_RECON: recon, names.TRAIN_KL: kl}
