"""One doit run per build folder: a second run waits for the first instead of racing it.

filelock rather than fcntl: the same lock on Linux and macOS (flock) and Windows (msvcrt), so the
tool runs unchanged on every CI runner.  Like flock, the OS drops it when the process dies, so a
killed run leaves no stale lock behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import UserError


def hold(path: Path) -> FileLock:
    """Take the build folder's lock for the life of this process, waiting if another run has it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"another doit run is using {path.parent}: waiting for it to finish", file=sys.stderr)
            lock.acquire()
    except OSError as err:  # (filelock's Timeout is one too, but is caught above)
        raise UserError(f"cannot write to the build folder {path.parent} ({err.strerror}): "
                        "make it writable or choose another with build-dir=") from None
    return lock
