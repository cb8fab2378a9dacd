"""Shared fixtures: a tiny real sdist the tests make themselves, and a throw-away project tree."""

from __future__ import annotations

import os
import re
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


@dataclass
class Summary:
    """The reporter's end-of-run table, read back: the header, each cell's states, the totals."""

    header: list[str]
    cells: dict[tuple[str, str], list[str]]  # (subdir, column header) -> states ("—": [])
    totals: dict[str, int]
    files: int
    where: str
    lines: list[str]  # the table, totals and where lines as printed

    def by_state(self, package: str, version: str, number: int = 0) -> dict[str, set[str]]:
        """state -> the file keys (`subdir/name-version-pyXY_N.tar.bz2`) whose cell names it."""
        kinds: dict[str, set[str]] = {}
        for (subdir, column), states in self.cells.items():
            tag = "py" + column.removeprefix("python ").replace(".", "")
            for state in states:
                kinds.setdefault(state, set()).add(f"{subdir}/{package}-{version}-{tag}_{number}.tar.bz2")
        return kinds


def read_summary(stdout: str) -> Summary:
    """Parse the last summary in stdout: header, rows (cells split on two or more spaces), then
    `N files: n state, …` and the `published to …` line."""
    from tasks.subdirs import ALL

    lines = stdout.splitlines()
    end = max(i for i, line in enumerate(lines) if re.match(r"^\d+ files?: ", line))
    start = end
    while re.split(r" {2,}", lines[start - 1])[0] in ALL:
        start -= 1
    header = re.split(r" {2,}", lines[start - 1])
    cells = {}
    for line in lines[start:end]:
        row, *values = re.split(r" {2,}", line)
        for column, value in zip(header[1:], values):
            cells[(row, column)] = [] if value == "—" else value.split(", ")
    totals = {state: int(n) for n, state in re.findall(r"(\d+) (\w+)", lines[end].partition(": ")[2])}
    where = lines[end + 1] if end + 1 < len(lines) and lines[end + 1].startswith("published to") else ""
    return Summary(header, cells, totals, int(lines[end].split()[0]), where, lines[start - 1:end + 1 + bool(where)])


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
