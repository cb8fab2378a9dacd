"""Shared fixtures: a tiny real sdist the tests make themselves, and a throw-away project tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tiny import make_sdist  # noqa: F401  (tests import it from here too)

ROOT = Path(__file__).resolve().parent.parent
TINY_ARGS = ("package=crdagtiny", "version=1.0.0", "pythons=3.6,3.7", "platforms=linux-64,win-64,osx-arm64")
CHECKS = ("check:3.6", "check:3.7")  # the verify checks of TINY_ARGS' two builds


def pytest_addoption(parser):
    parser.addoption("--run-pypi", action="store_true", help="run tests that download from the package index")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-pypi"):
        return
    skip = pytest.mark.skip(reason="downloads from the package index: run with --run-pypi")
    for item in items:
        if "pypi" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    """Tests not marked `pypi` reach no package index: pip (the check's run dependencies, say)
    then finds only what is on this disk.  Set before the item's fixtures are made."""
    if "pypi" in item.keywords:
        os.environ.pop("PIP_NO_INDEX", None)
    else:
        os.environ["PIP_NO_INDEX"] = "1"


@pytest.fixture(scope="session")
def tiny_sdist(tmp_path_factory) -> Path:
    return make_sdist(tmp_path_factory.mktemp("sdist"))


@dataclass
class Project:
    """A copy of dodo.py, tasks/ and recipe/ in a temporary folder, run with `python -m doit`."""

    root: Path

    @property
    def build(self) -> Path:
        return self.root / "build"

    def doit(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "doit", *args], cwd=self.root, env={**os.environ, **(env or {})},
                              capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"doit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def executed(self, proc: subprocess.CompletedProcess) -> list[str]:
        """Names of the tasks a run executed (doit prints `.  name`)."""
        return [line[3:].strip() for line in proc.stdout.splitlines() if line.startswith(".  ")]


def new_project(folder: Path, sdists: tuple[Path, ...] = ()) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    for name in ("tasks", "recipe"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for sdist in sdists:
        (folder / "build" / "downloads").mkdir(parents=True, exist_ok=True)
        shutil.copy(sdist, folder / "build" / "downloads" / sdist.name)
    return Project(folder)


@pytest.fixture
def project(tmp_path, tiny_sdist) -> Project:
    return new_project(tmp_path / "proj", (tiny_sdist,))
