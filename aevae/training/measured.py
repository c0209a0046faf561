"""Execution settings measured on the machine, the way cuDNN's benchmark mode and FFTW's
wisdom work: for the settings that change how a run computes but not what, the candidates
are timed for a few training steps at first use, the fastest is kept, and the timings are
cached under a fingerprint of the machine and the model's shape, so later runs read them.

The settings (config fields; 'auto' lets the measurement decide, a value fixes it):
- `memory_format`: conv weights and activations contiguous or channels-last;
- `transposed_conv`: a transposed convolution to an image's few channels as oneDNN's
  kernel ('native') or as a matrix product and a fold ('fold': aevae.models.fold);
- `compile`: the loss through `torch.compile` ('on') or eager ('off').
Each candidate gives the same numbers up to float rounding (tests/test_measured.py holds
them to one reference step, forward and backward); precision (bf16 or fp32) changes the
numbers, so it is no candidate. How many worker processes a grid runs in, and with how many
threads each, is measured by the bench (aevae.bench.pool) from the same step timings.

Measuring costs steps: a run too short to pay for it (under MIN_MEASURED_STEPS) takes what
was measured before, or else the reference settings (contiguous, native, eager). `compile`
costs its compile time, so it is measured only for runs whose steps take COMPILE_MIN_RUN_S
or more, and chosen only when its compile time plus its steps beat eager's steps.

The cache: `$AEVAE_CACHE_DIR/settings/<machine>.json` (else ~/.cache/aevae/), one file per
machine fingerprint (CPU model and flags, usable cores, torch threads, device, torch version
and its CPU kernel path), keyed inside by the model's shape. `--remeasure` (bench, train)
or deleting the file measures again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import math
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from aevae.config import TrainConfig, plugin_code
from aevae.errors import ConfigError
from aevae.folders import cache_dir as aevae_cache
from aevae.machine import cpu, usable_cores
from aevae.models import build
from aevae.models.fold import foldable
from aevae.numerics import Numerics

MIN_MEASURED_STEPS = 1000  # the measurement costs about 55 steps a candidate
COMPILE_MIN_RUN_S = 600.0  # a cold compile of these models took 10-90 s on a 2-core CPU
WARMUP_STEPS, TIMED_STEPS, ROUNDS = 3, 10, 5
CACHE_FORMAT = 1
# the config fields that decide what a step computes, besides the image shape and precision
SHAPE_FIELDS = ("model", "arch", "latent_dim", "hidden_dim", "conv_channels", "recon_loss", "batch_size",
                "model_params", "arch_params")


@dataclass(frozen=True)
class Settings:
    """How a run computes (never what)."""

    channels_last: bool = False
    fold: bool = False
    compile: bool = False

    @property
    def name(self) -> str:
        """As the cache, the bench's header and the run's `settings` tag say it."""
        return "/".join(("channels_last" if self.channels_last else "contiguous",
                         "fold" if self.fold else "native", "compiled" if self.compile else "eager"))

    def on(self, numerics: Numerics) -> Numerics:
        """`numerics` computing in these settings."""
        return dataclasses.replace(numerics, channels_last=self.channels_last, fold=self.fold, compile=self.compile)


REFERENCE = Settings()


@dataclass(frozen=True)
class Choice:
    """The settings a run uses and how they were chosen: 'measured' (now), 'cached'
    (measured earlier on this machine), 'config' (every one fixed by the config), or
    'reference' (a run too short to measure, nothing cached)."""

    settings: Settings
    source: str
    step_seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # each candidate's, as measured
    seconds: float = 0.0  # spent measuring (0 when nothing was)

    def applied(self, numerics: Numerics) -> Numerics:
        return dataclasses.replace(self.settings.on(numerics), settings_source=self.source)

    @property
    def label(self) -> str:
        """As `aevae train` and the bench's header print it: 'channels_last/fold/eager (measured)'."""
        return f"{self.settings.name} ({self.source})"


def run_steps(cfg: TrainConfig, train_images: int) -> int:
    """The optimiser steps of a run of `cfg` on `train_images` training images."""
    return cfg.epochs * math.ceil(train_images / cfg.batch_size)


