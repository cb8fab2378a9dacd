"""`upload:<subdir>/<file>`: publish one artifact to the configured target, then stamp it.

One seam for every target: `local` (an indexed conda channel folder, `build/channel`),
`anaconda` (anaconda-client) and `quetz`.  Each returns only what the target confirmed; the stamp
is deleted first and written last, so a stamp on disk always means "the server has these bytes".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterator

from . import fsio, restore
from . import project as P
from .config import Config
from .errors import UserError

Publisher = Callable[[Config, P.Artifact, dict[str, Any]], dict[str, Any]]


def publish(config: Config, artifact: P.Artifact) -> None:
    stamp = P.stamp(config, artifact)
    stamp.unlink(missing_ok=True)
    if not artifact.path.exists():
        raise UserError(f"{artifact.path} is missing: run `doit` to build it first")
    digests = fsio.file_digests(artifact.path)
    confirmed = _PUBLISHERS[config.target](config, artifact, digests)
    if confirmed.get("sha256") not in (None, digests["sha256"]) or \
            confirmed.get("md5") not in (None, digests["md5"]):
        raise UserError(f"{config.target} holds {artifact.key} with other content than was sent: "
                        "run `doit upload` again, or with force=true")
    state = confirmed["state"]
    if state == "skipped" and restore.was_restored(artifact.path, digests["sha256"]):
        state = "restored"  # the target had it; the file was fetched back rather than rebuilt
    print(f"{state} {artifact.key} -> {confirmed['url']}")
    fsio.write_json(stamp, {
        "file": artifact.filename, "subdir": artifact.subdir, "target": config.target,
        "owner": config.owner if config.target == "anaconda" else None, "labels": list(config.labels),
        "size": digests["size"], "sha256": digests["sha256"], "xxh3": digests["xxh3"],
        "state": state, "url": confirmed["url"], "inputs": restore.inputs(config, artifact),
    })
    P.restored_marker(artifact.path).unlink(missing_ok=True)


def _local(config: Config, artifact: P.Artifact, digests: dict[str, Any]) -> dict[str, Any]:
    """Copy into the channel folder and index its subdir, under a per-subdir lock."""
    from .verify import check_archive

    check_archive(artifact.path)  # a corrupt file must never enter the channel
    channel = P.paths(config).channel
    destination = channel / artifact.subdir / artifact.filename
    with locked(channel / artifact.subdir / ".lock"):
        state = _place(config, artifact, destination, digests)
        index(channel, artifact.subdir)
        record = _repodata_record(channel, artifact)
    if record is None:
        raise UserError(f"the channel index does not list {artifact.key} after indexing: "
                        f"delete {channel / artifact.subdir / 'repodata.json'} and run again")
    return {"state": state, "url": destination.as_uri(), "sha256": record.get("sha256"),
            "md5": record.get("md5")}


def _place(config: Config, artifact: P.Artifact, destination: Path, digests: dict[str, Any]) -> str:
    if destination.exists():
        existing = fsio.file_digests(destination)["sha256"]
        if existing == digests["sha256"]:
            return "skipped"
        if not config.force:
            raise UserError(
                f"the channel already has {artifact.key} with sha256 {existing}, ours is "
                f"{digests['sha256']}: bump build-number, or replace it with force=true"
            )
    fsio.copy_file(artifact.path, destination)
    return "uploaded"


def index(channel: Path, subdir: str) -> None:
    """Write repodata.json for subdir (and the noarch one conda clients expect, if missing).

    Only repodata.json: the zstd and sharded variants cost ~40x the time of the index itself
    (0.17 s against 4 ms a subdir, measured), and a stale copy of either would shadow the fresh
    JSON for clients that prefer them, so any left from elsewhere are removed.
    """
    import rattler.index
    from rattler import Subdir

    for stale in ("repodata.json.zst", "repodata_shards.msgpack.zst"):
        (channel / subdir / stale).unlink(missing_ok=True)
    try:
        for name in dict.fromkeys((subdir, "noarch")):
            if name == subdir or not (channel / name / "repodata.json").exists():
                (channel / name).mkdir(parents=True, exist_ok=True)
                # A coroutine: unawaited, it silently does nothing.  force: a file replaced under
                # the same name (force=true) must be read again.
                asyncio.run(rattler.index.index_fs(channel, target_platform=Subdir(name), force=True,
                                                   write_zst=False, write_shards=False))
    except Exception as err:  # rattler raises its own types for unreadable files and folders
        raise UserError(f"indexing {channel / subdir} failed ({str(err).splitlines()[0]}): remove the "
                        "files that are not conda packages from it and run doit again") from None


def _repodata_record(channel: Path, artifact: P.Artifact) -> dict[str, Any] | None:
    repodata = json.loads((channel / artifact.subdir / "repodata.json").read_text())
    section = "packages.conda" if artifact.filename.endswith(".conda") else "packages"
    return repodata.get(section, {}).get(artifact.filename)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock: parallel tasks and runs take turns on a channel subdir (filelock: flock
    on POSIX, msvcrt on Windows)."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path, thread_local=False):
        yield


def _anaconda(config: Config, artifact: P.Artifact, digests: dict[str, Any]) -> dict[str, Any]:
    """`anaconda upload --user OWNER`, through anaconda-client's API, idempotent by content."""
    from . import anaconda
    from .config import secrets

    token = secrets().anaconda_token
    if not token:
        raise UserError("no anaconda.org token: run `anaconda login`, or set ANACONDA_API_TOKEN")
    confirmed = anaconda.publish(artifact.path, artifact.subdir, owner=config.owner, labels=config.labels,
                                 force=config.force, token=token, retries=config.retries,
                                 timeout=config.timeout)
    return dataclasses.asdict(confirmed)


