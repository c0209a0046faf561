"""Folders a command will write into (a results folder, a report's folder, the folder of a
SQLite store or a study journal), checked before any work starts and created only when
something is written there, so a command that fails early leaves no empty folder behind.

Light: the CLI's option checks run before torch or MLflow is imported.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from aevae.errors import AevaeError


def cache_dir() -> Path:
    """aevae's cache (reference classifiers, decoded image folders): `$AEVAE_CACHE_DIR`, else
    `~/.cache/aevae`; never a data folder, which may be read-only."""
    return Path(os.environ.get("AEVAE_CACHE_DIR") or Path.home() / ".cache" / "aevae")


class FolderError(AevaeError):
    """A folder that cannot be written, or a path that is not a folder."""


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its closest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: str | Path, what: str, hint: str) -> None:
    """Raise FolderError unless files can be written into `folder` (created later, if it
    does not exist yet). The probe writes and deletes one file in the nearest existing
    folder, since permission bits do not tell (root, read-only mounts, ACLs); it creates no
    folder. `what` names the folder ('the results folder'), `hint` the option that sets it."""
    if not str(folder).strip():  # Path("") would quietly mean the current folder
        raise FolderError(f"{what} is an empty path: give a folder with {hint}.")
    folder = Path(folder)
    existing = nearest_existing(folder)
    if not existing.is_dir():
        shown = "" if existing == Path(os.path.abspath(folder)) else f" (in {folder})"
        raise FolderError(f"{what} {folder} cannot be created: {existing} is a file{shown}; "
                          f"give another folder with {hint}.")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".aevae-probe-"):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        where = "" if existing == Path(os.path.abspath(folder)) else f" (checked in {existing})"
        raise FolderError(f"{what} {folder} cannot be written ({reason}{where}); give a writable "
                          f"folder with {hint}.") from None


def remove_if_empty(created: list[Path]) -> None:
    """Remove the folders in `created` (deepest first) that are still empty."""
    for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:  # not empty (something was written there), or already gone
            pass


def missing_folders(folder: str | Path) -> list[Path]:
    """The folders that creating `folder` would create, outermost first."""
    path = Path(os.path.abspath(folder))
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]
