"""doit's file checker with xxh3-128 in place of md5, and a shareable settings check."""

from __future__ import annotations

import inspect
import os
from typing import Any

from doit.dependency import FileChangedChecker, SqliteDB
from doit.tools import config_changed

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


class SettingsChanged(config_changed):
    """doit's `config_changed`, cheap enough to share among a thousand tasks.

    The digest of the settings is computed once, not once per task, and the call signature is
    declared, so doit does not re-inspect it for every task it checks (both showed in profiles
    of a no-op run with ~1,000 uploads).
    """

    __signature__ = inspect.Signature([
        inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("values", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ])

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        self._digest = super()._calc_digest()

    def _calc_digest(self) -> str:
        return self._digest

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        """doit's check, saving the settings themselves beside their digest, so `doit status` can
        say which one changed; one bound saver per task, not a new closure as doit makes."""
        task.value_savers.append(self._saved)
        last = values.get("_config_changed")
        return last is not None and last == self._digest

    def _saved(self) -> dict[str, Any]:
        return {"_config_changed": self._digest, "_settings": self.config}


def load_state(dep_manager: Any) -> int:
    """Read every task's saved state from doit's sqlite file in one query, before the up-to-date
    checks: doit would otherwise run one SELECT per task (2,000 of them at 1,000 artifacts).

    The rows go where doit itself caches what it reads, decoded by doit's own codec, so what the
    checks see is the same.  Other backends (dbm, json) are left alone.  Returns the rows read.
    """
    backend = getattr(dep_manager, "backend", None)
    if not isinstance(backend, SqliteDB) or backend._cache:
        return 0
    cursor = backend._conn.cursor()
    cursor.row_factory = None
    rows = cursor.execute("select task_id, task_data from doit").fetchall()
    for task_id, data in rows:
        backend._cache[task_id] = data if data is not None else {}
    return len(rows)
