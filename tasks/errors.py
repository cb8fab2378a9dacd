"""The one exception a user can cause, and how it reaches the terminal."""

from __future__ import annotations

import functools
import gc
import importlib
from typing import Any, Callable

from doit.exceptions import TaskFailed


class UserError(Exception):
    """A problem the user can fix: the message names the problem and the fix, in one line."""


def one_line(action: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a doit python-action so a UserError ends the task with its one-line message.

    The action's own return value is dropped: doit would read it as a task result."""

    @functools.wraps(action)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            action(*args, **kwargs)
        except UserError as err:
            return TaskFailed(str(err))
        except OSError as err:  # a full disk, a read-only folder: the user's to fix, not a bug
            where = f"{err.filename}: " if err.filename else ""
            return TaskFailed(f"{where}{err.strerror or err}: free disk space or make the build folder "
                              "writable, then run doit again")
        return None

    return run


class Step:
    """A doit action named `"module:function"` of tasks/, imported only when it runs.

    dodo.py declares tasks with these so that loading it (every `doit`, even one with nothing to
    do) imports no heavy library: rattler, grayskull, ruamel, jinja2 and anaconda-client load
    in the actions that use them.  A class, not a closure, so doit's process pool can pickle it.
    """

    def __init__(self, target: str) -> None:
        self.module, _, self.function = target.partition(":")
        self.__name__ = self.function  # what doit shows for a python-action

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        gc.enable()  # off while dodo.py made the tasks; on for every action, whatever the reporter
        function = getattr(importlib.import_module(f"tasks.{self.module}"), self.function)
        return one_line(function)(*args, **kwargs)
