"""Where the release's time goes: what dodo.py imports, a no-op run's phases and hot functions, and a
full release per task.

    .venv/bin/python bench/profile_release.py [--runs N] [--only imports,noop,release]

- imports: `python -X importtime`, in a project copy, of `import dodo` after everything `doit`
  itself imports on an empty dodo.py has been imported: what is left is dodo.py's own cost.
  Medians over N runs; modules of at least 1 ms cumulative, as a tree.
- noop: an up-to-date btrdb release run N times through bench/_timed_doit.py (doit with timers
  on its phases), the medians per phase, the interpreter's start (wall minus in-process), and one
  cProfile run's top functions.  The ~1,000-artifact project of bench_release.py is included when
  bench/.cache holds one for the current sources.
- release: N full btrdb releases (`doit`, clean build folder, sdist in build/downloads),
  seconds per task family and per task, medians; the time inside pip, grayskull, the channel
  index, package assembly, conversions, hashing and child processes is broken out.
"""

from __future__ import annotations

import argparse
import json
import pstats
import re
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (  # noqa: E402
    BENCH, CACHE, PYTHON, SOURCE, btrdb_sdist, doit, fmt_seconds, new_project, project_sources_digest, timed,
)

TIMED_DOIT = str(BENCH / "_timed_doit.py")
# Functions whose time is charged to the task that calls them (see _timed_doit.py --wrap).
SUBSTEPS = [
    "subprocess:run",                     # pip wheel, test imports in verify
    "tasks.skeleton:_grayskull",          # grayskull's recipe generation
    "tasks.recipe:apply",
    "tasks.build:_install",               # the wheel installed into the staging prefix
    "tasks.build:_pack",                  # rattler-build assemble_package + convert.complete
    "tasks.convert:complete",             # the level-1 package recompressed in the final format
    "tasks.archive:read_package",
    "tasks.archive:write_package",
    "tasks.fsio:file_digests",            # sha256 + md5 + xxh3 of each published file
    "tasks.upload:index",                 # rattler's index_fs of a channel subdir
    "tasks.upload:_repodata_record",
    "tasks.verify:check_archive",
    "tasks.verify:install_check",         # stub channel, solve, install, test imports
    "tasks.verify:stub_channel",
    "tasks.render:render",
]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


