"""Benchmark: the release's fixed costs, side by side with what they are measured against.

    .venv/bin/python bench/bench_release.py [--quick] [--only 1,2,...] [--json FILE] [--source DIR]

--source DIR measures another tree's dodo.py, tasks/ and recipe/ (e.g. a copy with a candidate
optimisation) with the same harness; bench/profile_release.py shows where the time goes.

Each measure is a ratio of two medians taken in the same run, the two sides interleaved (each
goes first in turn) so that the machine's load drifts over both alike:

  1  no-op `doit` on an up-to-date btrdb release / `doit` on an empty dodo.py        goal <= 1.5
  2  no-op with ~1,000 artifacts / no-op with the default release (~30 tasks)          goal <= 2
  3  full btrdb 5.2.2 release, clean build folder / one `pip wheel --no-deps` of it  goal <= 4
  4  `doit -n 2` full release / `doit -n 1` full release (artifacts compared)         goal <= 0.65
  5  tasks/checker.py XxhashChecker / doit's MD5Checker, 200 MB with moved mtimes     goal <= 0.2

How each side is set up (all in a temporary folder; the project is never touched):
- A project is a copy of dodo.py, tasks/ and recipe/ (as tests/conftest.py `new_project`), compiled
  once; timed commands run `python -m doit` in it with PYTHONDONTWRITEBYTECODE unset.
- btrdb's sdist is downloaded once to bench/.cache/ (pip download, sha256 checked against
  recipe/release.toml's pin) and copied into the project's build/downloads: no network is timed.
- 1: the default release (btrdb 5.2.2, Python 3.6 and 3.7, 9 platforms: 18 artifacts, 30 tasks)
  is run once, then `doit` is timed with nothing to do; the baseline is `doit` on an empty
  dodo.py, i.e. the interpreter and doit starting.
- 2: the ~1,000-artifact release is the tests' tiny package for 77 Python minors (3.6 … 3.82) ×
  all 13 platforms = 1,001 artifacts, 1,238 tasks, run with the project's dodo.py through
  bench/scale_dodo.py, which only lets tasks/config.py accept Python versions past 3.14.  It is
  built once (about a minute) and cached in bench/.cache/scale-<digest of dodo.py, tasks/, recipe/>/;
  a changed source builds a new one (the two most recently used are kept).  Every timed run must
  execute no task.
- 3 and 4: a fresh project copy per run, sdist in build/downloads, run to the end (verify):
  `doit` (doit's in-process runner) for 3, `doit -n 1` and `doit -n 2` (doit's default process
  pool, one and two workers) for 4.  The baseline of 3 is
  `pip wheel --no-deps --no-build-isolation <sdist>`, the same pip and setuptools the `wheel`
  task uses (with build isolation pip would also install setuptools from the index).  Every
  run's packages (conda-bld, platform-builds, channel) must be byte-identical to the first run's,
  and the channel's repodata.json identical apart from rattler's `indexed_timestamp` (the time
  indexing ran, different in any two runs).
- 5: 200 MB of random bytes in files of 40 KB (btrdb's packages are ~41 KB), 200 KB, 1 MB, 4 MB
  and 20 MB, equal bytes per size (1,252 files); each checker's state taken, every mtime moved by
  1 s with the content unchanged, then `check_modified` called on each file (both must hash every
  byte and answer "unchanged"); the page cache is warm for both.  The ratio per size is printed.

--quick: fewer runs (7 for 1, 2, 5; 3 for 3, 4), 50 MB for 5: for a quick look, not the README.
Exit status 0 when every measure meets its goal.  The machine should be otherwise idle: on a
2-core machine a concurrent job takes the second core from `doit -n 2` (measure 4) first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (  # noqa: E402
    BENCH, CACHE, PYTHON, SOURCE, TINY, Row, Sample, btrdb_sdist, doit, fmt_seconds, interleave, log,
    machine, new_project, project_sources_digest, release_digests, table, timed, tiny_sdist,
)

GOALS = {1: 1.5, 2: 2.0, 3: 4.0, 4: 0.65, 5: 0.2}
SCALE_PYTHONS = tuple(f"3.{minor}" for minor in range(6, 83))  # 77 minors x 13 platforms = 1,001
# Measure 5's artifact sizes: btrdb's packages are ~40 KB; larger packages up to 20 MB.
CHECK_SIZES = (40_000, 200_000, 1_000_000, 4_000_000, 20_000_000)


# --- 1 and 2: no-op runs ----------------------------------------------------------------------


def _noop(root: Path, *args: str) -> float:
    run = doit(root, *args)
    if run.executed:
        raise RuntimeError(f"a no-op run in {root} executed {run.executed[:5]}: the project is not up to date")
    return run.seconds


def _summary_count(stdout: str, kind: str) -> int:
    match = re.search(rf"^\d+ files?: .*?(\d+) {kind}", stdout, re.MULTILINE)  # the summary's totals line
    return int(match.group(1)) if match else 0


def scale_args() -> list[str]:
    return ["-f", "dodo_scale.py", f"package={TINY[0]}", f"version={TINY[1]}",
            "pythons=" + ",".join(SCALE_PYTHONS), "platforms=all"]


def scale_project(use_cache: bool, tmp: Path) -> Path:
    """The ~1,000-artifact project, released once and up to date; cached by its sources' digest."""
    scale_dodo = (BENCH / "scale_dodo.py").read_text()
    key = project_sources_digest(scale_dodo, *scale_args())
    folder = (CACHE / f"scale-{key}") if use_cache else (tmp / "scale")
    if (folder / ".complete").exists():
        log(f"scale: reusing {folder}")
        (folder / ".complete").touch()  # last used: see _prune
        return folder
    if use_cache:
        _prune(keep=2)
    shutil.rmtree(folder, ignore_errors=True)
    new_project(folder, [tiny_sdist(tmp / "tiny")])
    (folder / "dodo_scale.py").write_text(scale_dodo)
    log(f"scale: releasing {len(SCALE_PYTHONS) * 13} artifacts once into {folder} (a few minutes)")
    start = time.perf_counter()
    doit(folder, "-n", "2", *scale_args())
    log(f"scale: released in {time.perf_counter() - start:.0f} s")
    _noop(folder, *scale_args())
    (folder / ".complete").write_text("released and up to date\n")
    return folder


