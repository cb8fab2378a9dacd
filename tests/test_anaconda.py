"""tasks/anaconda.py against the anaconda.org stand-in, through the real anaconda-client, over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import rattler
import requests

pytest.register_assert_rewrite("_anaconda_fixtures")
from _anaconda_fixtures import OWNER, TOKEN  # noqa: E402
from anaconda_server import AnacondaServer  # noqa: E402
from tasks import anaconda  # noqa: E402
from tasks.errors import UserError  # noqa: E402

pytest_plugins = ("_anaconda_fixtures",)  # anaconda_server, anaconda_home, make_package

ROOT = Path(__file__).resolve().parent.parent
BASENAME = "linux-64/demo-1.0-py_0.tar.bz2"
FAST = {"backoff": 0.01, "timeout": 5.0}


def publish(server: AnacondaServer, path: Path, **kwargs) -> anaconda.Confirmed:
    options = {"owner": OWNER, "labels": ["main"], "force": False, "token": TOKEN, "api_url": server.url,
               "retries": 0, **FAST, **kwargs}
    return anaconda.publish(path, "linux-64", **options)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def held_once(server: AnacondaServer, path: Path) -> None:
    """The server holds exactly one copy of the file, and it is this file."""
    copies = server.copies(OWNER, BASENAME)
    assert len(copies) == 1, copies
    assert copies[0].sha256 == sha256(path)


def no_token(capsys: pytest.CaptureFixture, *texts: str) -> None:
    out, err = capsys.readouterr()
    for text in (out, err, *texts):
        assert TOKEN not in text


# -- content-based idempotency --------------------------------------------------------------------


def test_upload_then_rerun_skips_with_one_query_and_no_bytes(anaconda_server, make_package, capsys):
    path = make_package()
    first = publish(anaconda_server, path)
    assert first.state == "uploaded"
    assert (first.sha256, first.size) == (sha256(path), path.stat().st_size)
    assert first.url == f"{anaconda_server.url}/download/{OWNER}/demo/1.0/{BASENAME}"
    held_once(anaconda_server, path)
    out, _ = capsys.readouterr()
    assert f"uploading {path.name} ({-(-path.stat().st_size // 1024)} KiB) to {OWNER}/main" in out

    sent, calls = anaconda_server.package_bytes, len(anaconda_server.log)
    again = publish(anaconda_server, path)
    assert again == anaconda.Confirmed("skipped", first.url, first.sha256, first.md5, first.size)
    assert anaconda_server.package_bytes == sent
    assert [(m, p) for m, p, _ in anaconda_server.calls(since=calls)] == [("GET", f"/dist/{OWNER}/demo/1.0/{BASENAME}")]
    no_token(capsys)


def test_labels_reach_the_server_and_its_channel_view(anaconda_server, make_package):
    path = make_package()
    publish(anaconda_server, path, labels=["main", "rc"])
    assert anaconda_server.copies(OWNER, BASENAME)[0].labels == ["main", "rc"]
    for label in ("main", "rc"):
        repodata = requests.get(f"{anaconda_server.channel_url(OWNER, label)}/linux-64/repodata.json", timeout=5).json()
        assert repodata["packages"][path.name]["sha256"] == sha256(path)


def test_different_file_under_the_same_name_stops_with_both_hashes(anaconda_server, make_package, capsys):
    old, new = make_package(), make_package()
    publish(anaconda_server, old)
    sent = anaconda_server.package_bytes
    with pytest.raises(UserError) as caught:
        publish(anaconda_server, new)
    message = str(caught.value)
    assert sha256(old) in message and sha256(new) in message and "force=true" in message
    assert "\n" not in message
    assert anaconda_server.package_bytes == sent
    held_once(anaconda_server, old)
    no_token(capsys, message)


def test_force_replaces_a_different_file(anaconda_server, make_package):
    old, new = make_package(), make_package()
    publish(anaconda_server, old)
    replaced = publish(anaconda_server, new, force=True)
    assert (replaced.state, replaced.sha256) == ("uploaded", sha256(new))
    held_once(anaconda_server, new)
    assert ("DELETE", f"/dist/{OWNER}/demo/1.0/{BASENAME}", 200) in anaconda_server.log
    assert publish(anaconda_server, new, force=True).state == "skipped"  # same content: nothing to replace


def test_a_file_someone_else_uploaded_is_recognised_by_content(anaconda_server, make_package):
    path = make_package()
    anaconda_server.seed(OWNER, "demo", "1.0", BASENAME, path.read_bytes())
    assert publish(anaconda_server, path).state == "skipped"
    assert anaconda_server.package_bytes == 0


def test_md5_is_compared_when_the_server_gives_no_sha256(anaconda_server, make_package):
    anaconda_server.md5_only = True
    path, other = make_package(), make_package()
    first = publish(anaconda_server, path)
    assert (first.state, first.sha256, first.md5) == ("uploaded", None, hashlib.md5(path.read_bytes()).hexdigest())
    assert publish(anaconda_server, path).state == "skipped"
    with pytest.raises(UserError, match=r"has md5 [0-9a-f]{32} but the local file has md5 [0-9a-f]{32}"):
        publish(anaconda_server, other)


# -- faults: retried within one run, and a failed run followed by a re-run ------------------------

FAULTS = {
    "package 5xx": (dict(point="package", status=503, method="POST"), "uploaded"),
    "release 5xx": (dict(point="release", status=502, method="POST"), "uploaded"),
    "stage 5xx": (dict(point="stage", status=500), "uploaded"),
    "storage 5xx": (dict(point="storage", status=503), "uploaded"),
    "storage unreachable": (dict(point="storage", kind="unreachable"), "uploaded"),
    "reset mid-body": (dict(point="storage", kind="reset"), "uploaded"),
    "commit 5xx": (dict(point="commit", status=503), "uploaded"),
    "commit done, answer 5xx": (dict(point="commit", status=504, after=True), "skipped"),
    "lookup slower than the timeout": (dict(point="dist", kind="slow", delay=0.8), "uploaded"),
    "storage slower than the timeout": (dict(point="storage", kind="slow", delay=0.8, after=True), "uploaded"),
    "commit done, answered after the timeout": (dict(point="commit", kind="slow", delay=0.8, after=True), "skipped"),
    "commit done after the timeout": (dict(point="commit", kind="slow", delay=0.6), None),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_fault_is_retried_to_exactly_one_copy(anaconda_server, make_package, capsys, fault):
    spec, _ = FAULTS[fault]
    anaconda_server.inject(**spec)
    path = make_package()
    confirmed = publish(anaconda_server, path, retries=3, timeout=0.3)
    assert (confirmed.state, confirmed.sha256) == ("uploaded", sha256(path))
    held_once(anaconda_server, path)
    assert "retrying publishing" in capsys.readouterr().out


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_fault_fails_the_run_then_a_rerun_converges(anaconda_server, make_package, capsys, fault):
    spec, rerun_state = FAULTS[fault]
    anaconda_server.inject(**spec)
    path = make_package()
    with pytest.raises(UserError) as caught:
        publish(anaconda_server, path, retries=0, timeout=0.3)
    assert "gave up after 1 attempt" in str(caught.value) and "\n" not in str(caught.value)
    confirmed = publish(anaconda_server, path, timeout=2)
    assert confirmed.sha256 == sha256(path)
    if rerun_state:
        assert confirmed.state == rerun_state
    held_once(anaconda_server, path)
    no_token(capsys, str(caught.value))


def test_retries_are_bounded(make_package, capsys):
    with AnacondaServer() as server:
        gone = server.url
    with pytest.raises(UserError, match=r"gave up after 3 attempts, the last ended in a connection error"):
        anaconda.publish(make_package(), "linux-64", owner=OWNER, labels=["main"], force=False, token=TOKEN,
                         api_url=gone, retries=2, backoff=0.01, timeout=1)
    assert capsys.readouterr().out.count("retrying") == 2


# -- failures a retry cannot cure: at once, one line, naming the fix ------------------------------


def test_rejected_token_fails_at_once(anaconda_server, make_package, capsys):
    with pytest.raises(UserError, match=r"\(401\): log in with `anaconda login` or set ANACONDA_API_TOKEN$"):
        publish(anaconda_server, make_package(), token="not-a-token", retries=3)
    assert len(anaconda_server.log) == 1  # no retry
    assert "retrying" not in capsys.readouterr().out


def test_missing_token_names_the_login(anaconda_server, make_package):
    with pytest.raises(UserError, match=r"\(401\): log in with `anaconda login` or set ANACONDA_API_TOKEN$"):
        publish(anaconda_server, make_package(), token=None, retries=3)
    assert anaconda_server.copies(OWNER, BASENAME) == []


def test_injected_401_mid_upload_is_not_retried(anaconda_server, make_package):
    anaconda_server.inject("stage", status=401)
    with pytest.raises(UserError, match="anaconda login"):
        publish(anaconda_server, make_package(), retries=3)
    assert [p for _, p, _ in anaconda_server.log].count(f"/stage/{OWNER}/demo/1.0/{BASENAME}") == 1


def test_a_login_that_may_not_write_to_the_owner(anaconda_server, make_package):
    anaconda_server.add_user("stranger", "tok-stranger")
    with pytest.raises(UserError, match=rf"does not let this login write to {OWNER} \(403\)"):
        publish(anaconda_server, make_package(), token="tok-stranger", retries=3)


def test_unknown_owner(anaconda_server, make_package):
    with pytest.raises(UserError) as caught:
        publish(anaconda_server, make_package(), owner="nobody", retries=3)
    assert str(caught.value) == f"owner nobody does not exist on {anaconda_server.url}: check owner="


def test_a_file_for_another_platform_is_refused(anaconda_server, make_package):
    with pytest.raises(UserError, match="says subdir 'linux-64' in info/index.json, not 'osx-64'"):
        anaconda.publish(make_package(), "osx-64", owner=OWNER, labels=["main"], force=False, token=TOKEN,
                         api_url=anaconda_server.url)
    assert anaconda_server.log == []


def test_not_a_package(anaconda_server, tmp_path):
    bogus = tmp_path / "demo-1.0-py_0.tar.bz2"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(UserError, match="is not a readable conda package"):
        publish(anaconda_server, bogus)


# -- anaconda-client's own configuration and the real CLI -----------------------------------------


def test_url_from_anaconda_client_config(anaconda_home, anaconda_server, make_package):
    confirmed = anaconda.publish(make_package(), "linux-64", owner=OWNER, labels=["main"], force=False,
                                 token=TOKEN, **FAST)
    assert confirmed.url.startswith(anaconda_server.url)


def test_stored_token_order():
    assert anaconda.stored_token({"ANACONDA_API_TOKEN": "a"}) == "a"
    assert anaconda.stored_token({"ANACONDA_API_TOKEN": "a", "BINSTAR_API_TOKEN": "b"}) == "b"  # as the client


def test_stored_token_reads_anaconda_login(anaconda_home, anaconda_server):
    """`anaconda login` stores the token per site URL under HOME; the client reads HOME at import."""
    tokens = anaconda_home / ".continuum" / "anaconda-client" / "tokens"
    tokens.mkdir()
    (tokens / f"{quote_plus(anaconda_server.url)}.token").write_text(TOKEN)
    probe = "from tasks.anaconda import stored_token; print(stored_token({}) == %r)" % TOKEN
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "True", found.stderr


def test_real_anaconda_cli_speaks_to_the_stand_in(anaconda_home, anaconda_server, make_package):
    """`anaconda upload --user OWNER FILE`, token in the environment only, as the walkthrough runs it."""
    path, other = make_package(), make_package()
    cli = Path(sys.executable).with_name("anaconda")
    env = {**os.environ, "ANACONDA_API_TOKEN": TOKEN}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(cli), "upload", "--user", OWNER, *args], env=env, capture_output=True,
                              text=True, timeout=120)

    uploaded = run(str(path))
    assert uploaded.returncode == 0, uploaded.stderr
    held_once(anaconda_server, path)
    assert ("HEAD", "/", 200) in anaconda_server.log
    # our publish recognises what the CLI put there, and sends nothing
    assert publish(anaconda_server, path).state == "skipped"
    # the CLI's --force goes through DELETE /dist
    forced = run("--force", str(other))
    assert forced.returncode == 0, forced.stderr
    held_once(anaconda_server, other)
    assert TOKEN not in uploaded.stdout + uploaded.stderr + forced.stdout + forced.stderr


def test_published_files_install_from_the_channel_view(anaconda_server, make_package, tmp_path):
    path = make_package()
    publish(anaconda_server, path)
    records = asyncio.run(rattler.solve(
        [rattler.Channel(anaconda_server.channel_url(OWNER))], ["demo"], platforms=["linux-64", "noarch"],
        gateway=rattler.Gateway(cache_dir=tmp_path / "cache"),
    ))
    assert [(str(r.name.normalized), r.sha256.hex()) for r in records] == [("demo", sha256(path))]
    asyncio.run(rattler.install(records, tmp_path / "env", cache_dir=tmp_path / "pkgs", show_progress=False))
    assert (tmp_path / "env" / "share" / "demo" / "payload.bin").is_file()
