"""`doit status`, and the summary of real runs: the tiny package released with the walkthrough's
settings (9 subdirs x Python 3.6, 3.7 = 18 files), then looked at after each kind of change.

The project is released once per module; each test restores that state (same path, so doit's
database still holds) before changing something.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import Project, new_project, read_summary
from tasks import subdirs

ARGS = ("package=crdagtiny", "version=1.0.0")
NATIVE = subdirs.native()
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x9b]")  # what a terminal would act on, bar newlines
KEYS = [f"{NATIVE}/crdagtiny-1.0.0-{tag}_0.tar.bz2" for tag in ("py36", "py37")] + [
    f"{sub}/crdagtiny-1.0.0-{tag}_0.tar.bz2" for tag in ("py36", "py37") for sub in subdirs.WALKTHROUGH
    if sub != NATIVE]


def plain(proc: subprocess.CompletedProcess) -> str:
    """stdout, checked to carry no control characters (it is not a terminal)."""
    assert not CONTROL.search(proc.stdout + proc.stderr), repr(proc.stdout)
    return proc.stdout


def rows(stdout: str) -> dict[str, list[str]]:
    """The status table: file key -> size, sha256, local, published, verified[, server]."""
    found = {}
    for line in stdout.splitlines():
        first, *rest = re.split(r" {2,}", line)
        if first.partition("/")[0] in subdirs.ALL and first.endswith(".tar.bz2") and rest:
            found[first] = rest
    return found


def pending(stdout: str) -> dict[str, list[str]]:
    """`next doit would run` as task -> reasons."""
    tasks: dict[str, list[str]] = {}
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("next `doit`"))
    for line in lines[start + 1:]:
        if line.startswith("      "):
            tasks[name].append(line.strip())
        elif line.startswith("  "):
            name = line.strip()
            tasks[name] = []
    return tasks


@pytest.fixture(scope="module")
def walk(tmp_path_factory, tiny_sdist):
    """(project, `doit status` before anything ran, the first default run, a snapshot)."""
    base = tmp_path_factory.mktemp("status")
    project = new_project(base / "proj", (tiny_sdist,))
    before = project.doit("status", *ARGS)
    first = project.doit(*ARGS)
    snapshot = base / "snapshot"
    shutil.copytree(project.root, snapshot, symlinks=True)
    return project, before, first, snapshot


@pytest.fixture
def released(walk) -> Project:
    project, _, _, snapshot = walk
    shutil.rmtree(project.root)
    shutil.copytree(snapshot, project.root, symlinks=True)
    return project


def test_a_default_run_ends_with_the_table_in_100_columns(walk):
    project, _, first, _ = walk
    summary = read_summary(plain(first))
    assert summary.header == ["crdagtiny 1.0.0", "python 3.6", "python 3.7"]
    assert summary.cells[(NATIVE, "python 3.6")] == ["built", "uploaded"]
    others = [sub for sub in subdirs.WALKTHROUGH if sub != NATIVE]
    assert all(summary.cells[(sub, py)] == ["converted", "uploaded"] for sub in others for py in ("python 3.6", "python 3.7"))
    assert len(summary.cells) == 18 and summary.totals == {"built": 2, "converted": 16, "uploaded": 18}
    assert summary.where == f"published to the local channel build/channel ({(project.build / 'channel').as_uri()})"
    assert max(len(line) for line in summary.lines[:-1]) <= 100
    assert "status" not in project.executed(first)  # not a default task


def test_status_of_a_fresh_project_lists_every_file_missing_and_every_task_never_run(walk):
    _, before, _, _ = walk
    table = rows(plain(before))
    assert sorted(table) == sorted(KEYS)
    assert all(row[2:] == ["missing", "no", "no"] and row[:2] == ["—", "—"] for row in table.values())
    tasks = pending(before.stdout)
    assert {"source", "build:3.6", "convert:3.7", f"upload:{KEYS[-1]}", "verify"} <= set(tasks)
    assert tasks["source"] == ["never ran"]
    assert "status" not in tasks


def test_status_when_all_is_done_shows_sizes_hashes_and_nothing_to_run(released):
    proc = released.doit("status", "--json", "build/status.json", *ARGS)
    table = rows(plain(proc))
    manifest = json.loads((released.build / "release.json").read_text())
    by_key = {f"{f['subdir']}/{f['file']}": f for f in manifest["files"]}
    for key, (size, sha, local, published, verified) in table.items():
        assert sha == by_key[key]["sha256"][:12] and size == f"{by_key[key]['size'] / 1024:.1f} KiB"
        assert (local, published, verified) == ("built" if key.startswith(NATIVE) else "converted", "uploaded", "yes")
    assert "next `doit`: nothing to run, everything is up to date" in proc.stdout
    assert released.executed(proc) == [] and proc.stdout.startswith("crdagtiny 1.0.0: 18 files")  # the view alone
    assert max(len(line) for line in proc.stdout.splitlines()[1:20]) <= 100  # the table, below the target line
    status = json.loads((released.build / "status.json").read_text())
    assert status.keys() - {"pending"} == manifest.keys() and status["pending"] == []
    for entry in status["files"]:  # each file: the manifest's entry, plus what status found
        assert {k: entry[k] for k in by_key[f"{entry['subdir']}/{entry['file']}"]} == by_key[f"{entry['subdir']}/{entry['file']}"]
        assert entry["published"] and entry["verified"] and entry["local"]["sha256"] == entry["sha256"]
    assert json.loads(released.doit("status", "--json", "-", *ARGS).stdout) == status  # stdout: JSON only
    assert released.executed(released.doit(*ARGS)) == []  # status changed nothing


def test_status_after_a_file_is_deleted_names_it_and_the_task_that_remakes_it(released):
    victim = f"win-64/crdagtiny-1.0.0-py36_0.tar.bz2"
    (released.build / "platform-builds" / victim).unlink()
    proc = released.doit("status", *ARGS)
    assert rows(plain(proc))[victim][:3] == ["—", "—", "missing"]
    tasks = pending(proc.stdout)
    assert tasks["convert:3.6"] == [f"build/platform-builds/{victim} is missing"]
    assert tasks[f"upload:{victim}"] == [
        f"runs after convert:3.6 when {victim} is restored or comes out different"]
    ran = released.executed(released.doit(*ARGS))
    assert ran[:2] == ["convert:3.6", f"upload:{victim}"]  # as said: restored, then confirmed
    assert all(not name.startswith(("build:", "upload:")) for name in ran[2:])


def test_status_after_a_setting_changed_names_the_setting_and_its_values(released):
    proc = released.doit("status", *ARGS, "label=main,rc")
    tasks = pending(plain(proc))
    uploads = {name: why for name, why in tasks.items() if name.startswith("upload:")}
    assert len(uploads) == 18 and set(map(tuple, uploads.values())) == {("setting labels changed: main → main,rc",)}
    assert "convert:3.6" not in tasks


def test_status_remote_flags_a_file_the_target_holds_with_other_bytes(released):
    changed = f"osx-64/crdagtiny-1.0.0-py37_0.tar.bz2"
    (released.build / "channel" / changed).write_bytes(b"not the file we published")
    quiet = released.doit("status", *ARGS)
    assert quiet.stdout.splitlines()[1].split() == ["file", "size", "sha256", "local", "published", "verified"]  # no lookups unless asked
    proc = released.doit("status", "--remote", *ARGS)
    table = rows(plain(proc))
    assert table[changed][-1] == "differs"
    assert all(row[-1] == "same" for key, row in table.items() if key != changed)
    assert f"the server holds other bytes than our stamp for 1 file(s): {changed}" in proc.stdout


def test_all_platforms_with_four_pythons_stay_one_table_in_100_columns(released):
    proc = released.doit(*ARGS, "platforms=all", "pythons=3.10,3.11,3.12,3.13")
    summary = read_summary(plain(proc))
    columns = [f"python 3.{minor}" for minor in (10, 11, 12, 13)]
    assert summary.header == ["crdagtiny 1.0.0", *columns] and len(summary.cells) == 52
    assert [summary.cells[(NATIVE, col)] for col in columns] == [["built", "uploaded"]] * 4
    assert summary.cells[("win-arm64", "python 3.13")] == ["converted", "uploaded"]
    assert summary.totals == {"built": 4, "converted": 48, "uploaded": 52}
    assert max(len(line) for line in summary.lines[:-1]) <= 100


def on_terminal(project: Project, *args: str) -> str:
    """What a run writes to a terminal (a pseudo-terminal here: stdout and stderr are a tty)."""
    import os
    import pty
    import sys

    main, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=project.root, stdin=subprocess.DEVNULL,
                            stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the run ended and closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(timeout=600) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal's own line ends


def test_a_run_with_nothing_to_do_draws_no_progress_on_a_terminal(released):
    shown = on_terminal(released, *ARGS)
    assert "\r" not in shown and "%|" not in shown and "\x1b" not in shown
    assert read_summary(shown).totals == {"skipped": 18}


# -- doit's reasons as lines, pure ------------------------------------------------------------


def test_reasons_name_the_setting_the_file_and_the_task_that_makes_it():
    from tasks.checker import SettingsChanged
    from tasks.status import reasons

    check = SettingsChanged({"labels": ["main", "rc"], "force": False})
    found = {"uptodate_false": [(check, (), {})], "missing_file_dep": ["/p/build/a.tar.bz2"],
             "added_file_dep": ["/p/x1", "/p/x2"], "removed_file_dep": ["/p/y"]}
    saved = {"_config_changed": "old", "_settings": {"labels": ["main"], "force": False}}
    assert reasons(found, saved, {"/p/build/a.tar.bz2": "convert:3.6"}) == [
        "setting labels changed: main → main,rc",
        "runs after convert:3.6 when build/a.tar.bz2 is restored or comes out different",
        "new inputs: /p/x1 and 1 more", "no longer input: /p/y"]
    assert reasons(found, {"_config_changed": "old"}, {})[0] == "its settings changed"  # a digest only
    makers = {"/p/build/a.tar.bz2": "convert:3.6"}
    assert reasons(found, {}, makers, {"convert:3.6"}, ran=False) == ["never ran", "after convert:3.6"]
    assert reasons({"missing_file_dep": ["/p/build/a.tar.bz2"]}, saved, makers, {"convert:3.6"}) == ["after convert:3.6"]
    assert reasons({"uptodate_false": [(False, (), {})]}, {}, {}) == ["runs every time"]


def test_settings_changed_saves_the_settings_beside_doits_digest():
    from doit.task import Task
    from doit.tools import config_changed

    from tasks.checker import SettingsChanged

    settings = {"labels": ["main"], "force": False}
    check, task = SettingsChanged(settings), Task("upload:x", ["true"])
    assert check(task, {}) is False  # never ran
    saved = task.value_savers[-1]()
    assert saved == {"_config_changed": config_changed(settings)._calc_digest(), "_settings": settings}
    assert check(Task("t", ["true"]), saved) is True
    assert SettingsChanged({**settings, "force": True})(Task("t", ["true"]), saved) is False
