"""`manifest`: build/release.json, what the release published where; and `doit clean`."""

from __future__ import annotations

import json
import shutil
from typing import Sequence

from . import fsio
from . import project as P
from .config import Config


def write(config: Config, published: Sequence[P.Artifact]) -> None:
    """Collect the upload stamps (each one what the target confirmed) into one JSON file."""
    entries = [json.loads(P.stamp(config, artifact).read_text()) for artifact in published]
    fsio.write_json(P.paths(config).manifest, {**header(config), "files": entries})


def header(config: Config) -> dict:
    """What release.json (and `doit status --json`) says of the release before its files."""
    origin = P.paths(config).recipe_origin
    return {
        "package": config.package, "version": config.version, "target": config.target,
        "owner": config.owner, "labels": list(config.labels),
        "channels": list(config.channels),  # what builds and the verify install resolved from
        "recipe": json.loads(origin.read_text()) if origin.is_file() else None,  # grayskull or the wheel
    }


def clean(config: Config) -> None:
    """Remove the build outputs (conda-bld, platform-builds, work), as `conda build purge` does.

    Stamps, downloads and the channel stay: they record what was published, and rebuilt
    packages are byte-identical, so a later run finds them already there.
    """
    for folder in P.paths(config).cleaned():
        if folder.exists():
            shutil.rmtree(folder)
            print(f"removed {folder}")
