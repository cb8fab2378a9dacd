"""`build:<py>` and `convert:<py>` around the engines: published bytes come back, never a new copy.

conda-build and `conda convert` are not reproducible (build time, `.pyc` headers, work paths,
archive times), so a package made again from the very inputs that were published differs from
what the target holds, and its upload would stop on the conflict for good.  The rule, for both
engines and every target:

- each upload stamp records `inputs`, the digest of what went into the file (`inputs` below);
- when a build or conversion runs and the stamp of one of its outputs says those same inputs
  were published, the published bytes are fetched back (the local channel's copy, or a download
  from anaconda.org or quetz, checked against the stamp's sha256) instead of making a new copy;
  the stamp is then removed, so the upload confirms with the target again and records `restored`;
- other inputs under the same file name are built, and meet the conflict at the upload, named.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from . import fsio
from . import project as P
from .config import Config
from .errors import UserError


def inputs(config: Config, artifact: P.Artifact) -> str | None:
    """The digest of what shapes one package file: the recipe (meta.yaml as patched; with the
    Python and subdir it decides the rendering), the source (sdist sha256, or the checkout's
    fingerprint), the settings that change the bytes, the engine, and for a converted file the
    converter.  None when the recipe or source record is gone (nothing to compare with)."""
    paths = P.paths(config)
    try:
        recipe, source_record = paths.meta.read_bytes(), paths.source_record.read_bytes()
    except FileNotFoundError:
        return None
    parts: dict[str, Any] = {
        "recipe": hashlib.sha256(recipe).hexdigest(), "source": hashlib.sha256(source_record).hexdigest(),
        "python": artifact.python, "subdir": artifact.subdir,
        **config.subset("package", "version", "format", "build_number", "noarch", "engine"),
    }
    if config.local_source is not None:  # source.json holds only the tree's newest mtime
        from .source import checkout_fingerprint

        parts["checkout"] = checkout_fingerprint(config.local_source, config.build_dir)
    if artifact.path.is_relative_to(paths.platform_builds):
        parts["converter"] = config.converter
    if config.engine == "conda":  # conda-build resolves the host environment from them
        parts["channels"] = list(config.channels)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def build(config: Config, artifact: P.Artifact) -> None:
    """`build:<py>`: the published package back, or the engine's build of it."""
    if restore(config, artifact):
        return
    if config.engine == "conda":
        from . import conda_engine

        conda_engine.build(config, artifact.python, artifact.subdir, artifact.path)
    else:
        from . import build as embedded

        embedded.build(config, artifact.python, artifact.subdir, artifact.path)


def convert(config: Config, source: Path, artifacts: Sequence[P.Artifact]) -> None:
    """`convert:<py>`: every output published from these inputs comes back; the converter makes
    the others, in one run, as `conda convert -p A -p B …` does."""
    outputs = [(a.subdir, a.path) for a in artifacts if not restore(config, a)]
    if not outputs:
        return
    if config.converter == "conda":
        from . import conda_engine

        log = P.paths(config).log(f"conda-convert-{source.name}")
        conda_engine.convert(source, outputs, force=config.force, log=log)
    else:
        from . import convert as in_house

        in_house.convert_release(config, artifacts[0].python, source, outputs, force=config.force)


def restore(config: Config, artifact: P.Artifact) -> bool:
    """Put the published bytes of artifact at its path when its stamp says they were made from
    today's inputs; True when the path holds them (restored now, or there already)."""
    stamp = _stamp(P.stamp(config, artifact))
    if stamp is None or stamp.get("inputs") is None or stamp["inputs"] != inputs(config, artifact):
        return False
    marker = P.restored_marker(artifact.path)
    if artifact.path.is_file() and fsio.file_digests(artifact.path)["sha256"] == stamp["sha256"]:
        return True
    from .upload import fetch

    try:
        where = fetch(config, artifact, stamp)
    except UserError as err:  # the target lost it, or cannot say: make it again, the upload decides
        print(f"cannot restore {artifact.key} ({err}): making it again")
        return False
    fsio.write_json(marker, {"sha256": stamp["sha256"], "from": where})
    P.stamp(config, artifact).unlink(missing_ok=True)  # the upload confirms it with the target again
    print(f"restored {artifact.key} from {where}")
    return True


def was_restored(package: Path, sha256: str) -> bool:
    """Whether package holds bytes restore() fetched back (its marker names the same sha256)."""
    record = _stamp(P.restored_marker(package))
    return record is not None and record.get("sha256") == sha256


def _stamp(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