def _prune(keep: int) -> None:
    """Remove all but the `keep` most recently used scale projects (~45 MB each), never one used in
    the last hour (another benchmark may be timing it)."""
    done = sorted(CACHE.glob("scale-*/.complete"), key=lambda path: path.stat().st_mtime, reverse=True)
    unfinished = [folder for folder in CACHE.glob("scale-*") if not (folder / ".complete").exists()]
    for marker in done[keep:]:
        if time.time() - marker.stat().st_mtime > 3600:
            shutil.rmtree(marker.parent, ignore_errors=True)
    for folder in unfinished:  # an interrupted set-up, unless one is under way
        if time.time() - folder.stat().st_mtime > 3600:
            shutil.rmtree(folder, ignore_errors=True)


def noop_rows(numbers: set[int], runs: int, tmp: Path, use_cache: bool) -> list[Row]:
    btrdb = new_project(tmp / "btrdb", [btrdb_sdist()])
    log("1/2: releasing btrdb once (the default settings)")
    first = doit(btrdb)
    artifacts = _summary_count(first.stdout, "uploaded") + _summary_count(first.stdout, "skipped")
    empty = tmp / "empty"
    empty.mkdir()
    (empty / "dodo.py").write_text("")
    sides = {"empty": lambda: doit(empty).seconds, "default": lambda: _noop(btrdb)}
    if 2 in numbers:
        scale = scale_project(use_cache, tmp)
        sides["scale"] = lambda: _noop(scale, *scale_args())
        scale_tasks = doit(scale, *scale_args()).skipped
    default_tasks = doit(btrdb).skipped
    log(f"1/2: timing no-op runs, {runs} rounds")
    samples = interleave(runs, sides, warmup=2)
    rows = []
    if 1 in numbers:
        rows.append(Row(1, "no-op `doit`, up-to-date btrdb release / `doit`, empty dodo.py",
                        samples["default"], samples["empty"], GOALS[1],
                        note=f"{default_tasks} tasks, {artifacts} artifacts"))
    if 2 in numbers:
        rows.append(Row(2, "no-op, ~1,000 artifacts / no-op, default release",
                        samples["scale"], samples["default"], GOALS[2],
                        note=f"{scale_tasks} tasks, {len(SCALE_PYTHONS) * 13} artifacts (tiny package, "
                             f"Python 3.6-3.82 x 13 platforms) vs {default_tasks} tasks"))
    return rows


