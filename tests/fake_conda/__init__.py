"""Stand-ins for `conda` and `conda-build` on PATH, for driving the conda engine end to end.

conda and conda-build cannot be installed on this project's machines, so the conda engine is
tested by contract: its command lines and parsers against the tools' documentation and source
(tests/test_conda_engine.py), and its actions against these stand-ins, which behave as the
documented tools do (see tools.py and README.md).  They are not conda.

`install(bin_dir, log)` writes the two launchers, with a shebang to the running interpreter, and
returns the environment variables a test sets to use them.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
PROGRAMS = ("conda", "conda-build")

_LAUNCHER = """#!{python}
# Written by tests/fake_conda: a stand-in for `{prog}`, not the real tool.
import sys
sys.path[:0] = [{tests!r}, {root!r}]
from fake_conda.tools import main
sys.exit(main({prog!r}, sys.argv[1:]))
"""


def install(bin_dir: Path, log: Path) -> dict[str, str]:
    """Write `conda` and `conda-build` into bin_dir; return PATH and FAKE_CONDA_LOG to set."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for prog in PROGRAMS:
        launcher = bin_dir / prog
        launcher.write_text(_LAUNCHER.format(python=sys.executable, prog=prog, tests=str(TESTS), root=str(ROOT)))
        launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "FAKE_CONDA_LOG": str(log)}
