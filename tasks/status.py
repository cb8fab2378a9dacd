"""`doit status`: what is built, published and verified, where, and what the next `doit` would
run and why, without changing anything or asking any server unless `--remote` is given.

The reasons are doit's own: each task's `DependencyStatus` (what `doit info` prints), turned into
one line naming the file or the setting that changed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Collection, Iterable, Sequence

import doit
from doit.loader import load_tasks

from . import fsio
from . import project as P
from .checker import SettingsChanged
from .config import Config
from .plan import Plan
from .report import aligned, destination, shown


@dataclasses.dataclass(frozen=True)
class Entry:
    """One planned file: the manifest's fields (when published) plus what status found."""

    artifact: P.Artifact
    made: str  # "built" | "converted" | "missing"
    size: int | None
    sha256: str | None
    stamp: dict[str, Any] | None
    verified: bool
    remote: str | None = None  # with --remote: "same" | "differs" | "absent"

    @property
    def published(self) -> str:
        if self.stamp is None:
            return "no"
        if self.sha256 is not None and self.stamp.get("sha256") != self.sha256:
            return "stale"  # the local file is no longer what was published
        return str(self.stamp.get("state", "yes"))

    def record(self) -> dict[str, Any]:
        """The manifest's entry for this file (its stamp), with what status adds."""
        base = dict(self.stamp or {"file": self.artifact.filename, "subdir": self.artifact.subdir})
        return {**base, "local": {"state": self.made, "size": self.size, "sha256": self.sha256},
                "published": self.stamp is not None, "verified": self.verified,
                **({"remote": self.remote} if self.remote else {})}


def show(config: Config, plan: Plan, dodo: str, *, remote: bool = False, json_path: str = "") -> None:
    """Print the status of every planned file and the tasks the next run would execute."""
    native, published = {b.artifact.key for b in plan.builds}, {a.key for a in plan.published}
    entries = [_entry(config, a, native=a.key in native, published=a.key in published) for a in _planned(plan)]
    if remote:
        from .upload import held

        entries = [dataclasses.replace(e, remote=_compare(e, held(config, e.artifact))) for e in entries]
    pending = next_run(dodo)
    if json_path:
        _write_json(config, entries, pending, json_path)
        if json_path == "-":
            return
    print("\n".join(lines(config, entries, pending)))


def _planned(plan: Plan) -> list[P.Artifact]:
    return list(dict.fromkeys([*(build.artifact for build in plan.builds), *plan.published]))


def _entry(config: Config, artifact: P.Artifact, *, native: bool, published: bool) -> Entry:
    stamp = _read(P.stamp(config, artifact)) if published else None
    digests = fsio.file_digests(artifact.path) if artifact.path.exists() else {}
    made = "missing" if not digests else ("built" if native else "converted")
    return Entry(artifact, made, digests.get("size"), digests.get("sha256"), stamp,
                 _verified(config, artifact, stamp))


def _verified(config: Config, artifact: P.Artifact, stamp: dict[str, Any] | None) -> bool:
    """Listed by its build's check, and checked after it was last published."""
    check = P.check_stamp(config, artifact.python or "noarch")
    found = _read(check) or {}
    listed = any(a.get("subdir") == artifact.subdir and a.get("file") == artifact.filename
                 for a in found.get("archives", []))
    published = P.stamp(config, artifact)
    return bool(listed and stamp and check.stat().st_mtime >= published.stat().st_mtime)


def _compare(entry: Entry, held: str | None) -> str:
    if held is None:
        return "absent"
    mine = (entry.stamp or {}).get("sha256") or entry.sha256
    return "same" if held == mine else "differs"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- what the next run would do: doit's own up-to-date check, with its reasons ------------------


# Tasks `doit` never runs unasked (no default task depends on them): not part of "the next run".
OUTSIDE_THE_RUN = ("status", "ci")


def next_run(dodo: str) -> list[tuple[str, list[str]]]:
    """(task, reasons) for every task the next `doit` would execute, in doit's task order."""
    tasks = {task.name: task for task in load_tasks(vars(sys.modules[dodo]))}
    manager = doit.Globals.dep_manager
    never = {name for name in tasks if manager._get(name, "checker:") is None}  # doit saves it on success
    makers = {target: name for name, task in tasks.items() for target in task.targets}
    pending = []
    for name, task in tasks.items():
        if name in OUTSIDE_THE_RUN or not task.actions:
            continue
        status = manager.get_status(task, tasks, get_log=True)
        if status.status != "up-to-date":
            pending.append((name, reasons(status.reasons, manager.get_values(name), makers, never,
                                          ran=name not in never)))
    return pending


