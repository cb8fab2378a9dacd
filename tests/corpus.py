"""The compatibility corpus: well-known packages from the index, chosen for variety, each
released by settings alone (skeleton, build, convert, publish, verify).

    python tests/corpus.py [-j 2] [NAME ...]    run it and print the README's table

tests/test_corpus.py runs the same releases under pytest (marked `pypi`).  sdists are kept in
the user's cache folder, so each is downloaded once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import Project, new_project  # noqa: E402

PYTHONS = "3.11,3.12"
PLATFORMS = "linux-64,win-64,osx-arm64,linux-aarch64"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "conda-release-dag" / "sdists"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    version: str
    backend: str
    feature: str
    # None: releases and verifies; otherwise the words its one error line must hold.
    refused: str | None = None


CORPUS = (
    Case("six", "1.16.0", "setuptools (setup.py)", "single module"),
    Case("docopt", "0.6.2", "setuptools (setup.py)", "single module, no license file in metadata"),
    Case("decorator", "5.1.1", "setuptools (setup.py)", "single module"),
    Case("pytz", "2024.1", "setuptools (setup.py)", "package data (zoneinfo)"),
    Case("pyserial", "3.5", "setuptools (setup.py)", "module `serial`, console scripts with extras"),
    Case("python-dateutil", "2.9.0.post0", "setuptools + setuptools-scm", "post release, module `dateutil`"),
    Case("requests", "2.32.3", "setuptools (setup.py + pyproject)", "extras, several license files"),
    Case("certifi", "2024.8.30", "setuptools", "package data (cacert.pem)"),
    Case("charset-normalizer", "3.3.2", "setuptools", "`-` name, console script, optional mypyc"),
    Case("markupsafe", "2.1.5", "setuptools", "capitals (MarkupSafe), optional C speedups"),
    Case("simplejson", "3.19.3", "setuptools (setup.py)", "optional C speedups"),
    Case("wrapt", "1.16.0", "setuptools (setup.py)", "optional C extension"),
    Case("pyyaml", "6.0.2", "setuptools + Cython", "capitals (PyYAML), module `yaml`, optional libyaml"),
    Case("zope.interface", "7.0.3", "setuptools", "dotted name, namespace `zope`, optional C speedups"),
    Case("zope.event", "5.0", "setuptools", "dotted name, namespace `zope`"),
    Case("ruamel.yaml", "0.18.6", "setuptools (setup.py)", "dotted name"),
    Case("toolz", "0.12.1", "setuptools", "several packages (toolz, tlz)"),
    Case("pyjwt", "2.9.0", "setuptools (pyproject)", "capitals (PyJWT), module `jwt`"),
    Case("websocket-client", "1.8.0", "setuptools", "module `websocket`, console script with extras"),
    Case("pybind11", "2.13.6", "setuptools", "headers and data files (.data/)"),
    Case("tqdm", "4.66.5", "setuptools + setuptools-scm", "console script, platform-marked dependency"),
    Case("pluggy", "1.5.0", "setuptools + setuptools-scm", "src/ layout"),
    Case("pytest", "8.3.3", "setuptools + setuptools-scm", "console scripts, single module `py`, markers"),
    Case("pytest", "8.0.0rc2", "setuptools + setuptools-scm", "release candidate"),
    Case("backports.tarfile", "1.2.0", "setuptools + setuptools-scm", "dotted name, namespace `backports`"),
    Case("jaraco.functools", "4.0.2", "setuptools + setuptools-scm", "dotted name, namespace `jaraco`"),
    Case("idna", "3.7", "flit_core", "package data"),
    Case("click", "8.1.7", "flit_core", "platform-marked dependency"),
    Case("jinja2", "3.1.4", "flit_core", "capitals (Jinja2), entry point registry"),
    Case("packaging", "24.1", "flit_core", "three license files"),
    Case("tomli", "2.0.1", "flit_core", "src/ layout"),
    Case("typing_extensions", "4.12.2", "flit_core", "`_` name, single module"),
    Case("pyparsing", "3.1.4", "flit_core", "package"),
    Case("urllib3", "2.2.3", "hatchling", "extras"),
    Case("pygments", "2.18.0", "hatchling", "capitals (Pygments), console script"),
    Case("colorama", "0.4.6", "hatchling", "package"),
    Case("beautifulsoup4", "4.12.3", "hatchling", "module `bs4`"),
    Case("markdown", "3.7", "setuptools (pyproject)", "capitals (Markdown), console script"),
    Case("platformdirs", "4.3.6", "hatchling + hatch-vcs", "src/ layout"),
    Case("filelock", "3.16.1", "hatchling + hatch-vcs", "src/ layout"),
    Case("iniconfig", "2.0.0", "hatchling + hatch-vcs", "package"),
    Case("attrs", "24.2.0", "hatchling + hatch-vcs + fancy-pypi-readme", "two top-level packages"),
    Case("rich", "13.9.2", "poetry-core", "package"),
    Case("tomlkit", "0.13.2", "poetry-core", "package"),
    Case("poetry-core", "1.9.0", "poetry-core (in-tree)", "vendored libraries, backend-path"),
    Case("pdm-backend", "2.4.1", "pdm-backend (in-tree)", "vendored libraries, backend-path"),
    Case("unearth", "0.17.2", "pdm-backend", "src/ layout, console script"),
    Case("msgpack", "1.0.8", "setuptools + Cython", "extension built unless MSGPACK_PUREPYTHON is set",
         refused="needs compiled code to build"),
)


def release(case: Case, folder: Path) -> tuple[Project, subprocess.CompletedProcess, float]:
    """One release by settings alone, in a fresh project; the sdist comes from the cache."""
    from tasks.source import _find_sdist

    found = _find_sdist(CACHE, case.name, case.version)
    cached = (found,) if found else ()
    project = new_project(folder, cached)
    started = time.perf_counter()
    proc = project.doit(f"package={case.name}", f"version={case.version}", f"pythons={PYTHONS}",
                        f"platforms={PLATFORMS}", check=False)
    seconds = time.perf_counter() - started
    CACHE.mkdir(parents=True, exist_ok=True)
    for sdist in (project.build / "downloads").glob("*"):
        if sdist.is_file() and not (CACHE / sdist.name).exists():
            shutil.copy(sdist, CACHE / sdist.name)
    return project, proc, seconds


def result(case: Case, project: Project, proc: subprocess.CompletedProcess) -> str:
    """What the README's table says of one release."""
    if proc.returncode != 0:
        errors = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if line.startswith("error:")]
        return "stops: " + (errors[0].split(": ", 2)[-1] if errors else "no error line")
    record = json.loads((project.build / "stamps" / "verify-local.json").read_text())
    ran = [r for item in record["installs"] for r in {**item["imports"], **item.get("scripts", {})}.values()]
    tested = sum(1 for r in ran if r.endswith("ok"))
    origin = json.loads((project.build / "work" / "skeleton" / "origin.json").read_text())
    source = "wheel" if origin["origin"] == "wheel" else "grayskull" + (" + wheel" if origin["completed"] else "")
    return f"✓ {len(record['archives'])} files, {tested} tests ok; recipe: {source}"


def _row(case: Case, folder: Path) -> str:
    project, proc, seconds = release(case, folder)
    said = result(case, project, proc)
    return f"| {case.name} | {case.version} | {case.backend} | {case.feature} | {said} | {seconds:.0f} s |"


def main(argv: list[str]) -> int:
    import concurrent.futures

    jobs = int(argv[argv.index("-j") + 1]) if "-j" in argv else 2
    names = [a for i, a in enumerate(argv) if a != "-j" and (i == 0 or argv[i - 1] != "-j")]
    cases = [c for c in CORPUS if not names or c.name in names]
    print("| package | version | backend | layout / feature | result | time |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp, \
            concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        folders = [Path(tmp) / f"{c.name}-{c.version}" for c in cases]
        for row in pool.map(_row, cases, folders):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