# --- 3 and 4: full releases -------------------------------------------------------------------


def release_rows(numbers: set[int], runs: int, tmp: Path) -> list[Row]:
    sdist = btrdb_sdist()
    template = new_project(tmp / "template", [sdist])
    reference: dict[str, str] = {}
    problems: list[str] = []

    def release(jobs: str | None) -> float:
        label = f"-n {jobs}" if jobs else "(no -n)"
        root = tmp / f"release-{jobs or 0}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(template, root, symlinks=True)
        run = doit(root, *(["-n", jobs] if jobs else []))
        if "verify" not in run.executed:
            raise RuntimeError(f"`doit {label}` did not reach verify: {run.executed}")
        digests = release_digests(root / "build")
        if not reference:
            reference.update(digests)
        elif digests != reference:
            differing = sorted(k for k in set(digests) | set(reference) if digests.get(k) != reference.get(k))
            problems.append(f"`doit {label}` differs in {len(differing)} files, e.g. {differing[0]}")
        shutil.rmtree(root)
        return run.seconds

    def wheel() -> float:
        out = tmp / "wheel-out"
        shutil.rmtree(out, ignore_errors=True)
        run = timed([PYTHON, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps",
                     "--no-build-isolation", "--wheel-dir", str(out), str(sdist)], tmp)
        if run.returncode != 0 or len(list(out.glob("*.whl"))) != 1:
            raise RuntimeError(f"pip wheel failed:\n{run.stderr[-2000:]}")
        return run.seconds

    sides = {}
    if 3 in numbers:  # `doit` as a user types it: doit's in-process runner
        sides["doit"] = lambda: release(None)
        sides["wheel"] = wheel
    if 4 in numbers:  # `-n 1` and `-n 2`: doit's process pool with one and two workers
        sides["n1"] = lambda: release("1")
        sides["n2"] = lambda: release("2")
    log(f"3/4: timing full releases, {runs} rounds of {', '.join(sides)} (about "
        f"{(runs + 1) * 12 * len(sides) // 60 + 1} min)")
    samples = interleave(runs, sides, warmup=1)
    rows = []
    if 3 in numbers:
        rows.append(Row(3, "full btrdb release, clean build / `pip wheel --no-deps` of the sdist",
                        samples["doit"], samples["wheel"], GOALS[3],
                        note="sdist in build/downloads, local channel, `doit` to verify; "
                             "pip wheel --no-build-isolation"))
    if 4 in numbers:
        checked = len(reference)
        rows.append(Row(4, "`doit -n 2` full release / `doit -n 1` full release",
                        samples["n2"], samples["n1"], GOALS[4],
                        note=f"doit's process pool; {checked} package and index files compared over every "
                             "release of 3 and 4: "
                             + ("identical" if not problems else "; ".join(problems)),
                        failed_check="artifacts differ" if problems else ""))
    return rows


# --- 5: the file checker ----------------------------------------------------------------------


