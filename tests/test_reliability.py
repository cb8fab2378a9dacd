"""Crash safety and two runs at once, on real doit runs of the tiny release.

Each crash scenario puts back the reference release's build folder (`tiny_release`), removes what
makes the targeted task run again, then runs doit through tests/_crash_run.py, which replaces
one function *from outside* so that the process SIGKILLs itself at that point (production code
has no test hook).  Then:

- nothing torn under a real name: every file the killed run left is byte-identical to the
  reference, or absent (only temporary `.part` names may hold partial data);
- a plain re-run succeeds and converges: the same packages, channel, index, stamps and manifest
  as the uninterrupted run (see `_crash_fixtures.outputs` for the two normalisations);
- for target=anaconda: the server holds exactly one copy of each file, and every stamp names the
  sha256 the server holds and the local file has.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

pytest.register_assert_rewrite("_crash_fixtures")
from _crash_fixtures import (OWNER, PY36, PY37, Released, killed, leftovers, local_artifacts, outputs,
                             published_by_anaconda, run_doit)
from conftest import TINY_ARGS

pytest_plugins = ("_crash_fixtures",)

STAMP36 = f"stamps/local/win-64/{PY36}.json"
CHANNEL36 = f"channel/win-64/{PY36}"

# name -> (paths removed from the reference tree so the targeted task reruns, fault, what it kills)
LOCAL_CRASHES = {
    "unpack": (["work/source/source.json"], {"at": "tasks.source:_inside", "nth": 4},
               "source: mid-unpack of the local sdist"),
    "skeleton": (["work/skeleton/meta.yaml"], {"at": "os:replace", "match": "skeleton/meta.yaml"},
                 "skeleton: grayskull done, meta.yaml written to its temporary name, not renamed"),
    # Without its stamp a file is not published, so it is made, not fetched back (tasks/restore.py).
    "build": ([f"conda-bld/linux-64/{PY36}", f"stamps/local/linux-64/{PY36}.json"],
              {"at": "rattler_build:assemble_package"}, "build:3.6: staging prefix installed, packing starts"),
    "build-rename": ([f"conda-bld/linux-64/{PY36}"], {"at": "os:replace", "match": "conda-bld/"},
                     "build:3.6: the published package fetched back, complete under its temporary name"),
    "convert": ([f"platform-builds/win-64/{PY36}", STAMP36], {"at": "tasks.convert:write_package"},
                "convert:3.6: converted in memory, writing starts"),
    "convert-rename": ([f"platform-builds/win-64/{PY36}"], {"at": "os:replace", "match": "platform-builds/"},
                       "convert:3.6: the published package fetched back, complete under its temporary name"),
    "channel-copy": ([CHANNEL36, STAMP36], {"at": "os:replace", "match": "channel/win-64/"},
                     "upload: copy into the channel complete under its temporary name"),
    "index-start": ([CHANNEL36, STAMP36], {"at": "rattler.index:index_fs"},
                    "upload: package in the channel, index not started"),
    "index-midway": ([CHANNEL36, STAMP36],
                     {"at": "rattler.index:index_fs", "when": "watch", "dir": "build/channel/win-64"},
                     "upload: rattler renamed repodata.json.zst into place, repodata.json not yet"),
    "index-new-channel": (["channel", "stamps/local", "release.json"],
                          {"at": "rattler.index:index_fs", "when": "watch", "dir": "build/channel",
                           "event": "create", "name": "noarch"},
                          "upload: first index of a new channel, killed as rattler creates noarch/ "
                          "(it indexes noarch too), before noarch has an index"),
    "confirmed-unstamped": ([CHANNEL36, STAMP36], {"at": "tasks.upload:_repodata_record", "when": "after"},
                            "upload: channel confirmed the file, stamp not written"),
    "stamp-write": ([CHANNEL36, STAMP36], {"at": "os:replace", "match": "/stamps/local/"},
                    "upload: stamp written to its temporary name, not renamed"),
    "manifest-write": (["release.json"], {"at": "os:replace", "match": "release.json"},
                       "manifest: release.json written to its temporary name, not renamed"),
    "verify-stamp": (["stamps/verify-local.json"], {"at": "os:replace", "match": "verify-local.json"},
                     "verify: checks done, stamp not renamed into place"),
    "doit-database": (["stamps/local", "release.json"], {"at": "doit.dependency:SqliteDB.dump"},
                      "every task done, doit's database not saved (doit commits it only at the end)"),
}

# kills during target=anaconda runs (the reference tree has no anaconda stamps: all 6 upload)
ANACONDA_CRASHES = {
    "upload-body": ({"at": "binstar_client:multipart_files_upload", "nth": 3, "when": "body"},
                    "3rd upload: half the package sent to storage"),
    "commit-unanswered": ({"at": "requests.sessions:Session.post", "match": "/commit/", "nth": 3, "when": "after"},
                          "3rd upload: server committed the file, the answer never read"),
    "confirmed-unstamped": ({"at": "tasks.anaconda:publish", "nth": 3, "when": "after"},
                            "3rd upload: server confirmed, stamp not written"),
    "stamp-write": ({"at": "os:replace", "match": "stamps/anaconda", "nth": 3},
                    "3rd upload: stamp written to its temporary name, not renamed"),
}


def assert_nothing_torn(tiny_release: Released) -> None:
    """Every file the killed run left under a real name is complete: as in the reference."""
    for rel, data in outputs(tiny_release.build).items():
        if rel.startswith("channel/") and rel.endswith("repodata.json"):
            json.loads(data)  # an index may list fewer packages mid-release, but it is whole
        elif rel.startswith("stamps/anaconda/"):
            assert json.loads(data)["sha256"], rel
        else:
            assert data == tiny_release.reference.get(rel), f"{rel} differs from the uninterrupted run"


def assert_converged(tiny_release: Released, rerun: subprocess.CompletedProcess) -> None:
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert outputs(tiny_release.build) == tiny_release.reference
    # and the re-run's result is itself up to date
    again = tiny_release.run(*TINY_ARGS)
    assert again.returncode == 0 and tiny_release.project.executed(again) == [], again.stdout


@pytest.mark.parametrize("name", LOCAL_CRASHES, ids=list(LOCAL_CRASHES))
def test_sigkill_then_plain_rerun_converges(tiny_release, name, tmp_path):
    drop, fault, _ = LOCAL_CRASHES[name]
    tiny_release.restore(*drop)
    log = tmp_path / "crash.log"
    crash = tiny_release.run(*TINY_ARGS, crash=fault, env={"CRASH_LOG": str(log)})
    assert killed(crash), f"the fault never fired:\n{crash.stdout}\n{crash.stderr}"
    if fault.get("when") == "watch":  # killed by the watcher mid-index, not after the index
        assert "watch hit" in log.read_text()
    assert_nothing_torn(tiny_release)
    assert_converged(tiny_release, tiny_release.run(*TINY_ARGS))


@pytest.mark.parametrize("name", ANACONDA_CRASHES, ids=list(ANACONDA_CRASHES))
def test_sigkill_during_anaconda_upload_then_rerun_holds_one_copy(tiny_release, anaconda, name):
    fault, _ = ANACONDA_CRASHES[name]
    tiny_release.restore()
    args = (*TINY_ARGS, "target=anaconda")
    crash = tiny_release.run(*args, crash=fault, env=anaconda.env())
    assert killed(crash), f"the fault never fired:\n{crash.stdout}\n{crash.stderr}"
    assert_nothing_torn(tiny_release)
    assert all(len(copies) == 1 for copies in anaconda.held().values())

    rerun = tiny_release.run(*args, env=anaconda.env())
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    artifacts = local_artifacts(tiny_release.build)
    assert anaconda.held() == {key: [sha] for key, sha in artifacts.items()}  # one copy each, our bytes
    stamps = published_by_anaconda(tiny_release.build)
    assert sorted(stamps) == sorted(artifacts)
    for key, entry in stamps.items():
        assert entry["sha256"] == artifacts[key] and entry["url"].endswith(f"/{OWNER}/crdagtiny/1.0.0/{key}")
    # the packages themselves are the reference's, and a further run has nothing to do
    assert {k: v for k, v in outputs(tiny_release.build).items() if k.startswith(("conda-bld", "platform-builds"))} \
        == {k: v for k, v in tiny_release.reference.items() if k.startswith(("conda-bld", "platform-builds"))}
    again = tiny_release.run(*args, env=anaconda.env())
    assert again.returncode == 0 and tiny_release.project.executed(again) == []


def test_download_interrupted_then_plain_rerun_converges(tiny_release, tiny_sdist):
    """The run (and its pip) killed while pip copies the sdist: pip writes into a private folder
    that is renamed into build/downloads only when complete, so no half file ever takes the
    sdist's name.  The re-run has pip available (the sdist served from a local find-links folder)
    and must end with the release."""
    pip_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tiny_sdist.parent)}
    tiny_release.restore("downloads", "work/source/source.json")
    fault = {"at": "subprocess:run", "match": "'download'", "when": "partial", "group": True,
             "source": str(tiny_sdist)}
    crash = tiny_release.run(*TINY_ARGS, crash=fault, env=pip_env)
    assert killed(crash)
    assert not (tiny_release.build / "downloads" / tiny_sdist.name).exists()
    assert_converged(tiny_release, tiny_release.run(*TINY_ARGS, env=pip_env))


def test_rerun_removes_what_a_killed_write_left(tiny_release):
    drop, fault, _ = LOCAL_CRASHES["channel-copy"]
    tiny_release.restore(*drop)
    assert killed(tiny_release.run(*TINY_ARGS, crash=fault))
    left = leftovers(tiny_release.build)
    assert len(left) == 1 and left[0].startswith(f"channel/win-64/.{PY36}.") and left[0].endswith(".part")
    assert tiny_release.run(*TINY_ARGS).returncode == 0
    assert leftovers(tiny_release.build) == []


def test_published_files_are_readable_as_the_umask_allows(tiny_release):
    tiny_release.restore()
    umask = os.umask(0)
    os.umask(umask)
    for rel in (f"channel/win-64/{PY36}", f"platform-builds/win-64/{PY36}", f"conda-bld/linux-64/{PY37}",
                "release.json", "channel/win-64/repodata.json"):
        mode = stat.S_IMODE((tiny_release.build / rel).stat().st_mode)
        assert mode == 0o666 & ~umask, f"{rel} has mode {mode:o}"


# -- two runs at once ---------------------------------------------------------------------------


def _first_task_line(proc: subprocess.Popen, limit: float = 60) -> list[str]:
    """Read proc's stdout until doit reports its first executed task (it holds the lock by then)."""
    lines, deadline = [], time.monotonic() + limit
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(".  "):
            return lines
    raise AssertionError(f"the first run executed nothing: {''.join(lines)}")


