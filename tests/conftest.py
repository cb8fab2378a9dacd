"""Shared fixtures: a tiny real sdist the tests make themselves, and a throw-away project tree."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_ARGS = ("package=crdagtiny", "version=1.0.0", "pythons=3.6,3.7", "platforms=linux-64,win-64,osx-arm64")

_TINY_FILES = {
    "setup.py": (
        "from setuptools import setup\n"
        "setup(name='crdagtiny', version='1.0.0', packages=['crdagtiny'],\n"
        "      package_data={'crdagtiny': ['data/*.txt']}, python_requires='>=3.6',\n"
        "      description='A tiny package the tests release.', license='MIT',\n"
        "      install_requires=['attrs>=17.4'],\n"
        "      entry_points={'console_scripts': ['crdagtiny-hello = crdagtiny.cli:main']})\n"
    ),
    "crdagtiny/__init__.py": "from pathlib import Path\nGREETING = (Path(__file__).parent / 'data' / 'greeting.txt').read_text().strip()\n",
    "crdagtiny/cli.py": "def main():\n    from crdagtiny import GREETING\n    print(GREETING)\n",
    "crdagtiny/data/greeting.txt": "hello from crdagtiny\n",
    "LICENSE": "MIT License\n",
    "PKG-INFO": "Metadata-Version: 1.1\nName: crdagtiny\nVersion: 1.0.0\nSummary: A tiny package the tests release.\nLicense: MIT\n",
}


def pytest_addoption(parser):
    parser.addoption("--run-pypi", action="store_true", help="run tests that download from the package index")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-pypi"):
        return
    skip = pytest.mark.skip(reason="downloads from the package index: run with --run-pypi")
    for item in items:
        if "pypi" in item.keywords:
            item.add_marker(skip)


def make_sdist(folder: Path, files: dict[str, str] = _TINY_FILES, top: str = "crdagtiny-1.0.0") -> Path:
    """A real sdist (tar.gz, fixed mtimes) with the given files under its top folder."""
    folder.mkdir(parents=True, exist_ok=True)
    sdist = folder / f"{top}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
            archive.addfile(info, io.BytesIO(data))
    return sdist


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
