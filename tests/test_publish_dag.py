"""The whole release DAG publishing to real servers: `doit target=anaconda` against the anaconda.org
stand-in (tests/anaconda_server.py) through the real anaconda-client, and `doit target=quetz`
against a real quetz server, all on 127.0.0.1.

anaconda-client finds the stand-in through a temporary HOME's config (the `anaconda_home` fixture);
the token travels in ANACONDA_API_TOKEN only, never on a command line.  The tiny package is built
and converted once per module; each test starts from a copy of that build restored at the same
path, so doit's database stays valid and a test's first run executes only uploads, manifest and
verify.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import xxhash

pytest.register_assert_rewrite("_anaconda_fixtures")
from _anaconda_fixtures import OWNER, TOKEN, USER  # noqa: E402
from anaconda_server import AnacondaServer  # noqa: E402
from conftest import CHECKS, TINY_ARGS, Project, new_project, read_summary  # noqa: E402
from tasks import subdirs  # noqa: E402

pytest_plugins = ("_anaconda_fixtures",)  # anaconda_server, anaconda_home, make_package, quetz_server

NATIVE = subdirs.native()
PACKAGE, VERSION = "crdagtiny", "1.0.0"
TINY_SUBDIRS = ("linux-64", "win-64", "osx-arm64")
KEYS = tuple(sorted(f"{sub}/{PACKAGE}-{VERSION}-{tag}_0.tar.bz2" for sub in TINY_SUBDIRS for tag in ("py36", "py37")))
ANACONDA = ("target=anaconda", f"owner={OWNER}", "label=main")
UPLOADS = {f"upload:{key}" for key in KEYS}


# -- one build for the module, restored for each test -------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_sdist) -> tuple[Project, Path]:
    """The six artifacts built and converted once; a snapshot of the tree (doit's database too)."""
    base = tmp_path_factory.mktemp("publish-dag")
    project = new_project(base / "proj", (tiny_sdist,))
    project.doit("convert", *TINY_ARGS)
    snapshot = base / "snapshot"
    shutil.copytree(project.root, snapshot, symlinks=True)
    return project, snapshot


@pytest.fixture
def fresh(built) -> Project:
    """The built project, as it was before any upload (same path, so doit's records still hold)."""
    project, snapshot = built
    shutil.rmtree(project.root)
    shutil.copytree(snapshot, project.root, symlinks=True)
    return project


class Release:
    """`doit ... target=anaconda owner=pingthings label=main` against the stand-in."""

    def __init__(self, project: Project, server: AnacondaServer) -> None:
        self.project, self.server = project, server

    def run(self, *args: str, check: bool = True, token: str | None = TOKEN,
            target: tuple[str, ...] = ANACONDA) -> subprocess.CompletedProcess:
        assert not any(token and token in arg for arg in args)  # never on a command line
        env = {"ANACONDA_API_TOKEN": token} if token else {}
        proc = self.project.doit(*args, *TINY_ARGS, *target, check=check, env=env)
        assert TOKEN not in proc.stdout + proc.stderr
        return proc

    def stamp(self, key: str) -> Path:
        return self.project.build / "stamps" / "anaconda" / f"{key}.json"

    def stamps(self) -> dict[str, dict]:
        found = sorted((self.project.build / "stamps" / "anaconda").glob("*/*.json"))
        return {f"{p.parent.name}/{p.name.removesuffix('.json')}": json.loads(p.read_text()) for p in found}

    def held(self) -> dict[str, str]:
        """basename -> sha256 of every file the server holds for OWNER; asserts one copy of each."""
        dists = [d for d in self.server.dists if d.owner == OWNER]
        assert len({d.basename for d in dists}) == len(dists), [d.basename for d in dists]
        return {d.basename: d.sha256 for d in dists}

    def download_url(self, key: str, server: AnacondaServer | None = None) -> str:
        return f"{(server or self.server).url}/download/{OWNER}/{PACKAGE}/{VERSION}/{key}"


@pytest.fixture
def release(fresh, anaconda_server, anaconda_home) -> Release:
    return Release(fresh, anaconda_server)


def local_path(project: Project, key: str) -> Path:
    subdir, name = key.split("/")
    folder = "conda-bld" if subdir == NATIVE else "platform-builds"
    return project.build / folder / subdir / name


def digests(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "xxh3": xxhash.xxh3_128(data).hexdigest(), "size": len(data)}


def local_sha256(project: Project) -> dict[str, str]:
    return {key: digests(local_path(project, key))["sha256"] for key in KEYS}


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]