def choose(cfg: TrainConfig, shape: tuple[int, int, int], numerics: Numerics, steps: int) -> Choice:
    """The settings a run of the resolved `cfg` on images of `shape` uses, for `steps`
    optimiser steps at this process's torch threads (the config's fixed values kept)."""
    options = candidates(cfg, shape)
    if len(options) == 1:
        return Choice(options[0], "config" if _fixed(cfg) else "reference")
    eager_options = [s for s in options if not s.compile]
    started = time.perf_counter()
    with SettingsCache.for_machine(numerics) as cache:
        key = shape_key(cfg, shape, numerics)
        entry = cache.get(key)
        missing = [s for s in eager_options if s.name not in entry["steps"]]
        new = bool(missing) and steps >= MIN_MEASURED_STEPS
        if new:
            entry["steps"].update(time_steps(cfg, shape, numerics, missing))
        eager = {s: entry["steps"][s.name] for s in eager_options if s.name in entry["steps"]}
        if not eager:
            return Choice(options[0], "reference")
        best = min(eager, key=eager.get)
        compiled = dataclasses.replace(best, compile=True)
        if (compiled in options and best.name not in entry["compile"]
                and steps * eager[best] >= COMPILE_MIN_RUN_S):
            entry["compile"][best.name] = time_compile(cfg, shape, numerics, best)
            new = True
        if new:
            cache.put(key, entry)
    found = entry["compile"].get(best.name, {}) if compiled in options else {}
    shown = {s.name: t for s, t in eager.items()}
    chosen = best
    if "step" in found:
        shown[compiled.name] = found["step"]
        if found["seconds"] + steps * found["step"] < steps * eager[best]:
            chosen = compiled
    return Choice(chosen, "measured" if new else "cached", shown, time.perf_counter() - started if new else 0.0)


def candidates(cfg: TrainConfig, shape: tuple[int, int, int]) -> list[Settings]:
    """The settings a run may use: each 'auto' field's values, a fixed field's one value,
    and only values that change something for this model (no layout for a model without
    convolutions, no fold without a foldable layer, no compile without a C++ compiler on CPU)."""
    with torch.device("meta"):
        model = build(cfg, shape)
    convolutional = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
    layouts = _values(cfg.memory_format, "channels_last", "contiguous") if convolutional else [False]
    folds = _values(cfg.transposed_conv, "fold", "native") if any(foldable(m) for m in model.modules()) else [False]
    if cfg.compile == "on" and not _has_compiler(cfg):
        raise ConfigError("compile='on' needs a C++ compiler on CPU (torch.compile builds C++ kernels there) and "
                          "none is on the PATH: install one (g++), or set compile to 'auto' or 'off'.")
    compiles = _values(cfg.compile, "on", "off") if cfg.compile == "on" or (
        cfg.compile == "auto" and _has_compiler(cfg)) else [False]
    return [Settings(layout, fold, compiled) for layout in layouts for fold in folds for compiled in compiles]


def _values(value: str, on: str, off: str) -> list[bool]:
    return [False, True] if value == "auto" else [value == on]


def _fixed(cfg: TrainConfig) -> bool:
    return "auto" not in (cfg.memory_format, cfg.transposed_conv, cfg.compile)


def _has_compiler(cfg: TrainConfig) -> bool:
    """Whether inductor can build its kernels: C++ on CPU (without a compiler 'auto' leaves
    compile out), Triton on CUDA."""
    return cfg.device == "cuda" or any(shutil.which(name) for name in ("c++", "g++"))


def shape_key(cfg: TrainConfig, shape: tuple[int, int, int], numerics: Numerics) -> str:
    """What a step computes, as the cache's key: the model's config fields, the image shape,
    the precision and a plug-in's code digest."""
    fields = {name: getattr(cfg, name) for name in SHAPE_FIELDS}
    text = json.dumps([fields, list(shape), numerics.precision_name, plugin_code(cfg)], sort_keys=True, default=list)
    return f"{cfg.model}/{cfg.arch}/{'x'.join(map(str, shape))}/{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def fingerprint(numerics: Numerics) -> dict[str, object]:
    """The machine the timings hold for, as torch would compute on it now."""
    found = cpu()
    device = (torch.cuda.get_device_name(numerics.device) if numerics.device.type == "cuda" else "cpu")
    return {"cpu": found.model, "flags": hashlib.sha256(" ".join(sorted(found.flags)).encode()).hexdigest()[:12],
            "cores": usable_cores(), "threads": torch.get_num_threads(), "device": device,
            "torch": torch.__version__, "kernels": torch.backends.cpu.get_cpu_capability()}


def cache_dir() -> Path:
    return aevae_cache() / "settings"


