"""`python -m doit`, with timers on doit's phases and on each task; the timings go to a JSON file.

    cd PROJECT && python bench/_timed_doit.py OUT.json [--wrap module:function,...] [doit arguments]

Used by profile_release.py.  Phases: importing doit, loading dodo.py (its imports and module
code), creating tasks (the task_* functions), opening the dependency file, building the task
graph, the up-to-date checks, running actions, saving state, finishing (the database written,
the summary printed).  Per task: check / execute / save seconds.  --wrap times the named
functions (imported before doit starts, so their import cost is not in any task) and charges
each call to the task running it; `subprocess:run` times every child process.  Run without -n:
`-n 1` and more use doit's process pool, whose workers these timers do not reach.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402

phases: dict[str, float] = defaultdict(float)
tasks: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
substeps: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
current = ["(no task)"]


def _timed(phase: str | None, per_task: str | None = None):
    def decorate(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                if phase:
                    phases[phase] += spent
                if per_task:
                    task = args[1] if per_task != "node" else args[1].task
                    tasks[task.name][_KIND[function.__name__]] += spent
        return run
    return decorate


_KIND = {"select_task": "check", "execute_task": "execute", "process_task_result": "save"}


def _wrap_substep(label: str, owner, attribute: str) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            substeps[current[0]][label] += time.perf_counter() - start

    setattr(owner, attribute, run)


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    wrap: list[str] = []
    if args[:1] == ["--wrap"]:
        wrap, args = args[1].split(","), args[2:]
    start = time.perf_counter()
    from doit import cmd_base, control, dependency, runner  # noqa: F401
    from doit.doit_cmd import DoitMain
    phases["import doit"] += time.perf_counter() - start

    sys.path.insert(0, ".")  # as doit's loader does for dodo.py, so tasks/ imports for --wrap
    start = time.perf_counter()
    for target in wrap:
        module, _, function = target.partition(":")
        owner = subprocess if module == "subprocess" else importlib.import_module(module)
        if hasattr(owner, function):  # the project moves on: a renamed function is left out
            _wrap_substep(target, owner, function)
        else:
            print(f"_timed_doit: no {target} to time", file=sys.stderr)
    phases["pre-import wrapped modules"] += time.perf_counter() - start

    loader = cmd_base.DodoTaskLoader
    loader.setup = _timed("load dodo.py")(loader.setup)
    namespace = cmd_base.NamespaceTaskLoader
    namespace.load_tasks = _timed("create tasks")(namespace.load_tasks)
    dependency.Dependency.__init__ = _timed("open dependency file")(dependency.Dependency.__init__)
    control.TaskControl.__init__ = _timed("task graph")(control.TaskControl.__init__)
    control.TaskControl.process = _timed("task graph")(control.TaskControl.process)
    run = runner.Runner
    run.select_task = _timed("up-to-date checks", "node")(run.select_task)
    original_execute = run.execute_task

    def execute_task(self, task):
        current[0] = task.name
        try:
            return original_execute(self, task)
        finally:
            current[0] = "(no task)"

    functools.update_wrapper(execute_task, original_execute)
    run.execute_task = _timed("actions", "task")(execute_task)
    run.process_task_result = _timed("save state", "node")(run.process_task_result)
    run.finish = _timed("finish (save db, summary)")(run.finish)

    code = 0
    try:
        code = DoitMain().run(args)
    finally:
        total = time.perf_counter() - T0
        with open(out, "w") as handle:
            json.dump({"total_in_process": total, "phases": phases, "tasks": tasks,
                       "substeps": substeps}, handle, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
