"""The console reporter: doit's usual lines, a failure as one line, and a release summary."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import doit
from doit.exceptions import TaskFailed
from doit.reporter import ConsoleReporter

from .checker import load_state

# Task prefix -> what the summary calls the files those tasks made.
_KINDS = {"build": "built", "convert": "converted", "pack": "packed", "upload": "uploaded"}


class ReleaseReporter(ConsoleReporter):
    """Prints `.  task` / `-- task` as doit does, then `built: …`, `converted: …`, `uploaded: …`,
    `skipped: …` (published before, or already on the server), `failed: …` with file names.  A
    failure the user can fix is one line, not a report block.

    The `-- task` lines of a run of up-to-date tasks are written together, just before the next
    other line: the same text in the same order, in one write rather than one per task (a
    terminal's stdout is line-buffered, and a no-op run at 1,000 artifacts has 2,000 such lines).
    """

    desc = "release summary"

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self.done: dict[str, set[str]] = {kind: set() for kind in (*_KINDS.values(), "skipped", "failed")}
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

    def write(self, text: str) -> None:
        if self._held:
            text = "".join(self._held) + text
            self._held.clear()
        if text:
            self.outstream.write(text)

    def add_success(self, task) -> None:
        kind = _KINDS.get(task.name.partition(":")[0])
        if kind and task.name.partition(":")[2]:
            state = _stamp_state(task.targets)
            self.done["skipped" if state == "skipped" else kind].update(_files_of(task))

    def skip_uptodate(self, task) -> None:
        if task.name[0] != "_":  # as doit: a task named _… prints no line
            self._held.append(f"-- {task.title()}\n")
        if task.name.startswith("upload:"):  # a file already published: nothing sent
            self.done["skipped"].update(_files_of(task))

    def add_failure(self, task, fail) -> None:
        if task.name.startswith("upload:"):
            self.done["failed"].update(_files_of(task))
        if isinstance(fail, TaskFailed) and fail.report:
            self.write(f"error: {task.name}: {fail.message.strip()}\n")
            return
        super().add_failure(task, fail)

    def complete_run(self) -> None:
        super().complete_run()
        lines = [f"{kind}: {len(files)}" + _names(files) for kind, files in self.done.items() if files]
        self.write("summary: " + "; ".join(lines) + "\n" if lines else "")


def _names(files: set[str], most: int = 20) -> str:
    """The file names, or the first `most` of them: a no-op run of 1,000 files stays readable."""
    shown = sorted(files)[:most]
    more = f", … {len(files) - most} more" if len(files) > most else ""
    return f" ({', '.join(shown)}{more})"


def _files_of(task) -> list[str]:
    """The files a task is about: an upload's is in its name, a build's or conversion's are its
    targets (one per subdir)."""
    if task.name.startswith(("build:", "convert:", "pack:")) and task.targets:
        return [f"{Path(target).parent.name}/{Path(target).name}" for target in task.targets]
    return [task.name.partition(":")[2]]


def _stamp_state(targets) -> str | None:
    """An upload stamp says whether the server already had the file."""
    for target in targets:
        if str(target).endswith(".json") and Path(target).exists():
            try:
                return json.loads(Path(target).read_text()).get("state")
            except (OSError, ValueError):
                return None
    return None