class SettingsCache:
    """One machine's timings, read and written under a file lock, so processes measuring
    the same model at once measure it once. A cache folder that cannot be written (a file,
    a read-only mount) only means measuring again next time, as the other caches of aevae."""

    def __init__(self, path: Path, machine: dict[str, object]):
        self.path, self.machine = path, machine
        self.entries: dict[str, dict] = {}
        self.writable = True

    @classmethod
    @contextlib.contextmanager
    def for_machine(cls, numerics: Numerics):
        machine = fingerprint(numerics)
        name = hashlib.sha256(json.dumps(machine, sort_keys=True).encode()).hexdigest()[:16]
        cache = cls(cache_dir() / f"{name}.json", machine)
        try:
            cache.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(cache.path.with_suffix(".lock"), "w")
        except OSError:
            cache.writable = False
            yield cache
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                cache.entries = cache._read()
                yield cache
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict]:
        try:
            found = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: measured again
        return found.get("shapes", {}) if found.get("format") == CACHE_FORMAT else {}

    def get(self, key: str) -> dict:
        """The key's timings (a copy): `steps` by eager candidate, `compile` by the eager
        candidate compiled, and what else its writer keeps there (aevae.bench.pool's `pool`)."""
        found = {k: v for k, v in self.entries.get(key, {}).items() if k != "measured"}
        return {**found, "steps": dict(found.get("steps", {})), "compile": dict(found.get("compile", {}))}

    def put(self, key: str, entry: dict) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.entries[key] = {**entry, "measured": stamp}
        if not self.writable:
            return
        text = json.dumps({"format": CACHE_FORMAT, "machine": self.machine, "shapes": self.entries}, indent=1)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        with contextlib.suppress(OSError):  # a disk that filled up: measured again next time
            temporary.write_text(text)
            temporary.replace(self.path)


def remeasure(numerics: Numerics) -> None:
    """Forget this machine's timings (at every thread count): the next runs measure again."""
    machine = fingerprint(numerics)
    for path in cache_dir().glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            found = json.loads(path.read_text()).get("machine", {})
            if {k: v for k, v in found.items() if k != "threads"} == {k: v for k, v in machine.items() if k != "threads"}:
                path.unlink()


# --- timing -------------------------------------------------------------------------------
def time_steps(cfg: TrainConfig, shape: tuple[int, int, int], numerics: Numerics,
               options: list[Settings]) -> dict[str, float]:
    """Seconds per training step of each of `options` (eager): the median of ROUNDS
    rounds of TIMED_STEPS steps, the rounds of all candidates interleaved so a change in the
    machine's load falls on every candidate alike."""
    with torch.random.fork_rng(devices=[]):
        steppers = {s: _stepper(cfg, shape, numerics, s) for s in options}
        for step in steppers.values():
            for _ in range(WARMUP_STEPS):
                step()
        rounds: dict[Settings, list[float]] = {s: [] for s in options}
        for _ in range(ROUNDS):
            for settings, step in steppers.items():
                _sync(numerics)
                started = time.perf_counter()
                for _ in range(TIMED_STEPS):
                    step()
                _sync(numerics)
                rounds[settings].append((time.perf_counter() - started) / TIMED_STEPS)
    return {s.name: statistics.median(times) for s, times in rounds.items()}


def time_compile(cfg: TrainConfig, shape: tuple[int, int, int], numerics: Numerics, best: Settings) -> dict:
    """The compiled candidate's compile seconds (its first steps, less eager ones) and its
    step seconds; {'error': ...} when torch cannot compile the model here."""
    compiled = dataclasses.replace(best, compile=True)
    with torch.random.fork_rng(devices=[]):
        started = time.perf_counter()
        try:
            step = _stepper(cfg, shape, numerics, compiled)
            for _ in range(WARMUP_STEPS):
                step()
        except Exception as exc:  # an inductor or dynamo failure: the model stays eager
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            return {"error": f"{type(exc).__name__}: {first_line}"}
        _sync(numerics)
        first = time.perf_counter() - started
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(TIMED_STEPS):
                step()
            _sync(numerics)
            times.append((time.perf_counter() - started) / TIMED_STEPS)
    seconds_per_step = statistics.median(times)
    return {"seconds": max(0.0, first - WARMUP_STEPS * seconds_per_step), "step": seconds_per_step}


def _stepper(cfg: TrainConfig, shape: tuple[int, int, int], numerics: Numerics, settings: Settings):
    """One training step of a fresh model in `settings`, on a fixed batch of random pixels
    (the step's time does not depend on the pixels' values)."""
    applied = settings.on(numerics)
    torch.manual_seed(0)
    model = applied.place(build(cfg, shape))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=numerics.device.type == "cuda")
    loss = applied.loss_of(model)
    x = torch.rand(cfg.batch_size, *shape, device=numerics.device)

    def step():
        with applied.autocast():
            parts = loss(x)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
    return step


def _sync(numerics: Numerics) -> None:
    if numerics.device.type == "cuda":
        torch.cuda.synchronize(numerics.device)
