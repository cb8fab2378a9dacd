"""Benchmark: binaries=wheels, side by side with what it is measured against.

    .venv/bin/python bench/bench_wheels.py [--quick] [--runs N] [--json FILE]

Each measure is a ratio of two medians taken in the same run, the two sides interleaved (each goes
first in turn), as bench/bench_release.py takes them:

  W1  one wheel -> its conda package (tasks/wheels.py: installer into a staging prefix laid out
      for the subdir, assemble_package, info/ completed, .tar.bz2) / a bare extract of the same
      wheel's files and a repack of them as .tar.bz2 by conda-package-handling          goal <= 1.2
  W2  no-op `doit` on an up-to-date binaries=wheels release (msgpack 1.0.8, Python 3.11 + 3.12,
      platforms=all: 14 packages) / `doit` on an empty dodo.py                    goal <= 1.5 (measure 1's)

The wheels come from the package index once, through pip (msgpack 1.0.8's linux-64 cp311 wheel
for W1, cached in bench/.cache/wheels; W2's release downloads its own once, before timing): no
network is timed.  W1 runs in this process, both sides; W2 runs `python -m doit` in a project copy.
Exit status 0 when both measures meet their goals.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _harness import CACHE, PYTHON, Row, doit, interleave, log, machine, new_project, table  # noqa: E402

GOALS = {1: 1.2, 2: 1.5}
PACKAGE, VERSION = "msgpack", "1.0.8"
RELEASE = (f"package={PACKAGE}", f"version={VERSION}", "pythons=3.11,3.12", "platforms=all", "binaries=wheels")


def wheel_file() -> Path:
    """msgpack 1.0.8's linux-64 CPython 3.11 wheel (a Cython extension, ~400 KB), fetched once."""
    from tasks import wheeltags

    folder = CACHE / "wheels"
    found = sorted(folder.glob(f"{PACKAGE}-{VERSION}-cp311-cp311-manylinux*x86_64*.whl"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([PYTHON, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", *wheeltags.pip_platform_args("linux-64"),
                        *wheeltags.pip_python_args("3.11"), "--dest", str(folder), f"{PACKAGE}=={VERSION}"],
                       check=True, capture_output=True, text=True)
        found = sorted(folder.glob(f"{PACKAGE}-{VERSION}-cp311-cp311-manylinux*x86_64*.whl"))
    return found[0]


def ours(wheel: Path, tmp: Path) -> float:
    """What `pack:linux-64/3.11` does, timed from the cached wheel to the finished package."""
    from tasks import build, fsio, wheelmeta, wheels

    start = time.perf_counter()
    info = wheelmeta.read(wheel)
    stage = fsio.fresh_dir(tmp / "stage")
    wheels.install(wheel, stage, "linux-64", "3.11")
    package = build.Package(PACKAGE, VERSION, "linux-64", "py311_0", 0,
                            tuple(wheels.depends(info, wheel.name, "linux-64", "3.11")), None,
                            {"home": info.home or None, "license": info.license or None, "license_family": None,
                             "summary": info.summary or None, "description": None}, wheels.wheel_epoch(wheel))
    output = tmp / "ours" / f"{PACKAGE}-{VERSION}-py311_0.tar.bz2"
    build.assemble(package, stage, output, tmp / "work", license_files=wheels.license_files(stage, info),
                   info_only=True)
    return time.perf_counter() - start


def baseline(wheel: Path, tmp: Path) -> float:
    """The same files extracted as they are and packed by conda-package-handling, nothing more."""
    from conda_package_handling.api import create

    start = time.perf_counter()
    folder = tmp / "extract"
    shutil.rmtree(folder, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
        files = [name for name in archive.namelist() if not name.endswith("/")]
    out = tmp / "cph"
    out.mkdir(exist_ok=True)
    create(str(folder), files, f"{PACKAGE}-{VERSION}-py311_0.tar.bz2", out_folder=str(out))
    return time.perf_counter() - start


def pack_row(runs: int, tmp: Path) -> Row:
    wheel = wheel_file()
    log(f"W1: {wheel.name} ({wheel.stat().st_size // 1000} KB), {runs} rounds")
    samples = interleave(runs, {"ours": lambda: ours(wheel, tmp), "cph": lambda: baseline(wheel, tmp)})
    size = (tmp / "ours" / f"{PACKAGE}-{VERSION}-py311_0.tar.bz2").stat().st_size
    return Row(1, "one wheel → conda package / extract + repack by conda-package-handling",
               samples["ours"], samples["cph"], GOALS[1], note=f"{wheel.name}, package {size // 1000} KB")


def noop_row(runs: int, tmp: Path) -> Row:
    project = new_project(tmp / "release")
    log(f"W2: releasing {' '.join(RELEASE)} once (downloads its wheels)")
    first = doit(project, *RELEASE)
    empty = tmp / "empty"
    empty.mkdir()
    (empty / "dodo.py").write_text("")

    def noop() -> float:
        run = doit(project, *RELEASE)
        if run.executed:
            raise RuntimeError(f"the no-op run executed {run.executed[:5]}")
        return run.seconds

    samples = interleave(runs, {"empty": lambda: doit(empty).seconds, "wheels": noop})
    packed = first.stdout.count(".  pack:")
    return Row(2, f"no-op `doit`, binaries=wheels ({packed} packages) / `doit` on an empty dodo.py",
               samples["wheels"], samples["empty"], GOALS[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 rounds: for a quick look, not the README")
    parser.add_argument("--runs", type=int, help="rounds per measure (default 15)")
    parser.add_argument("--json", type=Path, help="also write the figures and timings here")
    args = parser.parse_args()
    runs = args.runs or (7 if args.quick else 15)
    print("machine:")
    for name, value in machine().items():
        print(f"  {name}: {value}")
    with tempfile.TemporaryDirectory(prefix="bench-wheels-") as tmp:
        rows = [pack_row(runs, Path(tmp)), noop_row(runs, Path(tmp))]
    print(table(rows))
    for row in rows:
        print(f"  {row.number}: ours {row.ours.spread()}; baseline {row.baseline.spread()}"
              + (f"; {row.note}" if row.note else ""))
    if args.json:
        args.json.write_text(json.dumps([row.as_dict() for row in rows], indent=2) + "\n")
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
