"""The one seam for subprocesses: argv lists only, never a shell, output captured for messages."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import Mapping, Protocol, Sequence


@dataclasses.dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, cwd: str | None = None,
                 env: Mapping[str, str] | None = None) -> Result: ...


def run(argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> Result:
    """Run argv to completion; the caller decides what a non-zero exit means."""
    merged = {**os.environ, **(env or {})}
    proc = subprocess.run(list(argv), cwd=cwd, env=merged, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    return Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def pip(*args: str) -> list[str]:
    """argv for the pipeline's own pip, so a user's pip configuration (index, mirror) applies."""
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