def reasons(found: dict[str, Any], saved: dict[str, Any], makers: dict[str, str],
            never: Collection[str] = (), *, ran: bool = True) -> list[str]:
    """doit's reasons for one task as short lines: which file, which setting.  `never`: the tasks
    that never ran (their outputs will be new, not remade)."""
    waits = [_waits(path, makers.get(path), never) for path in found.get("missing_file_dep", [])]
    if not ran:
        return ["never ran", *waits]  # its targets are missing and its settings unknown: no news
    out: list[str] = []
    for check, _, _ in found.get("uptodate_false", []):
        out += _settings_changed(check, saved) if isinstance(check, SettingsChanged) else ["runs every time"]
    if found.get("has_no_dependencies"):
        out.append("runs every time")
    out += [f"{shown(Path(path))} is missing" for path in found.get("missing_target", [])]
    out += waits + [f"{shown(Path(path))} changed" for path in found.get("changed_file_dep", [])]
    out += _inputs_changed(found.get("added_file_dep", []), found.get("removed_file_dep", []))
    if found.get("checker_changed"):
        out.append("the file checker changed")
    return list(dict.fromkeys(out)) or ["doit says it must run"]


def _waits(path: str, maker: str | None, never: Collection[str]) -> str:
    if maker is None:
        return f"needs {shown(Path(path))}, which is missing and no task makes"
    if maker in never:
        return f"after {maker}"
    # the restore rule (tasks/restore.py): a published file comes back, and its upload confirms it
    return f"runs after {maker} when {Path(path).parent.name}/{Path(path).name} is restored or comes out different"


def _inputs_changed(added: Sequence[str], removed: Sequence[str]) -> list[str]:
    """A changed list of inputs (another platform or Python): counted, the first one named."""
    out = []
    for paths, verb in ((added, "new"), (removed, "no longer")):
        if paths:
            more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
            out.append(f"{verb} input{'s' * (len(paths) > 1)}: {shown(Path(paths[0]))}{more}")
    return out


def _settings_changed(check: SettingsChanged, saved: dict[str, Any]) -> list[str]:
    before = saved.get("_settings")
    if not isinstance(before, dict):  # saved by a version that kept only doit's digest
        return ["its settings changed"]
    return [f"setting {name.replace('_', '-')} changed: {_value(before.get(name))} → {_value(now)}"
            for name, now in check.config.items() if before.get(name) != now] or ["its settings changed"]


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(none)"
    return "(none)" if value in (None, "") else str(value)


# -- output ------------------------------------------------------------------------------------


def lines(config: Config, entries: Sequence[Entry], pending: Sequence[tuple[str, list[str]]]) -> list[str]:
    remote = any(e.remote for e in entries)
    header = ["file", "size", "sha256", "local", "published", "verified", *(["server"] if remote else [])]
    rows = [[e.artifact.key, _size(e.size), (e.sha256 or "—")[:12], e.made, e.published,
             "yes" if e.verified else "no", *([e.remote or ""] if remote else [])] for e in entries]
    out = [f"{config.package} {config.version}: {len(entries)} files, "
           + destination(config).replace("published to", "target", 1), *aligned([header, *rows])]
    differs = [e.artifact.key for e in entries if e.remote == "differs"]
    if differs:
        out.append(f"the server holds other bytes than our stamp for {len(differs)} file(s): " + ", ".join(differs[:5]))
    return out + _pending_lines(pending)


def _pending_lines(pending: Sequence[tuple[str, list[str]]]) -> list[str]:
    if not pending:
        return ["next `doit`: nothing to run, everything is up to date"]
    out = [f"next `doit` would run {len(pending)} task{'s' * (len(pending) != 1)}:"]
    for name, why in pending[:40]:
        more = [f"… and {len(why) - 4} more"] if len(why) > 4 else []
        out += [f"  {name}", *(f"      {reason}" for reason in [*why[:4], *more])]
    if len(pending) > 40:
        out.append(f"  … and {len(pending) - 40} more")
    return out


def _size(size: int | None) -> str:
    if size is None:
        return "—"
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def _write_json(config: Config, entries: Iterable[Entry], pending: Sequence[tuple[str, list[str]]], path: str) -> None:
    """The manifest's shape (tasks/manifest.py header, then files), plus `pending`."""
    from .manifest import header

    data = {**header(config), "files": [e.record() for e in entries],
            "pending": [{"task": name, "reasons": why} for name, why in pending]}
    if path == "-":
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        fsio.write_json(Path(path), data)
