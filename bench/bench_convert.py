"""Benchmark: the in-house converter against a bare extract + repack with conda-package-handling.

    python bench/bench_convert.py [SOURCE] [--runs N]

SOURCE is an sdist (.tar.gz, e.g. btrdb-5.2.2.tar.gz) or a folder whose files become the
package's site-packages; by default the jinja2 sources installed beside this Python (~0.5 MB of
.py).  A linux-64 py36 package is built from them with rattler-build in each format; then, per
format, the median of N runs of `convert(package, "win-64", ...)` (the direction that moves and
rewrites files) is set against `api.extract` + `api.create` of the same package, which does
the same decompression and compression and nothing else.  Goal: ratio <= 1.2.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

from conda_package_handling import api as cph
from rattler_build import ArchiveType, assemble_package

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tasks.convert import convert  # noqa: E402  (the project root is not installed)

GOAL = 1.2
FORMATS = {".tar.bz2": ArchiveType.TarBz2, ".conda": ArchiveType.Conda}
ENTRY_POINT = "#!/opt/anaconda1anaconda2anaconda3/bin/python\nfrom bench import main\nmain()\n"


def stage(source: Path, root: Path) -> Path:
    """A unix prefix: source's files under lib/python3.6/site-packages, plus one entry point."""
    site = root / "lib/python3.6/site-packages"
    if source.is_dir():
        shutil.copytree(source, site / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        with tarfile.open(source) as sdist:
            sdist.extractall(site, filter="data")
    script = root / "bin/bench-entry"
    script.parent.mkdir(parents=True)
    script.write_text(ENTRY_POINT)
    script.chmod(0o755)
    return root


def build(staged: Path, out: Path, suffix: str) -> Path:
    output = assemble_package(
        "benchpkg", "1.0", "linux-64", "py36_0", out, files_dir=staged,
        depends=["python >=3.6,<3.7.0a0"], archive_type=FORMATS[suffix],
    )
    return Path(output.path)


def repack(package: Path, work: Path) -> None:
    """What conda-package-handling needs to rewrite a package: extract it all, create it again."""
    shutil.rmtree(work, ignore_errors=True)
    tree, out = work / "tree", work / "out"
    cph.extract(str(package), dest_dir=str(tree))
    files = [str(path.relative_to(tree)) for path in tree.rglob("*") if not path.is_dir()]
    out.mkdir()
    cph.create(str(tree), files, package.name, out_folder=str(out.resolve()))


def median_seconds(action: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help="an sdist or a folder (default: jinja2)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    import jinja2

    source = (args.source or Path(jinja2.__file__).parent).resolve()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        staged = stage(source, Path(tmp) / "stage")
        print(f"source: {source}  runs: {args.runs}")
        for suffix in FORMATS:
            package = build(staged, Path(tmp) / "in", suffix)
            output = Path(tmp) / "converted" / package.name
            ours = median_seconds(lambda: convert(package, "win-64", output), args.runs)
            theirs = median_seconds(lambda: repack(package, Path(tmp) / "repack"), args.runs)
            worst = max(worst, ours / theirs)
            print(
                f"{suffix:9} {package.stat().st_size / 1024:7.0f} KiB  convert {ours * 1000:7.1f} ms  "
                f"extract+repack {theirs * 1000:7.1f} ms  ratio {ours / theirs:.2f}"
            )
    print(f"worst ratio {worst:.2f} (goal <= {GOAL})")
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
