"""The one exception a user can cause, and how it reaches the terminal."""

from __future__ import annotations

import functools
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
        return None

    return run
