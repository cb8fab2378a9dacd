"""One doit run per build folder: a second run waits for the first instead of racing it."""

from __future__ import annotations

import fcntl
import sys
from pathlib import Path
from typing import IO

from .errors import UserError


def hold(path: Path) -> IO[str]:
    """Take the build folder's lock for the life of this process, waiting if another run has it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError as err:
        raise UserError(f"cannot write to the build folder {path.parent} ({err.strerror}): "
                        "make it writable or choose another with build-dir=") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another doit run is using {path.parent}: waiting for it to finish", file=sys.stderr)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle
