"""doit's file checker with xxh3-128 in place of md5."""

from __future__ import annotations

import os
from typing import Any

from doit.dependency import FileChangedChecker

from . import fsio


class XxhashChecker(FileChangedChecker):
    """State is (mtime, size, xxh3), as doit's MD5Checker keeps (mtime, size, md5).

    An unchanged mtime means unchanged content and costs no read; a changed size means changed
    content; only a changed mtime with the same size is hashed, at memory speed rather than md5's.
    """

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        timestamp, size, digest = state
        if file_stat.st_mtime == timestamp:
            return False
        if file_stat.st_size != size:
            return True
        return digest != fsio.xxh3(file_path)

    def get_state(self, dep: str, current_state: Any) -> Any:
        stat = os.stat(dep)
        if current_state and current_state[0] == stat.st_mtime:
            return None  # doit keeps the saved state
        return stat.st_mtime, stat.st_size, fsio.xxh3(dep)
