"""Every name that one part of aevae writes into MLflow and another reads back: run tags,
experiment tags, experiment names, metric prefixes. Changing a value here changes what new
runs store, and runs logged before keep the old name, so the values stay as they are; the
report of an old store depends on it. MLflow keeps its own tag names in one module the same
way (mlflow/utils/mlflow_tags.py).

Imports nothing: the report, the CLI and the config may all read it.
"""

from __future__ import annotations

# --- Experiments -----------------------------------------------------------------------
BENCH_PREFIX = "bench/"  # one experiment per grid: bench/<grid>
TUNE_PREFIX = "tune/"  # one experiment per study set: tune/<set>
DEFAULT_EXPERIMENT = "aevae"  # `aevae train` without --experiment


def bench_experiment(grid: str) -> str:
    return f"{BENCH_PREFIX}{grid}"


def tune_experiment(study_set: str) -> str:
    return f"{TUNE_PREFIX}{study_set}"


# Experiment tags the bench writes and the report reads, once per version of the grid:
# `grid_cells` for the unlabelled runs (and runs older than versions), `grid_cells/<label>`
# for version <label>, since a version's cells can differ from another's (a changed
# default changes every config hash).
GRID_CELLS = "grid_cells"  # JSON list of {cell, seed, config_hash} the grid expects
GRID_AXES = "grid_axes"  # JSON {axis: [values]}


def versioned(tag: str, label: str) -> str:
    """The experiment tag `tag` of the grid's version `label` ('' is the unlabelled one)."""
    return f"{tag}/{label}" if label else tag

NOTE = "mlflow.note.content"  # MLflow's description field (the grid file's description)
# What MLflow 3's UI takes an experiment for (its own tag, read by its UI bundle): model
# training, so the experiment's page offers the training runs rather than GenAI traces.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"

# --- What a run is ---------------------------------------------------------------------
MODEL = "model"
ARCH = "arch"
DATASET = "dataset"
SEED = "seed"
CONFIG_HASH = "config_hash"  # the resolved config's hash: the same cell, the same hash
GRID = "grid"
CELL = "cell"  # e.g. vae/conv/mnist or vae/mlp/mnist/beta=0.5
TUNED_FROM = "tuned_from"  # the study whose best trial set the cell's config
# The version of the grid a run belongs to (aevae.bench.versions): with the grid and the
# config hash, what makes a cell finished. Absent on runs logged before versions existed.
VERSION_LABEL = "version_label"

# --- What a run trained, as a reader names it --------------------------------------------
# Plug-in models, architectures and datasets (README: Bring your own model / data) carry
# their own titles, and the report and compare never import a plug-in: they read these.
MODEL_TITLE = "model_title"  # e.g. VAE, IWAE; runs of older versions: the registry's title
ARCH_TITLE = "arch_title"
DATASET_TITLE = "dataset_title"
# What the model's code is: "gaussian" (a diagonal-Gaussian posterior and an N(0, I) prior:
# KL, ELBO and the importance-weighted NLL apply), "point" (a deterministic code, the AE's:
# no KL term, reported as 0) or "discrete" (a codebook: no KL, no ELBO, no NLL).
MODEL_CODE = "model_code"
# JSON {metric key: the sentence saying why it does not apply to this run's model}; tables
# show such a metric as n/a with its reason, never as missing.
NOT_APPLICABLE = "not_applicable"
PLUGIN_CODE = "plugin_code"  # digest of the plug-in source files the run trained (part of its config hash)
DATASET_DIGEST = "dataset_sha256"  # sha256 of a dataset plug-in's file, or of a folder's files

# --- How a run ended -------------------------------------------------------------------
FAILURE_REASON = "failure_reason"  # one line, on FAILED and KILLED runs
MODEL_URI = "model_uri"  # what mlflow.pytorch.load_model takes

# --- Claims of grid cells (aevae.bench.claims) -----------------------------------------
CLAIM = "claim"
CLAIM_PENDING = "pending"
CLAIM_WON = "won"
WORKER = "worker"  # <host>:<pid> of the process running the run
WORKER_STARTED = "worker_started"  # that process's start time, seconds: tells a reused pid apart
WORKER_TASK = "worker_task"  # the executor's id of the cell's task, the same on every retry (Ray's)
HEARTBEAT = "heartbeat"  # the worker's clock at its latest beat, seconds since the epoch
SUPERSEDED_BY = "superseded_by"  # on a finished run a forced re-run replaced
BENCH_INVOCATION = "bench_invocation"  # <host>:<pid>:<start> of the bench command that claimed the run

# --- Provenance ------------------------------------------------------------------------
GIT_COMMIT = "git_commit"
GIT_DIRTY = "git_dirty"
# MLflow's own source tags (mlflow/utils/mlflow_tags.py), which its UI's Source column reads
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"  # the same commit, where MLflow's UI shows it
MLFLOW_SOURCE_NAME = "mlflow.source.name"  # the entry point: aevae bench, aevae tune, aevae train
MLFLOW_SOURCE_TYPE = "mlflow.source.type"  # LOCAL: a command run on this machine
MLFLOW_USER = "mlflow.user"
ENTRY_TRAIN = "aevae train"  # the values of MLFLOW_SOURCE_NAME
ENTRY_BENCH = "aevae bench"
ENTRY_TUNE = "aevae tune"
AEVAE_VERSION = "aevae_version"
TORCH_VERSION = "torch_version"
MLFLOW_VERSION = "mlflow_version"
NUMPY_VERSION = "numpy_version"
PYTHON_VERSION = "python_version"
DEVICE = "device"  # the GPU's name, or "cpu (<the CPU's model>)"
CPU_FLAGS = "cpu_flags"  # the instruction sets that pick kernels (aevae.machine.NAMED_FLAGS)
CPU_CAPABILITY = "cpu_capability"  # the kernels torch runs (its ATEN_CPU_CAPABILITY: avx2, avx512, ...)
PRECISION = "precision"  # bf16-autocast or fp32, as resolved for the run
MEMORY_FORMAT = "memory_format"  # channels_last or contiguous, as resolved for the run
TRANSPOSED_CONV = "transposed_conv"  # native or fold, as resolved for the run
COMPILE = "compile"  # on or off, as resolved for the run
SETTINGS = "settings"  # the three above in one name, e.g. channels_last/fold/eager
SETTINGS_SOURCE = "settings_source"  # measured, cached, config or reference (aevae.training.measured)
SETTINGS_TIMINGS = "settings_timings"  # JSON: each candidate's measured seconds a step
TORCH_THREADS = "torch_threads"

