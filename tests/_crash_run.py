"""Run doit in this process with one function patched from outside: the fault injector of the
reliability tests.  Production code carries no test hooks; this wrapper replaces one attribute,
then runs `doit` exactly as `python -m doit` does (in-process, so doit's actions run here too).

    CRASH_AT='{"at": "os:replace", "match": "/stamps/", "nth": 1, "when": "before"}' \\
        python tests/_crash_run.py package=... pythons=...

Spec keys:
  at     "module:attr" or "module:Class.attr", the function to wrap
  match  only calls whose repr(args, kwargs) contains this text count (default: every call)
  nth    the matching call that triggers the fault (1-based, default 1)
  when   "before"   SIGKILL instead of making the call
         "after"    make the call, then SIGKILL (the work is done, nothing after it is)
         "body"     (anaconda-client's storage POST) send the request, SIGKILL once half the
                    package file has been read into the request body
         "watch"    make the call while a watcher process waits for inotify `event` (moved_to,
                    create, close_write) in the existing folder `dir`, on the entry `name` if
                    given, and SIGKILLs this process at once;
                    SIGKILL after the call if the event never came (logged as a miss)
         "partial"  (subprocess.run of `pip download`) write the first half of the file `source`
                    under its own name into pip's --dest, as pip's interrupted copy would leave
                    it, then SIGKILL
         "sleep"    sleep `delay` seconds before the call (no kill: makes a run slow on purpose)
  group  SIGKILL the whole process group (the run and any child it started), not just this process

Every call the wrapper saw is also appended to $CRASH_LOG when set (one repr per line), and with
"record": true every subprocess's argv is logged there as well (for the secrets scan).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable


def _die(group: bool) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    if group:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _log(line: str) -> None:
    path = os.environ.get("CRASH_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line.replace("\n", "\\n") + "\n")


def _resolve(spec: str) -> tuple[list[Any], str]:
    """The objects holding the attribute: the module as imported, and as its package's attribute
    (they differ for some extension packages, e.g. `rattler.index`)."""
    module_name, _, attr_path = spec.partition(":")
    modules: list[Any] = [importlib.import_module(module_name)]
    top, *rest = module_name.split(".")
    via_attributes: Any = importlib.import_module(top)
    for name in rest:
        via_attributes = getattr(via_attributes, name, None)
    if via_attributes is not None and via_attributes is not modules[0]:
        modules.append(via_attributes)
    *parents, attr = attr_path.split(".")
    owners = []
    for owner in modules:
        for name in parents:
            owner = getattr(owner, name)
        if hasattr(owner, attr) and all(owner is not seen for seen in owners):
            owners.append(owner)
    return owners, attr


class _KillingReader:
    """A file object that SIGKILLs the process once `limit` bytes have been read from it."""

    def __init__(self, inner: Any, limit: int, group: bool) -> None:
        self._inner, self._limit, self._group, self._read = inner, limit, group, 0

    def read(self, size: int = -1) -> bytes:
        if self._read >= self._limit:
            _die(self._group)
        data = self._inner.read(size if size is None or size < 0 else min(size, max(self._limit - self._read, 1)))
        self._read += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _fault(original: Callable[..., Any], spec: dict[str, Any]) -> Callable[..., Any]:
    nth, when, match, group = spec.get("nth", 1), spec.get("when", "before"), spec.get("match"), spec.get("group", False)
    seen = {"count": 0}

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        text = repr((args, kwargs))
        if match is not None and match not in text:
            return original(*args, **kwargs)
        seen["count"] += 1
        _log(f"call {seen['count']} {spec['at']} {text[:400]}")
        if seen["count"] != nth:
            return original(*args, **kwargs)
        if when == "before":
            _die(group)
        if when == "sleep":
            time.sleep(float(spec.get("delay", 1.0)))
            return original(*args, **kwargs)
        if when == "body":
            url, data, files = args[0], args[1], args[2]
            name, handle = files["file"]
            size = os.fstat(handle.fileno()).st_size
            return original(url, data, {"file": (name, _KillingReader(handle, size // 2, group))}, *args[3:], **kwargs)
        if when == "watch":
            watcher = _watch(Path(spec["dir"]), spec.get("event", "moved_to"), group, spec.get("name", ""))

            def missed() -> None:
                try:
                    watcher.wait(timeout=2)  # it kills us at the event: the call ending first is a miss
                except subprocess.TimeoutExpired:
                    watcher.kill()
                _log("watch missed: killed after the call")
                _die(group)

            return _then(original(*args, **kwargs), missed)
        if when == "partial":
            argv = list(args[0])
            dest = Path(argv[argv.index("--dest") + 1])
            source = Path(spec["source"])
            dest.mkdir(parents=True, exist_ok=True)
            data = source.read_bytes()
            (dest / source.name).write_bytes(data[: len(data) // 2])
            _die(group)
        if when == "after":
            return _then(original(*args, **kwargs), lambda: _die(group))
        return original(*args, **kwargs)

    return wrapper


def _then(result: Any, action: Callable[[], None]) -> Any:
    """Run action once the call's work is done: now, or when its coroutine has been awaited
    (rattler's index_fs returns a coroutine: the indexing happens when asyncio.run awaits it)."""
    if inspect.iscoroutine(result):
        async def awaited() -> Any:
            value = await result
            action()
            return value

        return awaited()
    action()
    return result


_WATCHER = r"""
import ctypes, os, signal, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the run it watches
fd = libc.inotify_init()
mask = {"moved_to": 0x80, "create": 0x100, "close_write": 0x8}[sys.argv[2]]
if libc.inotify_add_watch(fd, sys.argv[1].encode(), mask) < 0:
    sys.exit(1)
target, group, wanted = int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
print("ready", flush=True)
name = None
while name is None:
    data, at = os.read(fd, 65536), 0
    while at < len(data):
        length = struct.unpack_from("iIII", data, at)[3]
        found = data[at + 16:at + 16 + length].rstrip(b"\0").decode()
        at += 16 + length
        if not wanted or found == wanted:
            name = found
            break
with open(os.environ.get("CRASH_LOG") or os.devnull, "a") as log:
    log.write(f"watch hit {sys.argv[1]} {sys.argv[2]} {name}\n")
os.killpg(os.getpgid(target), signal.SIGKILL) if group else os.kill(target, signal.SIGKILL)
"""


def _watch(folder: Path, event: str, group: bool, name: str = "") -> subprocess.Popen:
    """A separate process (it needs no GIL of ours: the Rust indexer may hold it) that SIGKILLs this
    process the moment inotify reports `event` in folder (for an entry called `name`, if given)."""
    if not folder.is_dir():
        raise SystemExit(f"_crash_run: cannot watch {folder}: no such folder")
    proc = subprocess.Popen([sys.executable, "-c", _WATCHER, str(folder), event, str(os.getpid()),
                             "1" if group else "0", name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _record_children() -> None:
    """Log the argv of every subprocess this run starts."""
    original = subprocess.Popen.__init__

    @functools.wraps(original)
    def init(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
        _log(f"exec {json.dumps([str(a) for a in args] if not isinstance(args, (str, bytes)) else [str(args)])}")
        original(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]


def main() -> int:
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    sys.path.insert(0, os.getcwd())  # the project under test: its dodo.py and tasks/
    spec = json.loads(os.environ.get("CRASH_AT") or "{}")
    if spec.get("at"):
        owners, attr = _resolve(spec["at"])
        wrapped = _fault(getattr(owners[0], attr), spec)
        for owner in owners:
            setattr(owner, attr, wrapped)
    if spec.get("record"):
        _record_children()

    from doit.doit_cmd import DoitMain

    return DoitMain().run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
