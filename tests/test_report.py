"""The reporter's batched up-to-date lines and the one-query read of doit's saved state."""

from __future__ import annotations

import io

from doit.dependency import JSONCodec, SqliteDB
from doit.exceptions import TaskFailed
from doit.reporter import ConsoleReporter
from doit.task import Task

from tasks.checker import load_state
from tasks.report import ReleaseReporter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _run(reporter_class, stream) -> None:
    reporter = reporter_class(stream, {})
    tasks = {name: Task(name, [f"echo {name}"]) for name in ("a", "b", "_hidden", "c", "d", "upload:e")}
    for name in ("a", "b", "_hidden"):
        reporter.skip_uptodate(tasks[name])
    reporter.execute_task(tasks["c"])
    reporter.add_success(tasks["c"])
    for name in ("d", "upload:e"):
        reporter.skip_uptodate(tasks[name])
    reporter.complete_run()


def test_up_to_date_lines_are_doits_lines_in_doits_order_in_fewer_writes():
    ours, doits = CountingStream(), CountingStream()
    _run(ReleaseReporter, ours)
    _run(ConsoleReporter, doits)
    summary = "\nfile  state\ne     skipped\n1 file: 1 skipped\n"
    assert ours.getvalue() == doits.getvalue() + summary
    assert doits.getvalue() == "-- a\n-- b\n.  c\n-- d\n-- upload:e\n"
    # doit: one write per line; ours: the held lines go out with `.  c`, then with the summary
    assert doits.writes == 5 and ours.writes == 2


def test_load_state_reads_what_doit_would_read_one_task_at_a_time(tmp_path):
    db_file = str(tmp_path / "doit.db")
    saved = SqliteDB(db_file, JSONCodec())
    saved.set("build:3.6", "/x/meta.yaml", [1.5, 10, "abc"])
    saved.set("build:3.6", "result:", "r")
    saved.set("upload:linux-64/a.tar.bz2", "_values_:", {"channel_url": "file:///c"})
    saved.dump()

    class Manager:
        backend = SqliteDB(db_file, JSONCodec())

    assert load_state(Manager) == 2
    reference = SqliteDB(db_file, JSONCodec())
    for task_id in ("build:3.6", "upload:linux-64/a.tar.bz2"):
        assert Manager.backend._cache[task_id] == reference._get_task_data(task_id)
    assert Manager.backend.get("build:3.6", "/x/meta.yaml") == [1.5, 10, "abc"]
    assert not Manager.backend.in_("never-ran") and Manager.backend.get("never-ran", "x") is None


def test_load_state_leaves_other_backends_and_a_warm_cache_alone(tmp_path):
    class Other:
        backend = object()

    assert load_state(Other) == 0
    assert load_state(None) == 0
    db_file = str(tmp_path / "doit.db")
    saved = SqliteDB(db_file, JSONCodec())
    saved.set("t", "k", "v")
    saved.dump()

    class Warm:
        backend = SqliteDB(db_file, JSONCodec())

    Warm.backend.set("t", "k", "changed in this run")
    assert load_state(Warm) == 0
    assert Warm.backend.get("t", "k") == "changed in this run"


def test_held_lines_are_written_at_the_end_of_a_run_with_no_summary():
    stream = CountingStream()
    reporter = ReleaseReporter(stream, {})
    for name in ("recipe", "wheel"):
        reporter.skip_uptodate(Task(name, ["true"]))
    assert stream.getvalue() == ""
    reporter.complete_run()
    assert stream.getvalue() == "-- recipe\n-- wheel\n" and stream.writes == 1


def test_actions_run_with_the_collector_on_whatever_the_reporter():
    import gc

    from tasks.errors import Step

    gc.disable()  # as dodo.py leaves it while the tasks are made
    try:
        assert Step("subdirs:native")() is None  # a Step drops the action's own return value
        assert gc.isenabled()
    finally:
        gc.enable()


# -- the summary table, from a real plan ----------------------------------------------------------

import dataclasses  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from tasks import plan, report, subdirs  # noqa: E402
from tasks.config import Config  # noqa: E402

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x9b]")  # anything but a newline a terminal acts on


def _release(**settings) -> tuple[Config, plan.Plan]:
    config = dataclasses.replace(Config(build_dir=Path("/rel/build")), **settings)
    return config, plan.make(config, "linux-64")


def _fresh_run(release: plan.Plan) -> dict[str, list[str]]:
    """What a first run does: each build built, each conversion converted, then every upload."""
    cells: dict[str, list[str]] = {}
    for build in release.builds:
        cells.setdefault(build.artifact.key, []).append("built")
    for conversion in release.conversions:
        for artifact in conversion.artifacts:
            cells.setdefault(artifact.key, []).append("converted")
    for artifact in release.published:
        cells[artifact.key].append("uploaded")
    return cells