# --- Optuna ----------------------------------------------------------------------------
OPTUNA_STUDY = "optuna_study"
STUDY_SET = "study_set"
OPTUNA_STORAGE = "optuna_storage"
OPTUNA_TRIAL_NUMBER = "optuna_trial_number"
OPTUNA_STATE = "optuna_state"  # COMPLETE, PRUNED or FAIL
PARENT_RUN_ID = "mlflow.parentRunId"  # MLflow's own tag for a child run (a trial)

# --- Datasets: each split a run read, as an MLflow dataset input in one of these contexts ---
INPUT_CONTEXT = "mlflow.data.context"  # MLflow's input tag; its UI shows it beside the dataset
TRAIN_CONTEXT = "train"
VALIDATION_CONTEXT = "validation"
TEST_CONTEXT = "test"  # absent from Optuna trials, which never read the test split

# --- Metrics ---------------------------------------------------------------------------
# A run logs each metric of a split as `<split prefix><name>` (aevae.metrics and
# aevae.analysis say what each measures, in which units); the report, compare, the tuner and
# the summaries read them by the keys below, so each key is written once, here.
TRAIN_PREFIX = "train/"  # per epoch, on the training split
VAL_PREFIX = "val/"  # per epoch, on the validation split
TEST_PREFIX = "test/"  # once, at the end, on the test split
LOSS = "loss"
RECON = "recon"  # the training split's reconstruction term
RECON_MSE = "recon_mse"
RECON_BCE = "recon_bce"
KL = "kl"
PIXEL_ACC = "pixel_acc"
RECON_ACC = "recon_acc_1mse"
ELBO = "elbo"
ACTIVE_UNITS = "active_units"
PROBE_ACC = "probe_acc"
FRECHET = "frechet"  # of N(0, I) samples; FRECHET + "_fitted", + "_recon" of the others
CONFIDENT_SHARE = "confident_share"
NLL = "nll"
BPD = "bpd"
TRAIN_LOSS, TRAIN_RECON, TRAIN_KL = (TRAIN_PREFIX + name for name in (LOSS, RECON, KL))
VAL_LOSS, VAL_KL, VAL_RECON_MSE, VAL_ELBO = (VAL_PREFIX + name for name in (LOSS, KL, RECON_MSE, ELBO))
(TEST_LOSS, TEST_RECON_MSE, TEST_RECON_BCE, TEST_KL, TEST_PIXEL_ACC, TEST_RECON_ACC, TEST_ELBO, TEST_ACTIVE_UNITS,
 TEST_PROBE_ACC, TEST_FRECHET, TEST_CONFIDENT_SHARE, TEST_NLL, TEST_BPD) = (
    TEST_PREFIX + name for name in (LOSS, RECON_MSE, RECON_BCE, KL, PIXEL_ACC, RECON_ACC, ELBO, ACTIVE_UNITS,
                                    PROBE_ACC, FRECHET, CONFIDENT_SHARE, NLL, BPD))
TRAIN_SECONDS = "train_seconds"  # a run's training and evaluation, seconds
EPOCH_SECONDS = "epoch_seconds"  # per epoch: the pass over the training split, seconds
IMAGES_PER_SEC = "images_per_sec"  # per epoch: training images per second
ANALYSIS_SECONDS = "analysis_seconds"  # the end-of-run analysis; "analysis_seconds/<part>" per part
# A run's seconds by part, as metrics "seconds/<part>" ("seconds/other": what the parts leave)
PART_SECONDS = "seconds"
PART_SETUP, PART_MEASURE, PART_INPUTS = "setup", "measure", "inputs"  # model and optimiser; settings; dataset inputs
PART_TRAIN, PART_VALIDATION, PART_LOGGING, PART_FRAMES = "train", "validation", "logging", "frames"
PART_TEST, PART_ENCODE, PART_FIGURES, PART_ANALYSIS, PART_MODEL = "test", "encode", "figures", "analysis", "model"

# --- Frames: per-epoch images on MLflow's image slider (aevae.training.frames) ---------
# Image keys, each logged with the epoch as its step. The AE's prior frames use the VAE's
# key, so MLflow's run comparison lines the two up; their caption says the AE has no prior.
FRAME_RECONSTRUCTIONS = "frames/reconstructions"  # fixed test images over their reconstructions
FRAME_PRIOR = "frames/prior_decodes"  # fixed N(0, I) draws, decoded
FRAME_LATENT = "frames/latent"  # means of fixed test images, 2-d latents only
FRAME_KEYS = (FRAME_RECONSTRUCTIONS, FRAME_PRIOR, FRAME_LATENT)
