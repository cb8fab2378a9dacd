"""The project's own dodo.py, with more Python versions allowed: the benchmarks' ~1,000-artifact release.

bench_release.py copies this file next to a project copy's dodo.py as `dodo_scale.py` and runs
`doit -f dodo_scale.py pythons=3.6,3.7,...,3.82 platforms=all`.  The only change is the range
tasks/config.py accepts for a Python version (3.6 to 3.14 there, any 3.N here), so that
77 versions × 13 platforms = 1,001 artifacts can exist: every task, action, checker, reporter and
setting is dodo.py's.  Nothing is faked: each artifact is built, converted, published to the local
channel and stamped by the real pipeline.
"""

import re

import tasks.config

_check_python = tasks.config.check_python


def _any_minor(python: str) -> None:
    if not re.fullmatch(r"3\.[0-9]{1,2}", python):
        _check_python(python)  # the project's own message for a malformed version


tasks.config.check_python = _any_minor

from dodo import *  # noqa: E402,F401,F403  (task_* functions and DOIT_CONFIG, as doit loads them)
