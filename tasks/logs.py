"""Tool output goes to a log file under the build folder; the terminal gets one line.

grayskull, setuptools and pip talk a lot, partly from child processes that write to the file
descriptors directly, so capturing sys.stdout is not enough: `captured` points descriptors 1
and 2 at the log for the duration of a block.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

from .runner import Result


def shown(path: Path) -> str:
    """The log's path as the user would type it: relative to the folder doit runs in."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def captured(path: Path) -> Iterator[Path]:
    """Everything written to stdout, stderr and logging inside the block goes to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    root = logging.getLogger()
    with open(path, "w", encoding="utf-8") as log:
        handler = logging.StreamHandler(log)
        root.addHandler(handler)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield path
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            root.removeHandler(handler)


def write(path: Path, *results: Result) -> Path:
    """Keep what subprocesses said, command by command."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as log:
        for result in results:
            log.write(f"$ {' '.join(result.argv)}\n(exit {result.returncode})\n{result.stdout}{result.stderr}\n")
    return path


def last_error(text: str) -> str:
    """The line that says what went wrong: the last `…Error: …` line, else the last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    found = next((line for line in reversed(lines) if line.startswith("error:")
                  or ("Error:" in line and not line.startswith(("File ", "raise ")))), None)
    said = found or (lines[-1] if lines else "no output")
    return said if len(said) <= 160 else said[:157] + "..."
