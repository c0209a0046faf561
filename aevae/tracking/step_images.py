"""Reading back the images a run logged with a key and a step (`MlflowClient.log_image(run_id,
image, key=..., step=...)`, what MLflow's image slider shows). MLflow has no API that lists
them: it stores each one as an artifact under `images/` whose file name carries the key, the
step, a timestamp and a uuid, and its UI parses those names. This module parses them the
same way, so that knowledge of MLflow's layout stays in the tracking door.

Light: it imports no MLflow; `StoreReader.step_images` lists the artifacts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IMAGES_FOLDER = "images"
# images/<key, '/' as '~'>+step+<step>+timestamp+<ms>+<uuid>.png (MLflow 3.x); MLflow 2.x wrote
# '%' for '+' and '#' for '/'. The '+compressed.webp' twin is the UI's thumbnail: skipped.
_NAME = re.compile(r"^(?P<key>.+?)[+%]step[+%](?P<step>\d+)[+%]timestamp[+%](?P<timestamp>\d+)"
                   r"[+%](?P<uuid>[0-9a-fA-F-]+)\.png$")


@dataclass(frozen=True)
class StepImage:
    """One stored image of a key: its step, when it was logged (ms) and its artifact path."""

    key: str
    step: int
    timestamp: int
    path: str


def parse(path: str) -> StepImage | None:
    """The image an artifact path under `images/` holds, or None for any other file."""
    name = path.rsplit("/", 1)[-1]
    match = _NAME.match(name)
    if match is None:
        return None
    key = match["key"].replace("~", "/").replace("#", "/")
    return StepImage(key, int(match["step"]), int(match["timestamp"]), path)


def by_key(paths: list[str]) -> dict[str, list[StepImage]]:
    """`key -> images sorted by step` of the given artifact paths; where one step was logged
    twice, the later image counts."""
    latest: dict[tuple[str, int], StepImage] = {}
    for image in filter(None, map(parse, paths)):
        known = latest.get((image.key, image.step))
        if known is None or image.timestamp >= known.timestamp:
            latest[(image.key, image.step)] = image
    keyed: dict[str, list[StepImage]] = {}
    for image in sorted(latest.values(), key=lambda i: (i.key, i.step)):
        keyed.setdefault(image.key, []).append(image)
    return keyed
