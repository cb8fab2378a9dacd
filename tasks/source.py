"""`source`: the pinned sdist from the package index (hash checked), or a local checkout.

Either way the tree ends up unpacked at `work/source/tree`, and `work/source/source.json` (the
task's target) records where it came from and the sdist's sha256.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from . import fsio
from . import project as P
from .config import Config
from .errors import UserError
from .runner import Runner, pip, run

# Folders of a checkout that are never part of the source.
_SKIP = {".git", ".hg", ".svn", "__pycache__", ".doit.db", ".tox", ".nox", ".venv", "venv", "build", "dist"}


def fetch(config: Config, runner: Runner = run) -> None:
    """Get the sdist (or checkout) and unpack it; the record is written last."""
    paths = P.paths(config)
    record = paths.source_record
    record.unlink(missing_ok=True)
    if config.local_source is None:
        sdist = download(config, paths.downloads, runner)
        digest = _sha256(sdist)
        _check_pin(config, sdist.name, digest)
        epoch = _unpack(sdist, paths.source_tree)
        fsio.write_json(record, {"origin": "index", "sdist": sdist.name, "sha256": digest, "epoch": epoch})
    else:
        epoch = _copy_tree(config.local_source, paths.source_tree, exclude=config.build_dir)
        fsio.write_json(record, {"origin": "path", "path": str(config.local_source), "epoch": epoch})


def download(config: Config, folder: Path, runner: Runner = run) -> Path:
    """The sdist of package==version, from the cache folder or through pip (index hash checked)."""
    cached = _find_sdist(folder, config.package, config.version)
    if cached:
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    spec = f"{config.package}=={config.version}"
    # pip writes into a private folder; only a complete download is renamed into the cache.
    for stale in folder.glob(".download-*"):  # left by a killed run (we hold the run lock)
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
        result = runner(_download_argv(config, tmp, isolated=False))
        if result.returncode != 0 and "No matching distribution" not in result.stderr:
            result = runner(_download_argv(config, tmp, isolated=True))
        if result.returncode != 0:
            raise UserError(_explain_pip_failure(config, result.stderr))
        found = _find_sdist(Path(tmp), config.package, config.version)
        if not found:
            raise UserError(f"pip downloaded no sdist for {spec}: the release needs a source distribution")
        return found.rename(folder / found.name)


def _download_argv(config: Config, dest: str, isolated: bool) -> list[str]:
    """pip download of the package's sdist.  pip reads the sdist's metadata once it has it;
    with this Python's build backends (no isolation) that costs no index look-up, where an
    isolated build environment is installed first.  Only the package itself is asked as an
    sdist: `--no-binary :all:` would build the backend's own requirements (Cython) from source."""
    spec = f"{config.package}=={config.version}"
    flags = [] if isolated else ["--no-build-isolation"]
    return pip("download", "--no-deps", "--no-binary", config.package, *flags, "--dest", dest, spec)


def _explain_pip_failure(config: Config, stderr: str) -> str:
    versions = re.search(r"\(from versions: ([^)]*)\)", stderr)
    if versions and versions.group(1).strip() == "none":
        return f"package {config.package!r} has no source release on the package index: check package="
    if versions:
        known = versions.group(1).split(", ")
        return (f"{config.package} has no version {config.version!r} on the package index: "
                f"give version= one of {', '.join(known[-5:])}")
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return f"pip could not download {config.package}=={config.version} ({tail[0].strip()}): check the network and pip's index settings"


def _find_sdist(folder: Path, package: str, version: str) -> Path | None:
    if not folder.is_dir():
        return None
    wanted = re.sub(r"[-_.]+", "_", package).lower()
    for path in sorted(folder.iterdir()):
        stem = _sdist_stem(path.name)
        if stem and stem.rpartition("-")[2] == version \
                and re.sub(r"[-_.]+", "_", stem.rpartition("-")[0]).lower() == wanted:
            return path
    return None


def _sdist_stem(name: str) -> str | None:
    for suffix in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_pin(config: Config, name: str, digest: str) -> None:
    pinned = config.sha256.get(name)
    if pinned and pinned != digest:
        raise UserError(
            f"{name} has sha256 {digest}, but recipe/release.toml pins {pinned}: "
            "remove the file from build/downloads and retry, or update the pin"
        )


def _unpack(sdist: Path, tree: Path) -> int:
    """Unpack with the top folder stripped; members that would land outside the tree are refused.

    Returns the newest member's mtime: the packages' timestamp, so rebuilds are byte-identical.
    """
    epoch = 0
    staging = fsio.fresh_dir(tree.with_name(tree.name + ".part"))
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                for info in archive.infolist():
                    target = _inside(staging, info.filename)
                    if target and not info.is_dir():
                        epoch = max(epoch, int(datetime.datetime(*info.date_time).timestamp()))
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(archive.read(info))
        else:
            with tarfile.open(sdist) as archive:
                for member in archive.getmembers():
                    target = _inside(staging, member.name)
                    if target and member.isfile():
                        epoch = max(epoch, int(member.mtime))
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(archive.extractfile(member).read())
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, UserError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, UserError):
            raise
        raise UserError(f"{sdist} is not a readable sdist ({err}): delete it and run again") from None
    shutil.rmtree(tree, ignore_errors=True)
    staging.rename(tree)
    return epoch


def _inside(root: Path, name: str) -> Path | None:
    """Where an sdist member goes with its top folder stripped; None for the top folder itself."""
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts:
        raise UserError(f"the sdist holds an unsafe path {name!r}: it will not be unpacked")
    return root.joinpath(*parts[1:]) if len(parts) > 1 else None


def _copy_tree(source: Path, tree: Path, exclude: Path) -> int:
    """Copy a checkout without VCS folders or build outputs; returns its newest file's mtime."""
    staging = tree.with_name(tree.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    excluded = exclude.resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _SKIP or n.endswith(".egg-info")
                or (Path(folder) / n).resolve() == excluded}

    shutil.copytree(source, staging, ignore=ignore, symlinks=True)
    shutil.rmtree(tree, ignore_errors=True)
    staging.rename(tree)
    return max((int(p.stat().st_mtime) for p in tree.rglob("*") if p.is_file()), default=0)


def checkout_fingerprint(source: Path, exclude: Path) -> str:
    """A cheap fingerprint of a checkout (paths, sizes, mtimes) for doit's uptodate check."""
    digest = hashlib.sha256()
    excluded = exclude.resolve()
    for folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in sorted(dirs) if d not in _SKIP and not d.endswith(".egg-info")
                   and (Path(folder) / d).resolve() != excluded]
        for name in sorted(files):
            stat = (Path(folder) / name).stat()
            digest.update(f"{folder}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()

