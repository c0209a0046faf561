"""Versions of a grid: the same grid run again for other code, beside the earlier runs.

A version is named by its label, a run tag (`names.VERSION_LABEL`). A cell counts as
finished when the grid has a FINISHED run of the same config hash *and* the same label, and
`--force` retires only that version's runs, so running a grid for new code never hides or
deletes the numbers of the old code: the report shows one version, `aevae compare` two.

The default label is the checkout's short commit, plus `-dirty-<digest>` while the package's
code (aevae/) has uncommitted changes; the digest is of those changes, so two different
edits on one commit are two versions, and running the same edit again resumes its version.
Why the commit and not one unlabelled version: the config hash holds the grid's settings
but not the code, so a user who changed a model and ran `make bench` again would get every
cell skipped and the old numbers reported as the new ones. Why only aevae/ makes a label
dirty: grid files, notes and results change nothing a config trains (a grid's settings
are in the config hash already), and an uncommitted edit of lab.toml must not retrain the
whole grid. Outside a git checkout the label is '' (the unlabelled version, which is also
where every run logged before versions existed belongs).

Light: no MLflow, no torch (the report and `aevae compare` pick versions with it).
"""

from __future__ import annotations

import functools
import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from aevae.errors import AevaeError

# Labels go into MLflow filter strings and experiment tag names: no quotes, no '/', and
# not '.' or '..', which MLflow refuses as tag names that read like paths.
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
COMMIT_CHARS = 7  # as `git log --oneline` shows a commit
DIGEST_CHARS = 6
PACKAGE = Path(__file__).resolve().parents[1]  # the aevae/ folder whose code a run runs


class VersionError(AevaeError):
    """A label that cannot name a version, or a version that a grid does not have."""


def check_label(label: str) -> str:
    if label and not LABEL.match(label):
        raise VersionError(f"label '{label}' cannot name a version: use up to 64 letters, digits, "
                           f"'_', '.' or '-', starting with a letter or digit.")
    return label


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, check=True,
                          timeout=30).stdout.decode("utf-8", "replace")


def _uncommitted_digest(folder: Path) -> str:
    """A digest of the uncommitted changes under `folder`, new files included; '' when none."""
    diff = _git(folder, "diff", "HEAD", "--no-ext-diff", "--binary", "--", ".")
    listed = _git(folder, "ls-files", "--others", "--exclude-standard", "-z", "--", ".")
    new_files = sorted(name for name in listed.split("\0") if name)
    if not diff and not new_files:
        return ""
    digest = hashlib.sha256(diff.encode())
    for name in new_files:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return digest.hexdigest()[:DIGEST_CHARS]


def code_label(folder: Path) -> str:
    """The short commit of the git checkout holding `folder`, `-dirty-<digest>` added while
    `folder` has uncommitted changes; '' outside a git checkout."""
    try:
        commit = _git(folder, "rev-parse", "HEAD").strip()
        changes = _uncommitted_digest(folder)
    except (OSError, subprocess.SubprocessError):
        return ""
    label = commit[:COMMIT_CHARS]
    return f"{label}-dirty-{changes}" if changes else label


@functools.cache
def default_label() -> str:
    """The label of the code aevae runs: `code_label` of its package folder."""
    return code_label(PACKAGE)


@dataclass(frozen=True)
class Version:
    """One version of a grid as its runs tell it: first run's start (ms since the epoch),
    its run count and the git commits its runs recorded."""

    label: str
    first_start: int
    runs: int
    commits: frozenset[str]


def versions_of(runs: Iterable[tuple[str, int, str]]) -> list[Version]:
    """The versions of (label, start time in ms, git commit) rows, oldest first: in the order
    they were first run, so resuming an old version later does not make it the newest."""
    found: dict[str, list] = {}
    for label, start, commit in runs:
        first, count, commits = found.get(label, (start, 0, set()))
        commits.add(commit or "")
        found[label] = [min(first, start), count + 1, commits]
    versions = [Version(label, first, count, frozenset(commits - {""}))
                for label, (first, count, commits) in found.items()]
    return sorted(versions, key=lambda v: (v.first_start, v.label))


def listing(versions: list[Version]) -> str:
    return ", ".join(f"{v.label or '(unlabelled)'} ({v.runs} runs)" for v in versions) or "none"


def pick(versions: list[Version], wanted: str | None, where: str) -> Version:
    """The version `wanted` names: its label, else the one version whose label starts with it
    or whose runs ran a commit starting with it (4+ characters); None: the newest. `where`
    names the grid in errors."""
    if not versions:
        raise VersionError(f"{where} has no runs yet, so no version: run the grid first.")
    if wanted is None:
        return versions[-1]
    exact = [v for v in versions if v.label == wanted]
    if exact:
        return exact[0]
    matches = [v for v in versions if wanted and v.label.startswith(wanted)]
    if not matches and len(wanted) >= 4:
        matches = [v for v in versions if any(c.startswith(wanted) for c in v.commits)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise VersionError(f"'{wanted}' names {len(matches)} versions of {where} ({listing(matches)}): "
                           f"give the whole label.")
    raise VersionError(f"{where} has no version '{wanted}'; its versions, oldest first: "
                       f"{listing(versions)}.")
