"""Contract tests for tasks/restore.py: a published file is never rebuilt into a conflict.

The conda engine runs through tests/fake_conda, whose `conda-build` and `conda convert` are as
unreliable as the real ones (build time, .pyc headers, work paths, archive times differ every
run), so without the rule `doit clean` then `doit` stops on the conflict.  For each target (the
local channel, the anaconda.org stand-in, a real quetz server): clean and rebuild, a deleted
converted file, a recipe changed without a build-number bump.  The embedded engine runs the
same rule on the local channel.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytest.register_assert_rewrite("_anaconda_fixtures")
from _anaconda_fixtures import OWNER, TOKEN  # noqa: E402
from conftest import TINY_ARGS, Project, read_summary  # noqa: E402
from fake_conda import install  # noqa: E402
from tasks import subdirs  # noqa: E402

pytest_plugins = ("_anaconda_fixtures",)

NATIVE = subdirs.native()
KEYS = sorted(f"{sub}/crdagtiny-1.0.0-{tag}_0.tar.bz2" for sub in ("linux-64", "win-64", "osx-arm64")
              for tag in ("py36", "py37"))
CONVERTED = next(key for key in KEYS if not key.startswith(f"{NATIVE}/"))


class Release:
    """One project released to one target with one engine; what the target holds, by file."""

    def __init__(self, project: Project, engine: str, target: tuple[str, ...], env: dict[str, str],
                 held) -> None:
        self.project, self.engine, self.target, self.env, self.held = project, engine, target, env, held

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.project.doit(*args, *TINY_ARGS, f"engine={self.engine}", *self.target, check=check, env=self.env)

    def path(self, key: str) -> Path:
        subdir, name = key.split("/")
        return self.project.build / ("conda-bld" if subdir == NATIVE else "platform-builds") / subdir / name

    def local(self) -> dict[str, str]:
        return {key: hashlib.sha256(self.path(key).read_bytes()).hexdigest() for key in KEYS}

    def states(self) -> dict[str, str]:
        folder = self.project.build / "stamps" / self.target[0].removeprefix("target=")
        return {key: json.loads((folder / f"{key}.json").read_text())["state"] for key in KEYS}


def summary(proc: subprocess.CompletedProcess) -> dict[str, set[str]]:
    """The summary table's cells: state -> file keys."""
    return read_summary(proc.stdout).by_state("crdagtiny", "1.0.0")


def contract(release: Release) -> None:
    """The issue's "done when", in order, against whatever the target holds."""
    first = release.run()
    published = release.held()
    assert published == release.local() and len(published) == 6

    # doit clean; doit: nothing new is published, nothing fails, every file is the published one.
    release.run("clean")
    again = release.run()
    assert release.held() == published and release.local() == published
    kinds = summary(again)
    assert kinds.get("restored") == set(KEYS) and not {"uploaded", "failed", "built", "converted"} & set(kinds), kinds
    assert release.states() == dict.fromkeys(KEYS, "restored")
    # ... and that is the new up-to-date state (the conda engine's toolchain report always runs).
    assert set(release.project.executed(release.run())) <= {"toolchain"}

    # One converted file deleted: it comes back as published; nothing else is touched.
    release.path(CONVERTED).unlink()
    one = release.run()
    assert release.local() == published and release.held() == published
    assert summary(one).get("restored") == {CONVERTED}, one.stdout

    # The recipe changed (a maintainer), build number kept: the conflict, named, and nothing replaced.
    changed = release.run("maintainer=someone-else", check=False)
    errors = [line for line in (changed.stdout + changed.stderr).splitlines() if line.startswith("error:")]
    assert changed.returncode != 0 and "Traceback" not in changed.stdout + changed.stderr
    assert errors and all("bump build-number" in line or "set force=true to replace it" in line for line in errors)
    assert release.held() == published
    assert first.returncode == 0


@pytest.fixture
def conda_env(project, tmp_path) -> dict[str, str]:
    """The stand-ins on PATH (and this venv's `anaconda`), the downloads folder as their PyPI."""
    env = install(tmp_path / "bin", tmp_path / "conda.log")
    env["PATH"] = f"{env['PATH']}{os.pathsep}{Path(sys.executable).parent}"
    return {**env, "FAKE_CONDA_SRC_CACHE": str(project.build / "downloads")}


def channel_held(project: Project):
    def held() -> dict[str, str]:
        channel = project.build / "channel"
        return {key: hashlib.sha256((channel / key).read_bytes()).hexdigest() for key in KEYS if (channel / key).exists()}
    return held


@pytest.mark.parametrize("engine", ["conda", "embedded"])
def test_contract_local_channel_never_rebuilt_into_a_conflict(project, conda_env, engine):
    contract(Release(project, engine, ("target=local",), conda_env, channel_held(project)))


def test_contract_anaconda_never_rebuilt_into_a_conflict(project, conda_env, anaconda_server, anaconda_home):
    def held() -> dict[str, str]:
        dists = [d for d in anaconda_server.dists if d.owner == OWNER]
        assert len({d.basename for d in dists}) == len(dists)  # one copy of each, ever
        return {d.basename: d.sha256 for d in dists}

    env = {**conda_env, "ANACONDA_API_TOKEN": TOKEN}
    contract(Release(project, "conda", ("target=anaconda", f"owner={OWNER}", "label=main"), env, held))


def test_contract_quetz_never_rebuilt_into_a_conflict(project, conda_env, quetz_server):
    channel = f"restore-{secrets.token_hex(4)}"  # the server is shared by the session
    made = requests.post(f"{quetz_server.url}/api/channels", json={"name": channel, "private": False},
                         headers={"X-API-Key": quetz_server.api_key}, timeout=30)
    assert made.status_code == 201, made.text

    def held() -> dict[str, str]:
        found = {}
        for key in KEYS:
            answer = requests.get(f"{quetz_server.url}/get/{channel}/{key}", timeout=30)
            if answer.status_code == 200:
                found[key] = hashlib.sha256(answer.content).hexdigest()
        return found

    env = {**conda_env, "QUETZ_API_KEY": quetz_server.api_key}
    target = ("target=quetz", f"quetz-url={quetz_server.url}", f"channel={channel}")
    contract(Release(project, "conda", target, env, held))


def test_a_restore_that_cannot_fetch_makes_the_file_again(project, conda_env):
    """The channel lost its copy: the build runs, and the upload publishes it (nothing to conflict with)."""
    release = Release(project, "conda", ("target=local",), conda_env, channel_held(project))
    release.run()
    release.run("clean")
    (project.build / "channel" / CONVERTED).unlink()
    rerun = release.run()
    assert summary(rerun)["uploaded"] == {CONVERTED} and CONVERTED not in summary(rerun)["restored"]
    assert release.states()[CONVERTED] == "uploaded" and release.held() == release.local()
