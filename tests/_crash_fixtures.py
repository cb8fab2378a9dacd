"""Shared set-up for the reliability, bad-input and secrets tests.

One uninterrupted release of the tiny sdist (`tiny_release`, session scope) is the reference: its
build folder is snapshotted, and each scenario restores the snapshot *at the same path* (doit's
database holds absolute paths), removes what its fault needs to rerun, then runs doit, through
tests/_crash_run.py when a fault is injected.  An anaconda.org stand-in (`anaconda`) with
anaconda-client configured in a temporary HOME serves the target=anaconda scenarios.

Test modules load this with `pytest_plugins = ("_crash_fixtures",)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from anaconda_server import AnacondaServer
from conftest import TINY_ARGS, Project, new_project

ROOT = Path(__file__).resolve().parent.parent
CRASH_RUN = Path(__file__).resolve().parent / "_crash_run.py"
OWNER, USER = "pingthings", "looselycoupled"
TOKEN = "tok-SECRET-1234567890abcdef"  # recognisable: the secrets scan looks for it everywhere
PY36 = "crdagtiny-1.0.0-py36_0.tar.bz2"
PY37 = "crdagtiny-1.0.0-py37_0.tar.bz2"
SUBDIRS = ("linux-64", "win-64", "osx-arm64")
# Files whose bytes differ between two equal runs for reasons that are not the release's content.
_VOLATILE = (".doit.db", ".lock")


@dataclasses.dataclass
class Released:
    """The reference release and the means to put its tree back before each scenario."""

    project: Project
    snapshot: Path
    reference: dict[str, bytes]

    @property
    def build(self) -> Path:
        return self.project.build

    def restore(self, *drop: str) -> Project:
        """The build folder as the reference run left it, minus the paths (globs) in drop."""
        if self.build.exists():
            shutil.rmtree(self.build)
        shutil.copytree(self.snapshot, self.build, symlinks=True)
        for pattern in drop:
            for path in sorted(self.build.glob(pattern), reverse=True):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        return self.project

    def run(self, *args: str, crash: dict | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        return run_doit(self.project, *args, crash=crash, env=env, timeout=timeout)


def run_doit(project: Project, *args: str, crash: dict | None = None, env: dict[str, str] | None = None,
             timeout: float = 300, popen: bool = False):
    """doit in project through the fault injector, in its own session (a group kill stays there)."""
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environ["CRASH_AT"] = json.dumps(crash or {})
    argv = [sys.executable, str(CRASH_RUN), *args]
    if popen:
        return subprocess.Popen(argv, cwd=project.root, env=environ, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    return subprocess.run(argv, cwd=project.root, env=environ, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


def killed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == -signal.SIGKILL


def outputs(build: Path) -> dict[str, bytes]:
    """What a release leaves that must not depend on how it got there: packages, channel and its
    index, source record, recipes, stamps, manifest, verify stamp.

    Two normalisations, both for reasons outside the release's content: upload stamps and the
    manifest are compared without `state` (a re-run after a crash finds its own earlier upload:
    `skipped`), and the channel index without rattler's `indexed_timestamp` (the index is
    rewritten at every upload, so its derived files .zst / shards are not compared byte-wise)."""
    found: dict[str, bytes] = {}
    for path in sorted(build.rglob("*")):
        rel = path.relative_to(build).as_posix()
        if not path.is_file() or path.name in _VOLATILE or _is_temporary(rel) \
                or rel.startswith(("work/stage/", "work/wheel/", "work/source/tree/", "downloads/")) \
                or (rel.startswith("channel/") and _derived_index(rel)):
            continue
        data = path.read_bytes()
        if rel.startswith("stamps/") and rel.endswith(".tar.bz2.json"):
            data = _without_state(json.loads(data))
        elif rel == "release.json":
            manifest = json.loads(data)
            manifest["files"] = [json.loads(_without_state(entry)) for entry in manifest["files"]]
            data = json.dumps(manifest, sort_keys=True).encode()
        elif rel.startswith("channel/") and path.name == "repodata.json":
            repodata = json.loads(data)
            for group in ("packages", "packages.conda"):
                for record in repodata.get(group, {}).values():
                    record.pop("indexed_timestamp", None)
            data = json.dumps(repodata, sort_keys=True).encode()
        found[rel] = data
    return found


def _derived_index(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name in ("repodata.json.zst", "repodata_shards.msgpack.zst") or "/shards/" in rel


def _is_temporary(rel: str) -> bool:
    parts = rel.split("/")
    return any(part.endswith(".part") for part in parts) or "/.tmp/" in f"/{rel}" \
        or (parts[0] == "work" and len(parts) > 1 and parts[1].startswith(("pack-", "skeleton-", "verify-")))


def _without_state(entry: dict) -> bytes:
    return json.dumps({k: v for k, v in entry.items() if k != "state"}, sort_keys=True).encode()


def leftovers(build: Path) -> list[str]:
    """What interrupted writes left behind: `.NAME.XXXX.part` files, `.part` staging folders and
    the work/ temporary folders of a killed build or skeleton."""
    found = set()
    for path in build.rglob("*"):
        rel = path.relative_to(build).as_posix()
        if _is_temporary(rel) and not rel.startswith("channel/.tmp"):
            parts = rel.split("/")
            top = next(i for i, part in enumerate(parts) if part.endswith(".part") or
                       (i == 1 and parts[0] == "work" and part.startswith(("pack-", "skeleton-", "verify-"))))
            found.add("/".join(parts[: top + 1]))
    if (build / "channel" / ".tmp").is_dir() and any((build / "channel" / ".tmp").iterdir()):
        found.add("channel/.tmp")
    return sorted(found)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory: pytest.TempPathFactory, tiny_sdist: Path) -> Released:
    """One full, uninterrupted release of the tiny sdist (3 subdirs x 2 Pythons, local channel)."""
    root = tmp_path_factory.mktemp("reliability")
    project = new_project(root / "proj", (tiny_sdist,))
    project.doit(*TINY_ARGS)
    snapshot = root / "snapshot"
    shutil.copytree(project.build, snapshot, symlinks=True)
    return Released(project, snapshot, outputs(project.build))


# -- the anaconda.org stand-in ---------------------------------------------------------------------


@dataclasses.dataclass
class Anaconda:
    server: AnacondaServer
    home: Path

    def env(self, token: str | None = TOKEN) -> dict[str, str]:
        env = {"HOME": str(self.home), "ANACONDA_TELEMETRY_ENABLED": "false"}
        if token is not None:
            env["ANACONDA_API_TOKEN"] = token
        return env

    def held(self) -> dict[str, list[str]]:
        """basename -> sha256 of every copy the server holds for OWNER."""
        copies: dict[str, list[str]] = {}
        for dist in self.server.dists:
            if dist.owner == OWNER:
                copies.setdefault(dist.basename, []).append(dist.sha256)
        return copies


@contextlib.contextmanager
def anaconda_stand_in(home: Path, token: str | None = TOKEN) -> Iterator[Anaconda]:
    """The stand-in on a free port, USER (with token) in org OWNER, anaconda-client's config in home."""
    config = home / ".continuum" / "anaconda-client" / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    with AnacondaServer() as server:
        server.add_user(USER, token)
        server.add_org(OWNER, [USER])
        config.write_text(f"url: {server.url}\n", encoding="utf-8")
        yield Anaconda(server, home)


