"""The console reporter: doit's usual lines, a failure as one line, and a release summary table."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import doit
from doit.exceptions import TaskFailed
from doit.reporter import ConsoleReporter

from . import project as P
from .checker import load_state

if TYPE_CHECKING:  # the reporter imports no more than it needs on a no-op run's path
    from .config import Config
    from .plan import Plan

# Task prefix -> what the summary calls the files those tasks made.
_KINDS = {"build": "built", "convert": "converted", "pack": "packed", "upload": "uploaded"}
# Every word a cell can hold, in the order the totals line lists them.
STATES = ("built", "converted", "packed", "restored", "uploaded", "skipped", "failed")
NOT_ASKED = "—"
WIDTH = 100  # the summary fits this many columns (fewer on a narrower terminal)


class ReleaseReporter(ConsoleReporter):
    """Prints `.  task` / `-- task` as doit does, then a table: one row per subdir, one column per
    Python build, each cell what this run did to that file (`built, uploaded`, `skipped`, …), a
    totals line and where the files went.  A failure the user can fix is one line, not a report.

    The `-- task` lines of a run of up-to-date tasks are written together, just before the next
    other line: the same text in the same order, in one write rather than one per task (a
    terminal's stdout is line-buffered, and a no-op run at 1,000 artifacts has 2,000 such lines).
    """

    desc = "release summary"
    release: tuple[Config, Plan] | None = None  # set by `for_release`; tests may leave it out

    @classmethod
    def for_release(cls, config: Config, plan: Plan) -> type[ReleaseReporter]:
        """The reporter doit instantiates for this release (doit takes a class, not an instance)."""
        return type(cls.__name__, (cls,), {"release": (config, plan)})

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self.cells: dict[str, list[str]] = {}  # file key -> what happened to it, in order
        self._held: list[str] = []

    def initialize(self, tasks, selected_tasks) -> None:
        """Called once the tasks are made, before any is checked.

        The tasks live to the end of the run: the collector, off while dodo.py made them, leaves
        them be from here on (gc.freeze) and runs again for the actions.  doit's saved state is
        read in one query rather than one per task (checker.load_state)."""
        super().initialize(tasks, selected_tasks)
        gc.freeze()
        gc.enable()
        load_state(doit.Globals.dep_manager)

    def execute_task(self, task) -> None:
        if task.name != "status":  # a view prints only itself, so `doit status --json -` is JSON
            super().execute_task(task)

    def write(self, text: str) -> None:
        if self._held:
            text = "".join(self._held) + text
            self._held.clear()
        if text:
            self.outstream.write(text)

    def _mark(self, task, state: str) -> None:
        for key in _files_of(task):
            self._add(key, state)

    def _add(self, key: str, state: str) -> None:
        states = self.cells.setdefault(key, [])
        if not states or states[-1] != state:  # restored by the build, then confirmed: once
            states.append(state)

    def add_success(self, task) -> None:
        kind = _KINDS.get(task.name.partition(":")[0])
        if kind and task.name.partition(":")[2]:
            if kind == "uploaded":
                state = _stamp_state(task.targets)
                self._mark(task, state if state in ("skipped", "restored") else kind)
                return
            for target, key in zip(_outputs(task), _files_of(task)):  # fetched back, not made
                self._add(key, "restored" if target and P.restored_marker(target).exists() else kind)

    def skip_uptodate(self, task) -> None:
        if task.name[0] != "_":  # as doit: a task named _… prints no line
            self._held.append(f"-- {task.title()}\n")
        if task.name.startswith("upload:"):  # a file already published: nothing sent
            self.cells.setdefault(task.name[7:], []).append("skipped")  # 1,000 times at scale

    def add_failure(self, task, fail) -> None:
        if task.name.partition(":")[0] in _KINDS and task.name.partition(":")[2]:
            self._mark(task, "failed")
        if isinstance(fail, TaskFailed) and fail.report:
            self.write(f"error: {task.name}: {fail.message.strip()}\n")
            return
        super().add_failure(task, fail)

    def complete_run(self) -> None:
        super().complete_run()
        if not self.cells:
            self.write("")
            return
        layout = Layout.of(*self.release) if self.release else Layout.guess(self.cells)
        self.write("\n" + "".join(line + "\n" for line in summary(layout, self.cells, _width(self.outstream))))


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each file of a release sits in the table, and where the release publishes."""

    title: str
    rows: tuple[str, ...]  # subdirs
    columns: tuple[str, ...]  # headers, one per build
    place: dict[str, tuple[str, str]]  # file key -> (row, column)
    where: str

    @classmethod
    def of(cls, config: Config, plan: Plan) -> Layout:
        files = (*(b.artifact for b in plan.builds), *plan.published)  # binaries=wheels: no builds
        headers = {a.python: _header(a.python) for a in sorted(files, key=lambda a: _python_order(a.python))}
        place = {a.key: (a.subdir, headers[a.python]) for a in files}
        rows = tuple(dict.fromkeys(subdir for subdir, _ in place.values()))
        columns = tuple(headers.values())
        return cls(f"{config.package} {config.version}", rows, columns, place, destination(config))

    @classmethod
    def guess(cls, cells: Iterable[str]) -> Layout:
        """Without the plan (a reporter used on its own): one row per file."""
        return cls("file", tuple(cells), ("state",), {key: (key, "state") for key in cells}, "")


def _python_order(python: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in python.split(".")) if python else ()


def _header(python: str | None) -> str:
    return f"python {python}" if python else "noarch"


def destination(config: Config) -> str:
    """Where the files went, as the summary's last line says it."""
    from . import project as P

    if config.target == "local":
        channel = P.paths(config).channel
        return f"published to the local channel {shown(channel)} ({channel.as_uri()})"
    if config.target == "quetz":
        return f"published to {config.quetz_url.rstrip('/')}, channel {config.channel}"
    from .anaconda import client_settings  # anaconda-client's own setting names the server

    labels = ", ".join(config.labels)
    return f"published to {client_settings()[0]} as {config.owner}, label{'s' * (len(config.labels) > 1)} {labels}"


def shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary(layout: Layout, cells: dict[str, list[str]], width: int = WIDTH) -> list[str]:
    """The table (full words; else each file's last state; else counts per row), totals, where."""
    grid = _grid(layout, cells)
    table = _table(layout, grid, ", ".join, width) or _table(layout, grid, _last, width) or \
        _counted(layout, grid)
    return [*table, totals(cells), *([layout.where] if layout.where else [])]


def _grid(layout: Layout, cells: dict[str, list[str]]) -> dict[tuple[str, str], list[str]]:
    return {place: cells.get(key, []) for key, place in layout.place.items()}


def _last(states: Sequence[str]) -> str:
    return states[-1]


def _table(layout: Layout, grid: dict[tuple[str, str], list[str]], show, width: int) -> list[str] | None:
    """Rows of cells, or None when they do not fit `width`."""
    if len(layout.title) + sum(len(col) + 2 for col in layout.columns) > width:
        return None  # the headers alone are too wide: make no cells (1,000 of them at scale)
    body = [[row] + [show(grid[(row, col)]) if grid.get((row, col)) else
                     (NOT_ASKED if (row, col) in grid else "") for col in layout.columns] for row in layout.rows]
    lines = aligned([[layout.title, *layout.columns], *body])
    return lines if max(map(len, lines)) <= width else None


def _counted(layout: Layout, grid: dict[tuple[str, str], list[str]]) -> list[str]:
    """Too many builds for a column each: one cell per subdir counting its files' last states."""
    header = f"{len(layout.columns)} builds ({layout.columns[0]} … {layout.columns[-1]})"
    counts: dict[str, Counter] = {row: Counter() for row in layout.rows}
    for (row, _), states in grid.items():
        counts[row][states[-1] if states else NOT_ASKED] += 1
    body = [[row, ", ".join(f"{counts[row][s]} {s}" for s in (*STATES, NOT_ASKED) if counts[row][s])]
            for row in layout.rows]
    return aligned([[layout.title, header], *body])


def aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def totals(cells: dict[str, list[str]]) -> str:
    counts = Counter(state for states in cells.values() for state in set(states))
    parts = [f"{counts[state]} {state}" for state in STATES if counts[state]]
    return f"{len(cells)} file{'s' * (len(cells) != 1)}: " + ", ".join(parts)


def _width(stream: Any) -> int:
    """100 columns, or the terminal's width when it is narrower."""
    try:
        if stream.isatty():
            return min(WIDTH, os.get_terminal_size(stream.fileno()).columns)
    except (AttributeError, OSError, ValueError):
        pass
    return WIDTH


def _files_of(task) -> list[str]:
    """The files a task is about: an upload's is in its name, a build's or conversion's are its
    targets (one per subdir)."""
    if task.name.startswith(("build:", "convert:", "pack:")) and task.targets:
        return [f"{Path(target).parent.name}/{Path(target).name}" for target in task.targets]
    return [task.name.partition(":")[2]]


def _outputs(task) -> list[Path | None]:
    """The package files of a build or conversion, in _files_of's order (None for an upload)."""
    if task.name.startswith(("build:", "convert:")) and task.targets:
        return [Path(target) for target in task.targets]
    return [None]


def _stamp_state(targets) -> str | None:
    """An upload stamp says whether the server already had the file (or it was restored)."""
    for target in targets:
        if str(target).endswith(".json") and Path(target).exists():
            try:
                return json.loads(Path(target).read_text()).get("state")
            except (OSError, ValueError):
                return None
    return None
