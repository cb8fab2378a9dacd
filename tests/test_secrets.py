"""The anaconda.org token never leaves anaconda-client's session: not in output, files or argv.

Each upload scenario (success, skip, rejected token, conflict, retry after 5xx) is a real
`doit target=anaconda` run against the stand-in with a recognisable token, given the way a user
gives it (ANACONDA_API_TOKEN).  Then everything is scanned for the token and for its secret tail:
the run's stdout and stderr; every file under the build folder (the doit database, stamps,
manifest, verify stamp, channel, work files) and under HOME (anaconda-client's config and logs);
the argv of every subprocess the run started (recorded by tests/_crash_run.py); the command line
of every process in the run's session, sampled from /proc every 2 ms while it runs; and the URLs
of every request the server answered.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

pytest.register_assert_rewrite("_crash_fixtures")
from _crash_fixtures import OWNER, PY36, PY37, TOKEN, USER, anaconda_stand_in, run_doit  # noqa: E402
from conftest import TINY_ARGS  # noqa: E402

pytest_plugins = ("_crash_fixtures",)

NEEDLES = (TOKEN.encode(), TOKEN.rsplit("-", 1)[1].encode())  # the token, and its secret part alone


class SessionWatch(threading.Thread):
    """Samples the command lines of every process in one session (the doit run and its children):
    pid -> every non-empty command line seen (a process may exec)."""

    def __init__(self, session: int) -> None:
        super().__init__(daemon=True)
        self.session, self.seen, self.done = session, {}, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[3]) == self.session:
                        cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
                        if cmdline:  # a process that has exited (a zombie) shows an empty one
                            self.seen.setdefault(int(entry.name), set()).add(cmdline)
                except (OSError, ValueError, IndexError):
                    pass  # the process ended while we looked
            time.sleep(0.002)


def scanned_run(tiny_release, anaconda, tmp_path: Path, *extra: str, label: str = "main"):
    """One doit run, watched; returns (proc, texts scanned as {where: bytes}, sampled cmdlines).
    `verify` installs from the stand-in's channel view, so the run starts subprocesses too."""
    log = tmp_path / "children.log"
    env = {**anaconda.env(), "CRASH_LOG": str(log)}
    proc = run_doit(tiny_release.project, *TINY_ARGS, "target=anaconda", f"label={label}",
                    f"channel-url={anaconda.server.channel_url(OWNER, label)}", *extra,
                    env=env, crash={"record": True}, popen=True)
    watch = SessionWatch(proc.pid)
    watch.start()
    stdout, stderr = proc.communicate(timeout=300)
    watch.done.set()
    watch.join()
    proc.stdout_text, proc.stderr_text = stdout, stderr
    texts: dict[str, bytes] = {"stdout": stdout.encode(), "stderr": stderr.encode(),
                               "server request log": repr(anaconda.server.calls()).encode()}
    for root in (tiny_release.build, anaconda.home):
        for path in sorted(root.rglob("*")):
            if path.is_file():
                texts[str(path)] = path.read_bytes()
    texts["subprocess argv"] = log.read_bytes() if log.exists() else b""
    for pid, cmdlines in watch.seen.items():
        texts[f"/proc/{pid}/cmdline"] = b"\n".join(sorted(cmdlines))
    return proc, texts, watch.seen


def leaks(texts: dict[str, bytes]) -> list[str]:
    """Where the token, or its secret part, appears."""
    return sorted({where for where, data in texts.items() for needle in NEEDLES if needle in data})


def assert_no_token(texts: dict[str, bytes]) -> None:
    assert leaks(texts) == [], "the token appears in these places"


def _seed_reference(anaconda, build: Path, basename: str, data: bytes) -> None:
    anaconda.server.seed(OWNER, "crdagtiny", "1.0.0", basename, data)


SCENARIOS = ("uploaded", "skipped", "rejected-token", "conflict", "retried-after-5xx")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_token_is_nowhere(tiny_release, tmp_path, monkeypatch, scenario):
    for name in ("ANACONDA_API_TOKEN", "BINSTAR_API_TOKEN", "BINSTAR_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    tiny_release.restore()
    build = tiny_release.build
    # the stand-in knows the token, except in the scenario where it must reject it
    with anaconda_stand_in(tmp_path / "home", token=None if scenario == "rejected-token" else TOKEN) as anaconda:
        if scenario == "skipped":  # the server already holds every file: each upload is a lookup
            for path in sorted(build.glob("conda-bld/*/*.tar.bz2")) + sorted(build.glob("platform-builds/*/*.tar.bz2")):
                _seed_reference(anaconda, build, f"{path.parent.name}/{path.name}", path.read_bytes())
        elif scenario == "conflict":
            _seed_reference(anaconda, build, f"linux-64/{PY36}", (build / f"conda-bld/linux-64/{PY37}").read_bytes())
        elif scenario == "retried-after-5xx":
            anaconda.server.inject("stage", status=503, times=2)
            anaconda.server.inject("commit", status=502, after=True)

        proc, texts, sampled = scanned_run(tiny_release, anaconda, tmp_path)
        out = proc.stdout_text + proc.stderr_text

        # the scenario happened as intended (else the scan proves nothing) ...
        if scenario in ("uploaded", "skipped", "retried-after-5xx"):
            assert proc.returncode == 0, out
            assert len(anaconda.held()) == 6
            assert f"6 files: 6 {'skipped' if scenario == 'skipped' else 'uploaded'}" in out
            if scenario == "retried-after-5xx":
                assert out.count("retrying publishing") == 3
        elif scenario == "rejected-token":
            assert proc.returncode != 0 and "(401)" in out and anaconda.held() == {}
        else:
            assert proc.returncode != 0 and "set force=true to replace it" in out
        # ... the token really was given to the run, and the sampler really saw the run
        assert any(b"_crash_run.py" in cmdline for cmdline in sampled.get(proc.pid, ())), sampled
        if scenario != "rejected-token":
            assert anaconda.server.tokens[TOKEN] == USER

        assert_no_token(texts)
        # the database was scanned as raw bytes (its task names are readable there)
        assert b"skeleton" in texts[str(build / ".doit.db")] and b"upload:" in texts[str(build / ".doit.db")]


def test_the_scan_finds_a_token_that_does_leak(tiny_release, tmp_path, monkeypatch):
    """Control: a token given where it cannot stay secret (as a label) is found by the same scan,
    in the command line, the output, the stamps and the manifest.  (doit's database keeps only a
    digest of each task's settings, so even this label does not reach it.)"""
    for name in ("ANACONDA_API_TOKEN", "BINSTAR_API_TOKEN", "BINSTAR_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    tiny_release.restore()
    with anaconda_stand_in(tmp_path / "home") as anaconda:
        proc, texts, _ = scanned_run(tiny_release, anaconda, tmp_path, label=TOKEN)
    assert proc.returncode == 0, proc.stdout_text + proc.stderr_text
    found = " ".join(leaks(texts))
    for where in ("/proc/", "stdout", "release.json",
                  f"stamps/anaconda/linux-64/{PY36}.json"):
        assert where in found, found