def one_error(proc: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one `error:` line and no traceback; that line."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stdout + proc.stderr
    return lines[0]


def summary(proc: subprocess.CompletedProcess) -> dict[str, set[str]]:
    """The reporter's summary table as state -> the files whose cell names it."""
    return read_summary(proc.stdout).by_state(PACKAGE, VERSION)


class StageFault:
    """Let n-1 uploads through, then answer `status` to the n-th stage request (once).

    Counts stage requests by wrapping the stand-in's handler (looked up per request); the failure
    itself goes through the server's own fault injection, which answers before any handler.
    """

    def __init__(self, server: AnacondaServer, n: int, status: int = 401) -> None:
        self.server, self.status, self.passed = server, status, []
        original = server._stage

        def stage(method, parts, login, payload, headers):
            self.passed.append("/".join(parts[3:]))
            if len(self.passed) == n - 1:
                server.inject("stage", status=status)
            return original(method, parts, login, payload, headers)

        server._stage = stage

    def refused(self) -> str:
        """The basename whose stage request was refused."""
        prefix = f"/stage/{OWNER}/{PACKAGE}/{VERSION}/"
        (path,) = [p for _, p, s in self.server.log if p.startswith(prefix) and s == self.status]
        return path.removeprefix(prefix)


# -- a full release, re-runs, stamps and manifest -------------------------------------------------


def test_full_release_uploads_the_six_artifacts_and_records_them(release):
    first = release.run()
    assert set(release.project.executed(first)) == UPLOADS | {"manifest", *CHECKS, "verify"}  # nothing rebuilt
    assert release.held() == local_sha256(release.project)

    stamps = release.stamps()
    assert sorted(stamps) == list(KEYS)
    for key, stamp in stamps.items():
        subdir, name = key.split("/")
        assert stamp == {
            "file": name, "subdir": subdir, "target": "anaconda", "owner": OWNER, "labels": ["main"],
            **digests(local_path(release.project, key)), "state": "uploaded", "url": release.download_url(key),
            "inputs": stamp["inputs"],
        }
        assert re.fullmatch(r"[0-9a-f]{64}", stamp["inputs"])  # what the file was made from (tasks/restore.py)
        assert f"uploading {name} (" in first.stdout
        assert f"uploaded {key} -> {release.download_url(key)}" in first.stdout
    manifest = json.loads((release.project.build / "release.json").read_text())
    assert {k: manifest[k] for k in ("package", "version", "target", "owner", "labels")} == \
        {"package": PACKAGE, "version": VERSION, "target": "anaconda", "owner": OWNER, "labels": ["main"]}
    assert sorted(manifest["files"], key=lambda f: (f["subdir"], f["file"])) == [stamps[k] for k in KEYS]
    assert summary(first)["uploaded"] == set(KEYS)

    # The download URLs the stamps record serve exactly the local bytes.
    for key, stamp in stamps.items():
        assert hashlib.sha256(requests.get(stamp["url"], timeout=10).content).hexdigest() == stamp["sha256"]

    # The token reaches no file the release writes (stamps, manifest, doit's database, ...).
    for path in release.project.build.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert TOKEN.encode() not in path.read_bytes(), path


def test_second_run_makes_no_request_at_all(release):
    release.run()
    calls, sent = len(release.server.log), release.server.package_bytes
    again = release.run()
    assert release.project.executed(again) == []
    assert release.server.calls(since=calls) == []
    assert release.server.package_bytes == sent
    assert summary(again) == {"skipped": set(KEYS)}


def test_deleted_stamps_cost_one_query_per_artifact_and_no_package_bytes(release):
    release.run()
    shutil.rmtree(release.project.build / "stamps" / "anaconda")
    calls, sent = len(release.server.log), release.server.package_bytes
    rerun = release.run()
    assert set(release.project.executed(rerun)) == UPLOADS | {"manifest", *CHECKS, "verify"}

    made = release.server.calls(since=calls)
    assert {method for method, _, _ in made} == {"GET"}
    queried = [path.removeprefix(f"/dist/{OWNER}/{PACKAGE}/{VERSION}/") for _, path, _ in made]
    assert sorted(queried) == list(KEYS)  # exactly one lookup each, nothing else
    assert release.server.package_bytes == sent
    assert "uploading" not in rerun.stdout

    assert {key: s["state"] for key, s in release.stamps().items()} == dict.fromkeys(KEYS, "skipped")
    manifest = json.loads((release.project.build / "release.json").read_text())
    assert {f["state"] for f in manifest["files"]} == {"skipped"} and len(manifest["files"]) == 6
    assert summary(rerun) == {"skipped": set(KEYS)}
    assert release.held() == local_sha256(release.project)


def test_upload_alone_publishes_then_a_full_run_asks_the_server_nothing(release):
    uploaded = release.run("upload")
    assert set(release.project.executed(uploaded)) == UPLOADS
    assert not (release.project.build / "release.json").exists()
    assert release.held() == local_sha256(release.project)

    calls = len(release.server.log)
    rest = release.run()
    assert set(release.project.executed(rest)) == {"manifest", *CHECKS, "verify"}
    assert release.server.calls(since=calls) == []
    assert release.project.executed(release.run("upload")) == []


def test_no_token_is_one_line_and_no_request(release):
    failed = release.run(check=False, token=None)
    assert one_error(failed).endswith("no anaconda.org token: run `anaconda login`, or set ANACONDA_API_TOKEN")
    assert release.server.log == [] and release.stamps() == {}


# -- verify: the walkthrough's "test the deployment" ----------------------------------------------


@pytest.mark.skipif(NATIVE not in TINY_SUBDIRS, reason=f"this machine's {NATIVE} is not a tiny-release platform")
def test_verify_installs_from_the_published_channel_view(release):
    release.run("upload")
    calls = len(release.server.log)
    verified = release.run(f"channel-url={release.server.channel_url(OWNER)}")
    assert set(release.project.executed(verified)) == {"manifest", *CHECKS, "verify"}

    mine = [key for key in KEYS if key.startswith(f"{NATIVE}/")]
    record = json.loads((release.project.build / "stamps" / "verify-anaconda.json").read_text())
    assert sorted(item["file"] for item in record["installs"]) == mine
    # a build for another Python than this machine's is installed, and its imports are not run
    assert all(item["installed"] and set(item["imports"]) == {PACKAGE} and
               item["imports"][PACKAGE].startswith("skipped (a Python 3.") for item in record["installs"])
    assert len(record["archives"]) == 6
    for key in mine:
        assert f"verified {key}: installed; tests skipped (a Python 3." in verified.stdout
        # ... and the package bytes were fetched from the server's channel view, not read locally
        assert ("GET", f"/{OWNER}/{key}", 200) in release.server.calls(since=calls)

    # The same channel-url again: verify is up to date and the server hears nothing.
    calls = len(release.server.log)
    assert release.project.executed(release.run(f"channel-url={release.server.channel_url(OWNER)}")) == []
    assert release.server.calls(since=calls) == []


def test_verify_without_channel_url_skips_the_install_and_still_checks_the_archives(release):
    proc = release.run()
    assert f"install check skipped: give channel-url= (the conda channel of {OWNER})" in proc.stdout
    record = json.loads((release.project.build / "stamps" / "verify-anaconda.json").read_text())
    assert record["installs"] == []
    assert sorted(f"{a['subdir']}/{a['file']}" for a in record["archives"]) == list(KEYS)
    assert all(a["files"] > 0 for a in record["archives"])
    assert not any(path.startswith(f"/{OWNER}/") for _, path, _ in release.server.log)  # no channel read


def test_verify_from_an_empty_label_fails_in_one_line(release):
    release.run("upload")
    failed = release.run(f"channel-url={release.server.channel_url(OWNER, 'nothing-here')}", check=False)
    line = one_error(failed)
    assert re.match(r"error: check:3\.[67]: ", line) and "does not install from the channel" in line
    assert not (release.project.build / "stamps" / "verify-anaconda.json").exists()


# -- failures through the DAG, and the re-run that converges --------------------------------------

TRANSIENT = {
    "commit 5xx": dict(point="commit", status=503),
    "commit done, answer 5xx": dict(point="commit", status=504, after=True),
    "storage 5xx": dict(point="storage", status=503),
}


@pytest.mark.parametrize("fault", TRANSIENT, ids=list(TRANSIENT))
def test_a_5xx_for_one_file_is_retried_and_the_run_converges(release, fault):
    release.server.inject(**TRANSIENT[fault])
    proc = release.run()
    assert proc.stdout.count("retrying publishing") == 1
    assert release.held() == local_sha256(release.project)
    assert {key: s["state"] for key, s in release.stamps().items()} == dict.fromkeys(KEYS, "uploaded")
    assert summary(proc)["uploaded"] == set(KEYS)


def test_a_401_mid_run_fails_one_file_keeps_the_others_then_a_rerun_converges(release):
    fault = StageFault(release.server, 3)
    failed = release.run(check=False)
    line = one_error(failed)
    victim, passed = fault.refused(), list(fault.passed)
    assert line.startswith(f"error: upload:{victim}: ") and "(401): log in with `anaconda login`" in line
    assert [p for _, p, _ in release.server.log].count(f"/stage/{OWNER}/{PACKAGE}/{VERSION}/{victim}") == 1  # no retry

    # What did upload is stamped, the failed file is not, and the stamps match the server.
    stamps = release.stamps()
    assert set(stamps) == set(passed) == set(release.held())
    assert not release.stamp(victim).exists()
    assert all(release.held()[key] == s["sha256"] and s["state"] == "uploaded" for key, s in stamps.items())
    assert not (release.project.build / "release.json").exists()

    calls = len(release.server.log)
    rerun = release.run()
    assert set(release.project.executed(rerun)) == (UPLOADS - {f"upload:{k}" for k in passed}) | {"manifest", *CHECKS, "verify"}
    asked = {path for _, path, _ in release.server.calls(since=calls)}
    assert not any(key in path for key in passed for path in asked)  # stamped files: no request
    assert release.held() == local_sha256(release.project)
    assert sorted(release.stamps()) == list(KEYS)


def test_an_unknown_owner_fails_at_once_then_the_right_owner_converges(release):
    failed = release.run(check=False, target=("target=anaconda", "owner=nobody", "label=main"))
    line = one_error(failed)
    assert line.endswith(f"owner nobody does not exist on {release.server.url}: check owner=")
    assert release.stamps() == {} and release.server.dists == [] and release.server.package_bytes == 0

    release.run()
    assert release.held() == local_sha256(release.project)
    assert {s["owner"] for s in release.stamps().values()} == {OWNER}


def test_a_different_file_under_the_same_name_stops_naming_both_hashes_and_force_replaces_it(release, make_package):
    key = f"{NATIVE}/{PACKAGE}-{VERSION}-py36_0.tar.bz2"
    other = make_package(name=PACKAGE, version=VERSION, subdir=NATIVE, build="py36_0").read_bytes()
    theirs = release.server.seed(OWNER, PACKAGE, VERSION, key, other).sha256
    ours = local_sha256(release.project)[key]

    refused = release.run(check=False)
    line = one_error(refused)
    assert line.startswith(f"error: upload:{key}: ") and line.endswith("set force=true to replace it")
    assert f"sha256 {theirs}" in line and f"sha256 {ours}" in line
    assert not release.stamp(key).exists()
    assert release.held()[key] == theirs

    forced = release.run("force=true")
    assert ("DELETE", f"/dist/{OWNER}/{PACKAGE}/{VERSION}/{key}", 200) in release.server.log
    assert release.held() == local_sha256(release.project)  # the rebuilt conversions are byte-identical
    assert release.stamps()[key]["state"] == "uploaded" and release.stamps()[key]["sha256"] == ours
    assert "replacing" in forced.stdout

    calls = len(release.server.log)
    assert release.project.executed(release.run("force=true")) == []
    assert release.server.calls(since=calls) == []


# -- quetz ----------------------------------------------------------------------------------------


def test_quetz_target_second_run_uploads_nothing(fresh, quetz_server):
    target = ("target=quetz", f"quetz-url={quetz_server.url}", f"channel={quetz_server.channel}")
    env = {"QUETZ_API_KEY": quetz_server.api_key}

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = fresh.doit(*args, *TINY_ARGS, *target, env=env)
        assert quetz_server.api_key not in proc.stdout + proc.stderr
        return proc

    before = quetz_server.uploads()
    first = run()
    assert quetz_server.uploads() - before == 6
    stamps_dir = fresh.build / "stamps" / "quetz"
    ours = local_sha256(fresh)
    for key in KEYS:
        stamp = json.loads((stamps_dir / f"{key}.json").read_text())
        url = f"{quetz_server.url}/get/{quetz_server.channel}/{key}"
        assert (stamp["state"], stamp["url"], stamp["sha256"], stamp["target"]) == ("uploaded", url, ours[key], "quetz")
        assert hashlib.sha256(requests.get(url, timeout=30).content).hexdigest() == ours[key]
    assert summary(first)["uploaded"] == set(KEYS)

    uploads = quetz_server.uploads()
    second = run()
    assert fresh.executed(second) == []
    assert quetz_server.uploads() == uploads

    # Without stamps: looked up, found identical, nothing sent.
    shutil.rmtree(stamps_dir)
    third = run()
    assert quetz_server.uploads() == uploads
    assert {json.loads((stamps_dir / f"{k}.json").read_text())["state"] for k in KEYS} == {"skipped"}
    assert "uploading" not in third.stdout
    for path in fresh.build.rglob("*"):
        if path.is_file():
            assert quetz_server.api_key.encode() not in path.read_bytes(), path

    if NATIVE in TINY_SUBDIRS:  # and quetz's channel installs what was published
        verified = run(f"channel-url={quetz_server.url}/get/{quetz_server.channel}")
        for key in KEYS:
            if key.startswith(f"{NATIVE}/"):
                assert f"verified {key}: installed; tests skipped" in verified.stdout


# -- bugs these tests found, now fixed ------------------------------------------------------------


def test_summary_names_each_published_file_once(release):
    proc = release.run()
    kinds = summary(proc)
    assert kinds["uploaded"] == set(KEYS)
    assert "skipped" not in kinds, kinds


def test_summary_reports_the_failed_file_as_failed(release):
    fault = StageFault(release.server, 3)
    proc = release.run(check=False)
    kinds, victim = summary(proc), fault.refused()
    assert kinds.get("failed") == {victim}, kinds
    assert victim not in kinds.get("skipped", set()), kinds


def test_a_new_label_reaches_files_already_published(release):
    release.run()
    proc = release.run(target=("target=anaconda", f"owner={OWNER}", "label=main,rc"), check=False)
    assert proc.returncode == 0, proc.stdout
    assert all(s["labels"] == ["main", "rc"] for s in release.stamps().values())
    assert {d.basename: sorted(d.labels) for d in release.server.dists} == dict.fromkeys(KEYS, ["main", "rc"])
    repodata = requests.get(f"{release.server.channel_url(OWNER, 'rc')}/{NATIVE}/repodata.json", timeout=10).json()
    assert len(repodata["packages"]) == 2


def test_pointing_anaconda_client_at_another_server_publishes_there(release, anaconda_home):
    release.run()
    with AnacondaServer() as other:
        other.add_user(USER, TOKEN)
        other.add_org(OWNER, [USER])
        (anaconda_home / ".continuum" / "anaconda-client" / "config.yaml").write_text(f"url: {other.url}\n")
        release.run()
        assert {d.basename for d in other.dists} == set(KEYS)
        assert all(s["url"] == release.download_url(k, other) for k, s in release.stamps().items())


def test_retries_and_timeout_settings_bound_a_stalled_server(release):
    release.server.inject("dist", kind="slow", delay=2.0, times=50)
    started = time.monotonic()
    proc = release.run("retries=1", "timeout=0.5", check=False)
    assert "gave up after 2 attempts, the last ended in a timeout" in one_error(proc)
    assert time.monotonic() - started < 15



def test_a_package_created_meanwhile_is_not_taken_for_an_existing_file(release, make_package):
    # The package exists (an older version), but our lookup of it answers 404 once: exactly what a
    # parallel task sees when it loses the race to create the package.  (`doit -n 6 -P thread`
    # against an empty owner reproduces it by itself, not deterministically.)
    older = make_package(name=PACKAGE, version="0.9", subdir=NATIVE, build="py36_0")
    release.server.seed(OWNER, PACKAGE, "0.9", f"{NATIVE}/{older.name}", older.read_bytes())
    release.server.inject("package", status=404, method="GET")
    proc = release.run(check=False)
    assert proc.returncode == 0, proc.stdout
    assert {k: v for k, v in release.held().items() if k in KEYS} == local_sha256(release.project)


def test_uploads_off_a_terminal_write_plain_lines_only(release):
    proc = release.run()
    assert proc.stdout.count("uploading ") == len(KEYS)  # the plain record of each upload
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", proc.stdout + proc.stderr), proc.stderr
    assert "%|" not in proc.stderr and "B/s" not in proc.stderr, proc.stderr  # anaconda-client's bar, kept off


def test_status_remote_asks_the_server_and_flags_a_file_replaced_there(release):
    release.run()
    victim = KEYS[0]
    with release.server._lock:
        release.server.dists[:] = [d for d in release.server.dists if d.basename != victim]
    other = victim.replace("py36", "py37") if "py36" in victim else victim.replace("py37", "py36")
    release.server.seed(OWNER, PACKAGE, VERSION, victim, local_path(release.project, other).read_bytes())
    before = len(release.server.calls())
    quiet = release.run("status")
    assert len(release.server.calls()) == before  # no request without --remote
    assert "differs" not in quiet.stdout
    proc = release.run("status", "--remote")
    assert proc.returncode == 0 and len(release.server.calls()) > before
    flagged = [line.split()[0] for line in proc.stdout.splitlines() if line.rstrip().endswith("differs")]
    assert flagged == [victim], proc.stdout
    assert sum(line.rstrip().endswith("  same") for line in proc.stdout.splitlines()) == len(KEYS) - 1
    assert f"the server holds other bytes than our stamp for 1 file(s): {victim}" in proc.stdout
    assert f"target {release.server.url} as {OWNER}, label main" in proc.stdout
