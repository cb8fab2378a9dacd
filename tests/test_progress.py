"""Progress bars: drawn on a terminal once work lasts, absent (and tqdm not loaded) elsewhere."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from tasks import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_nothing_is_written_and_the_stream_is_passed_as_is():
    pipe = io.StringIO()
    with progress.bar(10, "x.tar.bz2", stream=pipe) as sent:
        sent.update(10)
    assert pipe.getvalue() == "" and isinstance(sent, progress.Silent)
    raw = io.BytesIO(b"abc")
    assert progress.reading(raw, sent) is raw


def test_tqdm_is_not_imported_off_a_terminal():
    code = ("import sys; from tasks import progress; progress.bar(5, 'x').update(5); "
            "print('tqdm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         stdin=subprocess.DEVNULL, cwd=progress.__file__.rsplit("/tasks/", 1)[0])
    assert out.stdout.strip() == "False"


def test_on_a_terminal_work_that_lasts_shows_bytes_sent_of_total(monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.05)
    screen = Terminal()
    data = io.BytesIO(b"x" * 4096)
    with progress.bar(4096, "big.tar.bz2", stream=screen) as sent:
        stream = progress.reading(data, sent)
        stream.read(1024)
        time.sleep(0.1)
        stream.read(1024)
        time.sleep(0.1)
        stream.read()
    shown = screen.getvalue()
    assert "big.tar.bz2" in shown and "4.00k" in shown and "\r" in shown  # redrawn in place
    assert sent.n == 4096


def test_on_a_terminal_work_that_ends_quickly_shows_nothing():
    screen = Terminal()
    with progress.bar(3, "converting x", unit="file", stream=screen) as done:
        done.update(3)
    assert screen.getvalue() == ""
