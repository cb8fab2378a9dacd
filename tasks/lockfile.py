"""One doit run per build folder: a second run waits for the first instead of racing it.

The lock is the operating system's, so a killed run leaves no stale lock behind: flock on Linux
and macOS (fcntl, in the standard library), and on Windows filelock's msvcrt lock.  filelock is
imported only there: it costs ~40 ms to import, and every `doit`, even one with nothing to do,
takes this lock while dodo.py loads.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import UserError

_WAITING = "another doit run is using {}: waiting for it to finish"


def hold(path: Path) -> Any:
    """Take the build folder's lock for the life of this process, waiting if another run has it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _posix(path) if sys.platform != "win32" else _windows(path)
    except OSError as err:
        raise UserError(f"cannot write to the build folder {path.parent} ({err.strerror}): "
                        "make it writable or choose another with build-dir=") from None


def _posix(path: Path) -> Any:
    import fcntl

    handle = open(path, "a+")  # kept open (returned) for the life of the run: closing unlocks
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(_WAITING.format(path.parent), file=sys.stderr)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _windows(path: Path) -> Any:
    from filelock import FileLock, Timeout

    lock = FileLock(path, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(_WAITING.format(path.parent), file=sys.stderr)
        lock.acquire()
    return lock