def checker_row(runs: int, megabytes: int, tmp: Path) -> Row:
    sys.path.insert(0, str(SOURCE[0]))
    from doit.dependency import MD5Checker

    from tasks.checker import XxhashChecker

    folder = tmp / "artifacts"
    folder.mkdir()
    classes: dict[int, list[str]] = {}
    for size in CHECK_SIZES:  # equal bytes in each size class
        count = max(1, round(megabytes * 1_000_000 / len(CHECK_SIZES) / size))
        classes[size] = []
        for number in range(count):
            path = folder / f"pkg-{size}-{number:04d}.tar.bz2"
            path.write_bytes(os.urandom(size))
            classes[size].append(str(path))
    files = [path for paths in classes.values() for path in paths]
    total = sum(os.path.getsize(path) for path in files)
    checkers = {"xxhash": XxhashChecker(), "md5": MD5Checker()}
    states = {name: {path: checker.get_state(path, None) for path in files} for name, checker in checkers.items()}
    for path in files:  # same bytes, new mtime: what a rebuild of a reproducible package leaves
        stat = os.stat(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    per_class = {name: {size: Sample() for size in classes} for name in checkers}

    def check(name: str) -> float:
        checker, saved = checkers[name], states[name]
        seconds = 0.0
        for size, paths in classes.items():
            start = time.perf_counter()
            changed = [path for path in paths if checker.check_modified(path, os.stat(path), saved[path])]
            spent = time.perf_counter() - start
            if changed:
                raise RuntimeError(f"{name} calls {len(changed)} unchanged files modified")
            per_class[name][size].add(spent)
            seconds += spent
        return seconds

    log(f"5: timing check_modified on {total / 1e6:.0f} MB in {len(files)} files, {runs} rounds")
    samples = interleave(runs, {name: (lambda name=name: check(name)) for name in checkers}, warmup=1)
    detail = ", ".join(
        f"{size / 1e3:g} KB x{len(paths)} {per_class['xxhash'][size].median / per_class['md5'][size].median:.2f}x"
        for size, paths in classes.items())
    return Row(5, f"XxhashChecker / doit's MD5Checker, {total / 1e6:.0f} MB, mtimes moved",
               samples["xxhash"], samples["md5"], GOALS[5],
               note=f"{len(files)} files, equal bytes per size class, content unchanged, page cache warm, "
                    f"check_modified on each; per class (size, files, ratio): {detail}")


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs and 50 MB for 5: not for the README")
    parser.add_argument("--only", default="1,2,3,4,5", help="comma list of measures, e.g. 1,2,5")
    parser.add_argument("--runs", type=int, help="rounds for every measure (at least 5 for the README)")
    parser.add_argument("--json", type=Path, help="also write the figures and timings here")
    parser.add_argument("--no-cache", action="store_true", help="build the 1,000-artifact project afresh")
    parser.add_argument("--source", type=Path, help="measure another tree's dodo.py, tasks/ and recipe/ "
                        "(e.g. a copy with a candidate optimisation); default: this checkout")
    args = parser.parse_args()
    if args.source:
        SOURCE[0] = args.source.resolve()
    numbers = {int(part) for part in args.only.split(",") if part.strip()}
    cheap = args.runs or (7 if args.quick else 15)
    heavy = args.runs or (3 if args.quick else 5)
    megabytes = 50 if args.quick else 200

    facts = machine()
    print("machine:")
    for name, value in facts.items():
        print(f"  {name}: {value}")
    print(f"  mode: {'quick' if args.quick else 'full'}; runs: {cheap} (1, 2, 5), {heavy} (3, 4); "
          "PYTHONDONTWRITEBYTECODE unset for timed runs")
    print(f"  measuring: {SOURCE[0]}")
    rows: list[Row] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-release-") as name:
        tmp = Path(name)
        if numbers & {1, 2}:
            rows += noop_rows(numbers, cheap, tmp, use_cache=not args.no_cache)
        if numbers & {3, 4}:
            rows += release_rows(numbers, heavy, tmp)
        if 5 in numbers:
            rows.append(checker_row(cheap, megabytes, tmp))
    rows.sort(key=lambda row: row.number)
    print()
    print(table(rows))
    print()
    for row in rows:
        print(f"{row.number}: ours {row.ours.spread()}; baseline {row.baseline.spread()}; {row.note}")
    print(f"(took {fmt_seconds(time.perf_counter() - start)}; load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())})")
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "quick": args.quick,
                                         "rows": [row.as_dict() for row in rows]}, indent=2) + "\n")
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
