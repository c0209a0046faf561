"""Checksums and downloads of the original dataset files.

Files already on disk are verified, never re-fetched; missing ones are downloaded with
pooch, which checks the md5 before it moves a file into place, so a broken download never
lands in the data folder.
"""

from __future__ import annotations

import os
import sys

import pooch

from aevae.data.spec import RemoteFile
from aevae.errors import DataError
from aevae.folders import missing_folders, remove_if_empty


def verify(path: str, remote: RemoteFile) -> None:
    """Raise DataError unless the file at `path` has the publisher's md5."""
    actual = pooch.file_hash(path, alg="md5")
    if actual != remote.md5:
        raise DataError(
            f"{path} fails its checksum (md5 {actual}, expected {remote.md5}): delete it so "
            f"aevae downloads it again, or replace it with the original file."
        )


def fetch_missing(title: str, folder: str, files: list[RemoteFile], mirrors: tuple[str, ...],
                  wanted: str | None = None) -> None:
    """Download `files` into `folder`, trying each mirror; one clear error if none works.
    `wanted` describes what would do instead, for the message (default: the file names)."""
    reasons = []
    created = missing_folders(folder)  # removed again if nothing could be downloaded into them
    # pooch's own notice goes through a handler bound to the stderr of its first import;
    # announce downloads here instead, on the stderr of now.
    pooch.get_logger().setLevel("WARNING")
    for remote in files:
        for mirror in mirrors:
            print(f"downloading {mirror}{remote.name} to {folder}", file=sys.stderr)
            try:
                pooch.retrieve(
                    url=mirror + remote.name,
                    known_hash=f"md5:{remote.md5}",
                    fname=remote.name,
                    path=folder,
                    progressbar=True,
                )
                break
            except Exception as exc:  # requests, OS and checksum errors alike
                reasons.append(f"{mirror}: {type(exc).__name__}")
        else:
            remove_if_empty(created)
            wanted = wanted or ", ".join(f.name for f in files)
            raise DataError(
                f"{title} needs {wanted} in {folder}, and downloading failed "
                f"({'; '.join(reasons[-len(mirrors):])}): copy the original files there or "
                f"point --data-dir / AEVAE_DATA_DIR at a folder that has them."
            )


def ensure(title: str, folder: str, files: tuple[RemoteFile, ...], mirrors: tuple[str, ...],
           wanted: str | None = None) -> list[str]:
    """Paths of `files` in `folder`, downloaded if missing and verified either way."""
    missing = [f for f in files if not os.path.isfile(os.path.join(folder, f.name))]
    if missing:
        fetch_missing(title, folder, missing, mirrors, wanted)
    paths = []
    for remote in files:
        path = os.path.join(folder, remote.name)
        verify(path, remote)
        paths.append(path)
    return paths