def _quetz(config: Config, artifact: P.Artifact, digests: dict[str, Any]) -> dict[str, Any]:
    """POST to a quetz channel with the API key, idempotent by content."""
    from . import quetz
    from .config import secrets

    key = secrets().quetz_api_key
    if not key:
        raise UserError("no quetz API key: set QUETZ_API_KEY (create one in quetz under API keys)")
    confirmed = quetz.publish(artifact.path, artifact.subdir, url=config.quetz_url, channel=config.channel,
                              api_key=key, force=config.force, retries=config.retries, timeout=config.timeout)
    return dataclasses.asdict(confirmed)


_PUBLISHERS: dict[str, Publisher] = {"local": _local, "anaconda": _anaconda, "quetz": _quetz}


def fetch(config: Config, artifact: P.Artifact, stamp: dict[str, Any]) -> str:
    """Write the bytes the target holds for artifact (as its stamp records them) at artifact.path,
    checked against the stamp's sha256 before they replace anything; return where they came from."""
    with fsio.atomic_path(artifact.path) as tmp:
        where = _FETCHERS[config.target](config, artifact, stamp, tmp)
        got = fsio.file_digests(tmp)["sha256"]
        if got != stamp["sha256"]:
            raise UserError(f"{where} holds sha256 {got}, the stamp {stamp['sha256']}")
    return where


def _fetch_local(config: Config, artifact: P.Artifact, stamp: dict[str, Any], into: Path) -> str:
    held = P.paths(config).channel / artifact.subdir / artifact.filename
    if not held.is_file():
        raise UserError(f"{held} is gone")
    import shutil

    shutil.copyfile(held, into)
    return str(held)


def _fetch_anaconda(config: Config, artifact: P.Artifact, stamp: dict[str, Any], into: Path) -> str:
    from . import anaconda
    from .config import secrets

    anaconda.download(artifact.key, into, owner=config.owner, token=secrets().anaconda_token,
                      timeout=config.timeout)
    return stamp["url"]


def _fetch_quetz(config: Config, artifact: P.Artifact, stamp: dict[str, Any], into: Path) -> str:
    from . import quetz
    from .config import secrets

    quetz.download(stamp["url"], into, api_key=secrets().quetz_api_key, timeout=config.timeout)
    return stamp["url"]


_FETCHERS = {"local": _fetch_local, "anaconda": _fetch_anaconda, "quetz": _fetch_quetz}


# -- what a target holds, for `doit status --remote` ------------------------------------------


def held(config: Config, artifact: P.Artifact) -> str | None:
    """The sha256 of the file the target holds under this artifact's name, or None (absent)."""
    return _HOLDERS[config.target](config, artifact)


def _held_local(config: Config, artifact: P.Artifact) -> str | None:
    copy = P.paths(config).channel / artifact.subdir / artifact.filename
    return fsio.file_digests(copy)["sha256"] if copy.exists() else None


def _held_anaconda(config: Config, artifact: P.Artifact) -> str | None:
    from . import anaconda
    from .config import secrets

    return anaconda.held(config.package, config.version, artifact.subdir, artifact.filename, owner=config.owner,
                         token=secrets().anaconda_token, timeout=config.timeout)


def _held_quetz(config: Config, artifact: P.Artifact) -> str | None:
    from . import quetz
    from .config import secrets

    return quetz.held(config.package, artifact.subdir, artifact.filename, url=config.quetz_url,
                      channel=config.channel, api_key=secrets().quetz_api_key, timeout=config.timeout)


_HOLDERS: dict[str, Callable[[Config, P.Artifact], str | None]] = {
    "local": _held_local, "anaconda": _held_anaconda, "quetz": _held_quetz,
}