# --- imports ----------------------------------------------------------------------------------


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _importtime(cwd: Path, code: str) -> list[tuple[int, int, int, str]]:
    run = timed([PYTHON, "-X", "importtime", "-c", code], cwd)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    rows = []
    for line in run.stderr.split("@@dodo@@", 1)[-1].splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            rows.append((int(match.group(1)), int(match.group(2)), len(match.group(3)) // 2, match.group(4)))
    return rows


def profile_imports(project: Path, runs: int) -> None:
    print("== dodo.py's imports (python -X importtime; doit's own imports excluded) ==")
    empty = project.parent / "empty-imports"
    empty.mkdir(exist_ok=True)
    (empty / "dodo.py").write_text("")
    baseline = timed([PYTHON, "-X", "importtime", "-m", "doit"], empty)
    doit_modules = sorted({m.group(4) for m in map(_IMPORT_LINE.match, baseline.stderr.splitlines()) if m})
    preload = ("import importlib, sys\n"
               f"for name in {doit_modules!r}:\n"
               "    try: importlib.import_module(name)\n"
               "    except Exception: pass\n"
               "sys.stderr.write('@@dodo@@\\n'); sys.stderr.flush()\n"
               "import dodo\n")
    cumulative: dict[str, list[int]] = defaultdict(list)
    own: dict[str, list[int]] = defaultdict(list)
    order: dict[str, tuple[int, int]] = {}
    totals = []
    for number in range(runs):
        rows = _importtime(project, preload)
        totals.append(sum(cum for _, cum, depth, _ in rows if depth == 0))
        for index, (self_us, cum_us, depth, name) in enumerate(rows):
            cumulative[name].append(cum_us)
            own[name].append(self_us)
            order.setdefault(name, (index, depth))
    print(f"import dodo (imports + module code): {median(totals) / 1000:.1f} ms median of {runs}")
    print("   self      cumulative  module (>= 1 ms cumulative; indented = imported by the line above)")
    for name, (index, depth) in sorted(order.items(), key=lambda item: item[1][0]):
        if median(cumulative[name]) >= 1000:
            print(f"{median(own[name]) / 1000:7.1f} ms {median(cumulative[name]) / 1000:8.1f} ms  "
                  f"{'  ' * depth}{name}")
    heavy = ("rattler", "rattler_build", "grayskull", "binstar_client", "ruamel", "jinja2", "requests",
             "conda_package_handling", "conda_package_streaming", "asyncio", "installer", "win_cli_launchers")
    loaded = [name for name in heavy if name in order]
    print("heavy libraries imported when dodo.py loads: " + (", ".join(loaded) if loaded else "none"))
    print()


# --- no-op ------------------------------------------------------------------------------------


def _phases(project: Path, args: list[str], runs: int) -> tuple[dict[str, list[float]], list[float]]:
    phases: dict[str, list[float]] = defaultdict(list)
    walls = []
    out = project / "timings.json"
    for _ in range(runs + 1):
        run = timed([PYTHON, TIMED_DOIT, str(out), *args], project)
        if run.returncode != 0 or any(line.startswith(".  ") for line in run.stdout.splitlines()):
            raise RuntimeError(f"not a no-op in {project}:\n{run.stdout[-1500:]}\n{run.stderr[-1500:]}")
        data = json.loads(out.read_text())
        walls.append(run.seconds)
        phases["interpreter start + exit (wall - in-process)"].append(run.seconds - data["total_in_process"])
        for name, seconds in data["phases"].items():
            phases[name].append(seconds)
        phases["(in-process total)"].append(data["total_in_process"])
    return {name: values[1:] for name, values in phases.items()}, walls[1:]  # first run: warm-up


def _cprofile(project: Path, args: list[str], top: int) -> None:
    out = project / "noop.prof"
    timed([PYTHON, "-m", "cProfile", "-o", str(out), "-m", "doit", *args], project)
    stats = pstats.Stats(str(out))
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():
        if "frozen importlib" in filename or function in ("<module>", "<built-in method builtins.exec>"):
            continue
        rows.append((own, cumulative, calls, f"{_short(filename)}:{line}({function})"))
    print(f"  cProfile, top {top} by own time (profiling inflates Python code ~2x):")
    for own, cumulative, calls, name in sorted(rows, reverse=True)[:top]:
        print(f"    {own * 1000:7.1f} ms own {cumulative * 1000:8.1f} ms cum {calls:7d} calls  {name}")


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3", "/tasks/", "/dodo"):
        if marker in filename:
            return filename[filename.index(marker):].replace("site-packages/", "")
    return filename


def profile_noop(project: Path, runs: int, extra: list[tuple[str, Path, list[str]]]) -> None:
    print("== no-op runs: doit's phases (medians) ==")
    empty = project.parent / "empty-noop"
    empty.mkdir(exist_ok=True)
    (empty / "dodo.py").write_text("")
    for label, root, args in [("empty dodo.py", empty, []), ("btrdb, up to date", project, []), *extra]:
        phases, walls = _phases(root, args, runs)
        print(f"-- {label}: wall {fmt_seconds(median(walls))} (median of {runs})")
        for name, values in phases.items():
            print(f"  {ms(median(values))}  {name}")
        if root is not empty:
            _cprofile(root, args, 15)
    print()


# --- full release -----------------------------------------------------------------------------


def _family(task: str) -> str:
    return task.split(":", 1)[0]


def profile_release(template: Path, runs: int, tmp: Path) -> None:
    print(f"== full btrdb release, `doit` (in-process runner), clean build folder (medians of {runs}) ==")
    per_task: dict[str, list[float]] = defaultdict(list)
    per_family: dict[str, list[float]] = defaultdict(list)
    per_sub: dict[tuple[str, str], list[float]] = defaultdict(list)
    phases: dict[str, list[float]] = defaultdict(list)
    walls = []
    for number in range(runs):
        root = tmp / f"release-{number}"
        shutil.copytree(template, root, symlinks=True)
        out = tmp / f"release-{number}.json"
        run = timed([PYTHON, TIMED_DOIT, str(out), "--wrap", ",".join(SUBSTEPS)], root)
        if run.returncode != 0:
            raise RuntimeError(f"release failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        data = json.loads(out.read_text())
        walls.append(run.seconds)
        phases["interpreter start + exit"].append(run.seconds - data["total_in_process"])
        for name, seconds in data["phases"].items():
            phases[name].append(seconds)
        families: dict[str, float] = defaultdict(float)
        for task, kinds in data["tasks"].items():
            spent = sum(kinds.values())
            per_task[task].append(spent)
            families[_family(task)] += spent
        for family, spent in families.items():
            per_family[family].append(spent)
        subs: dict[tuple[str, str], float] = defaultdict(float)
        for task, functions in data["substeps"].items():
            for function, spent in functions.items():
                subs[(_family(task), function)] += spent
        for key, spent in subs.items():
            per_sub[key].append(spent)
        shutil.rmtree(root)
    print(f"wall {fmt_seconds(median(walls))}; phases:")
    for name, values in phases.items():
        print(f"  {ms(median(values))}  {name}")
    print("per task family (check + actions + save), and the wrapped functions inside it:")
    for family, values in sorted(per_family.items(), key=lambda item: -median(item[1])):
        count = sum(1 for task in per_task if _family(task) == family)
        print(f"  {ms(median(values))}  {family} ({count} task{'s' if count > 1 else ''}, "
              f"{ms(median(values) / count).strip()} each)")
        for (owner, function), spent in sorted(per_sub.items(), key=lambda item: -median(item[1])):
            if owner == family and median(spent) >= 0.001:
                print(f"      {ms(median(spent))}  in {function}")
    print("slowest tasks:")
    for task, values in sorted(per_task.items(), key=lambda item: -median(item[1]))[:8]:
        print(f"  {ms(median(values))}  {task}")
    print()


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="imports,noop,release")
    parser.add_argument("--source", type=Path, help="profile another tree's dodo.py, tasks/, recipe/")
    args = parser.parse_args()
    if args.source:
        SOURCE[0] = args.source.resolve()
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="profile-release-") as name:
        tmp = Path(name)
        template = new_project(tmp / "template", [btrdb_sdist()])
        if "imports" in parts:
            profile_imports(template, args.runs)
        if "noop" in parts:
            project = tmp / "btrdb"
            shutil.copytree(template, project, symlinks=True)
            doit(project)
            extra = []
            from bench_release import scale_args  # the ~1,000-artifact project, if built already

            key = project_sources_digest((BENCH / "scale_dodo.py").read_text(), *scale_args())
            scale = CACHE / f"scale-{key}"
            if (scale / ".complete").exists():
                extra.append(("~1,000 artifacts, up to date", scale, scale_args()))
            profile_noop(project, args.runs, extra)
        if "release" in parts:
            profile_release(template, max(1, min(args.runs, 3)), tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