@pytest.fixture
def anaconda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Anaconda]:
    for name in ("ANACONDA_API_TOKEN", "BINSTAR_API_TOKEN", "BINSTAR_CONFIG_DIR", "CONDA_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    with anaconda_stand_in(tmp_path / "home") as stand_in:
        yield stand_in


def published_by_anaconda(build: Path) -> dict[str, dict]:
    """The anaconda stamps by `subdir/file`."""
    stamps = build / "stamps" / "anaconda"
    return {f"{p.parent.name}/{p.name[:-5]}": json.loads(p.read_text()) for p in sorted(stamps.glob("*/*.json"))}


def local_artifacts(build: Path) -> dict[str, str]:
    """`subdir/file` -> sha256 of each artifact the release publishes (native build or conversion)."""
    found = {}
    for path in sorted(build.glob("conda-bld/*/*.tar.bz2")) + sorted(build.glob("platform-builds/*/*.tar.bz2")):
        found[f"{path.parent.name}/{path.name}"] = sha256(path)
    return found


# -- file systems a user's machine can have: read-only, full ---------------------------------------


def _mount(*argv: str) -> None:
    done = subprocess.run(["mount", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or done.returncode}): needs root in a "
                    "namespace that allows mounts")


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """folder, bind-mounted read-only over itself (root ignores mode bits, so chmod would not do)."""
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,bind,ro", str(folder))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def full_disk(folder: Path, size: str = "64k") -> Iterator[Path]:
    """A tiny tmpfs mounted at folder (hiding what was there), then filled to the last byte."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    try:
        with open(folder / "filler", "wb", buffering=0) as handle:
            for block in (65536, 4096, 512, 1):
                try:
                    while handle.write(b"\0" * block):
                        pass
                except OSError:
                    pass
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