@pytest.mark.parametrize("target", ["local", "anaconda"])
def test_two_runs_at_once_the_second_waits(tiny_release, anaconda, target):
    """Run A converts, uploads, writes the manifest; it is slowed by 2 s in its first conversion so
    that run B starts while A holds the build folder.  B must wait, then find nothing to do."""
    tiny_release.restore("platform-builds", "channel", "stamps", "release.json")
    args = (*TINY_ARGS, f"target={target}")
    env = anaconda.env() if target == "anaconda" else {}
    first = run_doit(tiny_release.project, *args, env=env, popen=True,
                     crash={"at": "tasks.convert:convert", "when": "sleep", "delay": 2.0})
    head = _first_task_line(first)
    second = run_doit(tiny_release.project, *args, env=env, popen=True)
    out_a, err_a = first.communicate(timeout=120)
    out_b, err_b = second.communicate(timeout=120)
    out_a = "".join(head) + out_a
    assert first.returncode == 0, out_a + err_a
    assert second.returncode == 0, out_b + err_b
    assert f"another doit run is using {tiny_release.build}: waiting for it to finish" in err_b
    assert "another doit run" not in err_a

    ran_a = tiny_release.project.executed(subprocess.CompletedProcess([], 0, out_a, ""))
    ran_b = tiny_release.project.executed(subprocess.CompletedProcess([], 0, out_b, ""))
    assert sum(name.startswith("upload:") for name in ran_a) == 6
    assert ran_b == []  # B found everything A did up to date: no second upload, conversion or index
    if target == "local":
        assert outputs(tiny_release.build) == tiny_release.reference
    else:
        assert anaconda.held() == {key: [sha] for key, sha in local_artifacts(tiny_release.build).items()}


def test_a_killed_run_does_not_leave_the_lock_taken(tiny_release):
    """The lock is an flock: the kernel drops it with the process, so no stale lock file blocks."""
    tiny_release.restore("release.json")
    assert killed(tiny_release.run(*TINY_ARGS, crash={"at": "os:replace", "match": "release.json"}))
    started = time.monotonic()
    rerun = tiny_release.run(*TINY_ARGS, timeout=60)
    assert rerun.returncode == 0 and "another doit run" not in rerun.stderr
    assert time.monotonic() - started < 30
