"""Shared pieces of the release benchmarks: throw-away projects, the btrdb sdist, timed doit runs,
the machine's description and the figures table.

Nothing here changes the project: a benchmark copies dodo.py, tasks/ and recipe/ into a temporary
folder (as tests/conftest.py `new_project` does) and runs `python -m doit` there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
SOURCE = [ROOT]  # where dodo.py, tasks/ and recipe/ are copied from (bench_release.py --source)
BENCH = ROOT / "bench"
CACHE = BENCH / ".cache"  # gitignored (bench/.gitignore): downloads and the scale project
PYTHON = sys.executable

BTRDB = ("btrdb", "5.2.2")
BTRDB_SDIST = "btrdb-5.2.2.tar.gz"
BTRDB_SHA256 = "7a282ec39f887d336fe90977c0909c44bb9735e04ba6a6777d603e8922286b11"  # recipe/release.toml's pin


# --- environment ------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment every timed command runs in.

    PYTHONDONTWRITEBYTECODE is dropped: with it, every run recompiles dodo.py and tasks/ from
    source (~25-40 ms here), which a user's shell does not do; the interpreter's .pyc caches are
    then used as they normally are."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        from importlib.metadata import version

        doit_version = version("doit")
    except Exception:  # pragma: no cover - doit is a dependency
        doit_version = "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "cpu": model,
        "cores": f"{os.cpu_count()} logical, {usable} usable",
        "python": f"{platform.python_implementation()} {platform.python_version()} ({PYTHON})",
        "doit": doit_version,
        "os": platform.platform(),
        "load average at start": load,
    }


# --- inputs -----------------------------------------------------------------------------------


def btrdb_sdist() -> Path:
    """bench/.cache/btrdb-5.2.2.tar.gz, downloaded once with pip (no build, no dependencies)."""
    cached = CACHE / BTRDB_SDIST
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([PYTHON, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                        "--no-binary", ":all:", f"{BTRDB[0]}=={BTRDB[1]}", "-d", str(CACHE)],
                       check=True, capture_output=True, text=True)
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    if digest != BTRDB_SHA256:
        raise SystemExit(f"error: {cached} has sha256 {digest}, not the pinned {BTRDB_SHA256}: delete it and rerun")
    return cached


TINY = ("crdagtiny", "1.0.0")


def tiny_sdist(folder: Path) -> Path:
    """A real sdist of the tiny pure-Python package the test suite releases (tests/tiny.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from tiny import make_sdist

    return make_sdist(folder)


# --- projects ---------------------------------------------------------------------------------


def project_sources_digest(*extra: str) -> str:
    """A digest of the code a project copy runs (dodo.py, tasks/, recipe/) plus extra strings."""
    digest = hashlib.sha256()
    source = SOURCE[0]
    files = [source / "dodo.py", *sorted((source / "tasks").rglob("*.py")), *sorted((source / "recipe").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    for text in extra:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


def new_project(folder: Path, sdists: Sequence[Path] = ()) -> Path:
    """dodo.py, tasks/ and recipe/ copied into folder; the sdists placed in build/downloads."""
    folder.mkdir(parents=True, exist_ok=True)
    source = SOURCE[0]
    shutil.copy(source / "dodo.py", folder / "dodo.py")
    for name in ("tasks", "recipe"):
        shutil.copytree(source / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for sdist in sdists:
        (folder / "build" / "downloads").mkdir(parents=True, exist_ok=True)
        shutil.copy(sdist, folder / "build" / "downloads" / sdist.name)
    # Compile once, as the first run in a user's checkout would: timed runs then read .pyc files.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(folder / "dodo.py"), str(folder / "tasks")],
                   check=True, env=child_env())
    return folder


@dataclasses.dataclass
class Run:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system seconds of the command and its children

    @property
    def executed(self) -> list[str]:
        """The tasks doit ran (it prints `.  name`); an up-to-date task prints `-- name`."""
        return [line[3:].strip() for line in self.stdout.splitlines() if line.startswith(".  ")]

    @property
    def skipped(self) -> int:
        return sum(1 for line in self.stdout.splitlines() if line.startswith("-- "))


def timed(argv: Sequence[str], cwd: Path, timeout: float = 3600) -> Run:
    """Wall-clock seconds of one command, output captured (never a terminal, for both sides)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=child_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(seconds, proc.returncode, proc.stdout, proc.stderr, cpu)


def doit(root: Path, *args: str, check: bool = True) -> Run:
    run = timed([PYTHON, "-m", "doit", *args], root)
    if check and run.returncode != 0:
        raise RuntimeError(f"doit {' '.join(args)} in {root} failed ({run.returncode}):\n"
                           f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return run


# --- artifacts --------------------------------------------------------------------------------


def release_digests(build: Path) -> dict[str, str]:
    """sha256 of every package a release wrote (conda-bld, platform-builds and the channel's copies),
    and of every channel index file with rattler's `indexed_timestamp` (the time indexing ran,
    different on every run, even two `-n 1` runs) taken out."""
    found: dict[str, str] = {}
    for folder in ("conda-bld", "platform-builds", "channel"):
        base = build / folder
        for path in sorted(base.rglob("*")) if base.exists() else ():
            if not path.is_file() or path.name == ".lock":
                continue
            name = str(path.relative_to(build))
            if path.name == "repodata.json":
                found[name] = hashlib.sha256(_without_timestamps(path.read_text())).hexdigest()
            elif path.name.endswith((".tar.bz2", ".conda")):
                found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _without_timestamps(text: str) -> bytes:
    data = json.loads(text)
    for section in ("packages", "packages.conda"):
        for record in data.get(section, {}).values():
            record.pop("indexed_timestamp", None)
    return json.dumps(data, sort_keys=True).encode()


# --- statistics and the table -----------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    values: list[float] = dataclasses.field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self) -> str:
        return f"n={len(self.values)}, {fmt_seconds(min(self.values))}–{fmt_seconds(max(self.values))}"


def fmt_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


@dataclasses.dataclass
class Row:
    number: int
    measure: str
    ours: Sample
    baseline: Sample
    goal: float
    note: str = ""
    failed_check: str = ""  # a correctness check that failed makes the row fail whatever the ratio

    @property
    def ratio(self) -> float:
        return self.ours.median / self.baseline.median

    @property
    def passed(self) -> bool:
        return not self.failed_check and self.ratio <= self.goal

    def as_dict(self) -> dict[str, object]:
        return {"number": self.number, "measure": self.measure, "ours_s": self.ours.values,
                "baseline_s": self.baseline.values, "ours_median_s": self.ours.median,
                "baseline_median_s": self.baseline.median, "ratio": self.ratio, "goal": self.goal,
                "passed": self.passed, "note": self.note, "failed_check": self.failed_check}


def table(rows: Sequence[Row]) -> str:
    """A Markdown table, ready for the README."""
    lines = ["| # | measure | ours | baseline | ratio | goal | result |",
             "|---|---------|------|----------|-------|------|--------|"]
    for row in rows:
        result = "pass" if row.passed else ("FAIL: " + row.failed_check if row.failed_check else "FAIL")
        lines.append(f"| {row.number} | {row.measure} | {fmt_seconds(row.ours.median)} | "
                     f"{fmt_seconds(row.baseline.median)} | {row.ratio:.2f}× | ≤ {row.goal:g}× | {result} |")
    return "\n".join(lines)


def rotate(items: list, round_number: int) -> list:
    """The round's order: each side goes first in turn, so drift in the machine's load is shared."""
    shift = round_number % len(items)
    return items[shift:] + items[:shift]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def interleave(rounds: int, sides: dict[str, Callable[[], float]], warmup: int = 1) -> dict[str, Sample]:
    """Run each side once per round, in rotating order; warm-up rounds are not counted."""
    samples = {name: Sample() for name in sides}
    names = list(sides)
    for number in range(-warmup, rounds):
        for name in rotate(names, number):
            seconds = sides[name]()
            if number >= 0:
                samples[name].add(seconds)
    return samples
