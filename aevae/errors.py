"""Errors a user can cause and fix. Each message is one sentence that says what to do;
the CLI prints it without a traceback (a traceback is for bugs)."""

import os


class AevaeError(Exception):
    """Base of every error the CLI reports as a plain message."""


class ConfigError(AevaeError, ValueError):
    """A config field, name or value that does not exist or is out of range."""


class DataError(AevaeError):
    """A dataset file that is missing, corrupt, or cannot be downloaded."""


class TrainingFailed(AevaeError):
    """A run that cannot go on (for example a NaN or infinite loss)."""


def unknown_name(kind: str, name: str, valid) -> ConfigError:
    """The error for a lookup of a name that is not in a registry."""
    return ConfigError(f"unknown {kind} '{name}'; valid {kind}s: {', '.join(sorted(valid))}.")


DEBUG_ENV = "AEVAE_DEBUG"  # set (to 1) by --debug, so bench's worker processes see it too


def debugging() -> bool:
    """Whether tracebacks are wanted: `--debug`, or AEVAE_DEBUG=1 in the environment."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