def test_default_release_is_one_row_per_subdir_and_one_column_per_python_in_100_columns():
    config, release = _release()
    lines = report.summary(report.Layout.of(config, release), _fresh_run(release))
    header, rows = lines[0].split(), lines[1:10]
    assert header == ["btrdb", "5.2.2", "python", "3.6", "python", "3.7"]
    assert [row.split()[0] for row in rows] == ["linux-64", *(s for s in subdirs.WALKTHROUGH if s != "linux-64")]
    assert rows[0].split(None, 1)[1].split("  ")[0] == "built, uploaded"
    assert all(re.split(r" {2,}", row)[1:] == ["converted, uploaded"] * 2 for row in rows[1:])
    assert lines[10] == "18 files: 2 built, 16 converted, 18 uploaded"
    assert lines[11].startswith("published to the local channel /rel/build/channel (file:///rel/build/channel)")
    assert max(map(len, lines[:11])) <= 100 and not CONTROL.search("".join(lines))


def test_all_platforms_and_four_pythons_keep_full_cells_within_100_columns():
    config, release = _release(platforms=subdirs.ALL, pythons=("3.10", "3.11", "3.12", "3.13"))
    lines = report.summary(report.Layout.of(config, release), _fresh_run(release))
    assert len(lines) == 1 + 13 + 2 and max(map(len, lines[:-1])) <= 100
    assert lines[2].count("converted, uploaded") == 4
    assert lines[-2] == "52 files: 4 built, 48 converted, 52 uploaded"


def test_more_pythons_than_fit_show_each_files_last_state_then_counts_per_subdir():
    six = tuple(f"3.{minor}" for minor in range(8, 14))
    config, release = _release(platforms=subdirs.ALL, pythons=six)
    lines = report.summary(report.Layout.of(config, release), _fresh_run(release))
    assert max(map(len, lines[:-1])) <= 100 and len(lines[0].split("  ")) > 1
    assert re.split(r" {2,}", lines[1])[1:] == ["uploaded"] * 6  # the last thing done to each file

    many = tuple(f"3.{minor}" for minor in range(6, 15))  # 9 columns do not fit even so
    config, release = _release(platforms=subdirs.ALL, pythons=many)
    cells = _fresh_run(release)
    cells[release.published[-1].key][-1] = "failed"
    lines = report.summary(report.Layout.of(config, release), cells, width=100)
    assert lines[0].split("  ")[-1] == "9 builds (python 3.6 … python 3.14)"
    assert re.split(r" {2,}", lines[1]) == ["linux-64", "9 uploaded"]
    assert re.split(r" {2,}", lines[13]) == ["win-arm64", "8 uploaded, 1 failed"]
    assert lines[14] == "117 files: 9 built, 108 converted, 116 uploaded, 1 failed"
    assert max(map(len, lines[:-1])) <= 100


def test_a_narrower_terminal_gets_the_shorter_form():
    config, release = _release()
    lines = report.summary(report.Layout.of(config, release), _fresh_run(release), width=40)
    assert re.split(r" {2,}", lines[2])[1:] == ["uploaded", "uploaded"] and max(map(len, lines[:-2])) <= 40


def test_cells_say_restored_skipped_failed_and_dash_for_files_this_run_did_not_touch(tmp_path):
    config, release = _release(pythons=("3.6",), platforms=("linux-64", "win-64", "osx-64"))
    stream = io.StringIO()
    reporter = report.ReleaseReporter.for_release(config, release)(stream, {})
    stamps = {}
    for artifact, state in zip(release.published, ("restored", "skipped")):
        stamps[artifact.key] = tmp_path / f"{artifact.subdir}.json"
        stamps[artifact.key].write_text(f'{{"state": "{state}"}}')
        reporter.add_success(Task(f"upload:{artifact.key}", ["true"], targets=[str(stamps[artifact.key])]))
    reporter.add_failure(Task(f"upload:{release.published[2].key}", ["true"]), TaskFailed("refused"))
    reporter.complete_run()
    table = read_table(stream.getvalue())
    assert table == {"linux-64": ["restored"], "win-64": ["skipped"], "osx-64": ["failed"]}
    assert "3 files: 1 restored, 1 skipped, 1 failed" in stream.getvalue()
    assert "error: upload:osx-64/btrdb-5.2.2-py36_0.tar.bz2: refused" in stream.getvalue()

    untouched = io.StringIO()
    reporter = report.ReleaseReporter.for_release(config, release)(untouched, {})
    reporter.skip_uptodate(Task(f"upload:{release.published[0].key}", ["true"]))
    reporter.complete_run()
    assert read_table(untouched.getvalue()) == {"linux-64": ["skipped"], "win-64": ["—"], "osx-64": ["—"]}


def read_table(text: str) -> dict[str, list[str]]:
    """Rows of the table under the `btrdb 5.2.2 …` header: subdir -> cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("btrdb 5.2.2"))
    rows = {}
    for line in lines[start + 1:]:
        if re.match(r"\d+ files?:", line):
            return rows
        row, *cells = re.split(r" {2,}", line)
        rows[row] = cells
    raise AssertionError(text)
