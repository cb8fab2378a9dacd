"""The reporter's batched up-to-date lines and the one-query read of doit's saved state."""

from __future__ import annotations

import io

from doit.dependency import JSONCodec, SqliteDB
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
    summary = "summary: skipped: 1 (e)\n"
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
